//! The process isolation backend. Being written.
