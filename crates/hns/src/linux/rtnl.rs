//! Links, addresses and routes over a synchronous rtnetlink socket.
//!
//! A socket belongs to the network namespace it was opened in, whatever thread later uses it;
//! [`Rtnl::open_in`] opens one inside another namespace.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind, InfoVeth,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::StepError;

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

    /// Creates a veth pair: `host` up and enslaved to bridge `master`, `peer` (down, with
    /// `mac`) in the same namespace.
    pub fn add_veth(&mut self, host: &str, master: u32, peer: &str, mac: [u8; 6]) -> Res<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg
            .attributes
            .push(LinkAttribute::Address(mac.to_vec()));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| StepError::new(format!("create veth pair {host}/{peer}"), e))
            .map(|_| ())
    }

    /// Turns on hairpin mode on bridge port `index`, so a container can reach its own
    /// published port through the host (needed where `br_netfilter` makes the bridge, not
    /// the IP layer, send the DNATed frame back out of the port it came in on).
    pub fn set_hairpin(&mut self, index: u32) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                true,
            )])),
        ]));
        // Port (slave) data is applied by RTM_NEWLINK on an existing link, not RTM_SETLINK.
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
            .map_err(|e| StepError::new(format!("set hairpin mode on link {index}"), e))
            .map(|_| ())
    }

    /// Creates a macvlan `name` (bridge mode, down, with `mac`) on link `parent`.
    pub fn add_macvlan(&mut self, name: &str, parent: u32, mac: [u8; 6]) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
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

    /// Moves link `index` into the namespace `ns`, renaming it to `new_name` on the way.
    pub fn move_to_netns(&mut self, index: u32, ns: BorrowedFd<'_>, new_name: &str) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        msg.attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| {
                StepError::new(format!("move link {index} into namespace as {new_name}"), e)
            })
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

    pub fn del_link(&mut self, index: u32) -> Res<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0)
            .map_err(|e| StepError::new(format!("delete link {index}"), e))
            .map(|_| ())
    }

    /// Adds `addr/prefix` to link `index`; an address that is already there is fine.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Res<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(addr)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        let bcast = crate::types::Ipv4Prefix { addr, len: prefix }.broadcast();
        if prefix < 31 {
            msg.attributes.push(AddressAttribute::Broadcast(bcast));
        }
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(StepError::new(
                format!("add address {addr}/{prefix} to link {index}"),
                e,
            )),
            _ => Ok(()),
        }
    }

    /// Adds the default route via `gateway` out of link `oif` in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, oif: u32) -> Res<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(oif));
        match self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(StepError::new(
                format!("add default route via {gateway}"),
                e,
            )),
            _ => Ok(()),
        }
    }

    /// Addresses (IPv4) on link `index`.
    pub fn addresses(&mut self, index: u32) -> Res<Vec<Ipv4Addr>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self
            .request(
                RouteNetlinkMessage::GetAddress(msg),
                netlink_packet_core::NLM_F_DUMP,
            )
            .map_err(|e| StepError::new("list addresses", e))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.into_iter().find_map(|at| match at {
                        AddressAttribute::Local(IpAddr::V4(v)) => Some(v),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }
}
