//! Links, addresses and routes over a synchronous rtnetlink socket.
//!
//! A socket belongs to the network namespace it was opened in, whatever thread later uses it;
//! [`Rtnl::open_in`] opens one inside another namespace.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::StepError;

/// One request of a [`Rtnl::batch`].
struct Request {
    msg: RouteNetlinkMessage,
    flags: u16,
    step: String,
    exists_ok: bool,
}

fn address_request(index: u32, addr: IpAddr, prefix: u8) -> Request {
    let mut msg = AddressMessage::default();
    msg.header.prefix_len = prefix;
    msg.header.index = index;
    match addr {
        IpAddr::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(addr));
            if prefix < 31 {
                let bcast = crate::types::Ipv4Prefix {
                    addr: v4,
                    len: prefix,
                }
                .broadcast();
                msg.attributes.push(AddressAttribute::Broadcast(bcast));
            }
        }
        IpAddr::V6(_) => {
            // wharf hands each address out once, so duplicate detection only delays use.
            msg.header.family = AddressFamily::Inet6;
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    msg.attributes.push(AddressAttribute::Address(addr));
    Request {
        msg: RouteNetlinkMessage::NewAddress(msg),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        step: format!("add address {addr}/{prefix} to link {index}"),
        exists_ok: true,
    }
}

fn default_route_request(oif: u32, gateway: IpAddr) -> Request {
    let mut msg = RouteMessage::default();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    let gw = match gateway {
        IpAddr::V4(g) => {
            msg.header.address_family = AddressFamily::Inet;
            RouteAddress::Inet(g)
        }
        IpAddr::V6(g) => {
            msg.header.address_family = AddressFamily::Inet6;
            RouteAddress::Inet6(g)
        }
    };
    msg.attributes.push(RouteAttribute::Gateway(gw));
    msg.attributes.push(RouteAttribute::Oif(oif));
    Request {
        msg: RouteNetlinkMessage::NewRoute(msg),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        step: format!("add default route via {gateway}"),
        exists_ok: true,
    }
}

pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

type Res<T> = Result<T, StepError>;

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_ext_ack(true)?;
        Ok(Rtnl { sock, seq: 1 })
    }

    /// Opens a socket inside the network namespace `ns` (an fd of a `/proc/*/ns/net` file or
    /// of its bind mount).
    pub fn open_in(ns: BorrowedFd<'_>) -> io::Result<Rtnl> {
        super::netns::in_netns(ns, Rtnl::open)?
    }

    /// Sends one request and collects the replies until the ACK (or the end of a dump).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; 64 * 1024];
        loop {
            let n = self.sock.recv(&mut &mut rx[..], 0)?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "empty netlink message",
                    ));
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of link `name`, or `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Res<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(StepError::new(format!("look up link {name}"), e)),
        }
    }

    /// Creates a bridge that is up. Returns its index.
    pub fn add_bridge(&mut self, name: &str) -> Res<u32> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| StepError::new(format!("create bridge {name}"), e))?;
        self.link_index(name)?.ok_or_else(|| {
            StepError::new(
                format!("create bridge {name}"),
                io::Error::from_raw_os_error(libc::ENODEV),
            )
        })
    }

    /// Creates a macvlan (bridge mode, up, with `mac`) on link `parent` of this namespace,
    /// directly inside `ns` as `name`.
    pub fn add_macvlan(
        &mut self,
        name: &str,
        parent: u32,
        mac: [u8; 6],
        ns: BorrowedFd<'_>,
    ) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        msg.attributes.push(LinkAttribute::Link(parent));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Bridge,
            )])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| StepError::new(format!("create macvlan {name}"), e))
            .map(|_| ())
    }

    pub fn set_up(&mut self, index: u32) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| StepError::new(format!("set link {index} up"), e))
            .map(|_| ())
    }

    /// Deletes link `name`; a link that is not there is fine.
    pub fn del_link_named(&mut self, name: &str) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                Err(StepError::new(format!("delete link {name}"), e))
            }
            _ => Ok(()),
        }
    }

    pub fn del_link(&mut self, index: u32) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0)
            .map_err(|e| StepError::new(format!("delete link {index}"), e))
            .map(|_| ())
    }

    /// Adds `addr/prefix` to link `index`; an address that is already there is fine.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Res<()> {
        self.batch(vec![address_request(index, addr, prefix)])
    }

    /// Brings link `index` up with its addresses and a default route via each gateway, in
    /// one send: the kernel applies the messages in order (up and addresses first, so the
    /// gateways are on-link). Addresses or routes already there are fine.
    pub fn configure(
        &mut self,
        index: u32,
        addrs: &[(IpAddr, u8)],
        gateways: &[IpAddr],
    ) -> Res<()> {
        let mut up = LinkMessage::default();
        up.header.index = index;
        up.header.flags = LinkFlags::Up;
        up.header.change_mask = LinkFlags::Up;
        let mut reqs = vec![Request {
            msg: RouteNetlinkMessage::SetLink(up),
            flags: 0,
            step: format!("set link {index} up"),
            exists_ok: false,
        }];
        reqs.extend(addrs.iter().map(|&(a, p)| address_request(index, a, p)));
        reqs.extend(gateways.iter().map(|&g| default_route_request(index, g)));
        self.batch(reqs)
    }

    /// Adds default routes via `gateways` out of link `index`; existing ones are kept.
    pub fn add_default_routes(&mut self, index: u32, gateways: &[IpAddr]) -> Res<()> {
        self.batch(
            gateways
                .iter()
                .map(|&g| default_route_request(index, g))
                .collect(),
        )
    }

    /// Sends several requests in one datagram and waits for every ACK; the first failure
    /// (other than an allowed "exists") is the error.
    fn batch(&mut self, reqs: Vec<Request>) -> Res<()> {
        let first = self.seq.wrapping_add(1);
        let mut buf = Vec::new();
        for r in &reqs {
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | NLM_F_ACK | r.flags;
            self.seq = self.seq.wrapping_add(1);
            header.sequence_number = self.seq;
            let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(r.msg.clone()));
            nl.finalize();
            let start = buf.len();
            buf.resize(start + nl.buffer_len(), 0);
            nl.serialize(&mut buf[start..]);
            buf.resize(buf.len().next_multiple_of(4), 0);
        }
        let step = |i: usize| {
            reqs.get(i)
                .map_or("netlink batch", |r| r.step.as_str())
                .to_string()
        };
        self.sock
            .send(&buf, 0)
            .map_err(|e| StepError::new(step(0), e))?;
        let mut pending = reqs.len();
        let mut failure: Option<StepError> = None;
        let mut rx = vec![0u8; 16 * 1024];
        while pending > 0 {
            let n = self
                .sock
                .recv(&mut &mut rx[..], 0)
                .map_err(|e| StepError::new(step(0), e))?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..n])
                    .map_err(|e| {
                        StepError::new(
                            step(0),
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                        )
                    })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                let i = reply.header.sequence_number.wrapping_sub(first) as usize;
                if i >= reqs.len() {
                    continue;
                }
                if let NetlinkPayload::Error(e) = reply.payload {
                    pending -= 1;
                    if let Some(code) = e.code {
                        let errno = -code.get();
                        let allowed = reqs[i].exists_ok && errno == libc::EEXIST;
                        if !allowed && failure.is_none() {
                            failure =
                                Some(StepError::new(step(i), io::Error::from_raw_os_error(errno)));
                        }
                    }
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Addresses (IPv4) on link `index`.
    /// The index of the link whose hardware address is `mac`, if one has it.
    pub fn link_index_by_mac(&mut self, mac: [u8; 6]) -> Res<Option<u32>> {
        let replies = self
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                netlink_packet_core::NLM_F_DUMP,
            )
            .map_err(|e| StepError::new("list links", e))?;
        Ok(replies.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l)
                if l.attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Address(x) if x[..] == mac[..])) =>
            {
                Some(l.header.index)
            }
            _ => None,
        }))
    }
}
