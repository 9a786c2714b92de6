//! Renders the nftables `bridge` table that guards one bridge, as nft script text.
//!
//! Layout (one table per bridge, hooked at prerouting so a forged frame is dropped before the
//! bridge learns its source MAC):
//!
//! ```text
//! table bridge watertight_br0 {
//!     set ports          { type ifname; }                       guarded ports
//!     set port_mac       { type ifname . ether_addr; }          each port's MAC
//!     set port_ipv4      { type ifname . ipv4_addr; }           each port's IPv4 addresses
//!     set port_ipv6      { type ifname . ipv6_addr; }           ... IPv6, EUI-64 link-local too
//!     set port_nd_target { typeof iifname . @th,64,128; }       the IPv6 set as raw ND targets
//!     set port_na_option / port_ns_option / port_rs_option      ND link-layer options with its MAC
//!     chain guard { the same fixed list of checks for every port, each one set lookup }
//!     chain prerouting { type filter hook prerouting priority filter; policy accept;
//!                        iifname @ports jump guard }
//! }
//! ```
//!
//! A frame costs a fixed number of hash lookups, however many ports the bridge has; adding or
//! removing a port only adds or deletes set elements. Ports not in `ports` (an uplink, the host)
//! pass untouched.

use crate::bindings::PortBinding;
use std::fmt::Write;
use std::net::Ipv6Addr;

/// Name of the set of guarded ports.
pub const PORT_SET: &str = "ports";
/// Name of the chain with the per-port checks.
pub const GUARD_CHAIN: &str = "guard";
/// Name of the base chain.
pub const BASE_CHAIN: &str = "prerouting";

/// Encodes a name into an nft identifier: letters and digits stay, anything else becomes `_xx`
/// (hex), so distinct names never collide.
fn ident(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

/// The table that guards `bridge`.
pub fn table_name(bridge: &str) -> String {
    ident("watertight_", bridge)
}

fn v6_int(a: &Ipv6Addr) -> String {
    format!("0x{:032x}", u128::from(*a))
}

/// The sets of the table, their key types, and each port's elements in them.
struct SetSpec {
    name: &'static str,
    key: &'static str,
    elements: fn(&PortBinding) -> Vec<String>,
}

fn q(port: &PortBinding) -> String {
    format!("\"{}\"", port.iface)
}

const SETS: &[SetSpec] = &[
    SetSpec {
        name: PORT_SET,
        key: "type ifname",
        elements: |p| vec![q(p)],
    },
    SetSpec {
        name: "port_mac",
        key: "type ifname . ether_addr",
        elements: |p| vec![format!("{} . {}", q(p), p.mac)],
    },
    SetSpec {
        name: "port_ipv4",
        key: "type ifname . ipv4_addr",
        elements: |p| p.ipv4.iter().map(|a| format!("{} . {a}", q(p))).collect(),
    },
    SetSpec {
        name: "port_ipv6",
        key: "type ifname . ipv6_addr",
        elements: |p| {
            p.ipv6_sources()
                .iter()
                .map(|a| format!("{} . {a}", q(p)))
                .collect()
        },
    },
    // The target address of a neighbour solicitation/advertisement, ICMPv6 bytes 8-23. nft 1.0.6
    // has no `icmpv6 taddr`, so it is matched as raw payload against the addresses as integers.
    SetSpec {
        name: "port_nd_target",
        key: "typeof iifname . @th,64,128",
        elements: |p| {
            p.ipv6_sources()
                .iter()
                .map(|a| format!("{} . {}", q(p), v6_int(a)))
                .collect()
        },
    },
    // The single option of an NA (target link-layer address: type 2, length 1, MAC) at byte 24.
    SetSpec {
        name: "port_na_option",
        key: "typeof iifname . @th,192,64",
        elements: |p| vec![format!("{} . 0x0201{:012x}", q(p), p.mac.as_u64())],
    },
    // The single option of an NS (source link-layer address: type 1, length 1, MAC) at byte 24.
    SetSpec {
        name: "port_ns_option",
        key: "typeof iifname . @th,192,64",
        elements: |p| vec![format!("{} . 0x0101{:012x}", q(p), p.mac.as_u64())],
    },
    // The same option in a router solicitation, at byte 8.
    SetSpec {
        name: "port_rs_option",
        key: "typeof iifname . @th,64,64",
        elements: |p| vec![format!("{} . 0x0101{:012x}", q(p), p.mac.as_u64())],
    },
];

/// The guard chain, in order. A frame that survives every rule returns to the base chain, whose
/// policy accepts it.
pub fn guard_rules() -> Vec<&'static str> {
    vec![
        // The bridge learns the source MAC: it must be the port's own.
        "iifname . ether saddr != @port_mac drop",
        // Only untagged ARP, IPv4 and IPv6. This also drops 802.1Q/802.1ad frames, VID 0
        // included, whose inner ARP would otherwise be checked by no rule below.
        "ether type != { arp, ip, ip6 } drop",
        // ARP: Ethernet/IPv4 only, so the sender fields sit where the rules below read them.
        "arp htype != 1 drop",
        "arp ptype != ip drop",
        "arp hlen != 6 drop",
        "arp plen != 4 drop",
        "arp operation != { request, reply } drop",
        "iifname . arp saddr ether != @port_mac drop",
        // RFC 5227 address probes carry sender IP 0.0.0.0 and teach no one anything.
        "arp operation request arp saddr ip 0.0.0.0 accept",
        "iifname . arp saddr ip != @port_ipv4 drop",
        // IPv4: a DHCP client's DISCOVER/REQUEST before it has an address; never a DHCP server.
        "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
        "udp sport { 67, 547 } drop",
        "iifname . ip saddr != @port_ipv4 drop",
        // IPv6: containers are never routers.
        "icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } drop",
        // Duplicate address detection (from ::) only for the port's own addresses, plus the MLD
        // reports that accompany it.
        "ip6 saddr :: icmpv6 type nd-neighbor-solicit iifname . @th,64,128 != @port_nd_target drop",
        "ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept",
        "iifname . ip6 saddr != @port_ipv6 drop",
        // Neighbour advertisements: only for the port's own addresses, with no option or exactly
        // one target link-layer option carrying its MAC.
        "icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @port_nd_target drop",
        "icmpv6 type nd-neighbor-advert ip6 length != { 24, 32 } drop",
        "icmpv6 type nd-neighbor-advert ip6 length 32 iifname . @th,192,64 != @port_na_option drop",
        // Solicitations teach the receiver the sender's MAC through the source link-layer
        // option: it must be the port's own.
        "icmpv6 type nd-neighbor-solicit ip6 length != { 24, 32 } drop",
        "icmpv6 type nd-neighbor-solicit ip6 length 32 iifname . @th,192,64 != @port_ns_option drop",
        "icmpv6 type nd-router-solicit ip6 length != { 8, 16 } drop",
        "icmpv6 type nd-router-solicit ip6 length 16 iifname . @th,64,64 != @port_rs_option drop",
    ]
}

/// The base chain's only rule.
pub const BASE_RULE: &str = "iifname @ports jump guard";
const BASE_CHAIN_SPEC: &str = "type filter hook prerouting priority filter; policy accept;";

/// The whole table, replacing any previous one in the same transaction (`add` makes the `delete`
/// safe when no table exists yet). Applied with one `nft -f`, it is all-or-nothing.
pub fn render_table(bridge: &str, ports: &[&PortBinding]) -> String {
    let table = table_name(bridge);
    let mut out = format!(
        "# watertight net guard for bridge {bridge}\nadd table bridge {table}\ndelete table bridge {table}\ntable bridge {table} {{\n"
    );
    for set in SETS {
        let _ = writeln!(out, "\tset {} {{\n\t\t{}", set.name, set.key);
        let elems: Vec<String> = ports.iter().flat_map(|p| (set.elements)(p)).collect();
        if !elems.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", elems.join(", "));
        }
        out.push_str("\t}\n");
    }
    let _ = writeln!(out, "\tchain {GUARD_CHAIN} {{");
    for rule in guard_rules() {
        let _ = writeln!(out, "\t\t{rule}");
    }
    out.push_str("\t}\n");
    let _ = writeln!(
        out,
        "\tchain {BASE_CHAIN} {{\n\t\t{BASE_CHAIN_SPEC}\n\t\t{BASE_RULE}\n\t}}\n}}"
    );
    out
}

/// Removes the table whatever it holds (no error if it is absent).
pub fn render_removal(bridge: &str) -> String {
    let table = table_name(bridge);
    format!("add table bridge {table}\ndelete table bridge {table}\n")
}

/// Creates the table with no ports, for a bridge that has no guard yet.
pub fn render_skeleton(bridge: &str) -> String {
    render_table(bridge, &[])
        .lines()
        .filter(|l| !l.starts_with("delete table"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn port_elements(bridge: &str, port: &PortBinding, verb: &str) -> String {
    let table = table_name(bridge);
    let mut out = String::new();
    // `ports` last on add (the port is guarded only once its facts are in), first on delete.
    let mut order: Vec<&SetSpec> = SETS.iter().collect();
    if verb == "add" {
        order.rotate_left(1);
    }
    for set in order {
        let elems = (set.elements)(port);
        if !elems.is_empty() {
            let _ = writeln!(
                out,
                "{verb} element bridge {table} {} {{ {} }}",
                set.name,
                elems.join(", ")
            );
        }
    }
    out
}

/// Adds one port to an existing table, in one transaction.
pub fn render_add_port(bridge: &str, port: &PortBinding) -> String {
    port_elements(bridge, port, "add")
}

/// Removes one port's elements from the table, in one transaction.
pub fn render_remove_port(bridge: &str, port: &PortBinding) -> String {
    port_elements(bridge, port, "delete")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> PortBinding {
        PortBinding {
            iface: "veth-dns".into(),
            mac: "02:42:ac:11:00:35".parse().unwrap(),
            ipv4: vec!["10.0.0.53".parse().unwrap()],
            ipv6: vec!["fd00::53".parse().unwrap()],
        }
    }

    #[test]
    fn names_are_injective_identifiers() {
        assert_eq!(table_name("br0"), "watertight_br0");
        assert_eq!(table_name("br-0"), "watertight_br_2d0");
        assert_ne!(table_name("a-b"), table_name("a_b"));
    }

    #[test]
    fn table_holds_each_fact_of_the_port() {
        let p = port();
        let text = render_table("br0", &[&p]);
        assert!(text.contains("\"veth-dns\" . 02:42:ac:11:00:35"), "{text}");
        assert!(text.contains("\"veth-dns\" . 10.0.0.53"));
        // The link-local address derived from the MAC is allowed as a source and ND target.
        assert!(text.contains("\"veth-dns\" . fe80::42:acff:fe11:35"));
        assert!(text.contains("\"veth-dns\" . 0xfe800000000000000042acfffe110035"));
        assert!(text.contains("\"veth-dns\" . 0x02010242ac110035"));
        assert!(text.contains("hook prerouting"));
        assert!(text.contains(BASE_RULE));
    }

    #[test]
    fn empty_table_has_empty_sets() {
        let text = render_table("br0", &[]);
        assert!(!text.contains("elements"));
    }

    #[test]
    fn add_and_remove_touch_the_same_elements() {
        let mut p = port();
        p.ipv4.clear();
        let add = render_add_port("br0", &p);
        let del = render_remove_port("br0", &p);
        assert!(!add.contains("port_ipv4"), "no empty element list: {add}");
        assert!(
            add.lines().last().unwrap().contains(" ports "),
            "ports last on add: {add}"
        );
        assert!(
            del.lines().next().unwrap().contains(" ports "),
            "ports first on delete: {del}"
        );
        assert_eq!(add.lines().count(), del.lines().count());
    }
}
