//! Layer unpack: a tar, tar+gzip or tar+zstd stream (detected by its magic bytes) becomes one
//! snapshot directory, the way containerd's overlay snapshotter stores a layer.
//!
//! - OCI whiteouts become overlayfs whiteouts: `.wh.NAME` → a 0:0 character device `NAME`,
//!   `.wh..wh..opq` → `trusted.overlay.opaque=y` on its directory, so layer directories stack
//!   as overlay lowerdirs.
//! - Regular files, directories, symlinks, hard links, fifos, and (as root) device nodes, with
//!   mode, uid/gid (as root), mtime (directories after their children), and xattrs
//!   (`SCHILY.xattr.*` PAX records; `trusted.overlay.*` is refused, as only whiteouts may make
//!   overlay metadata).
//! - The uncompressed stream is hashed while it is read and checked against the expected
//!   `diff_id`.
//!
//! Layers are hostile input. An entry that is absolute, has a `..` component, has a parent that
//! is a symlink or not a directory, or is a hard link whose target is any of those or not in the
//! layer, fails the unpack with an error naming the entry. Every file operation is relative to
//! a directory descriptor reached by an `O_NOFOLLOW` walk from the layer root (see `walk`), so
//! no entry can create, change or follow anything outside. The layer is built in a private
//! directory beside the target and renamed into place only when complete and verified; on any
//! failure that directory is removed.

mod entry;
mod sys;
mod walk;

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};

use crate::digest::{Digest, DigestAlgorithm};
use crate::error::{Error, Result};
use crate::manifest::Compression;
use crate::progress::{CountingReader, Progress, Step};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The digest the uncompressed tar must have (the config's `diff_id` for this layer).
    pub diff_id: Option<Digest>,
    /// Skip flushing the layer to disk before it is moved into place (tests, scratch data).
    pub no_sync: bool,
    /// Receives [`Step::Unpacking`] events with the layer stream's bytes consumed.
    pub progress: Progress,
    /// The id events carry (usually the layer's digest); empty means the expected `diff_id`.
    pub progress_id: String,
    /// Size of the layer stream, when known (the descriptor's size).
    pub progress_total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of uncompressed tar.
    pub size: u64,
    /// Archive entries applied.
    pub entries: u64,
}

/// The compression of a layer from its first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`).
pub fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Unpacks the layer stream `r` into the new directory `target` (which must not exist).
pub fn unpack(r: impl Read + Send, target: &Path, opts: &Options) -> Result<Report> {
    let (parent, file_name) = match (target.parent(), target.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy()),
        _ => {
            return Err(Error::InvalidArgument {
                field: "unpack target".into(),
                reason: format!("{} has no parent directory", target.display()),
            })
        }
    };
    if fs::symlink_metadata(target).is_ok() {
        return Err(Error::AlreadyExists {
            what: "unpack target",
            name: target.display().to_string(),
        });
    }
    let staging: PathBuf = parent.join(format!(
        ".{file_name}.unpack-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&staging).map_err(|e| Error::io("create unpack directory", &staging, e))?;
    match unpack_into(r, &staging, opts).and_then(|report| {
        move_into_place(&staging, target)?;
        Ok(report)
    }) {
        Ok(report) => Ok(report),
        Err(e) => {
            if let Err(rm) = fs::remove_dir_all(&staging) {
                tracing::warn!(path = %staging.display(), error = %rm, "could not remove failed unpack");
            }
            Err(e)
        }
    }
}

fn move_into_place(staging: &Path, target: &Path) -> Result<()> {
    match renameat2(
        nix::fcntl::AT_FDCWD,
        staging,
        nix::fcntl::AT_FDCWD,
        target,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            return Err(Error::AlreadyExists {
                what: "unpack target",
                name: target.display().to_string(),
            })
        }
        Err(e) => {
            return Err(Error::io(
                "move unpacked layer into place",
                target,
                io::Error::from_raw_os_error(e as i32),
            ))
        }
    }
    if let Some(p) = target.parent() {
        crate::content::fsync_dir(p)?;
    }
    Ok(())
}

/// Applies the layer stream `r` inside the existing directory `dir` (entries can never leave it; see
/// the module doc). Unlike [`unpack`] nothing is staged: a failure leaves what was applied so far.
pub fn unpack_into(r: impl Read + Send, dir: &Path, opts: &Options) -> Result<Report> {
    let id = match (&opts.progress_id, &opts.diff_id) {
        (s, _) if !s.is_empty() => s.clone(),
        (_, Some(d)) => d.to_string(),
        _ => "layer".to_string(),
    };
    let counter = opts
        .progress
        .counter(&id, Step::Unpacking, opts.progress_total);
    let alg = opts
        .diff_id
        .as_ref()
        .map_or(DigestAlgorithm::Sha256, |d| d.algorithm().clone());
    // Two stages on two threads: decompress + hash the stream, and apply the tar entries.
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let producer = s.spawn(move || decompress(CountingReader::new(r, counter), &alg, &tx));
        let applied = apply_entries(ChannelReader::new(rx), dir);
        let produced = producer.join().map_err(|_| Error::Internal {
            step: "decompress layer",
            reason: "decompressor thread panicked".into(),
        })?;
        let ((diff_id, size), entries) = match (produced, applied) {
            // A broken stream is the cause of whatever the entries saw.
            (Err(Produce::Failed(e)), _) => return Err(e),
            (_, Err(e)) => return Err(e),
            (Err(Produce::ReceiverGone), Ok(_)) => {
                return Err(Error::Internal {
                    step: "unpack layer",
                    reason: "entries stopped reading before the end of the stream".into(),
                })
            }
            (Ok(d), Ok(n)) => (d, n),
        };
        if let Some(want) = &opts.diff_id {
            if want != &diff_id {
                return Err(Error::DigestMismatch {
                    what: "layer diff_id".into(),
                    expected: want.to_string(),
                    actual: diff_id.to_string(),
                });
            }
        }
        opts.progress.report(&id, Step::Done, size, Some(size));
        Ok((diff_id, size, entries))
    })
    .and_then(|(diff_id, size, entries)| {
        if !opts.no_sync {
            let f = fs::File::open(dir).map_err(|e| Error::io("open unpack directory", dir, e))?;
            sys::syncfs(std::os::fd::AsFd::as_fd(&f))
                .map_err(|e| Error::io("sync unpacked layer", dir, e))?;
        }
        Ok(Report {
            diff_id,
            size,
            entries,
        })
    })
}

/// Decompressed chunks buffered between the two stages.
const CHUNKS_IN_FLIGHT: usize = 16;
const CHUNK: usize = 256 * 1024;

enum Produce {
    Failed(Error),
    /// The entry stage stopped early (it failed; its error is the one to report).
    ReceiverGone,
}

/// Stage one: detect the compression, decompress, hash, and send the tar stream on in chunks.
fn decompress(
    r: impl Read,
    alg: &DigestAlgorithm,
    tx: &mpsc::SyncSender<Vec<u8>>,
) -> std::result::Result<(Digest, u64), Produce> {
    let fail =
        |step: &'static str, e: io::Error| Produce::Failed(Error::entry("<layer stream>", step, e));
    let mut buf = BufReader::with_capacity(CHUNK, r);
    let magic = buf.fill_buf().map_err(|e| fail("read", e))?;
    let mut stream: Box<dyn Read> = match detect(magic) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buf)
                .map_err(|e| fail("start zstd decoder", e))?,
        ),
        Compression::None => Box::new(buf),
    };
    let mut hasher = crate::digest::Digester::new(alg);
    let mut size = 0u64;
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut n = 0;
        while n < CHUNK {
            match stream.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail("decompress", e)),
            }
        }
        if n == 0 {
            return Ok((hasher.finish(), size));
        }
        chunk.truncate(n);
        hasher.update(&chunk);
        size += n as u64;
        tx.send(chunk).map_err(|_| Produce::ReceiverGone)?;
    }
}

/// The receiving end of stage one as a reader; the end of the channel is the end of stream.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Stage two: applies every entry of the tar stream `r` inside `dir`, then reads `r` to its end.
fn apply_entries(r: ChannelReader, dir: &Path) -> Result<u64> {
    let mut archive = tar::Archive::new(r);
    let root = fs::File::open(dir).map_err(|e| Error::io("open unpack directory", dir, e))?;
    let mut walker = walk::Walker::new(root.into());
    let mut state = entry::State {
        root: sys::is_root(),
        dirs: Vec::new(),
        removed_dir: false,
    };
    let mut entries = 0u64;
    let mut last = String::from("<start of archive>");
    let iter = archive
        .entries()
        .map_err(|e| Error::entry(&last, "read archive", e))?;
    for e in iter {
        let mut e = e.map_err(|e| Error::entry(format!("after {last}"), "read archive", e))?;
        last = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        entry::apply(&mut walker, &mut e, &mut state)?;
        if std::mem::take(&mut state.removed_dir) {
            walker.invalidate();
        }
        entries += 1;
    }
    // The diff_id covers the whole stream, including the end-of-archive padding.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| Error::entry("<end of archive>", "read archive", e))?;
    entry::finish_dirs(&walker, &mut state)?;
    Ok(entries)
}
