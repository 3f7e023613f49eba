//! Progress of long operations (pull, push, save, load, commit, unpack), reported per blob or
//! layer and per step, so a CLI can draw one bar per layer (indicatif) and the daemon can stream
//! docker-style `{"status","progressDetail"}` lines.
//!
//! An operation takes a [`Progress`] and sends [`Event`]s to it: a callback, a
//! `std::sync::mpsc` sender, or nothing. Byte counts are reported as they grow, throttled to one
//! event per [`REPORT_EVERY`] bytes plus one at the end of each step.

use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc, Mutex};

/// Bytes between two byte-count events of one step.
pub const REPORT_EVERY: u64 = 256 * 1024;

/// Which step an item (a blob, a layer, a document) is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Looking up what a name points at (a tag in a registry, a record in the store).
    Resolving,
    /// Bytes arriving from a registry or an archive.
    Downloading,
    /// Bytes leaving for a registry.
    Uploading,
    /// Writing a blob or archive member (commit, save).
    Writing,
    /// Checking a digest.
    Verifying,
    /// Unpacking a layer into a snapshot.
    Unpacking,
    /// Nothing to do: the store (or the registry) already has it.
    Exists,
    /// A registry mounted the blob from another repository.
    Mounted,
    Done,
}

/// One progress report about `id` (a digest, or a name while resolving).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub step: Step,
    /// Bytes done in this step.
    pub done: u64,
    /// Bytes this step will take, when known.
    pub total: Option<u64>,
}

type Callback = dyn Fn(Event) + Send + Sync;

/// Where an operation reports to. Cheap to clone; [`Progress::none`] discards everything.
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Arc<Callback>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.sink.is_some() {
            "Progress(reporting)"
        } else {
            "Progress(none)"
        })
    }
}

impl Progress {
    pub fn none() -> Self {
        Progress { sink: None }
    }

    pub fn callback(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Progress {
            sink: Some(Arc::new(f)),
        }
    }

    /// Sends events to a channel; a receiver that went away is ignored (the operation goes on).
    pub fn channel(tx: mpsc::Sender<Event>) -> Self {
        let tx = Mutex::new(tx);
        Progress::callback(move |e| {
            if let Ok(tx) = tx.lock() {
                // The receiver stopped listening; progress is advisory.
                if tx.send(e).is_err() {
                    tracing::trace!("progress receiver gone");
                }
            }
        })
    }

    pub fn is_reporting(&self) -> bool {
        self.sink.is_some()
    }

    pub fn report(&self, id: &str, step: Step, done: u64, total: Option<u64>) {
        if let Some(f) = &self.sink {
            f(Event {
                id: id.to_string(),
                step,
                done,
                total,
            });
        }
    }

    /// A one-off event with no byte count (resolving, exists, done).
    pub fn step(&self, id: &str, step: Step) {
        self.report(id, step, 0, None);
    }

    /// A counter for one item's step that reports at most every [`REPORT_EVERY`] bytes.
    pub fn counter(&self, id: &str, step: Step, total: Option<u64>) -> Counter {
        Counter {
            progress: self.clone(),
            id: id.to_string(),
            step,
            total,
            done: 0,
            last: 0,
        }
    }
}

/// Byte counter of one item in one step (see [`Progress::counter`]).
pub struct Counter {
    progress: Progress,
    id: String,
    step: Step,
    total: Option<u64>,
    done: u64,
    last: u64,
}

impl Counter {
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.done - self.last >= REPORT_EVERY {
            self.last = self.done;
            self.progress
                .report(&self.id, self.step, self.done, self.total);
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    /// Reports the final count of the step.
    pub fn finish(&mut self) {
        self.last = self.done;
        self.progress
            .report(&self.id, self.step, self.done, self.total);
    }
}

/// A reader that counts bytes into a [`Counter`].
pub struct CountingReader<R> {
    inner: R,
    counter: Counter,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, counter: Counter) -> Self {
        CountingReader { inner, counter }
    }

    pub fn into_parts(self) -> (R, Counter) {
        (self.inner, self.counter)
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }
}

/// A writer that counts bytes into a [`Counter`].
pub struct CountingWriter<W> {
    inner: W,
    counter: Counter,
}

impl<W> CountingWriter<W> {
    pub fn new(inner: W, counter: Counter) -> Self {
        CountingWriter { inner, counter }
    }

    pub fn into_parts(self) -> (W, Counter) {
        (self.inner, self.counter)
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn channel_gets_throttled_counts_and_final() {
        let (tx, rx) = mpsc::channel();
        let p = Progress::channel(tx);
        p.step("busybox", Step::Resolving);
        let data = vec![7u8; (REPORT_EVERY * 2 + 10) as usize];
        let mut r = CountingReader::new(
            data.as_slice(),
            p.counter("sha256:x", Step::Downloading, Some(data.len() as u64)),
        );
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (_, mut c) = r.into_parts();
        c.finish();
        let events: Vec<Event> = rx.try_iter().collect();
        assert_eq!(events[0].step, Step::Resolving);
        let last = events.last().unwrap();
        assert_eq!(last.done, data.len() as u64);
        assert_eq!(last.total, Some(data.len() as u64));
        // Throttled: far fewer events than reads.
        assert!(events.len() <= 5, "{events:?}");
        // A dropped receiver does not disturb the sender.
        let (tx, rx) = mpsc::channel();
        drop(rx);
        Progress::channel(tx).step("x", Step::Done);
        Progress::none().step("x", Step::Done);
    }
}
