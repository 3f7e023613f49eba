//! The container's root filesystem, built inside its new mount namespace by the init process.
//!
//! Every mount target is resolved *inside* the rootfs with `openat2(RESOLVE_IN_ROOT)` and
//! mounted through `/proc/self/fd/N`, so a symlink in the image can never redirect a mount to
//! the host. Masked paths bind a verified `/dev/null` by descriptor.

use super::mountopts::{self, Parsed};
use super::sys::{
    self, cstr, fd_path, openat2, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
};
use crate::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// What the rootfs setup needs to know besides the spec.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub new_userns: bool,
    pub new_netns: bool,
    pub new_cgroupns: bool,
    /// The container's cgroup directories on the host (for bind-mounted cgroupfs).
    pub cgroup_paths: &'a [PathBuf],
}

pub fn mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), Errno> {
    let src = src.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.filter(|d| !d.is_empty()).map(cstr).transpose()?;
    // SAFETY: every pointer is either null or a valid NUL-terminated string that outlives the call.
    let ret = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    sys::check(ret as libc::c_long).map(|_| ())
}

fn err(step: String, e: Errno) -> Error {
    Error::sys(step, e)
}

/// Relative form of an absolute container path (`/a/b` → `a/b`), with `..` kept for openat2 to clamp.
fn rel(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// Opens (creating as needed) `dest` inside the root, never leaving it. Symlinks met on the
/// way are resolved *inside* the root (an absolute link target restarts at the root), as a
/// chroot would, and missing components are created where the link points.
/// `file` creates the last component as an empty regular file instead of a directory.
pub fn ensure_in_root(root: &OwnedFd, dest: &Path, file: bool) -> Result<OwnedFd, Errno> {
    let r = rel(dest);
    match openat2(
        root.as_raw_fd(),
        &r,
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if let Some(fd) = create_below_ancestor(root, &r, file)? {
        return Ok(fd);
    }
    let mut pending: std::collections::VecDeque<std::ffi::OsString> = r
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        if c == "." {
            continue;
        }
        let cand = cur.join(&c);
        match openat2(
            root.as_raw_fd(),
            &cand,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(&fd)?;
                if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    links += 1;
                    if links > 40 {
                        return Err(Errno::ELOOP);
                    }
                    let target = nix::fcntl::readlinkat(&fd, "")?;
                    let tp = Path::new(&target);
                    if tp.is_absolute() {
                        cur = PathBuf::new();
                    }
                    for (k, tc) in rel(tp).components().enumerate() {
                        pending.insert(k, tc.as_os_str().to_os_string());
                    }
                } else {
                    cur = cand;
                }
            }
            Err(Errno::ENOENT) => {
                let last = pending.is_empty();
                let dfd = openat2(
                    root.as_raw_fd(),
                    if cur.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        &cur
                    },
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    0,
                    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                )?;
                let name = cstr(&c)?;
                match create_entry(&dfd, &name, last && file) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                pending.push_front(c);
            }
            Err(e) => return Err(e),
        }
    }
    openat2(
        root.as_raw_fd(),
        if cur.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &cur
        },
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// Creates `name` in `dir`: an empty regular file (`file`) or a directory; never follows a
/// link planted at `name` (`EEXIST` if anything is there).
fn create_entry(dir: &OwnedFd, name: &std::ffi::CStr, file: bool) -> Result<(), Errno> {
    if file {
        // SAFETY: valid dirfd and C string; O_EXCL|O_NOFOLLOW never follows a planted link.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_WRONLY,
                0o644,
            )
        };
        let fd = sys::check(fd as libc::c_long)?;
        // SAFETY: a fresh descriptor from openat, closed right away.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) });
    } else {
        // SAFETY: valid dirfd and C string.
        let ret = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) };
        sys::check(ret as libc::c_long)?;
    }
    Ok(())
}

/// The common case of [`ensure_in_root`]: some ancestor of `r` exists (found from the deepest
/// one up, resolved inside the root) and the missing components below it are created and
/// opened relative to it, never following a link. `Ok(None)` sends the caller to the general
/// walk: a `..`/`.` component, or a link that appeared where a component was just created.
fn create_below_ancestor(root: &OwnedFd, r: &Path, file: bool) -> Result<Option<OwnedFd>, Errno> {
    let comps: Vec<&std::ffi::OsStr> = r.components().map(|c| c.as_os_str()).collect();
    if comps.is_empty() || r.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Ok(None);
    }
    let mut have = comps.len() - 1;
    let base = loop {
        let prefix: PathBuf = comps[..have].iter().collect();
        let target = if have == 0 { Path::new(".") } else { &prefix };
        match openat2(
            root.as_raw_fd(),
            target,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => break fd,
            Err(Errno::ENOENT) if have > 0 => have -= 1,
            Err(e) => return Err(e),
        }
    };
    let mut dir = base;
    for (k, c) in comps.iter().enumerate().skip(have) {
        let name = cstr(c)?;
        let last = k + 1 == comps.len();
        match create_entry(&dir, &name, last && file) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return Ok(None),
            Err(e) => return Err(e),
        }
        let flags =
            libc::O_PATH | libc::O_NOFOLLOW | if last && file { 0 } else { libc::O_DIRECTORY };
        dir = match openat2(
            dir.as_raw_fd(),
            Path::new(c),
            flags,
            0,
            RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
        ) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
    }
    Ok(Some(dir))
}

/// Everything before pivot_root: propagation, the rootfs bind, the spec's mounts, /dev.
pub fn prepare(ctx: &Ctx) -> Result<()> {
    let linux = ctx.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mountopts::propagation_flag)
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    mount(None, "/", None, prop, None).map_err(|e| err("set propagation of /".into(), e))?;
    if prop & libc::MS_SHARED != 0 {
        // pivot_root refuses a new root whose parent mount is shared.
        make_parent_private(ctx.rootfs)?;
    }
    let root_s = ctx.rootfs.to_string_lossy().into_owned();
    mount(
        Some(&root_s),
        &root_s,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| err(format!("bind rootfs {root_s}"), e))?;
    let root = openat2(
        libc::AT_FDCWD,
        ctx.rootfs,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(|e| err(format!("open rootfs {root_s}"), e))?;

    let mut has_dev = false;
    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        if m.destination() == Path::new("/dev") {
            has_dev = true;
        }
        mount_one(ctx, &root, i, m)?;
    }
    if has_dev {
        super::devices::create_default_devices(&root, ctx.new_userns)?;
    }
    for (i, d) in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        super::devices::create_device(&root, d, ctx.new_userns)
            .map_err(|e| err(format!("linux.devices[{i}] {}", d.path().display()), e))?;
    }
    if has_dev {
        super::devices::dev_symlinks(&root)?;
    }
    Ok(())
}

/// pivot_root needs the rootfs' parent mount to be non-shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mut p = rootfs.to_path_buf();
    loop {
        match mount(None, &p.to_string_lossy(), None, libc::MS_PRIVATE, None) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => {} // not a mount point: go up
            Err(e) => return Err(err(format!("make {} private", p.display()), e)),
        }
        if !p.pop() {
            return Ok(());
        }
    }
}

fn mount_one(ctx: &Ctx, root: &OwnedFd, i: usize, m: &Mount) -> Result<()> {
    let opts: Vec<String> = m.options().clone().unwrap_or_default();
    let p: Parsed = mountopts::parse(&opts);
    let dest = m.destination();
    let step = |what: &str| format!("mounts[{i}] {}: {what}", dest.display());
    if let Some(u) = p.unsupported.first() {
        return Err(Error::InvalidArgument {
            field: format!("mounts[{i}].options"),
            reason: format!("{u:?} is not supported"),
        });
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = typ == "bind" || p.flags & libc::MS_BIND != 0;
    if is_bind {
        let src = m.source().as_ref().ok_or_else(|| Error::InvalidArgument {
            field: format!("mounts[{i}].source"),
            reason: "a bind mount needs a source".into(),
        })?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            ctx.bundle.join(src)
        };
        let src_fd = openat2(libc::AT_FDCWD, &src, libc::O_PATH, 0, 0)
            .map_err(|e| err(step(&format!("open source {}", src.display())), e))?;
        let is_dir = std::fs::metadata(fd_path(&src_fd))
            .map(|m| m.is_dir())
            .unwrap_or(true);
        let target =
            ensure_in_root(root, dest, !is_dir).map_err(|e| err(step("create target"), e))?;
        mount(
            Some(&fd_path(&src_fd)),
            &fd_path(&target),
            None,
            libc::MS_BIND | (p.flags & libc::MS_REC),
            None,
        )
        .map_err(|e| err(step("bind"), e))?;
        let extra = p.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if extra != 0 {
            let t = reopen(root, dest).map_err(|e| err(step("reopen"), e))?;
            remount_bind(&fd_path(&t), extra).map_err(|e| err(step("remount with options"), e))?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroup(ctx, root, dest, typ, &p).map_err(|e| err(step("mount cgroup"), e))?;
    } else {
        let target =
            ensure_in_root(root, dest, false).map_err(|e| err(step("create target"), e))?;
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        let flags = p.flags & !libc::MS_REC;
        match mount(
            Some(&source),
            &fd_path(&target),
            Some(typ),
            flags,
            Some(&p.data),
        ) {
            Ok(()) => {}
            // sysfs of the host's network namespace cannot be mounted from a user namespace:
            // bind the host's /sys instead, read-only, as other runtimes do.
            Err(Errno::EPERM) if typ == "sysfs" && (!ctx.new_netns || ctx.new_userns) => {
                mount(
                    Some("/sys"),
                    &fd_path(&target),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )
                .map_err(|e| err(step("bind /sys"), e))?;
                let t = reopen(root, dest).map_err(|e| err(step("reopen"), e))?;
                remount_bind(&fd_path(&t), flags | libc::MS_RDONLY)
                    .map_err(|e| err(step("remount /sys read-only"), e))?;
            }
            Err(e) => return Err(err(step(&format!("mount {typ}")), e)),
        }
    }
    if !p.propagation.is_empty() || p.rec_attr_set != 0 || p.rec_attr_clr != 0 {
        let t = reopen(root, dest).map_err(|e| err(step("reopen"), e))?;
        for f in &p.propagation {
            mount(None, &fd_path(&t), None, *f, None)
                .map_err(|e| err(step("set propagation"), e))?;
        }
        if p.rec_attr_set != 0 || p.rec_attr_clr != 0 {
            mount_setattr_rec(&t, p.rec_attr_set, p.rec_attr_clr)
                .map_err(|e| err(step("set recursive attributes"), e))?;
        }
    }
    Ok(())
}

fn reopen(root: &OwnedFd, dest: &Path) -> Result<OwnedFd, Errno> {
    openat2(
        root.as_raw_fd(),
        &rel(dest),
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// Remounts a bind mount with `flags`, keeping the locked flags the kernel requires us to keep.
fn remount_bind(target: &str, flags: libc::c_ulong) -> Result<(), Errno> {
    let base = libc::MS_BIND | libc::MS_REMOUNT;
    match mount(None, target, None, base | flags, None) {
        Err(Errno::EPERM) => {
            // In a user namespace, flags inherited from the host (nodev, nosuid, noexec, ro,
            // atime settings) are locked: include them.
            let st = nix::sys::statfs::statfs(target)?;
            let locked = st.flags().bits() as libc::c_ulong
                & (libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC
                    | libc::MS_NOATIME
                    | libc::MS_NODIRATIME
                    | libc::MS_RELATIME);
            mount(None, target, None, base | flags | locked, None)
        }
        r => r,
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr_rec(fd: &OwnedFd, set: u64, clr: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, and a mount_attr of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    sys::check(ret).map(|_| ())
}

/// A cgroup mount: cgroup2 directly; v1 as a tmpfs holding one mount per hierarchy.
fn mount_cgroup(
    ctx: &Ctx,
    root: &OwnedFd,
    dest: &Path,
    typ: &str,
    p: &Parsed,
) -> Result<(), Errno> {
    let flags = p.flags & !(libc::MS_REC | libc::MS_BIND)
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC;
    let v2_only = std::fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok();
    if typ == "cgroup2" || v2_only {
        let t = ensure_in_root(root, dest, false)?;
        return match mount(Some("cgroup2"), &fd_path(&t), Some("cgroup2"), flags, None) {
            Err(Errno::EPERM | Errno::EBUSY) if !ctx.new_cgroupns => {
                let host = own_dir(ctx, "/sys/fs/cgroup").ok_or(Errno::ENOENT)?;
                mount(
                    Some(&host),
                    &fd_path(&t),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                remount_bind(&fd_path(&reopen(root, dest)?), flags)
            }
            r => r,
        };
    }
    let t = ensure_in_root(root, dest, false)?;
    mount(
        Some("tmpfs"),
        &fd_path(&t),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("mode=755"),
    )?;
    // The tmpfs is ours and empty: the hierarchy directories go straight into it.
    let tmpfs = reopen(root, dest)?;
    for h in v1_hierarchies() {
        let name = cstr(std::ffi::OsStr::new(&h.name))?;
        // SAFETY: valid dirfd and C string.
        let ret = unsafe { libc::mkdirat(tmpfs.as_raw_fd(), name.as_ptr(), 0o755) };
        sys::check(ret as libc::c_long)?;
        let t = openat2(
            tmpfs.as_raw_fd(),
            Path::new(&h.name),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
        )?;
        if ctx.new_cgroupns {
            mount(
                Some("cgroup"),
                &fd_path(&t),
                Some("cgroup"),
                flags & !libc::MS_RDONLY,
                Some(&h.options),
            )?;
        } else {
            let src = own_dir(ctx, &h.mountpoint).unwrap_or_else(|| h.mountpoint.clone());
            mount(
                Some(&src),
                &fd_path(&t),
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )?;
        }
        if flags & libc::MS_RDONLY != 0 || !ctx.new_cgroupns {
            // Opened again through the tmpfs: the walk now lands on the new mount's root.
            let m = openat2(
                tmpfs.as_raw_fd(),
                Path::new(&h.name),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
            )?;
            remount_bind(&fd_path(&m), flags)?;
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        remount_bind(&fd_path(&reopen(root, dest)?), flags)?;
    }
    Ok(())
}

/// The container's own cgroup directory inside the hierarchy mounted at `mountpoint`.
fn own_dir(ctx: &Ctx, mountpoint: &str) -> Option<String> {
    ctx.cgroup_paths
        .iter()
        .find(|p| p.starts_with(mountpoint) && p.is_dir())
        .map(|p| p.to_string_lossy().into_owned())
}

struct Hierarchy {
    name: String,
    mountpoint: String,
    options: String,
}

/// v1 cgroup hierarchies mounted on this host: the runtime's cached cgroup layout (detected
/// from mountinfo before the clone, so the init does not parse it again).
fn v1_hierarchies() -> Vec<Hierarchy> {
    let Ok(layout) = crate::cgroups::layout() else {
        return Vec::new();
    };
    layout
        .hierarchies
        .iter()
        .filter(|h| !h.v2)
        .filter_map(|h| {
            let name = h.mount_point.file_name()?.to_string_lossy().into_owned();
            Some(Hierarchy {
                name,
                mountpoint: h.mount_point.to_string_lossy().into_owned(),
                options: h.controllers.join(","),
            })
        })
        .collect()
}

/// Makes the prepared rootfs the process's root: pivot_root, or chroot with `--no-pivot`.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    let r = rootfs.to_string_lossy().into_owned();
    if no_pivot {
        nix::unistd::chdir(rootfs).map_err(|e| err(format!("chdir {r}"), e))?;
        mount(Some(&r), "/", None, libc::MS_MOVE, None)
            .map_err(|e| err("move rootfs to /".into(), e))?;
        nix::unistd::chroot(".").map_err(|e| err("chroot".into(), e))?;
        return nix::unistd::chdir("/").map_err(|e| err("chdir /".into(), e));
    }
    let old = openat2(
        libc::AT_FDCWD,
        Path::new("/"),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(|e| err("open /".into(), e))?;
    let new = openat2(
        libc::AT_FDCWD,
        rootfs,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(|e| err(format!("open {r}"), e))?;
    nix::unistd::fchdir(&new).map_err(|e| err(format!("chdir {r}"), e))?;
    // SAFETY: pivot_root with two valid C strings ("." for both is the documented idiom).
    sys::check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })
        .map_err(|e| err("pivot_root".into(), e))?;
    nix::unistd::fchdir(&old).map_err(|e| err("chdir old root".into(), e))?;
    mount(None, ".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(|e| err("make old root slave".into(), e))?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| err("detach old root".into(), e))?;
    nix::unistd::chdir("/").map_err(|e| err("chdir /".into(), e))
}

/// After pivot_root: readonly paths, masked paths, read-only root, propagation of `/`.
pub fn finalize(spec: &Spec) -> Result<()> {
    let root = openat2(
        libc::AT_FDCWD,
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(|e| err("open /".into(), e))?;
    if let Some(linux) = spec.linux() {
        for p in linux.readonly_paths().iter().flatten() {
            readonly_path(&root, p).map_err(|e| err(format!("linux.readonlyPaths {p}"), e))?;
        }
        if let Some(masked) = linux.masked_paths().as_ref().filter(|m| !m.is_empty()) {
            let null = open_dev_null().map_err(|e| err("verify /dev/null".into(), e))?;
            for p in masked {
                mask_path(&root, &null, p).map_err(|e| err(format!("linux.maskedPaths {p}"), e))?;
            }
        }
        if let Some(flag) = linux
            .rootfs_propagation()
            .as_deref()
            .and_then(mountopts::propagation_flag)
        {
            if flag & (libc::MS_SHARED) != 0 {
                mount(None, "/", None, flag, None)
                    .map_err(|e| err("set propagation of /".into(), e))?;
            }
        }
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        remount_bind("/", libc::MS_RDONLY).map_err(|e| err("make root read-only".into(), e))?;
    }
    Ok(())
}

fn readonly_path(root: &OwnedFd, p: &str) -> Result<(), Errno> {
    let fd = match openat2(
        root.as_raw_fd(),
        &rel(Path::new(p)),
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    mount(
        Some(&fd_path(&fd)),
        &fd_path(&fd),
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    let t = openat2(
        root.as_raw_fd(),
        &rel(Path::new(p)),
        libc::O_PATH,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )?;
    remount_bind(
        &fd_path(&t),
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_REC,
    )
}

/// Opens the container's `/dev/null` and proves it is the real null device (char 1:3), so a
/// planted symlink or file cannot turn a masked path into a writable bind of something else.
fn open_dev_null() -> Result<OwnedFd, Errno> {
    let fd = openat2(
        libc::AT_FDCWD,
        Path::new("/dev/null"),
        libc::O_PATH,
        0,
        RESOLVE_NO_SYMLINKS,
    )?;
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(Errno::ENODEV);
    }
    Ok(fd)
}

fn mask_path(root: &OwnedFd, null: &OwnedFd, p: &str) -> Result<(), Errno> {
    let fd = match openat2(
        root.as_raw_fd(),
        &rel(Path::new(p)),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let md = std::fs::metadata(fd_path(&fd))
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    if md.is_dir() {
        mount(
            Some("tmpfs"),
            &fd_path(&fd),
            Some("tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )
    } else {
        mount(
            Some(&fd_path(null)),
            &fd_path(&fd),
            None,
            libc::MS_BIND,
            None,
        )
    }
}
