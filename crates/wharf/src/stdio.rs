//! The local end of attach, exec and logs: Docker's multiplexed frames split back into
//! stdout/stderr, raw bytes for a tty, stdin forwarded with a half-close on EOF, the terminal
//! in raw mode for `-t` (restored on drop), size updates on SIGWINCH, signals proxied to the
//! container for non-tty sessions, and the ctrl-p ctrl-q detach sequence.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::client::{Client, Query};
use crate::error::{Error, Result};

/// The terminal attached to stdin in raw mode for as long as this lives.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enable() -> Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(&stdin)
            .map_err(|e| Error::io("read terminal settings", e.into()))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .map_err(|e| Error::io("set terminal raw mode", e.into()))?;
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Err(e) = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved) {
            eprintln!("wharf: restore terminal settings: {e}");
        }
    }
}

/// The terminal's size as (rows, cols), from stdout or stdin.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [std::io::stdout().as_raw_fd(), std::io::stdin().as_raw_fd()] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points to a live,
        // properly aligned local; `fd` is one of this process's standard descriptors.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
        if r == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Sends the current size to `path` (`/containers/{id}/resize` or `/exec/{id}/resize`) now
/// and on every SIGWINCH, until the task is aborted.
pub fn resize_loop(client: Client, path: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let send = |c: &Client, p: &str| {
            let size = terminal_size();
            let (c, p) = (c.clone(), p.to_string());
            async move {
                let Some((h, w)) = size else { return false };
                let q = Query::new().add("h", h.to_string()).add("w", w.to_string());
                c.post(&p, q, None).await.is_ok()
            }
        };
        // The process may not be running the instant start returns: retry like docker.
        for _ in 0..10 {
            if send(&client, &path).await {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            send(&client, &path).await;
        }
    })
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the container (non-tty
/// sessions, where the terminal does not deliver them as bytes).
pub fn proxy_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "INT"),
            (SignalKind::terminate(), "TERM"),
            (SignalKind::hangup(), "HUP"),
            (SignalKind::quit(), "QUIT"),
            (SignalKind::user_defined1(), "USR1"),
            (SignalKind::user_defined2(), "USR2"),
        ];
        let (tx, mut rx) = mpsc::channel::<&'static str>(8);
        for (k, name) in kinds {
            let Ok(mut s) = signal(k) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let path = format!("/containers/{}/kill", crate::client::path_seg(&id));
            if let Err(e) = client
                .post(&path, Query::new().add("signal", name), None)
                .await
            {
                eprintln!("wharf: forward SIG{name}: {e}");
            }
        }
    })
}

/// Splits Docker's multiplexed stream (`[stream, 0, 0, 0, len_be32]` + payload) back into
/// (stream, payload) pairs, across arbitrary chunk boundaries.
#[derive(Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let payload = self.buf[8..8 + len].to_vec();
            out.push((self.buf[0], payload));
            self.buf.drain(..8 + len);
        }
        out
    }
}

/// Writes one demultiplexed frame to the local stdout/stderr; a systemerr frame is an error.
pub fn write_frame(stream: u8, payload: &[u8]) -> Result<()> {
    match stream {
        0 | 1 => write_out(payload),
        2 => {
            let mut e = std::io::stderr().lock();
            e.write_all(payload)
                .and_then(|_| e.flush())
                .map_err(|e| Error::io("write to stderr", e))
        }
        3 => Err(Error::Stream(
            String::from_utf8_lossy(payload).trim_end().to_string(),
        )),
        s => Err(Error::Stream(format!(
            "unrecognized stream {s} in multiplexed output"
        ))),
    }
}

pub fn write_out(b: &[u8]) -> Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(b)
        .and_then(|_| o.flush())
        .map_err(|e| Error::io("write to stdout", e))
}

/// How an interactive session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The daemon closed the stream (the process exited).
    Closed,
    /// The user typed the detach sequence.
    Detached,
}

/// Reads stdin on a thread (a blocking read cannot be cancelled; the thread dies with the
/// process) and hands the chunks over; the channel closes at EOF.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Runs a hijacked session: stdin (when `stdin`) to the container, output to the terminal.
/// Opens container `id`'s attach stream: stdout and stderr, and stdin when `stdin`.
pub async fn attach_stream(c: &Client, id: &str, stdin: bool) -> Result<TokioIo<Upgraded>> {
    let q = Query::new()
        .add("stream", "1")
        .flag("stdin", stdin)
        .add("stdout", "1")
        .add("stderr", "1");
    c.hijack(
        &format!("/containers/{}/attach", crate::client::path_seg(id)),
        q,
        None,
    )
    .await
}

/// [`session`] with its helpers: terminal resizes sent to `resize_path` when `tty`, and
/// without a tty the signals this process gets forwarded to container `proxy_to`.
pub async fn attended_session(
    c: &Client,
    io: TokioIo<Upgraded>,
    tty: bool,
    stdin: bool,
    resize_path: String,
    proxy_to: Option<&str>,
) -> Result<End> {
    let resize = tty.then(|| resize_loop(c.clone(), resize_path));
    let signals = proxy_to
        .filter(|_| !tty)
        .map(|id| proxy_signals(c.clone(), id.to_string()));
    let end = session(io, tty, stdin).await;
    for t in [resize, signals].into_iter().flatten() {
        t.abort();
    }
    end
}

pub async fn session(io: TokioIo<Upgraded>, tty: bool, stdin: bool) -> Result<End> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let (detach_tx, mut detach_rx) = mpsc::channel::<()>(1);
    let input = tokio::spawn(async move {
        if stdin {
            let mut rx = stdin_chunks();
            let mut prev_ctrl_p = false;
            while let Some(chunk) = rx.recv().await {
                if tty {
                    // ctrl-p ctrl-q detaches (docker's default detach keys).
                    for b in &chunk {
                        if prev_ctrl_p && *b == 0x11 {
                            // The session may already be over; then nobody needs the notice.
                            detach_tx.send(()).await.ok();
                            return;
                        }
                        prev_ctrl_p = *b == 0x10;
                    }
                }
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        // Half-close: the daemon reads EOF (stdin closed) and keeps sending output.
        drop(wr.shutdown().await);
        std::future::pending::<()>().await;
    });
    let output = async {
        let mut demux = Demuxer::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("read attached stream", e))?;
            if n == 0 {
                return Ok::<(), Error>(());
            }
            if tty {
                write_out(&buf[..n])?;
            } else {
                for (s, p) in demux.feed(&buf[..n]) {
                    write_frame(s, &p)?;
                }
            }
        }
    };
    let end = tokio::select! {
        r = output => r.map(|()| End::Closed),
        _ = detach_rx.recv() => Ok(End::Detached),
    };
    input.abort();
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_across_chunks() {
        let mut d = Demuxer::default();
        let mut all = vec![1, 0, 0, 0, 0, 0, 0, 3];
        all.extend_from_slice(b"abc");
        all.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        all.extend_from_slice(b"de");
        let (a, b) = all.split_at(5);
        assert!(d.feed(a).is_empty());
        let frames = d.feed(b);
        assert_eq!(frames, vec![(1, b"abc".to_vec()), (2, b"de".to_vec())]);
        assert!(d.buf.is_empty());
    }
}
