//! The engine: containers, execs, volumes, images and networks as the daemon manages them.
//! Services are called here; Docker wire types stay in [`crate::api`].

pub mod containers;
pub mod dns;
pub mod exec;
pub mod images;
pub mod logs;
pub mod model;
pub mod mounts;
pub mod network;
pub mod runtime;
pub mod shim;
pub mod spec;
pub mod store;
pub mod volumes;
