//! Tar streams for `cp`, never held whole in memory. The HTTP side is async and the `tar`
//! crate is blocking, so they meet at a bounded channel of chunks: [`ChannelReader`] and
//! [`ChannelWriter`] are its blocking ends, used on blocking threads. On top of them:
//! [`build`] archives a host path, [`rebase`] renames an archive's top entry in flight (what
//! docker's `RebaseArchiveEntries` does), and [`unpack`] extracts into a directory under
//! docker cp's rules: nothing is written outside the directory, whether through an absolute
//! path, `..`, a hard link, or a symlink (from the archive or already there).

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

/// One piece of a stream: data, or the error that ends it (so a cut-off stream fails instead
/// of ending as if it were complete).
pub type Chunk = io::Result<Bytes>;

/// Bytes a [`ChannelWriter`] gathers before it sends them.
const CHUNK: usize = 64 * 1024;
/// Chunks a channel holds: with [`CHUNK`]-sized chunks, half a MiB in flight per channel.
const DEPTH: usize = 8;

pub fn channel() -> (mpsc::Sender<Chunk>, mpsc::Receiver<Chunk>) {
    mpsc::channel(DEPTH)
}

/// The blocking reading end of a channel. Ends at the channel's close; a sent error is
/// returned from `read`.
pub struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    cur: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Chunk>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(b)) => self.cur = b,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// The blocking writing end of a channel: gathers [`CHUNK`] bytes per send and counts them.
/// `flush` sends what is gathered; use [`produce`] so that a failure reaches the reader.
pub struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    sent: u64,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let n = b.len() as u64;
        self.tx.blocking_send(Ok(b)).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the receiving side went away")
        })?;
        self.sent += n;
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Runs `f` writing into `tx` and flushes; an error is also sent down the channel, so the
/// reader fails with it rather than taking the stream for complete. Returns the bytes sent.
pub fn produce(
    tx: mpsc::Sender<Chunk>,
    f: impl FnOnce(&mut ChannelWriter) -> io::Result<()>,
) -> io::Result<u64> {
    let mut w = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        sent: 0,
    };
    match f(&mut w).and_then(|()| w.flush()) {
        Ok(()) => Ok(w.sent),
        Err(e) => {
            // If the reader is gone there is nobody to tell.
            drop(tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string()))));
            Err(e)
        }
    }
}

/// Archives the host path `src` as `name` (a directory with everything below it), in plain
/// entries (no GNU sparse ones). With `follow`, `src` itself is resolved if it is a symlink
/// (docker's `-L`); links below it are archived as links either way.
pub fn build(w: impl Write, src: &Path, name: &str, follow: bool) -> io::Result<()> {
    let src = if follow {
        std::fs::canonicalize(src)?
    } else {
        src.to_path_buf()
    };
    let meta = std::fs::symlink_metadata(&src)?;
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    // wharfd's PUT archive takes no GNU sparse entries: holes travel as zeros.
    b.sparse(false);
    if meta.is_dir() {
        b.append_dir_all(name, &src)?;
    } else {
        b.append_path_with_name(&src, name)?;
    }
    b.into_inner()?.flush()
}

/// An entry path with its first component `from` renamed to `to` (an archive of `/` has its
/// entries under `.`: they all move below `to`). `None` for absolute paths and `..`.
pub fn renamed(entry: &Path, from: &str, to: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    if from == "." && to != "." {
        out.push(to);
    }
    let mut first = true;
    for c in entry.components() {
        match c {
            Component::Normal(n) if first && n == from => out.push(to),
            Component::Normal(n) => out.push(n),
            Component::CurDir => continue,
            _ => return None,
        }
        first = false;
    }
    Some(out)
}

fn escape(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "archive entry {} would be written outside the destination",
            path.display()
        ),
    )
}

/// Copies the archive in `src` to `dst` with every entry's first component `from` renamed to
/// `to`; hard links are renamed with it, symlink targets are left as they are. Reads `src` to
/// its end.
pub fn rebase(src: impl Read, dst: impl Write, from: &str, to: &str) -> io::Result<()> {
    let mut ar = tar::Archive::new(src);
    let mut b = tar::Builder::new(dst);
    for entry in ar.entries()? {
        let mut e = entry?;
        let path = e.path()?.into_owned();
        let new = renamed(&path, from, to).ok_or_else(|| escape(&path))?;
        if new.as_os_str().is_empty() {
            continue;
        }
        let mut h = e.header().clone();
        let kind = h.entry_type();
        if kind.is_hard_link() || kind.is_symlink() {
            let link = e.link_name()?.ok_or_else(|| escape(&path))?.into_owned();
            let link = if kind.is_hard_link() {
                renamed(&link, from, to).ok_or_else(|| escape(&path))?
            } else {
                link
            };
            b.append_link(&mut h, &new, &link)?;
            continue;
        }
        if kind.is_gnu_sparse() {
            // Reading a sparse entry yields the whole file, holes as zeros: write it plain.
            let mut plain = tar::Header::new_gnu();
            plain.set_entry_type(tar::EntryType::Regular);
            plain.set_mode(h.mode()?);
            plain.set_uid(h.uid()?);
            plain.set_gid(h.gid()?);
            plain.set_mtime(h.mtime()?);
            if let Some(u) = h.username().ok().flatten() {
                plain.set_username(u)?;
            }
            if let Some(g) = h.groupname().ok().flatten() {
                plain.set_groupname(g)?;
            }
            h = plain;
        }
        h.set_size(e.size());
        b.append_data(&mut h, &new, &mut e)?;
    }
    let mut rest = ar.into_inner();
    io::copy(&mut rest, &mut io::sink())?;
    b.into_inner()?.flush()
}

/// Whether a symlink at `entry` pointing at the relative `target` leads above the top of the
/// archive (docker refuses those; absolute targets stay inside, as docker reads them).
fn link_escapes(entry: &Path, target: &Path) -> bool {
    let mut depth: usize = entry.parent().map_or(0, |p| {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count()
    });
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return false,
            Component::CurDir => {}
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
        }
    }
    false
}

/// Extracts the archive in `src` into the existing directory `dir`, keeping ownership only
/// with `archive` (`cp -a`). Every entry must stay inside `dir`: absolute names, `..`,
/// symlinks whose relative target climbs out, hard links to outside, and any path through a
/// symlink that resolves outside are refused, and the copy stops there. Reads `src` to its end.
pub fn unpack(src: impl Read, dir: &Path, archive: bool) -> io::Result<()> {
    let mut ar = tar::Archive::new(src);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(archive);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut e = entry?;
        let path = e.path()?.into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(escape(&path));
        }
        if e.header().entry_type().is_symlink() {
            if let Some(target) = e.link_name()? {
                if link_escapes(&path, &target) {
                    return Err(escape(&path));
                }
            }
        }
        // The tar crate creates missing parents only inside `dir`, resolves the parent and
        // refuses it if a symlink leads outside, checks hard link targets the same way, and
        // replaces (never follows) a symlink at the entry's own path.
        if !e.unpack_in(dir)? {
            return Err(escape(&path));
        }
    }
    let mut rest = ar.into_inner();
    io::copy(&mut rest, &mut io::sink())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    /// A tar with raw entry names (bypassing the builder's own path checks).
    fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn renames_and_refuses_escapes() {
        let r = |e: &str, f, t| renamed(Path::new(e), f, t);
        assert_eq!(r("hosts", "hosts", "h2"), Some(PathBuf::from("h2")));
        assert_eq!(r("etc/a/b", "etc", "x"), Some(PathBuf::from("x/a/b")));
        assert_eq!(r("./etc/a", "etc", "x"), Some(PathBuf::from("x/a")));
        assert_eq!(r("a/etc", "etc", "x"), Some(PathBuf::from("a/etc")));
        assert_eq!(
            r("./bin/sh", ".", "root"),
            Some(PathBuf::from("root/bin/sh"))
        );
        assert_eq!(r(".", ".", "root"), Some(PathBuf::from("root")));
        assert_eq!(r("../evil", "a", "b"), None);
        assert_eq!(r("/abs", "a", "b"), None);
        assert!(link_escapes(Path::new("a/l"), Path::new("../../x")));
        assert!(!link_escapes(Path::new("a/l"), Path::new("../x")));
        assert!(!link_escapes(Path::new("a/l"), Path::new("/etc/passwd")));
        assert!(link_escapes(Path::new("l"), Path::new("x/../../y")));
    }

    #[test]
    fn build_rebase_unpack_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("dir");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"data").unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("soft")).unwrap();
        let sparse = std::fs::File::create(src.join("sparse")).unwrap();
        sparse.set_len(1 << 20).unwrap();
        std::os::unix::fs::FileExt::write_at(&sparse, b"mid", 1 << 19).unwrap();
        drop(sparse);

        let mut t = Vec::new();
        build(&mut t, &src, "dir", false).unwrap();
        let mut renamed_tar = Vec::new();
        rebase(t.as_slice(), &mut renamed_tar, "dir", "renamed").unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(renamed_tar.as_slice(), &out, false).unwrap();
        let r = out.join("renamed");
        assert_eq!(std::fs::read(r.join("sub/f")).unwrap(), b"data");
        assert_eq!(std::fs::read(r.join("hard")).unwrap(), b"data");
        assert_eq!(
            std::fs::read_link(r.join("soft")).unwrap(),
            PathBuf::from("sub/f")
        );
        let s = std::fs::read(r.join("sparse")).unwrap();
        assert_eq!(s.len(), 1 << 20);
        assert_eq!(&s[1 << 19..(1 << 19) + 3], b"mid");
        assert!(s[..1 << 19].iter().all(|b| *b == 0));
    }

    #[test]
    fn unpack_refuses_every_way_out() {
        use tar::EntryType as T;
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let o = outside.to_str().unwrap();
        let cases: Vec<Vec<u8>> = vec![
            raw_tar(&[("../evil", T::Regular, "", b"x")]),
            raw_tar(&[("a/../../evil", T::Regular, "", b"x")]),
            raw_tar(&[("/abs-evil", T::Regular, "", b"x")]),
            // A symlink out, then a file through it.
            raw_tar(&[
                ("link", T::Symlink, o, b""),
                ("link/evil", T::Regular, "", b"x"),
            ]),
            // A relative symlink climbing out of the archive.
            raw_tar(&[("rel", T::Symlink, "../outside", b"")]),
            // A hard link to a file outside.
            raw_tar(&[("hard", T::Link, &format!("{o}/victim"), b"")]),
            raw_tar(&[("hard", T::Link, "../outside/victim", b"")]),
        ];
        std::fs::write(outside.join("victim"), b"safe").unwrap();
        for (i, t) in cases.iter().enumerate() {
            let dest = d.path().join(format!("dest{i}"));
            std::fs::create_dir(&dest).unwrap();
            assert!(unpack(t.as_slice(), &dest, false).is_err(), "case {i}");
            let left: Vec<_> = std::fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(left, vec![std::ffi::OsString::from("victim")], "case {i}");
            assert!(!d.path().join("evil").exists(), "case {i}");
            assert!(!Path::new("/abs-evil").exists(), "case {i}");
        }
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"safe");

        // A symlink already in the destination is not followed out either.
        let dest = d.path().join("dest-pre");
        std::fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("pre")).unwrap();
        let t = raw_tar(&[("pre/evil", T::Regular, "", b"x")]);
        assert!(unpack(t.as_slice(), &dest, false).is_err());
        assert!(!outside.join("evil").exists());
        // ... and one at an entry's own path is replaced, not written through.
        let t = raw_tar(&[("pre", T::Regular, "", b"plain")]);
        unpack(t.as_slice(), &dest, false).unwrap();
        assert_eq!(std::fs::read(dest.join("pre")).unwrap(), b"plain");
        assert!(outside.is_dir());
    }

    #[test]
    fn a_failed_producer_fails_the_reader() {
        let (tx, rx) = channel();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            ChannelReader::new(rx).read_to_end(&mut s).map(|_| s)
        });
        let r = produce(tx, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk on fire"))
        });
        assert!(r.is_err());
        let e = reader.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");

        let (tx, rx) = channel();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            ChannelReader::new(rx).read_to_end(&mut s).map(|_| s)
        });
        let big = vec![7u8; 3 * CHUNK + 5];
        assert_eq!(
            produce(tx, |w| w.write_all(&big)).unwrap(),
            big.len() as u64
        );
        assert_eq!(reader.join().unwrap().unwrap(), big);
    }
}
