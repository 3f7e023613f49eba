//! `ComputeSystem` and `Process`: the HCS-shaped API over the process isolation backend.
//! (The schema-document entry points arrive with `schema`.)

use crate::process::{self, ops, state, Record, Status};
use crate::Result;
use std::path::{Path, PathBuf};

pub use crate::process::CreateOptions;

/// HCS's view of a system's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemState {
    Created,
    Running,
    Paused,
    Stopped,
}

impl From<Status> for SystemState {
    fn from(s: Status) -> Self {
        match s {
            Status::Creating | Status::Created => SystemState::Created,
            Status::Running => SystemState::Running,
            Status::Paused => SystemState::Paused,
            Status::Stopped => SystemState::Stopped,
        }
    }
}

/// An opened compute system (a container), identified by id under a state root.
pub struct ComputeSystem {
    root: PathBuf,
    record: Record,
}

impl ComputeSystem {
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        Ok(ComputeSystem {
            root: root.to_path_buf(),
            record: state::load(root, id)?,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    pub fn state(&self) -> SystemState {
        state::status(&self.root, &self.record).into()
    }

    pub fn start(&self) -> Result<()> {
        process::launch::start(&self.root, &self.record)
    }

    pub fn pause(&self) -> Result<()> {
        ops::pause(&self.root, &self.record)
    }

    pub fn resume(&self) -> Result<()> {
        ops::resume(&self.root, &self.record)
    }

    /// Graceful stop: SIGTERM, then SIGKILL to everything after `timeout`.
    pub fn shutdown(&self, timeout: std::time::Duration) -> Result<()> {
        ops::kill(&self.root, &self.record, libc::SIGTERM, false)?;
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if !state::init_alive(&self.record) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.terminate()
    }

    /// Forced stop of every process of the system.
    pub fn terminate(&self) -> Result<()> {
        ops::kill(&self.root, &self.record, libc::SIGKILL, true)
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        ops::pids(&self.root, &self.record)
    }
}

/// A process in a compute system (placeholder for the schema-driven API).
pub struct Process {
    pub pid: i32,
}
