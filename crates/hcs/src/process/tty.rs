//! Terminals: a pty created inside the container, its master handed to whoever asked
//! (`--console-socket`, as runc does, or the foreground `run -t`/`exec -t` copier).

use super::rootfs::{ensure_in_root, mount};
use super::sys::{self, fd_path, openat2};
use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// In the container (after pivot_root): opens a new pty pair from `/dev/ptmx`, makes the slave
/// the controlling terminal and stdio, binds it over `/dev/console`, returns the master.
pub fn open_in_container(
    size: Option<(u16, u16)>,
    bind_console: bool,
) -> Result<OwnedFd, (String, Errno)> {
    let e = |s: &'static str| move |err| (s.to_string(), err);
    let master = openat2(
        libc::AT_FDCWD,
        Path::new("/dev/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        0,
    )
    .map_err(e("open /dev/ptmx"))?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) };
    sys::check(ret as libc::c_long).map_err(e("unlock pty"))?;
    // SAFETY: TIOCGPTPEER returns a new descriptor for the slave of this master.
    let slave = sys::check(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    } as libc::c_long)
    .map_err(e("open pty slave"))?;
    // SAFETY: a fresh descriptor owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(slave as RawFd) };
    if let Some((rows, cols)) = size {
        set_size(&master, rows, cols).map_err(e("set console size"))?;
    }
    if bind_console {
        let root = openat2(
            libc::AT_FDCWD,
            Path::new("/"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            0,
        )
        .map_err(e("open /"))?;
        let target = ensure_in_root(&root, Path::new("/dev/console"), true)
            .map_err(e("create /dev/console"))?;
        mount(
            Some(&fd_path(&slave)),
            &fd_path(&target),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(e("bind /dev/console"))?;
    }
    // SAFETY: TIOCSCTTY with arg 0 on a descriptor we own; we are a session leader.
    sys::check(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } as libc::c_long)
        .map_err(e("set controlling terminal"))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto stdio descriptors; `slave` stays open for the call.
        sys::check(unsafe { libc::dup2(slave.as_raw_fd(), fd) } as libc::c_long)
            .map_err(e("dup pty to stdio"))?;
    }
    Ok(master)
}

pub fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ takes a pointer to a winsize.
    sys::check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } as libc::c_long)
        .map(|_| ())
}

pub fn get_size(fd: &impl AsRawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize.
    let ok = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0;
    ok.then_some((ws.ws_row, ws.ws_col))
}

/// Sends `master` over a connected console socket, as runc does (the name as payload).
pub fn send_master(sock: RawFd, master: &OwnedFd) -> Result<(), Errno> {
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(|_| ())
}

/// Connects to the `--console-socket` path (in the host's view), if one was given.
pub fn connect_console_socket(path: Option<&Path>) -> crate::Result<Option<OwnedFd>> {
    let Some(path) = path else { return Ok(None) };
    std::os::unix::net::UnixStream::connect(path)
        .map(|s| Some(s.into()))
        .map_err(|e| crate::Error::io("connect to --console-socket", path, e))
}

/// Puts a terminal in raw mode; returns the previous settings to restore.
pub fn make_raw(fd: RawFd) -> Option<libc::termios> {
    // SAFETY: zeroed termios is a valid out-parameter for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr fills `t` for a valid descriptor.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return None;
    }
    let saved = t;
    // SAFETY: cfmakeraw edits the struct in place.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: applying a termios derived from the current one.
    (unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } == 0).then_some(saved)
}

pub fn restore(fd: RawFd, t: &libc::termios) {
    // SAFETY: restoring settings read earlier from the same descriptor. Failure leaves the
    // terminal raw, which is cosmetic; nothing security-relevant depends on it.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) };
}
