//! `linux.netDevices`: host network interfaces moved into the container's new network
//! namespace (and renamed), with one rtnetlink `RTM_NEWLINK` per device carrying
//! `IFLA_NET_NS_PID` and `IFLA_IFNAME`, as `ip link set dev X netns PID name Y` does.
//! A virtual device goes away with the namespace; a physical one returns to the host's.

use crate::{Error, Result};
use nix::errno::Errno;
use oci_spec::runtime::LinuxNetDevice;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_PID: u16 = 19;

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        field: format!("linux.netDevices.{name}"),
        reason: reason.into(),
    }
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// Moves every device of `devices` into the network namespace of `pid`.
pub fn move_all(devices: &HashMap<String, LinuxNetDevice>, pid: i32) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    let fd = super::sys::check(fd as libc::c_long)
        .map_err(|e| Error::sys("open rtnetlink socket", e))? as i32;
    // SAFETY: a fresh descriptor from socket(2), owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // The kernel answers at once; never hang a container start on a lost reply.
    nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(5, 0),
    )
    .map_err(|e| Error::sys("set rtnetlink socket timeout", e))?;
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    for (seq, host) in names.into_iter().enumerate() {
        let target = devices[host].name().clone().unwrap_or_else(|| host.clone());
        if host.is_empty() || host.len() >= libc::IFNAMSIZ || host.contains('/') {
            return Err(invalid(host, "not a valid interface name"));
        }
        if target.is_empty() || target.len() >= libc::IFNAMSIZ || target.contains('/') {
            return Err(invalid(
                host,
                format!("name {target:?} is not a valid interface name"),
            ));
        }
        let cname =
            super::sys::cstr(host).map_err(|e| Error::sys(format!("interface {host}"), e))?;
        // SAFETY: if_nametoindex reads a NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(invalid(host, "no such interface on the host"));
        }
        let mut body = Vec::with_capacity(64);
        // struct ifinfomsg: family, pad, type, index, flags, change.
        body.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        body.extend_from_slice(&(index as i32).to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut body, IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
        let mut name = target.as_bytes().to_vec();
        name.push(0);
        attr(&mut body, IFLA_IFNAME, &name);
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&(seq as u32 + 1).to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&body);
        let step = || format!("move linux.netDevices.{host} into the container as {target}");
        // SAFETY: sending an initialised buffer of the length passed on our socket.
        let n = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        super::sys::check(n as libc::c_long).map_err(|e| Error::sys(step(), e))?;
        let mut reply = [0u8; 4096];
        // SAFETY: receiving into a buffer of the length passed.
        let n = unsafe { libc::recv(sock.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
        let n = super::sys::check(n as libc::c_long).map_err(|e| Error::sys(step(), e))? as usize;
        if n < 20 || u16::from_ne_bytes([reply[4], reply[5]]) != NLMSG_ERROR {
            return Err(Error::sys(step(), Errno::EPROTO));
        }
        let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        if code != 0 {
            return Err(Error::sys(step(), Errno::from_raw(-code)));
        }
    }
    Ok(())
}
