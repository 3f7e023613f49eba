//! One request line → one call on the container → one reply line (or a stream). Errors name
//! the step and the object; the kind is `hcs`'s.

use super::conn;
use super::monitor::{Attached, Exec, Monitor, Waiter};
use super::stdio::Stdio;
use hcs::schema::{ProcessParameters, PropertyQuery};
use hcs::shim::{Reply, Request};
use hcs::{ErrorKind, SystemState};
use std::os::unix::net::UnixStream;

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::InvalidArgument => "invalid_argument",
        ErrorKind::FailedPrecondition => "failed_precondition",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Internal => "internal",
    }
}

/// An `hcs` error as a reply: `<step>: <error chain>`.
fn hcs_err(step: String, e: &hcs::Error) -> Reply {
    Reply::err(
        kind_name(e.kind()),
        format!("{step}: {}", hcs::process::error_chain(e)),
    )
}

fn precondition(msg: String) -> Reply {
    Reply::err("failed_precondition", msg)
}

impl Monitor {
    /// Handles the request `line` that arrived on `sock`; `rest` is what the client sent after
    /// the line (the first stdin bytes of an attach or exec).
    pub(super) fn request(&mut self, sock: UnixStream, line: &[u8], rest: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                let r = Reply::err("invalid_argument", format!("parse request: {e}"));
                conn::send_reply(&sock, &r).ok();
                return;
            }
        };
        match req {
            Request::Attach {
                stdin,
                stdout,
                stderr,
                close_stdin_on_eof,
            } => self.attach(sock, stdin, stdout, stderr, close_stdin_on_eof, rest),
            Request::Exec {
                exec_id,
                process,
                stdin,
                stdout,
                stderr,
                console_size,
            } => {
                let want = Want {
                    stdin,
                    stdout,
                    stderr,
                };
                self.exec(sock, exec_id, process, want, console_size, rest)
            }
            // Answered when the init exits (or at once if it has: a late request during the drain
            // waits for the exit file like the others).
            Request::Wait => self.waiters.push(Waiter { sock, dead: false }),
            other => {
                let reply = self.simple(other);
                // A client that went away does not need its answer.
                conn::send_reply(&sock, &reply).ok();
            }
        }
    }

    fn simple(&mut self, req: Request) -> Reply {
        let id = self.cfg.id.clone();
        match req {
            Request::Start => {
                if self.exit.is_some() {
                    return precondition(format!("start container {id}: it has exited"));
                }
                match self.system.start() {
                    Ok(()) => Reply {
                        pid: Some(self.init_pid),
                        ..Reply::ok()
                    },
                    Err(e) => hcs_err(format!("start container {id}"), &e),
                }
            }
            Request::Kill { signal, all } => {
                if !(1..=64).contains(&signal) {
                    return Reply::err(
                        "invalid_argument",
                        format!("signal container {id}: {signal} is not a signal number"),
                    );
                }
                if self.exit.is_some() {
                    return precondition(format!("signal container {id}: it has exited"));
                }
                match self.system.signal(signal, all) {
                    Ok(()) => Reply::ok(),
                    Err(e) => hcs_err(format!("send signal {signal} to container {id}"), &e),
                }
            }
            Request::Resize {
                height,
                width,
                exec_id,
            } => self.resize(height, width, exec_id),
            Request::State => {
                let status = match (self.exit, self.system.state()) {
                    (Some(_), _) | (None, SystemState::Stopped) => "stopped",
                    (None, SystemState::Created) => "created",
                    (None, SystemState::Running) => "running",
                    (None, SystemState::Paused) => "paused",
                };
                Reply {
                    status: Some(status.into()),
                    pid: Some(self.init_pid),
                    exit: self.exit,
                    ..Reply::ok()
                }
            }
            Request::Pause => match self.system.pause() {
                Ok(()) => Reply::ok(),
                Err(e) => hcs_err(format!("pause container {id}"), &e),
            },
            Request::Resume => match self.system.resume() {
                Ok(()) => Reply::ok(),
                Err(e) => hcs_err(format!("resume container {id}"), &e),
            },
            Request::Properties { query } => {
                let q: PropertyQuery = match serde_json::from_value(query) {
                    Ok(q) => q,
                    Err(e) => {
                        return Reply::err(
                            "invalid_argument",
                            format!("properties of container {id}: parse the query: {e}"),
                        )
                    }
                };
                let p = match self.system.properties(&q) {
                    Ok(p) => p,
                    Err(e) => return hcs_err(format!("properties of container {id}"), &e),
                };
                match serde_json::to_value(p) {
                    Ok(v) => Reply {
                        properties: Some(v),
                        ..Reply::ok()
                    },
                    Err(e) => Reply::err(
                        "internal",
                        format!("properties of container {id}: encode: {e}"),
                    ),
                }
            }
            Request::Pids => match self.system.pids() {
                Ok(p) => Reply {
                    pids: Some(p),
                    ..Reply::ok()
                },
                Err(e) => hcs_err(format!("list the processes of container {id}"), &e),
            },
            // Streams and the long poll are dispatched in `request`.
            Request::Attach { .. } | Request::Exec { .. } | Request::Wait => {
                Reply::err("internal", "request dispatched to the wrong handler")
            }
        }
    }

    fn resize(&mut self, height: u16, width: u16, exec_id: Option<String>) -> Reply {
        let id = &self.cfg.id;
        let (what, res) = match &exec_id {
            Some(x) => match self.execs.iter().find(|e| &e.id == x && !e.done) {
                Some(e) => (
                    format!("exec {x} in container {id}"),
                    e.stdio.resize(height, width),
                ),
                None => {
                    return Reply::err(
                        "not_found",
                        format!("resize exec {x} in container {id}: no such exec"),
                    )
                }
            },
            None => (format!("container {id}"), self.init.resize(height, width)),
        };
        match res {
            Some(Ok(())) => Reply::ok(),
            Some(Err(e)) => Reply::err("internal", format!("resize the terminal of {what}: {e}")),
            None => precondition(format!("resize the terminal of {what}: it has no terminal")),
        }
    }

    fn attach(
        &mut self,
        sock: UnixStream,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        close_stdin_on_eof: bool,
        rest: &[u8],
    ) {
        if self.exit.is_some() {
            let r = precondition(format!(
                "attach to container {}: it has exited",
                self.cfg.id
            ));
            conn::send_reply(&sock, &r).ok();
            return;
        }
        if conn::send_reply(&sock, &Reply::ok()).is_err() {
            return;
        }
        // Stdin of a container created without one is ignored, as Docker ignores it.
        let stdin = stdin && self.init.has_input();
        if stdin {
            self.init.write_input(rest);
        }
        self.attached.push(Attached {
            sock,
            stdin,
            stdout,
            stderr,
            close_stdin_on_eof,
            reading: true,
            dead: false,
        });
    }

    fn exec(
        &mut self,
        sock: UnixStream,
        exec_id: String,
        process: serde_json::Value,
        want: Want,
        console_size: Option<(u16, u16)>,
        rest: &[u8],
    ) {
        match self.spawn_exec(&exec_id, process, &want, console_size) {
            Ok((p, stdio)) => {
                let pid = p.pid();
                let reply = Reply {
                    pid: Some(pid),
                    ..Reply::ok()
                };
                let mut e = Exec {
                    id: exec_id,
                    pid,
                    _process: p,
                    stdio,
                    conn: None,
                    conn_reading: true,
                    stdout: want.stdout,
                    stderr: want.stderr,
                    exit: None,
                    done: false,
                };
                if conn::send_reply(&sock, &reply).is_ok() {
                    e.conn = Some(sock);
                }
                e.stdio.write_input(rest);
                self.execs.push(e);
            }
            Err(r) => {
                conn::send_reply(&sock, &r).ok();
            }
        }
    }

    fn spawn_exec(
        &mut self,
        exec_id: &str,
        process: serde_json::Value,
        want: &Want,
        console_size: Option<(u16, u16)>,
    ) -> Result<(hcs::Process, Stdio), Box<Reply>> {
        let id = &self.cfg.id;
        let step = || format!("exec {exec_id} in container {id}");
        if self.exit.is_some() {
            return Err(Box::new(precondition(format!("{}: it has exited", step()))));
        }
        if self.execs.iter().any(|e| e.id == exec_id && !e.done) {
            return Err(Box::new(Reply::err(
                "already_exists",
                format!("{}: an exec with this id is running", step()),
            )));
        }
        let tty = process.get("terminal").and_then(|t| t.as_bool()) == Some(true);
        let params = serde_json::json!({
            "OciProcess": process,
            "CreateStdInPipe": want.stdin && !tty,
            "CreateStdOutPipe": want.stdout && !tty,
            "CreateStdErrPipe": want.stderr && !tty,
            "ConsoleSize": console_size.map(|(h, w)| [h, w]),
        });
        let params: ProcessParameters = serde_json::from_value(params).map_err(|e| {
            Box::new(Reply::err(
                "invalid_argument",
                format!("{}: parse the process: {e}", step()),
            ))
        })?;
        let mut p = self
            .system
            .create_process(&params)
            .map_err(|e| Box::new(hcs_err(step(), &e)))?;
        match Stdio::of_process(&mut p, want.stdin) {
            Ok(s) => Ok((p, s)),
            Err(e) => {
                // Without its stdio nobody can talk to it: do not leave it running.
                p.kill().ok();
                Err(Box::new(Reply::err(
                    "internal",
                    format!("{}: set up its stdio: {e}", step()),
                )))
            }
        }
    }
}

/// The streams an exec's client asked for.
struct Want {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}
