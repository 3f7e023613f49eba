//! Error reporting: the whole error chain once, on stderr and in `--log` (text or json, as
//! containerd's shim reads it).

use crate::cli::Global;
use std::io::Write;

pub struct Logger {
    file: Option<std::path::PathBuf>,
    json: bool,
}

impl Logger {
    pub fn new(g: &Global) -> Logger {
        Logger {
            file: g.log.clone().filter(|p| !p.as_os_str().is_empty()),
            json: g.log_format == "json",
        }
    }

    pub fn error(&self, e: &(dyn std::error::Error + 'static)) {
        let msg = hcs::process::error_chain(e);
        let mut err = std::io::stderr().lock();
        // Nothing better to do if stderr is gone.
        writeln!(err, "runhcs: {msg}").ok();
        let Some(path) = &self.file else { return };
        let time = hcs::process::state::rfc3339_now();
        let line = if self.json {
            serde_json::json!({ "level": "error", "msg": msg, "time": time }).to_string()
        } else {
            format!("time=\"{time}\" level=error msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            writeln!(f, "{line}").ok();
        }
    }
}
