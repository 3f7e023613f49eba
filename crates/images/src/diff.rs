//! Diff: a container's overlay upper directory as an OCI layer tar (the inverse of
//! [`crate::unpack`]).
//!
//! The upper directory of an overlay mount already *is* the change set against its lowers; only
//! the whiteouts need translating to their OCI form:
//!
//! - a 0:0 character device `NAME` (a deleted file or directory) → an empty `.wh.NAME` entry;
//! - a directory with `trusted.overlay.opaque=y` (replaced wholesale) → the directory entry
//!   followed by `DIR/.wh..wh..opq`;
//! - other `trusted.overlay.*` attributes (redirects, origins, impure marks) are overlay's own
//!   bookkeeping and are dropped.
//!
//! Everything else is written as it is: regular files (hard links as link entries to the first
//! path seen), directories, symlinks, fifos, device nodes, with mode, ownership, mtime and
//! xattrs (PAX `SCHILY.xattr.*`). Entries are sorted by name, so the same tree always gives the
//! same tar and so the same digests. Sockets are skipped (they cannot live in a layer).
//!
//! The directory must not change while it is read: commit a stopped or paused container.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::progress::{Counter, CountingReader};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_PREFIX: &str = "trusted.overlay.";

/// What [`write_layer`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Archive entries (whiteouts included).
    pub entries: u64,
    /// Whiteout entries (`.wh.NAME`).
    pub whiteouts: u64,
    /// Opaque directory markers (`.wh..wh..opq`).
    pub opaque: u64,
}

/// Writes the overlay upper directory `upper` to `out` as an uncompressed OCI layer tar.
/// `counter` counts file content bytes read.
pub fn write_layer(upper: &Path, out: impl Write, counter: Counter) -> Result<Stats> {
    let mut w = DiffWriter {
        upper: upper.to_path_buf(),
        builder: tar::Builder::new(out),
        links: HashMap::new(),
        stats: Stats::default(),
        counter: Some(counter),
    };
    w.builder.mode(tar::HeaderMode::Complete);
    w.builder.follow_symlinks(false);
    w.dir(Path::new(""))?;
    let mut counter = w.counter.take();
    w.builder
        .into_inner()
        .and_then(|mut o| o.flush())
        .map_err(|e| Error::io("finish layer archive", upper, e))?;
    if let Some(c) = counter.as_mut() {
        c.finish();
    }
    Ok(w.stats)
}

struct DiffWriter<W: Write> {
    upper: PathBuf,
    builder: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files → their first archive path.
    links: HashMap<(u64, u64), PathBuf>,
    stats: Stats,
    counter: Option<Counter>,
}

impl<W: Write> DiffWriter<W> {
    /// Writes the children of `rel` (a directory relative to the upper root), sorted by name.
    fn dir(&mut self, rel: &Path) -> Result<()> {
        let abs = self.upper.join(rel);
        let mut names: Vec<_> = fs::read_dir(&abs)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<_>>()
            })
            .map_err(|e| Error::io("list upper directory", &abs, e))?;
        names.sort_by(|a: &std::ffi::OsString, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.entry(&rel.join(&name), &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, name: &OsStr) -> Result<()> {
        let abs = self.upper.join(rel);
        let md = fs::symlink_metadata(&abs).map_err(|e| Error::io("stat upper entry", &abs, e))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            let mut wh_name = std::ffi::OsString::from(".wh.");
            wh_name.push(name);
            let path = rel.with_file_name(wh_name);
            self.stats.whiteouts += 1;
            return self.empty_file(&path, &md);
        }
        if ft.is_socket() {
            tracing::debug!(path = %abs.display(), "skipping socket in upper directory");
            return Ok(());
        }
        let xattrs = list_xattrs(&abs)?;
        let opaque = xattrs
            .iter()
            .any(|(k, v)| k == OPAQUE_XATTR && v.as_slice() == b"y");
        let pax: Vec<(String, Vec<u8>)> = xattrs
            .into_iter()
            .filter(|(k, _)| !k.starts_with(OVERLAY_PREFIX))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| Error::io("write PAX header", &abs, e))?;
        }
        let mut h = header(&md);
        let werr = |e| Error::io("write layer entry", &abs, e);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            self.builder
                .append_data(&mut h, rel, io::empty())
                .map_err(werr)?;
            if opaque {
                self.stats.opaque += 1;
                self.empty_file(&rel.join(".wh..wh..opq"), &md)?;
            }
            self.stats.entries += 1;
            return self.dir(rel);
        }
        self.stats.entries += 1;
        if ft.is_symlink() {
            let target = fs::read_link(&abs).map_err(|e| Error::io("read symlink", &abs, e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            return self.builder.append_link(&mut h, rel, &target).map_err(werr);
        }
        if ft.is_file() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                return self.builder.append_link(&mut h, rel, first).map_err(werr);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(md.len());
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&abs)
                .map_err(|e| Error::io("open upper file", &abs, e))?;
            let Some(counter) = self.counter.take() else {
                return Err(Error::Internal {
                    step: "write layer entry",
                    reason: "progress counter missing".into(),
                });
            };
            let mut r = CountingReader::new(SizedFile { f, left: md.len() }, counter);
            let res = self.builder.append_data(&mut h, rel, &mut r);
            self.counter = Some(r.into_parts().1);
            return res.map_err(werr);
        }
        let (kind, dev) = if ft.is_fifo() {
            (tar::EntryType::Fifo, None)
        } else if ft.is_char_device() {
            (tar::EntryType::Char, Some(md.rdev()))
        } else if ft.is_block_device() {
            (tar::EntryType::Block, Some(md.rdev()))
        } else {
            return Err(Error::Unsupported {
                what: format!("upper entry {}", abs.display()),
                why: "unknown file type".into(),
            });
        };
        h.set_entry_type(kind);
        h.set_size(0);
        if let Some(rdev) = dev {
            h.set_device_major(libc::major(rdev)).map_err(werr)?;
            h.set_device_minor(libc::minor(rdev)).map_err(werr)?;
        }
        self.builder
            .append_data(&mut h, rel, io::empty())
            .map_err(werr)
    }

    fn empty_file(&mut self, path: &Path, md: &fs::Metadata) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(md.mtime().max(0) as u64);
        self.stats.entries += 1;
        self.builder
            .append_data(&mut h, path, io::empty())
            .map_err(|e| Error::io("write whiteout entry", path, e))
    }
}

/// A file that yields exactly the size its header promised (a file that changed size while
/// being read would otherwise corrupt the archive).
struct SizedFile {
    f: File,
    left: u64,
}

impl io::Read for SizedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.f.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was archived",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn header(md: &fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    h.set_mtime(md.mtime().max(0) as u64);
    h
}

/// The extended attributes of `path` (not following a symlink), names and values.
fn list_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::io("list xattrs", path, io::ErrorKind::InvalidInput.into()))?;
    let names = xattr_call(path, |buf, len| {
        // SAFETY: `p` is NUL-terminated; `buf` is null with len 0 or valid for `len` bytes.
        unsafe { libc::llistxattr(p.as_ptr(), buf.cast(), len) }
    })?;
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let value = xattr_call(path, |buf, len| {
            // SAFETY: as above; `cname` is NUL-terminated.
            unsafe { libc::lgetxattr(p.as_ptr(), cname.as_ptr(), buf.cast(), len) }
        })?;
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    out.sort();
    Ok(out)
}

/// Runs a size-query-then-fill xattr call, retrying if the value grew in between.
fn xattr_call(path: &Path, f: impl Fn(*mut u8, usize) -> isize) -> Result<Vec<u8>> {
    loop {
        let n = f(std::ptr::null_mut(), 0);
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOTSUP) {
                return Ok(Vec::new());
            }
            return Err(Error::io("read xattrs", path, e));
        }
        let mut buf = vec![0u8; n as usize];
        let m = f(buf.as_mut_ptr(), buf.len());
        if m < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue;
            }
            return Err(Error::io("read xattrs", path, e));
        }
        buf.truncate(m as usize);
        return Ok(buf);
    }
}
