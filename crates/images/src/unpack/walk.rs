//! Entry names and the descriptor walk that turns them into (parent directory fd, leaf name).
//!
//! Names are checked lexically first: absolute paths and `..` components are refused outright.
//! Then every parent component is opened with `O_NOFOLLOW | O_DIRECTORY` from the layer root's
//! descriptor: a parent that is a symlink (or not a directory) refuses the entry, so nothing is
//! ever created, changed or read through a symlink, wherever it points.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::sys;
use crate::error::{Error, Result};

/// A validated relative path: its components, none empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    pub comps: Vec<CString>,
}

impl RelPath {
    /// Validates a name from the archive; `entry` is how errors name it.
    pub fn parse(raw: &[u8], entry: &str) -> Result<Self> {
        if raw.first() == Some(&b'/') {
            return Err(Error::unsafe_entry(entry, "absolute path"));
        }
        let mut comps = Vec::new();
        for c in raw.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err(Error::unsafe_entry(entry, "path has a '..' component")),
                c => comps.push(
                    CString::new(c).map_err(|_| Error::unsafe_entry(entry, "NUL byte in path"))?,
                ),
            }
        }
        Ok(RelPath { comps })
    }

    pub fn is_root(&self) -> bool {
        self.comps.is_empty()
    }

    /// The last component (the entry itself); `None` for the root.
    pub fn leaf(&self) -> Option<&CStr> {
        self.comps.last().map(CString::as_c_str)
    }

    pub fn parent(&self) -> &[CString] {
        &self.comps[..self.comps.len().saturating_sub(1)]
    }

    pub fn display(&self) -> String {
        self.comps
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Walks parent directories from the layer root, caching the last parent (archives list a
/// directory's entries together).
pub struct Walker {
    root: OwnedFd,
    cache: Option<(Vec<CString>, OwnedFd)>,
}

impl Walker {
    pub fn new(root: OwnedFd) -> Self {
        Walker { root, cache: None }
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Forgets the cached parent; call after removing any directory.
    pub fn invalidate(&mut self) {
        self.cache = None;
    }

    /// The directory `comps` (relative to the root), creating missing ones (mode 0755) when
    /// `create`. A component that is a symlink or a non-directory refuses `entry`.
    pub fn dir(&mut self, comps: &[CString], create: bool, entry: &str) -> Result<BorrowedFd<'_>> {
        if comps.is_empty() {
            return Ok(self.root.as_fd());
        }
        let hit = matches!(&self.cache, Some((p, _)) if p.as_slice() == comps);
        if !hit {
            let fd = open_path(self.root.as_fd(), comps, create, entry)?;
            self.cache = Some((comps.to_vec(), fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(Error::Internal {
                step: "walk parent directories",
                reason: "cache empty after fill".into(),
            }),
        }
    }

    /// As [`Walker::dir`] but uncached, for a second directory needed at the same time.
    pub fn dir_uncached(&self, comps: &[CString], entry: &str) -> Result<OwnedFd> {
        open_path(self.root.as_fd(), comps, false, entry)
    }
}

fn open_path(
    root: BorrowedFd<'_>,
    comps: &[CString],
    create: bool,
    entry: &str,
) -> Result<OwnedFd> {
    if comps.is_empty() {
        return root
            .try_clone_to_owned()
            .map_err(|e| Error::entry(entry, "duplicate layer root descriptor", e));
    }
    let mut cur: Option<OwnedFd> = None;
    for (i, c) in comps.iter().enumerate() {
        let dir = cur.as_ref().map_or(root, |f| f.as_fd());
        let next = match sys::open_dir_at(dir, c) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                sys::mkdir_at(dir, c, 0o755)
                    .map_err(|e| Error::entry(entry, "create parent directory", e))?;
                sys::open_dir_at(dir, c)
                    .map_err(|e| Error::entry(entry, "open parent directory", e))?
            }
            Err(e) => {
                let shown = comps[..=i]
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                return Err(match sys::stat_at(dir, c) {
                    Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => Error::unsafe_entry(
                        entry,
                        format!("parent {shown:?} is a symlink; entries are never written through symlinks"),
                    ),
                    Ok(Some(_)) => Error::unsafe_entry(entry, format!("parent {shown:?} is not a directory")),
                    _ => Error::entry(entry, "open parent directory", e),
                });
            }
        };
        cur = Some(next);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => Err(Error::Internal {
            step: "walk parent directories",
            reason: "empty path".into(),
        }),
    }
}
