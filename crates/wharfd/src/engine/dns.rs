//! The embedded DNS responder of user networks: one UDP socket per network on its gateway
//! address (port 53). Names of the running containers on that network (and their short ids)
//! answer with their address; anything else is forwarded to the host's resolvers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::daemon::Daemon;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_ANY: u16 = 255;

/// A parsed question: the lowercased name without the trailing dot, its type, and where the
/// question section ends in the packet.
struct Question {
    name: String,
    qtype: u16,
    end: usize,
}

fn parse_question(p: &[u8]) -> Option<Question> {
    if p.len() < 12 || u16::from_be_bytes([p[4], p[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *p.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        // Compression pointers never appear in a question we answer.
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(p.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        end: i + 4,
    })
}

/// A response to `query` with `answers` as A records (rcode 0), or an empty NXDOMAIN (3).
fn respond(query: &[u8], q: &Question, answers: &[Ipv4Addr], rcode: u8) -> Vec<u8> {
    let mut r = Vec::with_capacity(q.end + 16 * answers.len());
    r.extend_from_slice(&query[..2]);
    // QR, opcode from the query, AA, RD copied, RA.
    r.push(0x84 | (query[2] & 0x79));
    r.push(0x80 | rcode);
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&query[12..q.end]);
    for a in answers {
        r.extend_from_slice(&[0xc0, 12]); // pointer to the question's name
        r.extend_from_slice(&TYPE_A.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&10u32.to_be_bytes()); // TTL: containers come and go
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&a.octets());
    }
    r
}

/// The host's resolvers that a container can reach (not loopback).
fn upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

async fn forward(query: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams() {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

impl Daemon {
    /// Addresses of running containers called `name` (name, hostname, short or full id)
    /// that share a network with the asker: those on `network_id`, whose responder was
    /// asked, and on the asker's other user networks (found by its address `from`). Each
    /// peer answers with its address on the shared network.
    fn lookup_peer(&self, network_id: &str, from: IpAddr, name: &str) -> Vec<Ipv4Addr> {
        let all = self.all_containers();
        let from = from.to_string();
        let mut nets = vec![network_id.to_string()];
        for c in &all {
            let r = c.lock();
            // The asker by its address on any network: after it left this one, it still
            // reaches this responder through its default route.
            if r.attachments().any(|a| a.ip == from) {
                nets.extend(
                    r.attachments()
                        .filter(|a| a.network != super::network::DEFAULT_NETWORK)
                        .map(|a| a.network_id.clone()),
                );
            }
        }
        all.iter()
            .filter_map(|c| {
                let r = c.lock();
                let hit = r.name.eq_ignore_ascii_case(name)
                    || (name.len() >= 12 && r.id.starts_with(name))
                    || r.config.hostname.eq_ignore_ascii_case(name);
                // Aliases hold on their own network only.
                let a = r.attachments().find(|a| {
                    nets.contains(&a.network_id)
                        && (hit || a.aliases.iter().any(|x| x.eq_ignore_ascii_case(name)))
                })?;
                a.ip.parse().ok()
            })
            .collect()
    }

    /// Starts the responder of a user network on its gateway, once.
    pub fn ensure_dns(self: &Arc<Self>, network_id: &str, gateway: &str) -> bool {
        let Ok(gw) = gateway.parse::<Ipv4Addr>() else {
            return false;
        };
        let mut running = self.dns.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains_key(network_id) {
            return true;
        }
        let std_sock = match std::net::UdpSocket::bind((gw, 53)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("DNS for network {network_id} on {gw}:53: {e}; names resolve through /etc/hosts only");
                return false;
            }
        };
        if std_sock.set_nonblocking(true).is_err() {
            return false;
        }
        let Ok(sock) = UdpSocket::from_std(std_sock) else {
            return false;
        };
        let d = self.clone();
        let net = network_id.to_string();
        let task = tokio::spawn(async move {
            let sock = Arc::new(sock);
            let mut buf = vec![0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let Some(q) = parse_question(&query) else {
                    continue;
                };
                let local = if matches!(q.qtype, TYPE_A | TYPE_AAAA | TYPE_ANY) {
                    let short = q.name.split('.').next().unwrap_or("");
                    let mut ips = d.lookup_peer(&net, from.ip(), &q.name);
                    if ips.is_empty() && q.name.contains('.') {
                        // `db.` with a search domain appended.
                        ips = d.lookup_peer(&net, from.ip(), short);
                    }
                    (!ips.is_empty()).then_some(ips)
                } else {
                    None
                };
                match local {
                    Some(ips) => {
                        let ips = if q.qtype == TYPE_AAAA {
                            Vec::new()
                        } else {
                            ips
                        };
                        let _lost_reply_is_retried =
                            sock.send_to(&respond(&query, &q, &ips, 0), from).await;
                    }
                    None => {
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            let reply = match forward(&query).await {
                                Some(r) => r,
                                None => respond(&query, &q, &[], 2),
                            };
                            let _lost_reply_is_retried = sock.send_to(&reply, from).await;
                        });
                    }
                }
            }
        });
        running.insert(network_id.to_string(), task);
        true
    }

    /// Stops the responder of a removed network.
    pub fn stop_dns(&self, network_id: &str) {
        if let Some(t) = self
            .dns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(network_id)
        {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_question() {
        // id 0x1234, RD, one question: db. A IN
        let q = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'D', b'b', 0, 0, 1, 0, 1,
        ];
        let p = parse_question(&q).expect("question");
        assert_eq!((p.name.as_str(), p.qtype, p.end), ("db", 1, q.len()));
        let r = respond(&q, &p, &[Ipv4Addr::new(10, 0, 0, 7)], 0);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 7]);
        assert!(parse_question(&q[..10]).is_none());
    }
}
