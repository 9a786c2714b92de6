//! Apply, check, tamper, remove; refusals that apply nothing; sandbox ports joining and leaving.

mod common;

use common::*;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command};
use std::time::Duration;
use watertight_net::{
    attach_sandbox_port, check_guard, remove_guard, Bindings, Error, FindingKind, IpNet, Netns,
    SandboxPortRequest,
};

fn nft_tables(t: &Topology) -> String {
    sh(&["ip", "netns", "exec", &t.bridge_ns, "nft", "list", "tables"])
}

fn check(t: &Topology, bindings: &Bindings, namespaces: &[Netns]) -> watertight_net::CheckReport {
    let bridge = t.bridge.clone();
    t.bridge_netns()
        .run(|| check_guard(&bridge, bindings, namespaces))
        .expect("check runs")
}

fn kinds(report: &watertight_net::CheckReport) -> Vec<FindingKind> {
    report.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn check_sees_tampering_and_poisoning_and_remove_leaves_nothing() {
    skip_unless_able!();
    let t = Topology::build();
    let bindings = t.bindings();
    let report = check(&t, &bindings, &[]);
    assert_eq!(kinds(&report), vec![FindingKind::TableMissing]);

    t.apply_guard();
    let report = check(&t, &bindings, &[]);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(
        report.rules_compared,
        watertight_net::ruleset::guard_rules().len() + 1
    );

    // Someone deletes the MAC rule and marks an extra port as guarded.
    let table = watertight_net::ruleset::table_name(&t.bridge);
    let listing = sh(&[
        "ip",
        "netns",
        "exec",
        &t.bridge_ns,
        "nft",
        "-a",
        "list",
        "chain",
        "bridge",
        &table,
        "guard",
    ]);
    let handle = listing
        .lines()
        .find(|l| l.contains("iifname . ether saddr != @port_mac drop"))
        .and_then(|l| l.rsplit("handle ").next())
        .expect("rule listed with handle")
        .trim()
        .to_string();
    sh(&[
        "ip",
        "netns",
        "exec",
        &t.bridge_ns,
        "nft",
        "delete",
        "rule",
        "bridge",
        &table,
        "guard",
        "handle",
        &handle,
    ]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &t.bridge_ns,
        "nft",
        "delete",
        "element",
        "bridge",
        &table,
        "port_mac",
        "{ \"p-dns\" . 02:13:00:00:00:53 }",
    ]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &t.bridge_ns,
        "nft",
        "add",
        "element",
        "bridge",
        &table,
        "ports",
        "{ \"p-evil\" }",
    ]);
    let report = check(&t, &bindings, &[]);
    assert_eq!(
        kinds(&report),
        vec![
            FindingKind::RuleMissing,
            FindingKind::ElementMissing,
            FindingKind::ElementUnexpected
        ],
        "{:?}",
        report.findings
    );
    assert_eq!(report.findings[0].subject, "guard");
    assert_eq!(
        report.findings[0].detail,
        "iifname . ether saddr != @port_mac drop"
    );
    assert_eq!(report.findings[1].subject, "port_mac");
    assert!(
        report.findings[1].detail.contains("02:13:00:00:00:53"),
        "{:?}",
        report.findings[1]
    );
    assert_eq!(report.findings[2].subject, "ports");

    // A neighbour entry for the DNS host with the attacker's MAC, in the victim's namespace.
    sh(&[
        "ip",
        "-n",
        &t.victim.ns,
        "neigh",
        "replace",
        &DNS_V4.to_string(),
        "lladdr",
        ATT_MAC,
        "dev",
        "eth0",
        "nud",
        "stale",
    ]);
    let report = check(
        &t,
        &bindings,
        &[Netns::from_arg(&t.victim.ns), Netns::from_arg(&t.dns.ns)],
    );
    let poisoned: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::NeighbourMismatch)
        .collect();
    assert_eq!(poisoned.len(), 1, "{:?}", report.findings);
    assert!(poisoned[0].detail.contains("10.213.0.53") && poisoned[0].detail.contains(ATT_MAC));
    assert!(poisoned[0].subject.ends_with(&t.victim.ns));

    // Re-applying repairs the table; removing leaves no table and no state.
    t.apply_guard();
    assert!(check(&t, &bindings, &[]).is_clean());
    let bridge = t.bridge.clone();
    t.bridge_netns().run(|| remove_guard(&bridge)).unwrap();
    assert_eq!(nft_tables(&t).trim(), "");
    assert!(!std::path::Path::new(watertight_net::state::STATE_ROOT)
        .join(&table)
        .exists());
    // Removing twice is fine.
    t.bridge_netns().run(|| remove_guard(&bridge)).unwrap();
}

#[test]
fn refused_bindings_apply_nothing() {
    skip_unless_able!();
    let t = Topology::build();
    let b = t.bridge_ns.clone();
    sh(&[
        "ip",
        "-n",
        &b,
        "link",
        "add",
        "stray",
        "type",
        "veth",
        "peer",
        "name",
        "stray-peer",
    ]);
    sh(&["ip", "-n", &b, "link", "add", "br-other", "type", "bridge"]);
    sh(&[
        "ip",
        "-n",
        &b,
        "link",
        "set",
        "stray-peer",
        "master",
        "br-other",
    ]);
    let apply = |bridge: &str, toml: &str| {
        let bindings = Bindings::parse(toml, "ports.toml").unwrap();
        let bridge = bridge.to_string();
        t.bridge_netns()
            .run(|| watertight_net::apply_guard(&bridge, &bindings))
    };
    let good = t.bindings_toml();

    let e = apply("nosuchbr", &good).unwrap_err();
    assert!(matches!(e, Error::UnknownBridge(_)), "{e}");
    let e = apply("p-dns", &good).unwrap_err();
    assert!(matches!(e, Error::NotABridge(_)), "{e}");
    let extra =
        |iface: &str, m: &str| format!("{good}[[port]]\niface = \"{iface}\"\nmac = \"{m}\"\n");
    let e = apply(&t.bridge, &extra("stray", "02:13:00:00:01:01")).unwrap_err();
    assert!(
        matches!(e, Error::PortNotOnBridge { .. }) && e.to_string().contains("no controller"),
        "{e}"
    );
    let e = apply(&t.bridge, &extra("stray-peer", "02:13:00:00:01:02")).unwrap_err();
    assert!(e.to_string().contains("br-other"), "{e}");
    let e = apply(&t.bridge, &extra("ghost0", "02:13:00:00:01:03")).unwrap_err();
    assert!(matches!(e, Error::MissingPort { .. }), "{e}");
    assert_eq!(nft_tables(&t).trim(), "", "a refused guard left a table");

    // A refused re-apply keeps the guard that was in place.
    t.apply_guard();
    apply(&t.bridge, &extra("ghost0", "02:13:00:00:01:03")).unwrap_err();
    assert!(check(&t, &t.bindings(), &[]).is_clean());
}

/// A process in its own network namespace, killed on drop.
struct Sandbox(Child);

impl Sandbox {
    fn start(in_ns: &Netns) -> Sandbox {
        let child = in_ns
            .run(|| {
                Ok(Command::new("unshare")
                    .args(["--net", "sleep", "60"])
                    .spawn()
                    .unwrap())
            })
            .unwrap();
        let pid = child.id() as i32;
        // Wait until unshare has entered its new namespace.
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert!(eventually(Duration::from_secs(2), || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|l| l != mine)
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
        }));
        Sandbox(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn netns(&self) -> Netns {
        Netns::of_pid(self.pid())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn table_json(t: &Topology) -> Option<String> {
    let table = watertight_net::ruleset::table_name(&t.bridge);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.bridge_ns,
            "nft",
            "-j",
            "list",
            "table",
            "bridge",
            &table,
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sandbox_request(t: &Topology) -> SandboxPortRequest {
    let mut req = SandboxPortRequest::new(
        t.bridge.clone(),
        vec![
            "10.213.0.20/24".parse::<IpNet>().unwrap(),
            "fd00:213::20/64".parse().unwrap(),
        ],
        "test-sandbox",
    );
    req.static_neighbours = vec![(IpAddr::V4(DNS_V4), mac(DNS_MAC))];
    req
}

#[test]
fn sandbox_port_is_configured_guarded_and_removed() {
    skip_unless_able!();
    let t = Topology::build();
    let sandbox = Sandbox::start(&t.bridge_netns());
    let req = sandbox_request(&t);
    let port = t
        .bridge_netns()
        .run(|| attach_sandbox_port(&req, sandbox.pid()))
        .unwrap();

    // Inside: eth0 with its address, up, and the permanent DNS entry.
    let inside = sh(&[
        "nsenter",
        &format!("--net=/proc/{}/ns/net", sandbox.pid()),
        "ip",
        "-o",
        "addr",
        "show",
        "dev",
        "eth0",
    ]);
    assert!(
        inside.contains("10.213.0.20/24") && inside.contains("fd00:213::20/64"),
        "{inside}"
    );
    let neigh = sandbox
        .netns()
        .run(watertight_net::netlink::neighbours)
        .unwrap();
    let dns = neigh
        .iter()
        .find(|n| n.ip == IpAddr::V4(DNS_V4))
        .expect("static DNS entry");
    assert_eq!(
        (dns.mac, dns.state.as_str()),
        (Some(mac(DNS_MAC)), "permanent")
    );
    // It talks to the DNS host.
    let server: SocketAddr = (DNS_V4, 7).into();
    assert!(round_trip(
        &sandbox.netns(),
        &Netns::from_arg(&t.dns.ns),
        server,
        server
    ));

    // Its guard entry is in a table the sandbox created, and it cannot claim the DNS address.
    let json = table_json(&t).expect("table created for the sandbox port");
    assert!(json.contains(&port.host_iface));
    assert!(t.reach(&t.victim, IpAddr::V4(DNS_V4)));
    let m = port.mac.octets();
    inject_from(
        &sandbox.netns(),
        &[arp(m, BROADCAST, ARP_REQUEST, m, DNS_V4, [0; 6], DNS_V4)],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        t.neighbour_mac(&t.victim, IpAddr::V4(DNS_V4)),
        Some(mac(DNS_MAC))
    );

    // Leaving removes the entry, the veth, and the table it created.
    let host_iface = port.host_iface.clone();
    port.remove().unwrap();
    assert!(table_json(&t).is_none(), "auto-created table left behind");
    assert!(!try_sh(&[
        "ip",
        "-n",
        &t.bridge_ns,
        "link",
        "show",
        &host_iface
    ]));
}

#[test]
fn sandbox_port_survives_guard_reapply_and_leaves_bindings_alone() {
    skip_unless_able!();
    let t = Topology::build();
    t.apply_guard();
    let sandbox = Sandbox::start(&t.bridge_netns());
    let req = sandbox_request(&t);
    let port = t
        .bridge_netns()
        .run(|| attach_sandbox_port(&req, sandbox.pid()))
        .unwrap();
    // `net check` counts the sandbox's port as expected, before and after a re-apply.
    assert!(check(&t, &t.bindings(), &[]).is_clean());
    t.apply_guard();
    let report = check(&t, &t.bindings(), &[]);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.ports, 4);
    assert!(table_json(&t).unwrap().contains(&port.host_iface));

    // A second sandbox may not take the first one's address.
    let second = Sandbox::start(&t.bridge_netns());
    let mut clash = sandbox_request(&t);
    clash.name_hint = "other".into();
    let e = t
        .bridge_netns()
        .run(|| attach_sandbox_port(&clash, second.pid()))
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateAddress { .. }), "{e}");
    let links = sh(&["ip", "-n", &t.bridge_ns, "-o", "link", "show"]);
    assert_eq!(
        links.matches("wth").count(),
        1,
        "refused port left a veth: {links}"
    );

    // Dropping the port (as on a supervisor error path) removes only its own entry.
    drop(port);
    let report = check(&t, &t.bindings(), &[]);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.ports, 3);
}

#[test]
fn sandbox_port_on_unknown_bridge_or_dead_child_leaves_nothing() {
    skip_unless_able!();
    let t = Topology::build();
    let mut req = sandbox_request(&t);
    req.bridge = "nosuchbr".into();
    let e = t
        .bridge_netns()
        .run(|| attach_sandbox_port(&req, std::process::id() as i32))
        .unwrap_err();
    assert!(matches!(e, Error::UnknownBridge(_)), "{e}");
    // A child that is gone by the time its port moves: everything created is undone.
    let req = sandbox_request(&t);
    let e = t
        .bridge_netns()
        .run(|| attach_sandbox_port(&req, i32::MAX - 7))
        .unwrap_err();
    assert!(e.to_string().contains("namespace"), "{e}");
    assert!(table_json(&t).is_none());
    let links = sh(&["ip", "-n", &t.bridge_ns, "-o", "link", "show"]);
    assert!(!links.contains("wth") && !links.contains("wtc"), "{links}");
}
