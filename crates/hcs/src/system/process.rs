//! `Process`: one process of a compute system, as HCS hands it out (`HcsCreateProcess` /
//! `HcsOpenProcess`): its pid, its stdio, signals, the console, and its exit.

use crate::process::{sys, tty};
use crate::schema::{
    ProcessModifyOperation, ProcessModifyRequest, ProcessStatus, SignalOptions, StdHandle,
};
use crate::{Error, Result};
use nix::errno::Errno;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// A process this service started; it is a child of the calling process, so its exit code can
/// be collected. Dropping it does not stop the process.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pidfd: OwnedFd,
    stdin: Option<File>,
    stdout: Option<File>,
    stderr: Option<File>,
    console: Option<OwnedFd>,
    exit_code: Option<i32>,
}

/// The parent's ends of the pipes a process was given (`CreateStd*Pipe`).
#[derive(Debug, Default)]
pub(crate) struct Pipes {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

impl Process {
    pub(crate) fn new(pid: i32, pidfd: OwnedFd, pipes: Pipes, console: Option<OwnedFd>) -> Self {
        Process {
            pid,
            pidfd,
            stdin: pipes.stdin,
            stdout: pipes.stdout,
            stderr: pipes.stderr,
            console,
            exit_code: None,
        }
    }

    /// The process id as this host sees it.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The writing end of the process's stdin pipe, if one was asked for.
    pub fn stdin(&mut self) -> Option<&mut File> {
        self.stdin.as_mut()
    }

    pub fn take_stdin(&mut self) -> Option<File> {
        self.stdin.take()
    }

    pub fn take_stdout(&mut self) -> Option<File> {
        self.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<File> {
        self.stderr.take()
    }

    /// The terminal's master side (`EmulateConsole`): read output, write input.
    pub fn console(&self) -> Option<BorrowedFd<'_>> {
        self.console.as_ref().map(|f| f.as_fd())
    }

    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Sends `SignalOptions.Signal` to the process (through its pidfd: never a recycled pid).
    pub fn signal(&self, opts: &SignalOptions) -> Result<()> {
        if !(1..=64).contains(&opts.signal) {
            return Err(Error::InvalidArgument {
                field: "Signal".into(),
                reason: format!("{} is not a signal number", opts.signal),
            });
        }
        match sys::pidfd_send_signal(&self.pidfd, opts.signal) {
            Ok(()) => Ok(()),
            Err(Errno::ESRCH) => Err(self.exited("signal")),
            Err(e) => Err(Error::sys(
                format!("send signal {} to process {}", opts.signal, self.pid),
                e,
            )),
        }
    }

    /// Forced stop (SIGKILL). Killing a process that already exited is not an error.
    pub fn kill(&self) -> Result<()> {
        match sys::pidfd_send_signal(&self.pidfd, libc::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::sys(format!("kill process {}", self.pid), e)),
        }
    }

    /// Sets the terminal size; only for a process with a console.
    pub fn resize_console(&self, height: u16, width: u16) -> Result<()> {
        let Some(master) = &self.console else {
            return Err(Error::InvalidArgument {
                field: "ConsoleSize".into(),
                reason: format!(
                    "process {} has no console (EmulateConsole was not set)",
                    self.pid
                ),
            });
        };
        tty::set_size(master, height, width)
            .map_err(|e| Error::sys(format!("resize console of process {}", self.pid), e))
    }

    /// Closes the parent's end of stdin: the process reads end-of-file.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// `HcsModifyProcess`: resize the console or close stdio handles.
    pub fn modify(&mut self, req: &ProcessModifyRequest) -> Result<()> {
        match req.operation {
            ProcessModifyOperation::ConsoleSize => {
                let size = req.console_size.ok_or_else(|| Error::InvalidArgument {
                    field: "ConsoleSize".into(),
                    reason: "is required with Operation ConsoleSize".into(),
                })?;
                self.resize_console(size.height, size.width)
            }
            ProcessModifyOperation::CloseHandle => {
                let h = req.close_handle.ok_or_else(|| Error::InvalidArgument {
                    field: "CloseHandle".into(),
                    reason: "is required with Operation CloseHandle".into(),
                })?;
                match h.handle {
                    StdHandle::StdIn => self.stdin = None,
                    StdHandle::StdOut => self.stdout = None,
                    StdHandle::StdErr => self.stderr = None,
                    StdHandle::All => {
                        self.stdin = None;
                        self.stdout = None;
                        self.stderr = None;
                    }
                }
                Ok(())
            }
        }
    }

    /// Waits for the exit (up to `timeout`, or for ever) and returns the exit code: the
    /// process's own, or 128 + the signal that killed it. `Ok(None)` on timeout.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Option<i32>> {
        if self.exit_code.is_none() {
            self.exit_code = reap(&self.pidfd, timeout)
                .map_err(|e| Error::sys(format!("wait for process {}", self.pid), e))?;
        }
        Ok(self.exit_code)
    }

    /// The exit code, once [`Process::wait`] has seen the exit.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// HCS's view of the process (`HcsGetProcessProperties`). Does not block.
    pub fn status(&mut self) -> ProcessStatus {
        let code = self.wait(Some(Duration::ZERO)).ok().flatten();
        ProcessStatus {
            process_id: Some(self.pid as u32),
            exited: Some(code.is_some()),
            exit_code: code.map(|c| c as u32),
            last_wait_result: None,
        }
    }

    fn exited(&self, op: &'static str) -> Error {
        Error::InvalidState {
            id: format!("process {}", self.pid),
            op,
            state: "exited".into(),
        }
    }
}

/// Waits for a child through its pidfd and reaps it. `Ok(None)` if it is still running when
/// `timeout` passes; `ECHILD` if someone else reaped it.
pub(crate) fn reap(
    pidfd: &OwnedFd,
    timeout: Option<Duration>,
) -> std::result::Result<Option<i32>, Errno> {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    loop {
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        match n {
            0 => return Ok(None),
            n if n > 0 => break,
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(Errno::last()),
        }
    }
    loop {
        match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Some(128 + sig as i32)),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
