//! ComputeSystem / Process. Being written.
pub struct ComputeSystem;
pub struct CreateOptions;
pub struct Process;
pub enum SystemState {}
