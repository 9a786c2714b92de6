//! Renders the nftables `bridge` table that guards one bridge, as nft script text.
//!
//! Layout (one table per bridge, hooked at prerouting so a forged frame is dropped before the
//! bridge learns its source MAC):
//!
//! ```text
//! table bridge watertight_br0 {
//!     chain port_veth_2ddns { ...fixed list of checks for one port... }
//!     map ports { type ifname : verdict; elements = { "veth-dns" : jump port_veth_2ddns } }
//!     chain prerouting { type filter hook prerouting priority filter; policy accept;
//!                        iifname vmap @ports }
//! }
//! ```
//!
//! A frame costs one hash lookup in `ports` plus the fixed checks of its own port, however many
//! ports the bridge has. Ports not in the map (an uplink, the host) pass untouched.

use crate::bindings::PortBinding;
use std::fmt::Write;
use std::net::Ipv6Addr;

/// Name of the verdict map from ingress interface to its port chain.
pub const PORT_MAP: &str = "ports";
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

/// The chain that holds one port's checks.
pub fn port_chain_name(iface: &str) -> String {
    ident("port_", iface)
}

fn v6_int(a: &Ipv6Addr) -> String {
    format!("0x{:032x}", u128::from(*a))
}

fn set_of<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{{ {} }}", v.join(", "))
}

/// The rules of one port's chain, in order. A frame that survives them all returns to the base
/// chain, whose policy accepts it.
pub fn port_rules(port: &PortBinding) -> Vec<String> {
    let mac = port.mac;
    let mac_int = mac.as_u64();
    let v6 = port.ipv6_sources();
    let v6_ints = set_of(v6.iter().map(v6_int));
    let mut r = vec![
        // The bridge learns the source MAC: it must be the port's own.
        format!("ether saddr != {mac} drop"),
        // Only untagged ARP, IPv4 and IPv6. This also drops 802.1Q/802.1ad frames, VID 0 included,
        // whose inner ARP would otherwise be checked by no rule below.
        "ether type != { arp, ip, ip6 } drop".to_string(),
        // ARP: Ethernet/IPv4 only, so the sender fields below sit where the rules read them.
        "arp htype != 1 drop".to_string(),
        "arp ptype != ip drop".to_string(),
        "arp hlen != 6 drop".to_string(),
        "arp plen != 4 drop".to_string(),
        "arp operation != { request, reply } drop".to_string(),
        format!("arp saddr ether != {mac} drop"),
        // RFC 5227 address probes carry sender IP 0.0.0.0 and teach no one anything.
        "arp operation request arp saddr ip 0.0.0.0 accept".to_string(),
    ];
    if port.ipv4.is_empty() {
        r.push("ether type arp drop".to_string());
    } else {
        r.push(format!("arp saddr ip != {} drop", set_of(&port.ipv4)));
    }
    // IPv4: a DHCP client's DISCOVER/REQUEST before it has an address; never a DHCP server.
    r.push("ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept".into());
    r.push("udp sport { 67, 547 } drop".into());
    if port.ipv4.is_empty() {
        r.push("ether type ip drop".into());
    } else {
        r.push(format!("ip saddr != {} drop", set_of(&port.ipv4)));
    }
    // IPv6: containers are never routers.
    r.push("icmpv6 type { nd-router-advert, nd-redirect, router-renumbering } drop".into());
    // Duplicate address detection (from ::) only for the port's own addresses, plus the MLD
    // reports that accompany it.
    r.push(format!(
        "ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 != {v6_ints} drop"
    ));
    r.push("ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept".into());
    r.push(format!(
        "ip6 saddr != {} drop",
        set_of(v6.iter().map(|a| a.to_string()))
    ));
    // Neighbour advertisements: only for the port's own addresses (target at ICMPv6 byte 8),
    // with no option or exactly one target link-layer option (type 2, length 1) carrying its MAC.
    r.push(format!(
        "icmpv6 type nd-neighbor-advert @th,64,128 != {v6_ints} drop"
    ));
    r.push("icmpv6 type nd-neighbor-advert ip6 length != { 24, 32 } drop".into());
    r.push(format!(
        "icmpv6 type nd-neighbor-advert ip6 length 32 @th,192,64 != 0x0201{mac_int:012x} drop"
    ));
    // Solicitations teach the receiver the sender's MAC through the source link-layer option
    // (type 1): it must be the port's own.
    r.push("icmpv6 type nd-neighbor-solicit ip6 length != { 24, 32 } drop".into());
    r.push(format!(
        "icmpv6 type nd-neighbor-solicit ip6 length 32 @th,192,64 != 0x0101{mac_int:012x} drop"
    ));
    r.push("icmpv6 type nd-router-solicit ip6 length != { 8, 16 } drop".into());
    r.push(format!(
        "icmpv6 type nd-router-solicit ip6 length 16 @th,64,64 != 0x0101{mac_int:012x} drop"
    ));
    r
}

fn push_port_chain(out: &mut String, port: &PortBinding) {
    let _ = writeln!(out, "\tchain {} {{", port_chain_name(&port.iface));
    for rule in port_rules(port) {
        let _ = writeln!(out, "\t\t{rule}");
    }
    out.push_str("\t}\n");
}

fn map_element(port: &PortBinding) -> String {
    format!("\"{}\" : jump {}", port.iface, port_chain_name(&port.iface))
}

const BASE_CHAIN_SPEC: &str = "type filter hook prerouting priority filter; policy accept;";

/// The whole table, replacing any previous one in the same transaction (`add` makes the `delete`
/// safe when no table exists yet). Applied with one `nft -f`, it is all-or-nothing.
pub fn render_table(bridge: &str, ports: &[&PortBinding]) -> String {
    let table = table_name(bridge);
    let mut out = format!(
        "# watertight net guard for bridge {bridge}\nadd table bridge {table}\ndelete table bridge {table}\ntable bridge {table} {{\n"
    );
    for port in ports {
        push_port_chain(&mut out, port);
    }
    let _ = writeln!(out, "\tmap {PORT_MAP} {{\n\t\ttype ifname : verdict");
    if !ports.is_empty() {
        let elems: Vec<String> = ports.iter().map(|p| map_element(p)).collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", elems.join(", "));
    }
    out.push_str("\t}\n");
    let _ = writeln!(
        out,
        "\tchain {BASE_CHAIN} {{\n\t\t{BASE_CHAIN_SPEC}\n\t\tiifname vmap @{PORT_MAP}\n\t}}\n}}"
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

/// Adds one port to an existing table: its chain, then its map entry, in one transaction.
pub fn render_add_port(bridge: &str, port: &PortBinding) -> String {
    let table = table_name(bridge);
    let chain = port_chain_name(&port.iface);
    let mut out = format!("add chain bridge {table} {chain}\n");
    for rule in port_rules(port) {
        let _ = writeln!(out, "add rule bridge {table} {chain} {rule}");
    }
    let _ = writeln!(
        out,
        "add element bridge {table} {PORT_MAP} {{ {} }}",
        map_element(port)
    );
    out
}

/// Removes one port from the table: map entry first (it references the chain), then the chain.
pub fn render_remove_port(bridge: &str, iface: &str) -> String {
    let table = table_name(bridge);
    let chain = port_chain_name(iface);
    format!(
        "delete element bridge {table} {PORT_MAP} {{ \"{iface}\" }}\nflush chain bridge {table} {chain}\ndelete chain bridge {table} {chain}\n"
    )
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
        assert_eq!(port_chain_name("veth-dns"), "port_veth_2ddns");
        assert_ne!(port_chain_name("a-b"), port_chain_name("a_b"));
    }

    #[test]
    fn table_contains_port_checks_and_map() {
        let p = port();
        let text = render_table("br0", &[&p]);
        assert!(text.contains("ether saddr != 02:42:ac:11:00:35 drop"));
        assert!(text.contains("arp saddr ip != { 10.0.0.53 } drop"));
        assert!(
            text.contains("@th,192,64 != 0x02010242ac110035 drop"),
            "{text}"
        );
        assert!(text.contains("\"veth-dns\" : jump port_veth_2ddns"));
        assert!(text.contains("hook prerouting"));
        // The link-local address derived from the MAC is allowed as a source.
        assert!(text.contains("fe80::42:acff:fe11:35"));
    }

    #[test]
    fn port_without_ipv4_drops_ipv4() {
        let mut p = port();
        p.ipv4.clear();
        let rules = port_rules(&p);
        assert!(rules.contains(&"ether type ip drop".to_string()));
        assert!(rules.contains(&"ether type arp drop".to_string()));
    }
}
