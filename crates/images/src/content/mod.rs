//! The content store: immutable blobs addressed by digest.
//!
//! Layout under the store's root:
//!
//! ```text
//! blobs/<alg>/<hex>   verified blobs, mode 0444; only ever created by an atomic rename
//! ingest/<name>       blobs being written; each is flock'ed by its writer while open
//! gc.lock             writers commit under a shared flock, garbage collection takes it exclusively
//! ```
//!
//! Lifecycle of a blob: [`Store::writer`] opens a fresh file in `ingest/` and locks it; bytes are
//! hashed as they are written; [`Writer::commit`] checks the expected size and digest, fsyncs the
//! file, renames it into `blobs/` without replacing an existing blob (a concurrent writer of the
//! same blob that loses the race just drops its copy) and fsyncs the directory. A reader
//! therefore only ever sees complete, verified blobs, whatever crashes. Ingest files left by a
//! dead writer are unlocked (the kernel drops the flock with the process) and are removed by
//! [`Store::clean_ingest`], which [`Store::open`] runs.
//!
//! Blobs are kept alive by image records and [leases](crate::leases); [`gc`] removes the rest.

pub mod gc;
mod writer;

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use writer::Writer;

use crate::digest::{self, Digest, DigestAlgorithm, Digester};
use crate::error::{Error, Result};

/// What the store knows about one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub digest: Digest,
    pub size: u64,
    /// When the blob was committed (the file's mtime).
    pub created: SystemTime,
}

/// Space used by the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of committed blobs.
    pub blobs: u64,
    /// Sum of the blobs' sizes.
    pub size: u64,
    /// Disk space the blobs occupy (allocated blocks).
    pub disk: u64,
    /// Bytes in ingest files (writes in progress or left by a crash).
    pub ingest: u64,
}

/// A content store rooted at one directory. Cheap to clone; all state is on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root` and removes ingest files of dead writers.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in [root.join("blobs"), root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create content directory", &dir, e))?;
        }
        let store = Store { root };
        store.clean_ingest()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `d` lives (whether or not it exists). `d` must be a supported digest.
    pub fn blob_path(&self, d: &Digest) -> Result<PathBuf> {
        digest::check(d)?;
        Ok(self
            .root
            .join("blobs")
            .join(d.algorithm().as_ref())
            .join(d.digest()))
    }

    pub(crate) fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Starts writing a blob. With `expected`, the content must hash to it (and its algorithm is
    /// used); with `expected_size`, it must have exactly that many bytes.
    pub fn writer(&self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<Writer> {
        if let Some(d) = expected {
            digest::check(d)?;
        }
        Writer::create(self.clone(), expected.cloned(), expected_size)
    }

    /// Writes `bytes` as a blob (verifying `expected` if given) and returns its info.
    pub fn put(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Info> {
        if let Some(info) = expected.map(|d| self.info(d)).and_then(Result::ok) {
            return Ok(info);
        }
        let mut w = self.writer(expected, Some(bytes.len() as u64))?;
        io::Write::write_all(&mut w, bytes)
            .map_err(|e| Error::io("write blob", w.ingest_path(), e))?;
        w.commit()
    }

    /// Copies `r` into a blob, verifying the expected digest and size if given.
    pub fn ingest(
        &self,
        r: &mut impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Info> {
        let mut w = self.writer(expected, expected_size)?;
        io::copy(r, &mut w).map_err(|e| Error::io("copy into blob", w.ingest_path(), e))?;
        w.commit()
    }

    pub fn exists(&self, d: &Digest) -> Result<bool> {
        let p = self.blob_path(d)?;
        match fs::symlink_metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat blob", p, e)),
        }
    }

    pub fn info(&self, d: &Digest) -> Result<Info> {
        let p = self.blob_path(d)?;
        let md = fs::symlink_metadata(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::not_found("blob", d.to_string()),
            _ => Error::io("stat blob", &p, e),
        })?;
        Ok(Info {
            digest: d.clone(),
            size: md.len(),
            created: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// Opens a blob for reading. Blobs are only ever created complete and verified.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d)?;
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::not_found("blob", d.to_string()),
            _ => Error::io("open blob", &p, e),
        })
    }

    /// Reads a whole blob into memory; refuses blobs larger than `limit` bytes (documents are
    /// small, layers are streamed with [`Store::open_blob`]).
    pub fn read(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let info = self.info(d)?;
        if info.size > limit {
            return Err(Error::FailedPrecondition {
                what: format!("blob {d}"),
                reason: format!("{} bytes is more than the {limit} allowed here", info.size),
            });
        }
        let mut buf = Vec::with_capacity(info.size as usize);
        self.open_blob(d)?
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read blob", self.blob_path(d).unwrap_or_default(), e))?;
        Ok(buf)
    }

    /// Re-hashes a stored blob (finds on-disk corruption).
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let mut f = self.open_blob(d)?;
        let mut h = digest::HashingReader::new(&mut f, d.algorithm());
        io::copy(&mut h, &mut io::sink())
            .map_err(|e| Error::io("read blob", self.blob_path(d).unwrap_or_default(), e))?;
        let (actual, _) = h.finish();
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {d}"),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Removes a blob. Readers that already opened it keep their handle.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.blob_path(d)?;
        fs::remove_file(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::not_found("blob", d.to_string()),
            _ => Error::io("remove blob", &p, e),
        })?;
        if let Some(dir) = p.parent() {
            fsync_dir(dir)?;
        }
        Ok(())
    }

    /// Calls `f` for every committed blob. Files whose names are not digests are skipped.
    pub fn walk(&self, mut f: impl FnMut(Info) -> Result<()>) -> Result<()> {
        let blobs = self.root.join("blobs");
        for alg in read_dir(&blobs)? {
            let Some(alg_name) = alg.file_name().to_str().map(str::to_string) else {
                continue;
            };
            for entry in read_dir(&alg.path())? {
                let Some(hex) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let Ok(d) = digest::parse(&format!("{alg_name}:{hex}")) else {
                    continue;
                };
                match self.info(&d) {
                    Ok(info) => f(info)?,
                    // Deleted between listing and stat.
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Info>> {
        let mut v = Vec::new();
        self.walk(|i| {
            v.push(i);
            Ok(())
        })?;
        Ok(v)
    }

    pub fn usage(&self) -> Result<Usage> {
        let mut u = Usage::default();
        let blobs = self.root.join("blobs");
        for alg in read_dir(&blobs)? {
            for entry in read_dir(&alg.path())? {
                let p = entry.path();
                let md = fs::symlink_metadata(&p).map_err(|e| Error::io("stat blob", &p, e))?;
                u.blobs += 1;
                u.size += md.len();
                u.disk += md.blocks() * 512;
            }
        }
        for entry in read_dir(&self.ingest_dir())? {
            if let Ok(md) = entry.metadata() {
                u.ingest += md.len();
            }
        }
        Ok(u)
    }

    /// Removes ingest files that no live writer holds (left by a crash or a killed process).
    /// Returns how many were removed.
    pub fn clean_ingest(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in read_dir(&self.ingest_dir())? {
            let p = entry.path();
            let f = match File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open ingest file", &p, e)),
            };
            // A live writer holds an exclusive flock on its file; skip those.
            if !try_flock(&f, libc::LOCK_EX).map_err(|e| Error::io("lock ingest file", &p, e))? {
                continue;
            }
            match fs::remove_file(&p) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove ingest file", &p, e)),
            }
        }
        if removed > 0 {
            fsync_dir(&self.ingest_dir())?;
        }
        Ok(removed)
    }

    /// Takes the store's GC lock: shared for commits, exclusive for garbage collection.
    pub(crate) fn gc_lock(&self, exclusive: bool) -> Result<File> {
        let p = self.root.join("gc.lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io("open gc lock", &p, e))?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        flock(&f, op).map_err(|e| Error::io("lock gc lock", &p, e))?;
        Ok(f)
    }
}

/// A hasher for content expected to hash to `expected` (sha256 when unknown).
pub(crate) fn digester_for(expected: Option<&Digest>) -> Digester {
    Digester::new(expected.map_or(&DigestAlgorithm::Sha256, |d| d.algorithm()))
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    rd.collect::<io::Result<Vec<_>>>()
        .map_err(|e| Error::io("list directory", dir, e))
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Blocking flock.
pub(crate) fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor owned by `f`, which outlives the call.
        let r = unsafe { libc::flock(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Non-blocking flock: Ok(false) when someone else holds a conflicting lock.
pub(crate) fn try_flock(f: &File, op: libc::c_int) -> io::Result<bool> {
    match flock(f, op | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
