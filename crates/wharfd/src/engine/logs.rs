//! `docker logs`: reading the json-file logs the monitor writes (rotated files oldest first),
//! with tail / since / until / timestamps, and following new lines until the container stops.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hcs::shim::{frame_header, LogLine, STREAM_STDERR, STREAM_STDOUT};
use tokio::sync::mpsc;

use crate::daemon::{Ctr, Daemon};

#[derive(Debug, Clone, Default)]
pub struct LogOpts {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub tail: Option<usize>,
    pub since_ns: i64,
    pub until_ns: i64,
    pub timestamps: bool,
    /// Raw bytes (tty) instead of multiplexed frames.
    pub raw: bool,
}

fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for i in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if p.exists() {
            v.push(p);
        }
    }
    v.push(path.to_path_buf());
    v
}

fn time_ns(t: &str) -> i64 {
    hcs::process::state::parse_rfc3339_ns(t)
        .and_then(|n| i64::try_from(n).ok())
        .unwrap_or(0)
}

/// Renders one log line for the client, or `None` when the options filter it out.
fn render(line: &[u8], o: &LogOpts) -> Option<Bytes> {
    let l: LogLine = serde_json::from_slice(line).ok()?;
    let stream = if l.stream == "stderr" {
        if !o.stderr {
            return None;
        }
        STREAM_STDERR
    } else {
        if !o.stdout {
            return None;
        }
        STREAM_STDOUT
    };
    if o.since_ns > 0 || o.until_ns > 0 {
        let t = time_ns(&l.time);
        if (o.since_ns > 0 && t < o.since_ns) || (o.until_ns > 0 && t > o.until_ns) {
            return None;
        }
    }
    let mut payload = Vec::with_capacity(l.log.len() + 40);
    if o.timestamps {
        payload.extend_from_slice(l.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(l.log.as_bytes());
    if o.raw {
        return Some(Bytes::from(payload));
    }
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&frame_header(stream, payload.len() as u32));
    out.extend_from_slice(&payload);
    Some(Bytes::from(out))
}

impl Daemon {
    /// Sends the container's logs to `tx` until done (or the client goes away).
    pub async fn stream_logs(self: Arc<Self>, c: Arc<Ctr>, o: LogOpts, tx: mpsc::Sender<Bytes>) {
        let path = self.log_path(&c.id);
        // History: every line of every file, then the tail of it.
        let files = rotated(&path);
        let hist = {
            let o = o.clone();
            let files = files.clone();
            tokio::task::spawn_blocking(move || {
                let mut lines: Vec<Bytes> = Vec::new();
                let mut end = (0u64, 0u64);
                for f in &files {
                    let Ok(file) = std::fs::File::open(f) else {
                        continue;
                    };
                    if f == files.last().unwrap_or(f) {
                        if let Ok(m) = file.metadata() {
                            end = (m.ino(), m.len());
                        }
                    }
                    let mut r = BufReader::new(file);
                    let mut buf = Vec::new();
                    let mut pos = 0u64;
                    while let Ok(n) = r.read_until(b'\n', &mut buf) {
                        if n == 0 || buf.last() != Some(&b'\n') {
                            break;
                        }
                        pos += n as u64;
                        if let Some(b) = render(&buf, &o) {
                            lines.push(b);
                        }
                        buf.clear();
                    }
                    if f == files.last().unwrap_or(f) {
                        end.1 = pos;
                    }
                }
                if let Some(t) = o.tail {
                    let skip = lines.len().saturating_sub(t);
                    lines.drain(..skip);
                }
                (lines, end)
            })
            .await
        };
        let Ok((lines, (mut ino, mut offset))) = hist else {
            return;
        };
        for l in lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if !o.follow {
            return;
        }
        let mut exits = c.exits.subscribe();
        let mut removed = c.removed.subscribe();
        loop {
            let running = c.lock().state.status.is_live();
            // Read what was appended since the last look (reopening after a rotation).
            let (new, n_ino, n_off) = {
                let p = path.clone();
                let o = o.clone();
                match tokio::task::spawn_blocking(move || read_from(&p, ino, offset, &o)).await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            };
            ino = n_ino;
            offset = n_off;
            for l in new {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if !running {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = exits.changed() => {}
                _ = removed.changed() => {}
                _ = tx.closed() => return,
            }
        }
    }
}

/// Lines appended to `path` after `offset` (from the start if the file was replaced).
fn read_from(path: &Path, ino: u64, offset: u64, o: &LogOpts) -> (Vec<Bytes>, u64, u64) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return (Vec::new(), ino, offset);
    };
    let Ok(m) = f.metadata() else {
        return (Vec::new(), ino, offset);
    };
    let mut start = offset;
    if m.ino() != ino || m.len() < offset {
        start = 0;
    }
    if f.seek(SeekFrom::Start(start)).is_err() {
        return (Vec::new(), m.ino(), offset);
    }
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut pos = start;
    while let Ok(n) = r.read_until(b'\n', &mut buf) {
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        pos += n as u64;
        if let Some(b) = render(&buf, o) {
            out.push(b);
        }
        buf.clear();
    }
    (out, m.ino(), pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_frames_and_filters() {
        let line = br#"{"log":"hi\n","stream":"stderr","time":"2023-11-14T22:13:20.000000001Z"}"#;
        let o = LogOpts {
            stdout: true,
            stderr: true,
            timestamps: true,
            ..Default::default()
        };
        let b = render(line, &o).expect("line");
        assert_eq!(b[0], STREAM_STDERR);
        assert_eq!(&b[8..], b"2023-11-14T22:13:20.000000001Z hi\n");
        let o = LogOpts {
            stdout: true,
            ..Default::default()
        };
        assert!(render(line, &o).is_none());
        let o = LogOpts {
            stderr: true,
            since_ns: 1_700_000_000_000_000_002,
            ..Default::default()
        };
        assert!(render(line, &o).is_none());
        assert_eq!(time_ns("2023-11-14T22:13:20.5Z"), 1_700_000_000_500_000_000);
    }
}
