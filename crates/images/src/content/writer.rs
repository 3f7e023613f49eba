//! One blob being written: an exclusively locked file in `ingest/`, hashed as it fills.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};

use super::{digester_for, flock, fsync_dir, Info, Store};
use crate::digest::{Digest, Digester};
use crate::error::{Error, Result};
use crate::leases::Leases;

/// Writes one blob. Dropping it without [`Writer::commit`] removes the partial file.
pub struct Writer {
    store: Store,
    file: File,
    path: PathBuf,
    hasher: Digester,
    written: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    done: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Writer {
    pub(super) fn create(
        store: Store,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = store.ingest_dir().join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("create ingest file", &path, e))?;
        // Held until the writer is dropped: tells clean_ingest this file is alive.
        flock(&file, libc::LOCK_EX).map_err(|e| Error::io("lock ingest file", &path, e))?;
        Ok(Writer {
            store,
            file,
            hasher: digester_for(expected.as_ref()),
            path,
            written: 0,
            expected,
            expected_size,
            done: false,
        })
    }

    /// The temporary file being written (for error messages).
    pub fn ingest_path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn what(&self) -> String {
        match &self.expected {
            Some(d) => format!("blob {d}"),
            None => format!("blob being written to {}", self.path.display()),
        }
    }

    /// Verifies size and digest, makes the data durable and moves it into `blobs/`.
    pub fn commit(self) -> Result<Info> {
        self.commit_inner(None)
    }

    /// As [`Writer::commit`], and adds the blob to `lease` before the GC lock is released, so a
    /// concurrent garbage collection can never remove it in between.
    pub fn commit_leased(self, leases: &Leases, lease: &str) -> Result<Info> {
        self.commit_inner(Some((leases, lease)))
    }

    fn commit_inner(mut self, lease: Option<(&Leases, &str)>) -> Result<Info> {
        if let Some(want) = self.expected_size {
            if want != self.written {
                return Err(Error::SizeMismatch {
                    what: self.what(),
                    expected: want,
                    actual: self.written,
                });
            }
        }
        let hasher = self.hasher.clone();
        let actual = hasher.finish();
        if let Some(want) = &self.expected {
            if want != &actual {
                return Err(Error::DigestMismatch {
                    what: self.what(),
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        self.file
            .sync_all()
            .map_err(|e| Error::io("fsync ingest file", &self.path, e))?;
        self.file
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(|e| Error::io("make blob read-only", &self.path, e))?;

        let target = self.store.blob_path(&actual)?;
        let alg_dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.store.root().join("blobs"));
        if !alg_dir.is_dir() {
            fs::create_dir_all(&alg_dir)
                .map_err(|e| Error::io("create blob directory", &alg_dir, e))?;
            fsync_dir(&self.store.root().join("blobs"))?;
        }

        let _gc = self.store.gc_lock(false)?;
        if let Some((leases, id)) = lease {
            leases.add_content(id, &actual)?;
        }
        match renameat2(
            nix::fcntl::AT_FDCWD,
            &self.path,
            nix::fcntl::AT_FDCWD,
            &target,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {}
            // Another writer committed the same content first: theirs is as good as ours.
            Err(Errno::EEXIST) => {
                fs::remove_file(&self.path)
                    .map_err(|e| Error::io("remove duplicate ingest file", &self.path, e))?;
            }
            Err(e) => {
                return Err(Error::io(
                    "move blob into place",
                    &target,
                    io::Error::from_raw_os_error(e as i32),
                ))
            }
        }
        self.done = true;
        fsync_dir(&alg_dir)?;
        self.store.info(&actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        if let Some(max) = self.expected_size {
            if self.written > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than the expected {max} bytes"),
                ));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: if this fails the file stays unlocked and clean_ingest removes it.
            if let Err(e) = fs::remove_file(&self.path) {
                tracing::debug!(path = %self.path.display(), error = %e, "leaving ingest file for cleanup");
            }
        }
    }
}
