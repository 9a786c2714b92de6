//! `watertight run --net bridge:BR`: the sandbox gets a guarded port on a bridge. Everything
//! happens in a network namespace this test creates (the bridge, a listener on it and the
//! supervisor), removed at the end. The supervisor enters it with `nsenter --net` only: `ip netns
//! exec` would also remount /sys and hide the cgroup hierarchies.

mod common;
use common::*;

use std::process::Command;

struct Netns(String);
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn sandbox_reaches_its_bridge_and_has_static_neighbours() {
    if !require_root("sandbox_reaches_its_bridge")
        || !require_tools(
            "sandbox_reaches_its_bridge",
            &["nft", "ip"],
            "nftables iproute2",
        )
    {
        return;
    }
    let ns = Netns(format!("wt-run-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    ip(&["-n", &ns.0, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &ns.0, "addr", "add", "10.213.77.1/24", "dev", "br0"]);
    ip(&["-n", &ns.0, "link", "set", "br0", "up"]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);

    // A listener on the bridge answers one line; the sandbox connects with bash's /dev/tcp.
    let script = format!(
        "python3 -c 'import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.settimeout(30); s.bind((\"10.213.77.1\", 7777)); s.listen(1); c,_=s.accept(); c.sendall(b\"hello-from-bridge\\n\")' >/dev/null 2>&1 & \
         for i in $(seq 100); do ss -Hltn 'sport = :7777' | grep -q . && break; sleep 0.1; done; \
         {wt} run --net bridge:br0 --ip 10.213.77.10/24 --static-neigh 10.213.77.53=02:42:ac:11:00:35 \
           -- /bin/bash -c 'exec 3<>/dev/tcp/10.213.77.1/7777; head -1 <&3; ip neigh show 10.213.77.53'; \
         echo rc=$?; nft list ruleset | grep -c wt || true; ip -o link show | grep -c veth || true",
        wt = env!("CARGO_BIN_EXE_watertight")
    );
    let o = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", ns.0))
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("hello-from-bridge"),
        "no traffic through the bridge: {out} {}",
        stderr(&o)
    );
    assert!(
        out.contains("02:42:ac:11:00:35") && out.contains("PERMANENT"),
        "static neighbour missing: {out}"
    );
    assert!(out.contains("rc=0"), "{out} {}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[lines.len() - 1].trim(),
        "0",
        "a veth outlived the sandbox: {out}"
    );
}

#[test]
fn network_flags_are_checked() {
    if !require_root("network_flags_are_checked") {
        return;
    }
    for (flags, needle) in [
        (vec!["--ip=10.0.0.2/24"], "--net bridge"),
        (vec!["--net=bridge:"], "expected none or bridge"),
        (vec!["--net=bridge:br0"], "--ip"),
        (vec!["--net=bridge:br0", "--ip=10.0.0.300/24"], "10.0.0.300"),
        (
            vec!["--net=bridge:no-such-br-wt", "--ip=10.213.78.2/24"],
            "no-such-br-wt",
        ),
    ] {
        let o = watertight()
            .arg("run")
            .args(&flags)
            .args(["--", "/bin/true"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{flags:?}: {}", stderr(&o));
    }
}
