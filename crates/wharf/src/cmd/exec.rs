//! Streams into running containers: `exec`, `attach` and `logs`.

use std::io::IsTerminal;

use hyper::Method;
use serde_json::{json, Value};

use super::{expand_env, read_env_files};
use crate::cli::{AttachArgs, ExecArgs, LogsArgs};
use crate::client::{next_chunk, path_seg, Body, Client, Query};
use crate::error::{Error, Result};
use crate::output::time_arg;
use crate::stdio::{self, Demuxer, End, RawTerminal};

async fn inspect(c: &Client, name: &str) -> Result<Value> {
    c.get(
        &format!("/containers/{}/json", path_seg(name)),
        Query::new(),
    )
    .await
}

pub async fn exec(c: &Client, a: ExecArgs) -> Result<()> {
    let (name, cmd) = a
        .args
        .split_first()
        .ok_or_else(|| Error::usage("exec requires CONTAINER COMMAND"))?;
    if a.tty && a.interactive && !std::io::stdin().is_terminal() {
        return Err(Error::usage("the input device is not a TTY"));
    }
    let info = inspect(c, name).await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let mut env = read_env_files(&a.env_file)?;
    env.extend(a.env.iter().map(|e| expand_env(e)));
    let attach = !a.detach;
    let console = if a.tty {
        stdio::terminal_size().map(|(h, w)| json!([h, w]))
    } else {
        None
    };
    let mut body = json!({
        "User": a.user.clone().unwrap_or_default(), "Privileged": a.privileged, "Tty": a.tty,
        "AttachStdin": attach && a.interactive, "AttachStdout": attach, "AttachStderr": attach,
        "Detach": a.detach, "DetachKeys": "", "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(), "Cmd": cmd,
    });
    if let Some(cs) = &console {
        body["ConsoleSize"] = cs.clone();
    }
    let created = c
        .post(
            &format!("/containers/{}/exec", path_seg(&id)),
            Query::new(),
            Some(&body),
        )
        .await?;
    let exec_id = created["Id"]
        .as_str()
        .ok_or_else(|| Error::Stream("exec create: the daemon's answer has no Id".into()))?
        .to_string();
    let start = format!("/exec/{}/start", path_seg(&exec_id));
    if a.detach {
        c.post(
            &start,
            Query::new(),
            Some(&json!({"Detach": true, "Tty": a.tty})),
        )
        .await?;
        return Ok(());
    }
    let raw = if a.tty && a.interactive {
        RawTerminal::enable()?
    } else {
        None
    };
    let mut sbody = json!({"Detach": false, "Tty": a.tty});
    if let Some(cs) = console {
        sbody["ConsoleSize"] = cs;
    }
    let io = c.hijack(&start, Query::new(), Some(&sbody)).await?;
    let resize = format!("/exec/{}/resize", path_seg(&exec_id));
    let end = stdio::attended_session(c, io, a.tty, a.interactive, resize, None).await;
    drop(raw);
    if end? == End::Detached {
        return Ok(());
    }
    let v: Value = c
        .get(&format!("/exec/{}/json", path_seg(&exec_id)), Query::new())
        .await?;
    match v["ExitCode"].as_i64() {
        Some(0) => Ok(()),
        Some(code) => Err(Error::Status(code as i32)),
        None => Err(Error::Status(126)),
    }
}

pub async fn attach(c: &Client, a: AttachArgs) -> Result<()> {
    let info = inspect(c, &a.container).await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(Error::usage(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(Error::usage(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && stdin && !std::io::stdin().is_terminal() {
        return Err(Error::usage("the input device is not a TTY"));
    }
    let raw = if tty && stdin {
        RawTerminal::enable()?
    } else {
        None
    };
    let io = stdio::attach_stream(c, &id, stdin).await?;
    let resize = format!("/containers/{}/resize", path_seg(&id));
    let proxy = a.sig_proxy.then_some(id.as_str());
    let end = stdio::attended_session(c, io, tty, stdin, resize, proxy).await;
    drop(raw);
    if end? == End::Detached {
        eprintln!("read escape sequence");
        return Ok(());
    }
    let after = inspect(c, &id).await?;
    match after["State"]["ExitCode"].as_i64() {
        Some(code) if code != 0 && !after["State"]["Running"].as_bool().unwrap_or(false) => {
            Err(Error::Status(code as i32))
        }
        _ => Ok(()),
    }
}

pub async fn logs(c: &Client, a: LogsArgs) -> Result<()> {
    let info = inspect(c, &a.container).await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .flag("follow", a.follow)
        .flag("timestamps", a.timestamps)
        .add("tail", a.tail.clone().unwrap_or_else(|| "all".into()))
        .opt(
            "since",
            &time_arg("--since", a.since.as_deref().unwrap_or(""))?,
        )
        .opt(
            "until",
            &time_arg("--until", a.until.as_deref().unwrap_or(""))?,
        );
    let resp = c
        .request(
            Method::GET,
            &format!("/containers/{}/logs", path_seg(&id)),
            q,
            Body::Empty,
            &[],
        )
        .await?;
    let mut body = resp.into_body();
    let mut demux = Demuxer::default();
    while let Some(chunk) = next_chunk(&mut body).await? {
        if tty {
            stdio::write_out(&chunk)?;
        } else {
            for (s, p) in demux.feed(&chunk) {
                stdio::write_frame(s, &p)?;
            }
        }
    }
    Ok(())
}
