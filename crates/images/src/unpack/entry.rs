//! Applying one archive entry inside the layer directory.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use super::sys;
use super::walk::{RelPath, Walker};
use crate::error::{Error, Result};

const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// Ownership, mode, times and xattrs of an entry (PAX records override the header).
#[derive(Debug, Clone)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub xattrs: Vec<(CString, Vec<u8>)>,
}

/// What the layer's entries leave for the end: directories get their metadata after their
/// children are in place (creating a child changes a directory's mtime).
pub struct State {
    pub root: bool,
    pub dirs: Vec<(RelPath, Meta)>,
    /// Set when an entry removed a directory: the walker's cached descriptor may be stale.
    pub removed_dir: bool,
}

pub fn apply<R: Read>(w: &mut Walker, entry: &mut tar::Entry<'_, R>, st: &mut State) -> Result<()> {
    let raw = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&raw).into_owned();
    let path = RelPath::parse(&raw, &name)?;
    let kind = entry.header().entry_type();
    if let Some(leaf) = path.leaf() {
        if leaf.to_bytes().starts_with(WHITEOUT_PREFIX) {
            return whiteout(w, &path, &name, &mut st.removed_dir);
        }
    }
    let meta = read_meta(entry, &name)?;
    let Some(leaf) = path.leaf().map(CStr::to_owned) else {
        if kind.is_dir() {
            st.dirs.push((path, meta));
            return Ok(());
        }
        return Err(Error::unsafe_entry(
            &name,
            "a non-directory entry names the layer root",
        ));
    };
    use tar::EntryType as T;
    match kind {
        T::Directory => {
            let dir = w.dir(path.parent(), true, &name)?;
            match sys::stat_at(dir, &leaf).map_err(|e| Error::entry(&name, "stat", e))? {
                Some(s) if s.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                existing => {
                    if existing.is_some() {
                        remove(dir, &leaf, false, &name, &mut st.removed_dir)?;
                    }
                    sys::mkdir_at(dir, &leaf, 0o700)
                        .map_err(|e| Error::entry(&name, "create directory", e))?;
                }
            }
            let fd = sys::open_dir_at(dir, &leaf)
                .map_err(|e| Error::entry(&name, "open directory", e))?;
            set_xattrs(fd.as_fd(), &meta, &name)?;
            st.dirs.push((path, meta));
        }
        T::Regular | T::Continuous => {
            let dir = w.dir(path.parent(), true, &name)?;
            replace(dir, &leaf, &name, &mut st.removed_dir)?;
            let mut f = sys::create_file_at(dir, &leaf)
                .map_err(|e| Error::entry(&name, "create file", e))?;
            io::copy(entry, &mut f).map_err(|e| Error::entry(&name, "write file", e))?;
            if st.root {
                sys::fchown(f.as_fd(), meta.uid, meta.gid)
                    .map_err(|e| Error::entry(&name, "chown", e))?;
            }
            // After chown, which clears set-id bits.
            sys::fchmod(f.as_fd(), meta.mode).map_err(|e| Error::entry(&name, "chmod", e))?;
            set_xattrs(f.as_fd(), &meta, &name)?;
            sys::futimes(f.as_fd(), meta.mtime).map_err(|e| Error::entry(&name, "set times", e))?;
        }
        T::Symlink => {
            let target = link_name(entry, &name)?;
            let target = CString::new(target)
                .map_err(|_| Error::unsafe_entry(&name, "NUL byte in symlink target"))?;
            let dir = w.dir(path.parent(), true, &name)?;
            replace(dir, &leaf, &name, &mut st.removed_dir)?;
            // The target is stored as text and never resolved by the unpacker.
            sys::symlink_at(&target, dir, &leaf)
                .map_err(|e| Error::entry(&name, "create symlink", e))?;
            owner_and_times(dir, &leaf, &meta, st.root, false, &name)?;
        }
        T::Link => {
            let target = link_name(entry, &name)?;
            let tpath = RelPath::parse(&target, &name).map_err(|e| match e {
                Error::UnsafeEntry { entry, reason } => Error::UnsafeEntry {
                    entry,
                    reason: format!("hard link target: {reason}"),
                },
                other => other,
            })?;
            let Some(tleaf) = tpath.leaf().map(CStr::to_owned) else {
                return Err(Error::unsafe_entry(&name, "hard link to the layer root"));
            };
            if tpath == path {
                return Err(Error::unsafe_entry(&name, "hard link to itself"));
            }
            let src_dir = w.dir_uncached(tpath.parent(), &name).map_err(|e| match e {
                Error::UnsafeEntry { entry, reason } => Error::UnsafeEntry {
                    entry,
                    reason: format!("hard link target: {reason}"),
                },
                Error::Entry { entry, source, .. } if source.kind() == io::ErrorKind::NotFound => {
                    Error::unsafe_entry(
                        entry,
                        format!(
                            "hard link target {:?} is not in this layer",
                            tpath.display()
                        ),
                    )
                }
                other => other,
            })?;
            match sys::stat_at(src_dir.as_fd(), &tleaf)
                .map_err(|e| Error::entry(&name, "stat link target", e))?
            {
                None => {
                    return Err(Error::unsafe_entry(
                        &name,
                        format!(
                            "hard link target {:?} is not in this layer",
                            tpath.display()
                        ),
                    ))
                }
                Some(s) if s.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    return Err(Error::unsafe_entry(&name, "hard link to a directory"))
                }
                Some(_) => {}
            }
            let dir = w.dir(path.parent(), true, &name)?;
            replace(dir, &leaf, &name, &mut st.removed_dir)?;
            sys::link_at(src_dir.as_fd(), &tleaf, dir, &leaf)
                .map_err(|e| Error::entry(&name, "create hard link", e))?;
        }
        T::Char | T::Block | T::Fifo => {
            let (fmt, dev) = match kind {
                T::Fifo => (libc::S_IFIFO, 0),
                _ => {
                    let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                    let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                    let fmt = if kind == T::Char {
                        libc::S_IFCHR
                    } else {
                        libc::S_IFBLK
                    };
                    (fmt, libc::makedev(major, minor))
                }
            };
            if fmt != libc::S_IFIFO && !st.root {
                tracing::debug!(entry = %name, "skipping device node: not running as root");
                return Ok(());
            }
            let dir = w.dir(path.parent(), true, &name)?;
            replace(dir, &leaf, &name, &mut st.removed_dir)?;
            sys::mknod_at(dir, &leaf, fmt | (meta.mode & 0o777), dev)
                .map_err(|e| Error::entry(&name, "create device node", e))?;
            owner_and_times(dir, &leaf, &meta, st.root, true, &name)?;
        }
        T::XGlobalHeader => {}
        other => {
            return Err(Error::Unsupported {
                what: format!("layer entry {name:?}"),
                why: format!("tar entry type {other:?}"),
            })
        }
    }
    Ok(())
}

/// Overlay-style whiteouts: `.wh.NAME` becomes a 0:0 character device `NAME`, `.wh..wh..opq`
/// marks its directory opaque with `trusted.overlay.opaque=y`.
fn whiteout(w: &mut Walker, path: &RelPath, name: &str, removed_dir: &mut bool) -> Result<()> {
    let leaf = path.leaf().map(CStr::to_bytes).unwrap_or_default();
    let dir = w.dir(path.parent(), true, name)?;
    if leaf == OPAQUE_MARKER {
        return sys::fsetxattr(dir, c"trusted.overlay.opaque", b"y")
            .map_err(|e| Error::entry(name, "mark directory opaque", e));
    }
    if leaf.starts_with(b".wh..wh.") {
        // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless here.
        return Ok(());
    }
    let hidden = &leaf[WHITEOUT_PREFIX.len()..];
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err(Error::unsafe_entry(name, "whiteout names no file"));
    }
    let hidden = CString::new(hidden).map_err(|_| Error::unsafe_entry(name, "NUL byte in path"))?;
    replace(dir, &hidden, name, removed_dir)?;
    sys::mknod_at(dir, &hidden, libc::S_IFCHR, 0)
        .map_err(|e| Error::entry(name, "create whiteout device", e))
}

/// Removes whatever is at `leaf` so a new non-directory can take its place.
fn replace(dir: BorrowedFd<'_>, leaf: &CStr, name: &str, removed_dir: &mut bool) -> Result<()> {
    match sys::stat_at(dir, leaf).map_err(|e| Error::entry(name, "stat", e))? {
        None => Ok(()),
        Some(s) => remove(
            dir,
            leaf,
            s.st_mode & libc::S_IFMT == libc::S_IFDIR,
            name,
            removed_dir,
        ),
    }
}

fn remove(
    dir: BorrowedFd<'_>,
    leaf: &CStr,
    is_dir: bool,
    name: &str,
    removed_dir: &mut bool,
) -> Result<()> {
    if !is_dir {
        return sys::unlink_at(dir, leaf, false)
            .map_err(|e| Error::entry(name, "remove existing entry", e));
    }
    *removed_dir = true;
    // A directory replaced by a later entry of the same layer. std's remove_dir_all never
    // follows symlinks; the path starts at this process's own descriptor for `dir`.
    let p = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .join(std::ffi::OsStr::from_bytes(leaf.to_bytes()));
    std::fs::remove_dir_all(&p).map_err(|e| Error::entry(name, "remove existing directory", e))
}

fn owner_and_times(
    dir: BorrowedFd<'_>,
    leaf: &CStr,
    meta: &Meta,
    root: bool,
    chmod: bool,
    name: &str,
) -> Result<()> {
    if root {
        sys::lchown_at(dir, leaf, meta.uid, meta.gid)
            .map_err(|e| Error::entry(name, "chown", e))?;
    }
    if chmod {
        sys::chmod_at(dir, leaf, meta.mode).map_err(|e| Error::entry(name, "chmod", e))?;
    }
    sys::lutimes_at(dir, leaf, meta.mtime).map_err(|e| Error::entry(name, "set times", e))
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<Vec<u8>> {
    match entry.link_name_bytes() {
        Some(l) if !l.is_empty() => Ok(l.into_owned()),
        _ => Err(Error::unsafe_entry(name, "link without a target")),
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta> {
    let h = entry.header();
    let bad = |e: io::Error| Error::entry(name, "read header", e);
    let mut meta = Meta {
        mode: h.mode().map_err(bad)? & 0o7777,
        uid: h.uid().map_err(bad)? as u32,
        gid: h.gid().map_err(bad)? as u32,
        mtime: h.mtime().map_err(bad)? as i64,
        xattrs: Vec::new(),
    };
    let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| Error::entry(name, "read PAX header", e))?
    else {
        return Ok(meta);
    };
    for ext in pax {
        let ext = ext.map_err(|e| Error::entry(name, "read PAX header", e))?;
        let Ok(key) = ext.key() else { continue };
        let num = || {
            std::str::from_utf8(ext.value_bytes())
                .ok()
                .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
        };
        match key {
            "uid" => {
                meta.uid = num().ok_or_else(|| Error::unsafe_entry(name, "bad PAX uid"))? as u32
            }
            "gid" => {
                meta.gid = num().ok_or_else(|| Error::unsafe_entry(name, "bad PAX gid"))? as u32
            }
            "mtime" => {
                meta.mtime = num().ok_or_else(|| Error::unsafe_entry(name, "bad PAX mtime"))?
            }
            k => {
                if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                    if x.starts_with(OVERLAY_XATTR_PREFIX) {
                        return Err(Error::unsafe_entry(
                            name,
                            format!("xattr {x:?} is reserved: overlay metadata comes only from whiteout entries"),
                        ));
                    }
                    let n = CString::new(x)
                        .map_err(|_| Error::unsafe_entry(name, "NUL in xattr name"))?;
                    meta.xattrs.push((n, ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(meta)
}

fn set_xattrs(fd: BorrowedFd<'_>, meta: &Meta, name: &str) -> Result<()> {
    for (k, v) in &meta.xattrs {
        match sys::fsetxattr(fd, k, v) {
            Ok(()) => {}
            // The filesystem has no such namespace (e.g. user.* on tmpfs before 6.6).
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
                tracing::debug!(entry = %name, xattr = ?k, "xattr not supported here, skipped");
            }
            Err(e) => return Err(Error::entry(name, "set xattr", e)),
        }
    }
    Ok(())
}

/// Applies the deferred directory metadata, deepest first.
pub fn finish_dirs(w: &Walker, st: &mut State) -> Result<()> {
    let mut dirs = std::mem::take(&mut st.dirs);
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.comps.len()));
    for (path, meta) in dirs {
        let name = path.display();
        let owned;
        let fd = if path.is_root() {
            w.root()
        } else {
            owned = match w.dir_uncached(&path.comps, &name) {
                Ok(fd) => fd,
                // Replaced by a later entry of the layer: nothing to apply.
                Err(Error::UnsafeEntry { .. }) => continue,
                Err(Error::Entry { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    continue
                }
                Err(e) => return Err(e),
            };
            owned.as_fd()
        };
        if st.root {
            sys::fchown(fd, meta.uid, meta.gid)
                .map_err(|e| Error::entry(&name, "chown directory", e))?;
        }
        sys::fchmod(fd, meta.mode).map_err(|e| Error::entry(&name, "chmod directory", e))?;
        sys::futimes(fd, meta.mtime).map_err(|e| Error::entry(&name, "set directory times", e))?;
    }
    Ok(())
}
