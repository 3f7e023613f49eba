//! OCI hooks: run with the container state on stdin, the hook's args and env, and a timeout.

use super::state::OciState;
use crate::{Error, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` in order; the first failure stops and is returned.
pub fn run(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &OciState) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state)
        .map_err(|e| Error::Init(format!("encode state for hooks: {e}")))?;
    for (index, h) in hooks.iter().enumerate() {
        run_one(h, &json).map_err(|reason| Error::Hook {
            kind,
            index,
            path: h.path().display().to_string(),
            reason,
        })?;
    }
    Ok(())
}

/// Runs every hook in order even when one fails, for the kinds where a failure is only a
/// warning and "the remaining hooks and lifecycle continue as if the hook had succeeded"
/// (poststart, poststop). Returns each failure.
pub fn run_all(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &OciState) -> Vec<Error> {
    let Some(hooks) = hooks.filter(|h| !h.is_empty()) else {
        return Vec::new();
    };
    let json = match serde_json::to_vec(state) {
        Ok(j) => j,
        Err(e) => return vec![Error::Init(format!("encode state for hooks: {e}"))],
    };
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, h)| {
            run_one(h, &json).err().map(|reason| Error::Hook {
                kind,
                index,
                path: h.path().display().to_string(),
                reason,
            })
        })
        .collect()
}

fn run_one(h: &Hook, state: &[u8]) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE only.
        if let Err(e) = stdin.write_all(state) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(format!("write state: {e}"));
            }
        }
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // Best effort: the hook has already failed by timing out.
            let _killed = child.kill();
            let _reaped = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut stderr).ok();
    }
    Err(format!(
        "{status}{}{}",
        if stderr.is_empty() { "" } else { ": " },
        stderr.trim()
    ))
}
