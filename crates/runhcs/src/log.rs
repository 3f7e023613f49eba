//! Error and warning reporting: the whole error chain once, on stderr and in `--log` (text or
//! json, as containerd's shim reads it), and a small `tracing` subscriber so warnings from
//! `hcs` (a failed poststart hook, a capability this host cannot grant) reach the same places.

use crate::cli::Global;
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Clone)]
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

    /// Routes `tracing` events of `hcs` here: warnings always, debug with `--debug`.
    pub fn install(&self, debug: bool) {
        let sink = Sink {
            logger: self.clone(),
            max: if debug { Level::DEBUG } else { Level::WARN },
        };
        // Only fails if a subscriber is already set; then that one keeps reporting.
        tracing::subscriber::set_global_default(sink).ok();
    }

    pub fn error(&self, e: &(dyn std::error::Error + 'static)) {
        let msg = hcs::process::error_chain(e);
        let mut err = std::io::stderr().lock();
        // Nothing better to do if stderr is gone.
        writeln!(err, "runhcs: {msg}").ok();
        if self.file.is_some() {
            self.write_file("error", &msg);
        }
    }

    /// A warning or debug line: in `--log` if given, else on stderr.
    fn note(&self, level: &str, msg: &str) {
        if self.file.is_some() {
            self.write_file(level, msg);
        } else {
            writeln!(std::io::stderr().lock(), "runhcs: {level}: {msg}").ok();
        }
    }

    fn write_file(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let time = hcs::process::state::rfc3339_now();
        let line = if self.json {
            serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
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

struct Sink {
    logger: Logger,
    max: Level,
}

/// The event's message followed by its fields as `key=value`.
#[derive(Default)]
struct Line(String, String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.1.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.1.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl Subscriber for Sink {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.max
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, e: &Event<'_>) {
        let mut line = Line::default();
        e.record(&mut line);
        let level = match *e.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        self.logger.note(level, &format!("{}{}", line.0, line.1));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
