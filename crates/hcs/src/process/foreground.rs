//! Waiting in the foreground for a container process: reap it, forward signals, and copy a
//! terminal's bytes. Signals are blocked *before* the child is cloned, so an instantly exiting
//! process can never be missed (a SIGCHLD stays pending until we read the signalfd).

use super::sys;
use super::tty;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Blocks every signal in this (single-threaded) process; returns the previous mask.
pub fn block_all() -> Result<SigSet, Errno> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )?;
    Ok(old)
}

pub fn restore_mask(old: &SigSet) {
    // Restoring the caller's mask cannot meaningfully fail with a valid set.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None).ok();
}

fn exit_code(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Waits for `pid` (our child) to exit; forwards other signals to it; copies `master` ⇄ stdio.
/// Returns the exit code (128+signal when killed).
pub fn wait(pid: i32, pidfd: &OwnedFd, master: Option<OwnedFd>) -> Result<i32, Errno> {
    let sfd = SignalFd::with_flags(&SigSet::all(), SfdFlags::SFD_CLOEXEC)?;
    let child = nix::unistd::Pid::from_raw(pid);
    // The child may already be gone: reap before the first wait.
    if let Some(c) = exit_code(waitpid(child, Some(WaitPidFlag::WNOHANG))?) {
        if let Some(m) = master {
            drain(&m);
        }
        return Ok(c);
    }
    let stdin_tty = master.is_some() && nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let saved = if stdin_tty { tty::make_raw(0) } else { None };
    if let (Some(m), true) = (master.as_ref(), stdin_tty) {
        if let Some((r, c)) = tty::get_size(&std::io::stdin()) {
            tty::set_size(m, r, c).ok();
        }
    }
    let res = loop_until_exit(child, pidfd, &sfd, master.as_ref());
    if let Some(t) = saved {
        tty::restore(0, &t);
    }
    res
}

fn loop_until_exit(
    child: nix::unistd::Pid,
    pidfd: &OwnedFd,
    sfd: &SignalFd,
    master: Option<&OwnedFd>,
) -> Result<i32, Errno> {
    let mut stdin_open = master.is_some();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = master {
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: `fds` is a valid array of pollfd of the length passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            while let Some(info) = sfd.read_signal()? {
                let sig = info.ssi_signo as i32;
                match sig {
                    libc::SIGCHLD => {
                        if let Some(c) = exit_code(waitpid(child, Some(WaitPidFlag::WNOHANG))?) {
                            if let Some(m) = master {
                                drain(m);
                            }
                            return Ok(c);
                        }
                    }
                    libc::SIGWINCH => {
                        if let (Some(m), Some((r, c))) = (master, tty::get_size(&std::io::stdin()))
                        {
                            tty::set_size(m, r, c).ok();
                        }
                    }
                    // The child may be exiting; a failed forward is not an error.
                    _ => drop(sys::pidfd_send_signal(pidfd, sig)),
                }
            }
        }
        if let Some(m) = master {
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0 && !copy(m.as_fd(), 1, &mut buf)
            {
                // EIO: the slave side closed; keep waiting for the exit.
            }
            if stdin_open && fds.len() > 2 && fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                // SAFETY: fd 0 stays open for our whole life.
                let stdin = unsafe { BorrowedFd::borrow_raw(0) };
                if !copy(stdin, m.as_raw_fd(), &mut buf) {
                    stdin_open = false;
                }
            }
        }
    }
}

/// Copies one chunk; false on EOF or error.
fn copy(from: BorrowedFd, to: i32, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                // SAFETY: writing an initialized slice of `buf` to a descriptor.
                let w = unsafe { libc::write(to, buf[off..n].as_ptr().cast(), n - off) };
                if w <= 0 {
                    return false;
                }
                off += w as usize;
            }
            true
        }
    }
}

fn drain(m: &OwnedFd) {
    let mut buf = [0u8; 16 * 1024];
    // Non-blocking: whatever is left in the pty after the process exited.
    if nix::fcntl::fcntl(
        m,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .is_ok()
    {
        while copy(m.as_fd(), 1, &mut buf) {}
    }
}
