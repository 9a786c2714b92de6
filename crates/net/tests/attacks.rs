//! Each layer-2 attack must succeed on an unguarded bridge and fail once `apply_guard` is in place,
//! judged by the victim's neighbour table, the bridge's forwarding table or where traffic lands.

mod common;

use common::*;
use std::net::{IpAddr, UdpSocket};
use std::time::Duration;
use watertight_net::Netns;

/// How long a successful attack may take to show.
const SHOW: Duration = Duration::from_millis(1500);

/// Runs `attack` twice, on a fresh unguarded topology and on a fresh guarded one: it must take
/// effect the first time and not the second. `attack` sends its frames and reports whether it
/// took effect within `SHOW`.
fn succeeds_unguarded_fails_guarded(name: &str, attack: impl Fn(&Topology) -> bool) {
    let topo = Topology::build();
    assert!(
        attack(&topo),
        "{name}: expected to succeed on an unguarded bridge (test is broken)"
    );
    drop(topo);

    let topo = Topology::build();
    topo.apply_guard();
    assert!(!attack(&topo), "{name}: succeeded through the guard");
}

/// The victim learns the real DNS host's MAC the normal way.
fn victim_knows_dns(topo: &Topology) {
    assert!(
        topo.reach(&topo.victim, IpAddr::V4(DNS_V4)),
        "victim cannot ping the DNS host"
    );
    assert_eq!(
        topo.neighbour_mac(&topo.victim, IpAddr::V4(DNS_V4)),
        Some(mac(DNS_MAC))
    );
}

fn victim_maps(topo: &Topology, ip: IpAddr, want: &str) -> bool {
    eventually(SHOW, || {
        topo.neighbour_mac(&topo.victim, ip) == Some(mac(want))
    })
}

fn o(m: &str) -> [u8; 6] {
    mac(m).octets()
}

#[test]
fn forged_arp_reply() {
    skip_unless_able!();
    succeeds_unguarded_fails_guarded("forged ARP reply", |t| {
        victim_knows_dns(t);
        t.inject(&[arp(
            o(ATT_MAC),
            o(VIC_MAC),
            ARP_REPLY,
            o(ATT_MAC),
            DNS_V4,
            o(VIC_MAC),
            VIC_V4,
        )]);
        victim_maps(t, IpAddr::V4(DNS_V4), ATT_MAC)
    });
}

#[test]
fn gratuitous_arp() {
    skip_unless_able!();
    succeeds_unguarded_fails_guarded("gratuitous ARP", |t| {
        victim_knows_dns(t);
        t.inject(&[arp(
            o(ATT_MAC),
            BROADCAST,
            ARP_REQUEST,
            o(ATT_MAC),
            DNS_V4,
            [0; 6],
            DNS_V4,
        )]);
        victim_maps(t, IpAddr::V4(DNS_V4), ATT_MAC)
    });
}

#[test]
fn arp_with_mismatched_sender() {
    skip_unless_able!();
    // Ethernet source is the attacker's own MAC (passes a MAC-only filter); the ARP sender MAC is
    // another one, which the victim would believe.
    const FAKE: &str = "02:13:00:00:00:99";
    succeeds_unguarded_fails_guarded("ARP with mismatched sender", |t| {
        assert!(t.reach(&t.victim, IpAddr::V4(ATT_V4)));
        t.inject(&[arp(
            o(ATT_MAC),
            o(VIC_MAC),
            ARP_REPLY,
            o(FAKE),
            ATT_V4,
            o(VIC_MAC),
            VIC_V4,
        )]);
        victim_maps(t, IpAddr::V4(ATT_V4), FAKE)
    });
}

#[test]
fn vid0_tagged_arp() {
    skip_unless_able!();
    succeeds_unguarded_fails_guarded("VID-0 tagged gratuitous ARP", |t| {
        victim_knows_dns(t);
        t.inject(&[arp_tagged(
            0,
            o(ATT_MAC),
            BROADCAST,
            ARP_REQUEST,
            o(ATT_MAC),
            DNS_V4,
            [0; 6],
            DNS_V4,
        )]);
        victim_maps(t, IpAddr::V4(DNS_V4), ATT_MAC)
    });
}

#[test]
fn mac_spoofing() {
    skip_unless_able!();
    // A frame with the DNS host's MAC as source makes the bridge send the DNS host's traffic to
    // the attacker's port.
    succeeds_unguarded_fails_guarded("MAC spoofing", |t| {
        victim_knows_dns(t);
        assert_eq!(t.fdb_port(DNS_MAC).as_deref(), Some("p-dns"));
        // The DNS host's own frames move the entry back, so keep sending while watching.
        let frame = udp4(
            o(DNS_MAC),
            BROADCAST,
            ATT_V4,
            std::net::Ipv4Addr::BROADCAST,
            4000,
            4000,
            b"x",
        );
        eventually(SHOW, || {
            t.inject(std::slice::from_ref(&frame));
            t.fdb_port(DNS_MAC).as_deref() == Some("p-att")
        })
    });
}

#[test]
fn ip_source_spoofing() {
    skip_unless_able!();
    succeeds_unguarded_fails_guarded("IPv4 source spoofing", |t| {
        let sock = Netns::from_arg(&t.victim.ns)
            .run(|| Ok(UdpSocket::bind((VIC_V4, 5353)).unwrap()))
            .unwrap();
        sock.set_read_timeout(Some(SHOW)).unwrap();
        t.inject(&[udp4(
            o(ATT_MAC),
            o(VIC_MAC),
            DNS_V4,
            VIC_V4,
            53,
            5353,
            b"forged answer",
        )]);
        let mut buf = [0u8; 64];
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => &buf[..n] == b"forged answer" && from.ip() == IpAddr::V4(DNS_V4),
            Err(_) => false,
        }
    });
}

#[test]
fn forged_ipv6_neighbour_advertisement() {
    skip_unless_able!();
    let att_ll = mac(ATT_MAC).eui64_link_local();
    succeeds_unguarded_fails_guarded("forged IPv6 NA", |t| {
        assert!(
            t.reach(&t.victim, IpAddr::V6(DNS_V6)),
            "victim cannot ping6 the DNS host"
        );
        assert_eq!(
            t.neighbour_mac(&t.victim, IpAddr::V6(DNS_V6)),
            Some(mac(DNS_MAC))
        );
        t.inject(&[neighbour_advert(o(ATT_MAC), att_ll, DNS_V6, o(ATT_MAC))]);
        victim_maps(t, IpAddr::V6(DNS_V6), ATT_MAC)
    });
}

#[test]
fn rogue_router_advertisement() {
    skip_unless_able!();
    let att_ll = mac(ATT_MAC).eui64_link_local();
    let prefix: std::net::Ipv6Addr = "fd00:bad::".parse().unwrap();
    succeeds_unguarded_fails_guarded("rogue RA", |t| {
        t.inject(&[router_advert(o(ATT_MAC), att_ll, prefix)]);
        eventually(SHOW, || {
            let routes = sh(&["ip", "-n", &t.victim.ns, "-6", "route", "show", "default"]);
            routes.contains(&att_ll.to_string())
        })
    });
}

#[test]
fn legitimate_traffic_passes_the_guard() {
    skip_unless_able!();
    let t = Topology::build();
    t.apply_guard();
    // IPv4 and ARP.
    assert!(t.reach(&t.victim, IpAddr::V4(DNS_V4)));
    assert_eq!(
        t.neighbour_mac(&t.victim, IpAddr::V4(DNS_V4)),
        Some(mac(DNS_MAC))
    );
    // IPv6 with neighbour discovery, global and link-local.
    assert!(t.reach(&t.victim, IpAddr::V6(DNS_V6)));
    assert_eq!(
        t.neighbour_mac(&t.victim, IpAddr::V6(DNS_V6)),
        Some(mac(DNS_MAC))
    );
    let dns_ll = mac(DNS_MAC).eui64_link_local();
    assert!(t.reach(&t.victim, IpAddr::V6(dns_ll)));
    assert!(t.reach(&t.attacker, IpAddr::V6(VIC_V6)));
    // A TCP exchange, DNS host to victim and back.
    let listener = Netns::from_arg(&t.dns.ns)
        .run(|| Ok(std::net::TcpListener::bind((DNS_V4, 7000)).unwrap()))
        .unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf.map(|b| b.to_ascii_uppercase()))
            .unwrap();
    });
    let reply = Netns::from_arg(&t.victim.ns)
        .run(|| {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect_timeout(
                &(DNS_V4, 7000).into(),
                Duration::from_secs(2),
            )
            .unwrap();
            c.write_all(b"hello").unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            Ok(buf)
        })
        .unwrap();
    server.join().unwrap();
    assert_eq!(&reply, b"HELLO");
    // The attacker's own honest traffic still works too.
    assert!(t.reach(&t.attacker, IpAddr::V4(DNS_V4)));
}
