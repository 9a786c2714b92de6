//! Test topology and attacker for the bridge-guard tests.
//!
//! Every test builds its own namespaces, named with the test process id and a counter:
//!
//! ```text
//!   wt<pid>-<n>-br : bridge b<pid>x<n> with ports p-dns, p-vic, p-att
//!   wt<pid>-<n>-dns: eth0 10.213.0.53/24 fd00:213::53/64 02:13:00:00:00:53
//!   wt<pid>-<n>-vic: eth0 10.213.0.10/24 fd00:213::10/64 02:13:00:00:00:10
//!   wt<pid>-<n>-att: eth0 10.213.0.66/24 fd00:213::66/64 02:13:00:00:00:66
//! ```
//!
//! The attacker writes raw frames with an AF_PACKET socket (pnet_datalink) from a thread inside
//! its namespace. Everything is removed by `Drop`, also when a test panics.

#![allow(dead_code)]

use pnet_datalink::Channel;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use watertight_net::netlink::{self, Neighbour};
use watertight_net::{Bindings, MacAddr, Netns};

pub const DNS_MAC: &str = "02:13:00:00:00:53";
pub const VIC_MAC: &str = "02:13:00:00:00:10";
pub const ATT_MAC: &str = "02:13:00:00:00:66";
pub const DNS_V4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 53);
pub const VIC_V4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 10);
pub const ATT_V4: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 66);
pub const DNS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 0x53);
pub const VIC_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 0x10);
pub const ATT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 0x66);

pub fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// Returns from the test unless this machine can run the namespace tests: root (a SKIP, or a
/// failure with WATERTIGHT_REQUIRE_ROOT=1) and the network tools (a SKIP, or a failure in CI).
#[macro_export]
macro_rules! skip_unless_able {
    () => {
        let test = watertight_testkit::this_test();
        if !watertight_testkit::require_root(&test)
            || !watertight_testkit::require_tools(
                &test,
                &["ip", "nft", "bridge", "sysctl"],
                "iproute2 nftables procps",
            )
        {
            return;
        }
    };
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like `sh` but returns whether it succeeded.
pub fn try_sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Host {
    pub ns: String,
    pub port: &'static str,
    pub mac: &'static str,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

pub struct Topology {
    pub bridge_ns: String,
    pub bridge: String,
    pub dns: Host,
    pub victim: Host,
    pub attacker: Host,
}

impl Topology {
    pub fn build() -> Topology {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let base = format!("wt{pid}-{n}");
        let host = |role: &str, port, mac, v4, v6| Host {
            ns: format!("{base}-{role}"),
            port,
            mac,
            v4,
            v6,
        };
        let topo = Topology {
            bridge_ns: format!("{base}-br"),
            bridge: format!("b{}x{n}", pid % 1_000_000),
            dns: host("dns", "p-dns", DNS_MAC, DNS_V4, DNS_V6),
            victim: host("vic", "p-vic", VIC_MAC, VIC_V4, VIC_V6),
            attacker: host("att", "p-att", ATT_MAC, ATT_V4, ATT_V6),
        };
        // From here on, Drop removes whatever was created.
        sh(&["ip", "netns", "add", &topo.bridge_ns]);
        let b = topo.bridge_ns.as_str();
        sh(&["ip", "-n", b, "link", "add", &topo.bridge, "type", "bridge"]);
        sh(&["ip", "-n", b, "link", "set", &topo.bridge, "up"]);
        sh(&["ip", "-n", b, "link", "set", "lo", "up"]);
        for h in [&topo.dns, &topo.victim, &topo.attacker] {
            sh(&["ip", "netns", "add", &h.ns]);
            sh(&[
                "ip", "-n", b, "link", "add", h.port, "type", "veth", "peer", "name", "eth0",
                "netns", &h.ns,
            ]);
            sh(&[
                "ip",
                "-n",
                b,
                "link",
                "set",
                h.port,
                "master",
                &topo.bridge,
                "up",
            ]);
            sh(&[
                "ip",
                "netns",
                "exec",
                &h.ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.eth0.accept_dad=0",
            ]);
            // Let a forged ARP reply override a fresh entry at once instead of after Linux's 1 s
            // lock time, so the tests are quick; gratuitous ARP overrides regardless.
            sh(&[
                "ip",
                "netns",
                "exec",
                &h.ns,
                "sysctl",
                "-qw",
                "net.ipv4.neigh.eth0.locktime=0",
            ]);
            sh(&["ip", "-n", &h.ns, "link", "set", "eth0", "address", h.mac]);
            sh(&[
                "ip",
                "-n",
                &h.ns,
                "addr",
                "add",
                &format!("{}/24", h.v4),
                "dev",
                "eth0",
            ]);
            sh(&[
                "ip",
                "-n",
                &h.ns,
                "addr",
                "add",
                &format!("{}/64", h.v6),
                "dev",
                "eth0",
                "nodad",
            ]);
            sh(&["ip", "-n", &h.ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", &h.ns, "link", "set", "eth0", "up"]);
        }
        topo
    }

    pub fn hosts(&self) -> [&Host; 3] {
        [&self.dns, &self.victim, &self.attacker]
    }

    pub fn bindings_toml(&self) -> String {
        self.hosts()
            .iter()
            .map(|h| {
                format!(
                    "[[port]]\niface = \"{}\"\nmac = \"{}\"\nipv4 = [\"{}\"]\nipv6 = [\"{}\"]\n\n",
                    h.port, h.mac, h.v4, h.v6
                )
            })
            .collect()
    }

    pub fn bindings(&self) -> Bindings {
        Bindings::parse(&self.bindings_toml(), "test bindings").unwrap()
    }

    pub fn bridge_netns(&self) -> Netns {
        Netns::from_arg(&self.bridge_ns)
    }

    pub fn apply_guard(&self) {
        let bindings = self.bindings();
        let bridge = self.bridge.clone();
        self.bridge_netns()
            .run(|| watertight_net::apply_guard(&bridge, &bindings))
            .expect("guard applies");
    }

    /// A UDP round trip from `from` to `to` (port 7), which resolves neighbours on the way like a
    /// ping would. `to` may be a link-local address: it is then scoped to `from`'s eth0.
    pub fn reach(&self, from: &Host, to: IpAddr) -> bool {
        let Some(target) = self.hosts().into_iter().find(|h| {
            to == IpAddr::V4(h.v4)
                || to == IpAddr::V6(h.v6)
                || to == IpAddr::V6(mac(h.mac).eui64_link_local())
        }) else {
            panic!("{to} is no host of the topology")
        };
        let scope = |ns: &str| -> u32 {
            Netns::from_arg(ns)
                .run(netlink::links)
                .unwrap()
                .into_iter()
                .find(|l| l.name == "eth0")
                .map(|l| l.index)
                .unwrap()
        };
        let addr = |ip: IpAddr, port: u16, ns: &str| -> SocketAddr {
            match ip {
                IpAddr::V6(v6) if v6.segments()[0] == 0xfe80 => {
                    SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope(ns)))
                }
                _ => SocketAddr::new(ip, port),
            }
        };
        round_trip(
            &Netns::from_arg(&from.ns),
            &Netns::from_arg(&target.ns),
            addr(to, 7, &target.ns),
            addr(to, 7, &from.ns),
        )
    }

    /// The victim's neighbour entry for `ip`, if any.
    pub fn neighbour(&self, of: &Host, ip: IpAddr) -> Option<Neighbour> {
        Netns::from_arg(&of.ns)
            .run(netlink::neighbours)
            .unwrap()
            .into_iter()
            .find(|n| n.ip == ip)
    }

    pub fn neighbour_mac(&self, of: &Host, ip: IpAddr) -> Option<MacAddr> {
        self.neighbour(of, ip).and_then(|n| n.mac)
    }

    /// The bridge port on which the bridge has learned `mac`, if any.
    pub fn fdb_port(&self, mac: &str) -> Option<String> {
        let out = sh(&[
            "bridge",
            "-n",
            &self.bridge_ns,
            "fdb",
            "show",
            "br",
            &self.bridge,
        ]);
        out.lines()
            .filter(|l| l.starts_with(mac) && !l.contains("permanent"))
            .find_map(|l| {
                let mut words = l.split_whitespace();
                words
                    .find(|w| *w == "dev")
                    .and_then(|_| words.next())
                    .map(str::to_string)
            })
    }

    /// Sends raw frames out of the attacker's eth0.
    pub fn inject(&self, frames: &[Vec<u8>]) {
        inject_from(&Netns::from_arg(&self.attacker.ns), frames)
    }
}

/// A UDP round trip: a server bound to `server_addr` in `to`, a client in `from` sending to
/// `dest` (the same address, scoped for `from` if link-local).
pub fn round_trip(from: &Netns, to: &Netns, server_addr: SocketAddr, dest: SocketAddr) -> bool {
    let server = to
        .run(|| Ok(UdpSocket::bind(server_addr).unwrap()))
        .unwrap();
    let any: IpAddr = if dest.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let client = from.run(|| Ok(UdpSocket::bind((any, 0)).unwrap())).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    if client.send_to(b"ping", dest).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let Ok((n, peer)) = server.recv_from(&mut buf) else {
        return false;
    };
    if &buf[..n] != b"ping" || server.send_to(b"pong", peer).is_err() {
        return false;
    }
    matches!(client.recv_from(&mut buf), Ok((4, _))) && &buf[..4] == b"pong"
}

/// Sends raw frames (three times, 30 ms apart) out of eth0 in `ns`.
pub fn inject_from(ns: &Netns, frames: &[Vec<u8>]) {
    let frames = frames.to_vec();
    ns.run(move || {
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == "eth0")
            .expect("sender has eth0");
        let Channel::Ethernet(mut tx, _rx) =
            pnet_datalink::channel(&iface, Default::default()).expect("raw socket")
        else {
            panic!("not an Ethernet channel")
        };
        for _ in 0..3 {
            for f in &frames {
                tx.send_to(f, None)
                    .expect("frame queued")
                    .expect("frame sent");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        Ok(())
    })
    .unwrap();
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace destroys its interfaces and its nft tables; the guard's state
        // directory (shared /run) is cleaned through the library.
        let bridge = self.bridge.clone();
        let _ = self
            .bridge_netns()
            .run(|| watertight_net::remove_guard(&bridge));
        for ns in [
            &self.attacker.ns,
            &self.victim.ns,
            &self.dns.ns,
            &self.bridge_ns,
        ] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Polls `cond` for up to `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- frame builders -------------------------------------------------------------------------

pub const BROADCAST: [u8; 6] = [0xff; 6];

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// An ARP packet body (Ethernet/IPv4).
fn arp_body(op: u16, sha: [u8; 6], sip: Ipv4Addr, tha: [u8; 6], tip: Ipv4Addr) -> Vec<u8> {
    let mut b = vec![0, 1, 0x08, 0x00, 6, 4];
    b.extend_from_slice(&op.to_be_bytes());
    b.extend_from_slice(&sha);
    b.extend_from_slice(&sip.octets());
    b.extend_from_slice(&tha);
    b.extend_from_slice(&tip.octets());
    b
}

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

#[allow(clippy::too_many_arguments)]
pub fn arp(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    sip: Ipv4Addr,
    tha: [u8; 6],
    tip: Ipv4Addr,
) -> Vec<u8> {
    let mut f = ether(eth_dst, eth_src, 0x0806);
    f.extend(arp_body(op, sha, sip, tha, tip));
    f
}

/// The same ARP packet inside an 802.1Q tag with the given VLAN id (0: priority-tagged).
#[allow(clippy::too_many_arguments)]
pub fn arp_tagged(
    vid: u16,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    sip: Ipv4Addr,
    tha: [u8; 6],
    tip: Ipv4Addr,
) -> Vec<u8> {
    let mut f = ether(eth_dst, eth_src, 0x8100);
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend(arp_body(op, sha, sip, tha, tip));
    f
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// An IPv4/UDP frame (UDP checksum 0: none).
pub fn udp4(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = ether(eth_dst, eth_src, 0x0800);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let csum = fold(sum16(&ip));
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend(ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An IPv6/ICMPv6 frame with hop limit 255 (as neighbour discovery requires) and a correct
/// checksum; `icmp` starts at the type byte with a zero checksum.
pub fn icmp6(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    let mut f = ether(eth_dst, eth_src, 0x86dd);
    let len = icmp.len() as u16;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&u32::from(len).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let csum = fold(sum16(&pseudo) + sum16(&icmp));
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    f.extend(icmp);
    f
}

pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// A neighbour advertisement for `target` with the override flag and a target link-layer option.
pub fn neighbour_advert(
    eth_src: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
    lladdr: [u8; 6],
) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&lladdr);
    icmp6(eth_src, ALL_NODES_MAC, src, ALL_NODES, icmp)
}

/// A router advertisement announcing a default route and the prefix `prefix`/64 for SLAAC.
pub fn router_advert(eth_src: [u8; 6], src: Ipv6Addr, prefix: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![134, 0, 0, 0, 64, 0];
    icmp.extend_from_slice(&1800u16.to_be_bytes()); // router lifetime
    icmp.extend_from_slice(&[0; 8]); // reachable time, retrans timer
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&eth_src);
    icmp.extend_from_slice(&[3, 4, 64, 0xc0]);
    icmp.extend_from_slice(&86400u32.to_be_bytes());
    icmp.extend_from_slice(&14400u32.to_be_bytes());
    icmp.extend_from_slice(&[0; 4]);
    icmp.extend_from_slice(&prefix.octets());
    icmp6(eth_src, ALL_NODES_MAC, src, ALL_NODES, icmp)
}
