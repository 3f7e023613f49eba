//! The container's output as Docker's json-file log: one `{"log":..,"stream":..,"time":..}` per
//! line, rotated by size (`log` → `log.1` → … → `log.<max_files - 1>`).
//!
//! Lines are split on `\n` (kept in the `log` field, as Docker does). A line without its newline
//! is held per stream and written as a partial line when it reaches [`MAX_LINE`] bytes or when
//! the stream ends. The buffers are reused, so a steady stream of output allocates nothing.

use hcs::shim::{STREAM_STDERR, STREAM_STDOUT};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Docker's line buffer: a longer line is written in pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    /// Rotate before a write that would take the file past this size; 0 never rotates.
    max_size: u64,
    /// Files kept, the current one included (at least 1: then the file is truncated).
    max_files: u32,
    /// The unfinished line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    /// The encoded entry being written.
    entry: Vec<u8>,
}

impl JsonLog {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
            entry: Vec::new(),
        })
    }

    /// Logs `data` read from `stream` (stdout or stderr). No entry is longer than [`MAX_LINE`].
    pub fn write(&mut self, stream: u8, mut data: &[u8]) -> io::Result<()> {
        let s = slot(stream);
        while !data.is_empty() {
            let room = MAX_LINE - self.partial[s].len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) if self.partial[s].is_empty() => {
                    self.entry_for(stream, &window[..=i])?;
                    data = &data[i + 1..];
                }
                Some(i) => {
                    self.partial[s].extend_from_slice(&window[..=i]);
                    data = &data[i + 1..];
                    self.flush(stream)?;
                }
                None => {
                    self.partial[s].extend_from_slice(window);
                    data = &data[window.len()..];
                    if self.partial[s].len() >= MAX_LINE {
                        self.flush(stream)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the held partial line of `stream`, if any (at its end, or when the buffer fills).
    pub fn flush(&mut self, stream: u8) -> io::Result<()> {
        let s = slot(stream);
        if self.partial[s].is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut self.partial[s]);
        let res = self.entry_for(stream, &held);
        held.clear();
        self.partial[s] = held;
        res
    }

    fn entry_for(&mut self, stream: u8, line: &[u8]) -> io::Result<()> {
        self.entry.clear();
        self.entry.extend_from_slice(b"{\"log\":");
        let text = String::from_utf8_lossy(line);
        serde_json::to_writer(&mut self.entry, text.as_ref()).map_err(io::Error::other)?;
        self.entry.extend_from_slice(if stream == STREAM_STDERR {
            b",\"stream\":\"stderr\",\"time\":\""
        } else {
            b",\"stream\":\"stdout\",\"time\":\""
        });
        self.entry.extend_from_slice(rfc3339_nano_now().as_bytes());
        self.entry.extend_from_slice(b"\"}\n");
        let len = self.entry.len() as u64;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&self.entry)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let last = self.max_files - 1;
        match std::fs::remove_file(numbered(last)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..last).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn slot(stream: u8) -> usize {
    usize::from(stream != STREAM_STDOUT)
}

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Go's `time.RFC3339Nano` in UTC: nanoseconds without trailing zeros, as Docker writes it.
pub fn rfc3339_nano_now() -> String {
    let mut s = hcs::process::state::rfc3339_now();
    // "....123456789Z": drop zeros at the end of the fraction, and the dot if nothing is left.
    s.pop();
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push('Z');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hcs::shim::LogLine;

    fn lines(path: &Path) -> Vec<LogLine> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_holds_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut log = JsonLog::open(&p, 0, 1).unwrap();
        log.write(STREAM_STDOUT, b"one\ntw").unwrap();
        log.write(STREAM_STDERR, b"err \"q\"\n").unwrap();
        log.write(STREAM_STDOUT, b"o\nthree").unwrap();
        log.flush(STREAM_STDOUT).unwrap();
        let got: Vec<(String, String)> = lines(&p).into_iter().map(|l| (l.log, l.stream)).collect();
        let want = [
            ("one\n", "stdout"),
            ("err \"q\"\n", "stderr"),
            ("two\n", "stdout"),
            ("three", "stdout"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        let t = &lines(&p)[0].time;
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }

    #[test]
    fn long_line_is_written_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut log = JsonLog::open(&p, 0, 1).unwrap();
        let big = vec![b'x'; MAX_LINE + 10];
        log.write(STREAM_STDOUT, &big).unwrap();
        log.write(STREAM_STDOUT, b"\n").unwrap();
        let l = lines(&p);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].log.len(), MAX_LINE);
        assert_eq!(l[1].log, format!("{}\n", "x".repeat(10)));
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut log = JsonLog::open(&p, 200, 3).unwrap();
        for i in 0..20 {
            log.write(STREAM_STDOUT, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let all: Vec<String> = [".2", ".1", ""]
            .iter()
            .flat_map(|s| lines(&dir.path().join(format!("log{s}"))))
            .map(|l| l.log)
            .collect();
        assert!(!dir.path().join("log.3").exists());
        assert_eq!(all.last().unwrap(), "line 19\n");
        for f in ["log", "log.1", "log.2"] {
            let n = std::fs::metadata(dir.path().join(f)).unwrap().len();
            assert!(n > 0 && n <= 200, "{f}: {n} bytes");
        }
        // Consecutive and ending at the last line: nothing lost inside the kept files.
        let first: usize = all[0]["line ".len()..].trim().parse().unwrap();
        for (k, l) in all.iter().enumerate() {
            assert_eq!(l, &format!("line {}\n", first + k));
        }
    }

    #[test]
    fn one_file_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut log = JsonLog::open(&p, 100, 1).unwrap();
        for i in 0..10 {
            log.write(STREAM_STDERR, format!("e{i}\n").as_bytes())
                .unwrap();
        }
        assert!(std::fs::metadata(&p).unwrap().len() <= 100);
        assert_eq!(lines(&p).last().unwrap().log, "e9\n");
        assert!(!dir.path().join("log.1").exists());
    }
}
