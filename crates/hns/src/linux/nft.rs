//! A minimal nf_tables client over netlink: batches of table/chain/rule messages and a rule
//! dump, with an expression builder covering what wharf programs (meta, payload, bitwise,
//! cmp, ct, fib, immediate, nat, masq). Constants are from `linux/netfilter/nf_tables.h`.
//!
//! Only the table named by the caller is ever addressed; nothing here lists or changes other
//! tables.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;

use crate::types::IpPrefix;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_DESTROYTABLE: u16 = 26;

/// `NFPROTO_IPV4`: the `ip` family.
pub const FAMILY_IP: u8 = 2;
/// `NFPROTO_IPV6`: the `ip6` family.
pub const FAMILY_IP6: u8 = 10;

pub mod hook {
    pub const PREROUTING: u32 = 0;
    pub const INPUT: u32 = 1;
    pub const FORWARD: u32 = 2;
    pub const OUTPUT: u32 = 3;
    pub const POSTROUTING: u32 = 4;
}

/// Netlink attributes being built; nested attributes close with [`Attrs::end`].
#[derive(Default, Clone)]
pub struct Attrs {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Attrs {
    fn put(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }
    fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(ty, &v)
    }
    fn u32be(&mut self, ty: u16, v: u32) -> &mut Self {
        self.put(ty, &v.to_be_bytes())
    }
    fn begin(&mut self, ty: u16) -> &mut Self {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }
    fn end(&mut self) -> &mut Self {
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }
}

/// Registers: the verdict register and the four 16-byte data registers.
const REG_VERDICT: u32 = 0;
const REG1: u32 = 1;
const REG2: u32 = 2;

/// One rule's expressions, built left to right like the `nft` syntax.
#[derive(Default, Clone)]
pub struct Rule {
    exprs: Attrs,
}

impl Rule {
    pub fn new() -> Rule {
        Rule::default()
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs)) -> &mut Self {
        self.exprs.begin(1); // NFTA_LIST_ELEM
        self.exprs.str(1, name); // NFTA_EXPR_NAME
        self.exprs.begin(2); // NFTA_EXPR_DATA
        data(&mut self.exprs);
        self.exprs.end().end();
        self
    }

    fn meta(&mut self, key: u32) -> &mut Self {
        self.expr("meta", |a| {
            a.u32be(2, key).u32be(1, REG1);
        })
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32) -> &mut Self {
        self.expr("payload", |a| {
            a.u32be(1, REG1)
                .u32be(2, base)
                .u32be(3, offset)
                .u32be(4, len);
        })
    }

    fn cmp(&mut self, op: u32, value: &[u8]) -> &mut Self {
        self.expr("cmp", |a| {
            a.u32be(1, REG1).u32be(2, op).begin(3).put(1, value).end();
        })
    }

    fn bitwise(&mut self, mask: &[u8]) -> &mut Self {
        let xor = vec![0u8; mask.len()];
        self.expr("bitwise", |a| {
            a.u32be(1, REG1)
                .u32be(2, REG1)
                .u32be(3, mask.len() as u32)
                .begin(4)
                .put(1, mask)
                .end()
                .begin(5)
                .put(1, &xor)
                .end();
        })
    }

    /// Matches the source (or destination) address against `p`; the rule must go to the
    /// table of `p`'s family.
    fn prefix(&mut self, source: bool, p: IpPrefix, eq: bool) -> &mut Self {
        let op = if eq { 0 } else { 1 };
        match p {
            IpPrefix::V4(p) => {
                self.payload(1, if source { 12 } else { 16 }, 4);
                if p.len < 32 {
                    self.bitwise(&p.mask().to_be_bytes());
                }
                self.cmp(op, &p.network().octets())
            }
            IpPrefix::V6(p) => {
                self.payload(1, if source { 8 } else { 24 }, 16);
                if p.len < 128 {
                    self.bitwise(&p.mask().to_be_bytes());
                }
                self.cmp(op, &p.network().octets())
            }
        }
    }

    /// `ip saddr [!=] prefix` (or `ip6 saddr`)
    pub fn ip_saddr(&mut self, p: impl Into<IpPrefix>, eq: bool) -> &mut Self {
        self.prefix(true, p.into(), eq)
    }

    /// `ip daddr [!=] prefix` (or `ip6 daddr`)
    pub fn ip_daddr(&mut self, p: impl Into<IpPrefix>, eq: bool) -> &mut Self {
        self.prefix(false, p.into(), eq)
    }

    /// `meta l4proto <proto>`
    pub fn l4proto(&mut self, proto: u8) -> &mut Self {
        self.meta(16).cmp(0, &[proto])
    }

    /// `th dport <port>` (needs an l4proto match before it).
    pub fn th_dport(&mut self, port: u16) -> &mut Self {
        self.payload(2, 2, 2).cmp(0, &port.to_be_bytes())
    }

    /// `th sport <port>`
    pub fn th_sport(&mut self, port: u16) -> &mut Self {
        self.payload(2, 0, 2).cmp(0, &port.to_be_bytes())
    }

    fn ifname(&mut self, key: u32, name: &str, eq: bool) -> &mut Self {
        let mut v = [0u8; 16];
        let n = name.len().min(15);
        v[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.meta(key).cmp(if eq { 0 } else { 1 }, &v)
    }

    /// `oifname "prefix*"`: the output interface's name starts with `prefix`.
    pub fn oifname_prefix(&mut self, prefix: &str) -> &mut Self {
        self.meta(7).cmp(0, prefix.as_bytes())
    }

    /// `iifname [!=] name`
    pub fn iifname(&mut self, name: &str, eq: bool) -> &mut Self {
        self.ifname(6, name, eq)
    }

    /// `oifname [!=] name`
    pub fn oifname(&mut self, name: &str, eq: bool) -> &mut Self {
        self.ifname(7, name, eq)
    }

    /// `fib daddr type local`
    pub fn fib_daddr_local(&mut self) -> &mut Self {
        // NFTA_FIB_DREG, NFTA_FIB_RESULT = ADDRTYPE, NFTA_FIB_FLAGS = F_DADDR
        self.expr("fib", |a| {
            a.u32be(1, REG1).u32be(2, 3).u32be(3, 1 << 1);
        });
        // RTN_LOCAL, in host byte order.
        self.cmp(0, &2u32.to_ne_bytes())
    }

    /// Whether any of `bits` of ct key `key` is set (`set`) or none is.
    fn ct_bits_match(&mut self, key: u32, bits: u32, set: bool) -> &mut Self {
        self.expr("ct", |a| {
            a.u32be(1, REG1).u32be(2, key);
        });
        self.bitwise(&bits.to_ne_bytes())
            .cmp(if set { 1 } else { 0 }, &0u32.to_ne_bytes())
    }

    fn ct_bits(&mut self, key: u32, bits: u32) -> &mut Self {
        self.ct_bits_match(key, bits, true)
    }

    /// `ct status dnat`
    pub fn ct_status_dnat(&mut self) -> &mut Self {
        self.ct_bits(2, 1 << 5)
    }

    /// `ct status & dnat == 0`: the connection's destination was not rewritten.
    pub fn ct_status_not_dnat(&mut self) -> &mut Self {
        self.ct_bits_match(2, 1 << 5, false)
    }

    /// `ct state established,related`
    pub fn ct_state_established(&mut self) -> &mut Self {
        self.ct_bits(0, (1 << 1) | (1 << 2))
    }

    fn verdict(&mut self, code: i32) -> &mut Self {
        self.expr("immediate", |a| {
            a.u32be(1, REG_VERDICT)
                .begin(2)
                .begin(2)
                .u32be(1, code as u32)
                .end()
                .end();
        })
    }

    pub fn accept(&mut self) -> &mut Self {
        self.verdict(1)
    }

    pub fn drop_(&mut self) -> &mut Self {
        self.verdict(0)
    }

    pub fn masquerade(&mut self) -> &mut Self {
        self.expr("masq", |_| {})
    }

    /// `dnat ip to addr:port` (or `dnat ip6 to [addr]:port`)
    pub fn dnat(&mut self, addr: IpAddr, port: u16) -> &mut Self {
        let (family, octets) = match addr {
            IpAddr::V4(a) => (FAMILY_IP, a.octets().to_vec()),
            IpAddr::V6(a) => (FAMILY_IP6, a.octets().to_vec()),
        };
        self.expr("immediate", |a| {
            a.u32be(1, REG1).begin(2).put(1, &octets).end();
        });
        self.expr("immediate", |a| {
            a.u32be(1, REG2).begin(2).put(1, &port.to_be_bytes()).end();
        });
        // NFTA_NAT_TYPE = DNAT, FAMILY, REG_ADDR_MIN, REG_PROTO_MIN
        self.expr("nat", |a| {
            a.u32be(1, 1)
                .u32be(2, u32::from(family))
                .u32be(3, REG1)
                .u32be(5, REG2);
        })
    }
}

/// A chain to create: base chains have a hook.
pub struct Chain<'a> {
    pub name: &'a str,
    /// (type, hook, priority) for a base chain.
    pub hook: Option<(&'a str, u32, i32)>,
}

/// One nf_tables transaction over wharf's table in one or more families: every message
/// applies or none does.
pub struct Batch {
    table: String,
    msgs: Vec<(u8, u16, u16, Attrs)>,
    steps: Vec<String>,
}

impl Batch {
    pub fn new(table: &str) -> Batch {
        Batch {
            table: table.to_string(),
            msgs: Vec::new(),
            steps: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    fn push(&mut self, family: u8, ty: u16, flags: u16, a: Attrs, step: String) {
        self.msgs.push((family, ty, flags, a));
        self.steps.push(format!("{} {step}", family_name(family)));
    }

    /// Deletes our table of `family` if it exists (with everything in it).
    pub fn destroy_table(&mut self, family: u8) {
        let mut a = Attrs::default();
        a.str(1, &self.table);
        let step = format!("destroy table {}", self.table);
        self.push(family, NFT_MSG_DESTROYTABLE, 0, a, step);
    }

    pub fn add_table(&mut self, family: u8) {
        let mut a = Attrs::default();
        a.str(1, &self.table);
        let step = format!("add table {}", self.table);
        self.push(family, NFT_MSG_NEWTABLE, NLM_F_CREATE, a, step);
    }

    pub fn add_chain(&mut self, family: u8, c: &Chain<'_>) {
        let mut a = Attrs::default();
        a.str(1, &self.table).str(3, c.name);
        if let Some((ty, hooknum, prio)) = c.hook {
            a.begin(4).u32be(1, hooknum).u32be(2, prio as u32).end();
            a.u32be(5, 1); // policy accept
            a.str(7, ty);
        }
        let step = format!("add chain {}", c.name);
        self.push(family, NFT_MSG_NEWCHAIN, NLM_F_CREATE, a, step);
    }

    /// Adds `rule` to `chain`, tagged with `tag` (stored as the rule's user data). `append`
    /// puts it last, otherwise first.
    pub fn add_rule(&mut self, family: u8, chain: &str, tag: &str, rule: &Rule, append: bool) {
        let mut a = Attrs::default();
        a.str(1, &self.table).str(2, chain);
        a.begin(4);
        a.buf.extend_from_slice(&rule.exprs.buf);
        a.end();
        a.put(7, tag.as_bytes());
        let step = format!("add rule {tag} to chain {chain}");
        let flags = NLM_F_CREATE | if append { NLM_F_APPEND } else { 0 };
        self.push(family, NFT_MSG_NEWRULE, flags, a, step);
    }

    pub fn del_rule(&mut self, family: u8, chain: &str, handle: u64) {
        let mut a = Attrs::default();
        a.str(1, &self.table).str(2, chain);
        a.put(3, &handle.to_be_bytes());
        let step = format!("delete rule {handle} from chain {chain}");
        self.push(family, NFT_MSG_DELRULE, 0, a, step);
    }
}

fn family_name(family: u8) -> &'static str {
    match family {
        FAMILY_IP => "ip",
        FAMILY_IP6 => "ip6",
        _ => "inet",
    }
}

/// A rule as listed back: its chain, handle and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    pub chain: String,
    pub handle: u64,
    pub tag: String,
}

pub struct Nft {
    sock: Socket,
    seq: u32,
}

impl Nft {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Nft> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nft { sock, seq: 1 })
    }

    fn header(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = buf.len();
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[family, 0]);
        buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn finish(buf: &mut [u8], start: usize) {
        let len = (buf.len() - start) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Commits `batch` atomically. On failure the error names the first failing step.
    pub fn commit(&mut self, batch: &Batch) -> Result<(), (String, io::Error)> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        self.seq = self.seq.wrapping_add(1);
        let s = Nft::header(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            self.seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        Nft::finish(&mut buf, s);
        let first = self.seq.wrapping_add(1);
        for (family, ty, flags, attrs) in &batch.msgs {
            self.seq = self.seq.wrapping_add(1);
            let s = Nft::header(
                &mut buf,
                (NFNL_SUBSYS_NFTABLES << 8) | ty,
                NLM_F_REQUEST | NLM_F_ACK | flags,
                self.seq,
                *family,
                0,
            );
            buf.extend_from_slice(&attrs.buf);
            Nft::finish(&mut buf, s);
        }
        self.seq = self.seq.wrapping_add(1);
        let s = Nft::header(
            &mut buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            self.seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        Nft::finish(&mut buf, s);
        self.sock
            .send(&buf, 0)
            .map_err(|e| ("send nf_tables batch".to_string(), e))?;

        let want = batch.msgs.len();
        let mut acked = 0;
        let mut failure: Option<(String, io::Error)> = None;
        let mut rx = vec![0u8; 64 * 1024];
        while acked < want {
            let flags = if failure.is_some() {
                libc::MSG_DONTWAIT
            } else {
                0
            };
            let n = match self.sock.recv(&mut &mut rx[..], flags) {
                Ok(n) => n,
                Err(_) if failure.is_some() => break,
                Err(e) => return Err(("receive nf_tables acks".to_string(), e)),
            };
            for (ty, seq, payload) in messages(&rx[..n]) {
                if ty != NLMSG_ERROR || payload.len() < 4 {
                    continue;
                }
                acked += 1;
                let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if code != 0 && failure.is_none() {
                    let idx = seq.wrapping_sub(first) as usize;
                    let step = batch
                        .steps
                        .get(idx)
                        .cloned()
                        .unwrap_or_else(|| "nf_tables batch".into());
                    failure = Some((step, io::Error::from_raw_os_error(-code)));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Lists the rules of `chain` (or of every chain) in `table` with their handles and tags.
    pub fn list_rules(
        &mut self,
        family: u8,
        table: &str,
        chain: Option<&str>,
    ) -> io::Result<Vec<ListedRule>> {
        let mut buf = Vec::new();
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let s = Nft::header(
            &mut buf,
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            0,
        );
        let mut a = Attrs::default();
        a.str(1, table);
        if let Some(chain) = chain {
            a.str(2, chain);
        }
        buf.extend_from_slice(&a.buf);
        Nft::finish(&mut buf, s);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; 256 * 1024];
        loop {
            let n = self.sock.recv(&mut &mut rx[..], 0)?;
            for (ty, rseq, payload) in messages(&rx[..n]) {
                if rseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if code == -libc::ENOENT {
                            return Ok(out);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => {
                        if let Some(r) = parse_rule(payload.get(4..).unwrap_or_default()) {
                            out.push(r);
                        }
                    }
                }
            }
        }
    }
}

/// Splits a receive buffer into (type, seq, payload) netlink messages.
fn messages(buf: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        let seq = u32::from_ne_bytes([buf[off + 8], buf[off + 9], buf[off + 10], buf[off + 11]]);
        out.push((ty, seq, &buf[off + 16..off + len]));
        off += len.next_multiple_of(4);
    }
    out
}

fn parse_rule(attrs: &[u8]) -> Option<ListedRule> {
    let mut r = ListedRule {
        chain: String::new(),
        handle: 0,
        tag: String::new(),
    };
    let mut off = 0;
    while off + 4 <= attrs.len() {
        let len = u16::from_ne_bytes([attrs[off], attrs[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[off + 2], attrs[off + 3]]) & 0x3fff;
        if len < 4 || off + len > attrs.len() {
            break;
        }
        let v = &attrs[off + 4..off + len];
        match ty {
            2 => {
                r.chain = String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string()
            }
            3 if v.len() == 8 => r.handle = u64::from_be_bytes(v.try_into().ok()?),
            7 => r.tag = String::from_utf8_lossy(v).to_string(),
            _ => {}
        }
        off += len.next_multiple_of(4);
    }
    (r.handle != 0).then_some(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nested_attributes_get_their_lengths() {
        let mut a = Attrs::default();
        a.begin(4).str(1, "ab").u32be(2, 7).end();
        // outer header 4 + "ab\0" (4+3 padded to 8) + u32 (8) = 20
        assert_eq!(a.buf.len(), 20);
        assert_eq!(u16::from_ne_bytes([a.buf[0], a.buf[1]]), 20);
        assert_eq!(u16::from_ne_bytes([a.buf[2], a.buf[3]]), 4 | NLA_F_NESTED);
        assert_eq!(&a.buf[16..20], &7u32.to_be_bytes());
    }

    #[test]
    fn listed_rules_parse_handle_and_tag() {
        let mut a = Attrs::default();
        a.str(1, "wharf").str(2, "postrouting");
        a.put(3, &42u64.to_be_bytes());
        a.put(7, b"ep:abc");
        let r = parse_rule(&a.buf).unwrap();
        assert_eq!(
            r,
            ListedRule {
                chain: "postrouting".into(),
                handle: 42,
                tag: "ep:abc".into()
            }
        );
    }
}
