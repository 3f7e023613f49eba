//! `wharfd` — wharf's container engine.
//!
//! **Owns:** the host's containers, their volumes and their place on networks; the Docker
//! Engine API that the `docker` CLI and `wharf` speak ([`api`], over [`http`]); the state
//! database of containers and volumes; one monitor (`runhcs shim`) per running container,
//! which it re-attaches to after a restart.
//!
//! **Composes, does not own:** images and snapshots (`images`), networks (`hns`), compute
//! systems (`hcs`, through the monitor). The composition root is [`daemon::Daemon::open`].

pub mod api;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod http;
