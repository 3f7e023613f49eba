//! The monitor's ends of a process's stdio: output pipes (or the terminal master) it reads, and
//! the input it writes with a small queue so a process that does not read never blocks the loop.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Input accepted from clients beyond this is not read from them until the process takes some
/// (backpressure on the client's socket instead of memory in the monitor).
const INPUT_QUEUE: usize = 64 * 1024;

/// What a read from an output gave.
pub enum Got {
    Data(usize),
    /// The stream ended (EOF, or EIO from a terminal master whose slave closed).
    Eof,
    /// Nothing now (spurious wake-up).
    Nothing,
}

pub struct Stdio {
    /// `[stdout, stderr]` read ends; with a terminal, the master is stdout and stderr is None.
    pub out: [Option<File>; 2],
    input: Option<File>,
    /// Input taken from clients that the process has not read yet.
    queued: Vec<u8>,
    /// Close the input once the queue is written.
    close_after: bool,
    /// The terminal master, for resizing.
    console: Option<OwnedFd>,
}

impl Stdio {
    /// Pipes for a process without a terminal: the monitor's ends, and the child's
    /// `[stdin, stdout, stderr]` (stdin is /dev/null without `stdin`).
    pub fn pipes(stdin: bool) -> io::Result<(Stdio, [OwnedFd; 3])> {
        let pipe = || -> io::Result<(OwnedFd, OwnedFd)> {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (input, child_in) = if stdin {
            let (r, w) = pipe()?;
            (Some(File::from(w)), r)
        } else {
            (None, dev_null()?)
        };
        let s = Stdio {
            out: [Some(File::from(out_r)), Some(File::from(err_r))],
            input,
            queued: Vec::new(),
            close_after: false,
            console: None,
        };
        s.set_nonblocking()?;
        Ok((s, [child_in, out_w, err_w]))
    }

    /// A terminal: output and input through the master.
    pub fn console(master: OwnedFd, input: bool) -> io::Result<Stdio> {
        let s = Stdio {
            out: [Some(File::from(master.try_clone()?)), None],
            input: if input {
                Some(File::from(master.try_clone()?))
            } else {
                None
            },
            queued: Vec::new(),
            close_after: false,
            console: Some(master),
        };
        s.set_nonblocking()?;
        Ok(s)
    }

    /// The stdio of an exec'd process as `hcs` handed it out.
    pub fn of_process(p: &mut hcs::Process, input: bool) -> io::Result<Stdio> {
        if let Some(master) = p.take_console() {
            return Stdio::console(master, input);
        }
        let s = Stdio {
            out: [p.take_stdout(), p.take_stderr()],
            input: p.take_stdin(),
            queued: Vec::new(),
            close_after: false,
            console: None,
        };
        s.set_nonblocking()?;
        Ok(s)
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        for f in self.out.iter().chain([&self.input]).flatten() {
            set_nonblocking(f)?;
        }
        Ok(())
    }

    /// Reads output `slot` (0 stdout, 1 stderr) into `buf`; closes it at its end.
    pub fn read(&mut self, slot: usize, buf: &mut [u8]) -> Got {
        let Some(f) = &mut self.out[slot] else {
            return Got::Eof;
        };
        match f.read(buf) {
            Ok(0) => {}
            Ok(n) => return Got::Data(n),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return Got::Nothing
            }
            // EIO: the terminal's last slave closed. Any other error also ends the stream.
            Err(_) => {}
        }
        self.out[slot] = None;
        Got::Eof
    }

    /// Whether every output has ended.
    pub fn outputs_done(&self) -> bool {
        self.out.iter().all(Option::is_none)
    }

    pub fn has_input(&self) -> bool {
        self.input.is_some()
    }

    /// Whether clients may send more input now (the process has an input and the queue has
    /// room).
    pub fn accepts_input(&self) -> bool {
        self.input.is_some() && !self.close_after && self.queued.len() < INPUT_QUEUE
    }

    /// Whether the input waits to be writable (queued bytes).
    pub fn input_pending(&self) -> bool {
        self.input.is_some() && !self.queued.is_empty()
    }

    pub fn input_fd(&self) -> Option<i32> {
        self.input.as_ref().map(|f| f.as_raw_fd())
    }

    /// Passes `data` to the process: written now as far as it goes, the rest queued. Input
    /// for a process whose input is closed is dropped.
    pub fn write_input(&mut self, data: &[u8]) {
        if self.input.is_none() || data.is_empty() {
            return;
        }
        self.queued.extend_from_slice(data);
        self.flush_input();
    }

    /// Writes queued input; closes the input when asked to and the queue is empty.
    pub fn flush_input(&mut self) {
        while let Some(f) = &mut self.input {
            if self.queued.is_empty() {
                break;
            }
            match f.write(&self.queued) {
                Ok(n) => {
                    self.queued.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // EPIPE: the process closed its stdin (or exited); nobody will read the rest.
                Err(_) => {
                    self.input = None;
                    self.queued.clear();
                }
            }
        }
        if self.queued.is_empty() {
            // Reuse the buffer, but do not keep a big one for the container's lifetime.
            self.queued.shrink_to(4096);
            if self.close_after {
                self.input = None;
            }
        }
    }

    /// Closes the process's input once what is queued is written (a client's half-close).
    pub fn close_input(&mut self) {
        self.close_after = true;
        self.flush_input();
    }

    /// Sets the terminal size; false when the process has no terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> Option<io::Result<()>> {
        let master = self.console.as_ref()?;
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which is valid for the call.
        let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        Some(if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        })
    }
}

pub fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fd = fd.as_fd();
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

pub fn dev_null() -> io::Result<OwnedFd> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
}
