//! Shows the JSON-lines progress stream of pull, push, load and import: on a terminal one
//! line per layer id, redrawn in place with a bar; otherwise plain lines, dropping byte-count
//! updates (docker's `jsonmessage` rules). An `errorDetail` ends the stream as an error.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::client::JsonLines;
use crate::error::{Error, Result};

/// Where progress goes: stdout (pull, push, load) or stderr (the implicit pull of `run`).
#[derive(Clone, Copy)]
pub enum Target {
    Stdout,
    Stderr,
}

impl Target {
    fn is_terminal(self) -> bool {
        match self {
            Target::Stdout => std::io::stdout().is_terminal(),
            Target::Stderr => std::io::stderr().is_terminal(),
        }
    }
    fn write(self, s: &str) {
        // Progress output is best effort: a closed pipe must not turn a pull into a failure.
        let r = match self {
            Target::Stdout => std::io::stdout().lock().write_all(s.as_bytes()),
            Target::Stderr => std::io::stderr().lock().write_all(s.as_bytes()),
        };
        drop(r);
    }
}

fn error_of(m: &Value) -> Option<String> {
    m["errorDetail"]["message"]
        .as_str()
        .or_else(|| m["error"].as_str())
        .map(str::to_string)
}

/// `(current, total)` when the message carries byte counts.
fn counts(m: &Value) -> Option<(u64, u64)> {
    let d = &m["progressDetail"];
    let cur = d["current"].as_u64()?;
    Some((cur, d["total"].as_u64().unwrap_or(0)))
}

fn status_line(m: &Value) -> String {
    let status = m["status"].as_str().unwrap_or("");
    match m["id"].as_str() {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_string(),
    }
}

/// Consumes the stream, showing it on `target`. Returns the `aux` objects (push digests).
pub async fn display(mut lines: JsonLines, target: Target) -> Result<Vec<Value>> {
    let mut aux = Vec::new();
    let tty = target.is_terminal();
    let multi = tty.then(|| {
        MultiProgress::with_draw_target(match target {
            Target::Stdout => ProgressDrawTarget::stdout(),
            Target::Stderr => ProgressDrawTarget::stderr(),
        })
    });
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let plain = ProgressStyle::with_template("{prefix}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let with_bar = ProgressStyle::with_template("{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    while let Some(m) = lines.next().await? {
        if let Some(e) = error_of(&m) {
            for b in bars.values() {
                b.abandon();
            }
            return Err(Error::Stream(e));
        }
        if !m["aux"].is_null() {
            aux.push(m["aux"].clone());
            continue;
        }
        if let Some(s) = m["stream"].as_str() {
            match &multi {
                Some(mp) => drop(mp.println(s.trim_end_matches('\n'))),
                None => target.write(s),
            }
            continue;
        }
        let id = m["id"].as_str().unwrap_or("").to_string();
        let status = m["status"].as_str().unwrap_or("").to_string();
        let Some(mp) = &multi else {
            if counts(&m).is_some_and(|(c, t)| c > 0 || t > 0) {
                continue;
            }
            if !status.is_empty() {
                target.write(&format!("{}\n", status_line(&m)));
            }
            continue;
        };
        // Lines without a layer id (or the tag line of a pull) are plain messages.
        if id.is_empty() || m["progressDetail"].is_null() {
            drop(mp.println(status_line(&m)));
            continue;
        }
        let bar = bars.entry(id.clone()).or_insert_with(|| {
            let b = mp.add(ProgressBar::new(0));
            b.set_style(plain.clone());
            b.set_prefix(id.clone());
            b
        });
        match counts(&m) {
            Some((cur, total)) if total > 0 => {
                bar.set_style(with_bar.clone());
                bar.set_length(total);
                bar.set_position(cur);
            }
            _ => bar.set_style(plain.clone()),
        }
        bar.set_message(status);
    }
    for b in bars.values() {
        b.finish();
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages() {
        assert_eq!(
            error_of(&json!({"errorDetail": {"message": "denied"}, "error": "denied"})).as_deref(),
            Some("denied")
        );
        assert_eq!(error_of(&json!({"status": "ok"})), None);
        assert_eq!(
            counts(&json!({"progressDetail": {"current": 5, "total": 10}})),
            Some((5, 10))
        );
        assert_eq!(counts(&json!({"progressDetail": {}})), None);
        assert_eq!(
            status_line(&json!({"status": "Pull complete", "id": "abc"})),
            "abc: Pull complete"
        );
        assert_eq!(
            status_line(&json!({"status": "Digest: sha256:x"})),
            "Digest: sha256:x"
        );
    }
}
