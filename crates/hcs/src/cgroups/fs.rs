//! cgroupfs file and directory operations. Interface files are opened without `O_CREAT`: they
//! exist or the controller (feature) is missing, which then shows as ENOENT.

use super::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`remove_cgroup`] retries a cgroup that is still busy (exiting tasks).
const BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// mkdir -p below `mount`; returns how many trailing levels were newly created.
pub(super) fn mkdir_p(path: &Path, mount: &Path) -> Result<usize, Error> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::NotFound && path != mount => {
            let parent = path.parent().unwrap_or(mount);
            let created = mkdir_p(parent, mount)?;
            match std::fs::create_dir(path) {
                Ok(()) => Ok(created + 1),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(created),
                Err(source) => Err(Error::CreateDir {
                    path: path.into(),
                    source,
                }),
            }
        }
        Err(source) => Err(Error::CreateDir {
            path: path.into(),
            source,
        }),
    }
}

pub(super) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    let procs = read(dir, "cgroup.procs")?;
    for line in procs.lines().filter(|l| !l.is_empty()) {
        let pid = line.trim().parse().map_err(|_| Error::Parse {
            path: dir.join("cgroup.procs"),
            reason: format!("{line:?} is not a pid"),
        })?;
        out.push(pid);
    }
    for child in subdirs(dir)? {
        collect_pids(&child, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let list_err = |source| Error::ListDir {
        path: dir.into(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        if entry.file_type().map_err(list_err)?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

pub(super) fn remove_cgroup(path: &Path) -> Result<(), Error> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // EBUSY: child cgroups, or tasks that have not finished exiting yet.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < BUSY_TIMEOUT => {
                match subdirs(path) {
                    Ok(children) if !children.is_empty() => {
                        for child in children {
                            remove_cgroup(&child)?;
                        }
                        continue;
                    }
                    Err(Error::ListDir { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        return Ok(())
                    }
                    _ => {}
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(Error::RemoveDir {
                    path: path.into(),
                    source,
                })
            }
        }
    }
}

pub(super) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    // No O_CREAT: cgroup interface files exist or the controller is missing (ENOENT).
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// Writes `value` to `dir/file`; the error names both.
pub(super) fn write(dir: &Path, file: &str, value: &str) -> Result<(), Error> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|source| Error::WriteFile {
        path,
        value: value.into(),
        source,
    })
}

/// Like [`write`], but a missing file is fine.
pub(super) fn write_if_exists(dir: &Path, file: &str, value: &str) -> Result<(), Error> {
    match write(dir, file, value) {
        Err(Error::WriteFile { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether a write failed with `errno`.
pub(super) fn failed_with(result: &Result<(), Error>, errno: i32) -> bool {
    matches!(result, Err(Error::WriteFile { source, .. }) if source.raw_os_error() == Some(errno))
}

pub(super) fn read(dir: &Path, file: &str) -> Result<String, Error> {
    let path = dir.join(file);
    read_path(&path).map_err(|source| Error::ReadFile { path, source })
}

/// Reads a (usually tiny) interface file without the size probe `fs::read_to_string` makes.
/// Reads a small kernel file (/proc, cgroupfs: they report size 0, so `read_to_string` would
/// start from a tiny buffer and read many times) with page-sized reads.
pub(crate) fn read_path(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf)? {
            0 => break,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
