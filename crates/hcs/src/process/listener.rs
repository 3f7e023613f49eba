//! Hands a seccomp user-notification listener to the agent at `linux.seccomp.listenerPath`, as
//! the runtime spec's "container process state" message: JSON on a unix stream socket with the
//! listener attached by `SCM_RIGHTS`.

use super::state::OciState;
use crate::{Error, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Spec;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerProcessState<'a> {
    oci_version: &'a str,
    fds: [&'static str; 1],
    pid: i32,
    metadata: &'a str,
    state: &'a OciState,
}

/// The `listenerPath` a spec's seccomp filter sends its listener to.
pub fn path_of(spec: &Spec) -> Option<&Path> {
    spec.linux()
        .as_ref()?
        .seccomp()
        .as_ref()?
        .listener_path()
        .as_deref()
}

/// A filter with `SCMP_ACT_NOTIFY` needs somewhere to send its listener.
pub fn check(spec: &Spec, notify: bool, file: &Path) -> Result<()> {
    if notify && path_of(spec).is_none() {
        return Err(Error::InvalidConfig {
            file: file.to_path_buf(),
            field: "linux.seccomp.listenerPath".into(),
            reason: "is required when a rule uses SCMP_ACT_NOTIFY".into(),
        });
    }
    Ok(())
}

/// Connects to the agent and sends it the state and the listener.
pub fn send(spec: &Spec, pid: i32, state: &OciState, listener: OwnedFd) -> Result<()> {
    let Some(path) = path_of(spec) else {
        return Ok(());
    };
    let metadata = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_metadata().as_deref())
        .unwrap_or("");
    let msg = ContainerProcessState {
        oci_version: state.oci_version.as_str(),
        fds: ["seccompFd"],
        pid,
        metadata,
        state,
    };
    let body = serde_json::to_vec(&msg)
        .map_err(|e| Error::Init(format!("encode seccomp listener state: {e}")))?;
    let sock = UnixStream::connect(path)
        .map_err(|e| Error::io("connect to linux.seccomp.listenerPath", path, e))?;
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&body)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::sys(format!("send seccomp listener to {}", path.display()), e))?;
    Ok(())
}
