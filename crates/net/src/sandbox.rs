//! A sandbox's port on a guarded bridge: a veth pair whose host end joins the bridge and whose
//! peer becomes the sandbox's interface, with the port's guard entry added before the port can
//! carry a frame and removed when the sandbox ends.

use crate::bindings::{validate_ifname, Bindings, PortBinding};
use crate::error::{Error, Result};
use crate::guard::{effective_ports, require_root};
use crate::mac::MacAddr;
use crate::netns::Netns;
use crate::{netlink, nft, ruleset, state};
use ipnet::IpNet;
use std::net::IpAddr;

/// What the sandbox supervisor asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPortRequest {
    /// The bridge to join (in the supervisor's network namespace).
    pub bridge: String,
    /// The sandbox's addresses with prefix length, e.g. 10.0.0.10/24, fd00::10/64.
    pub addresses: Vec<IpNet>,
    /// Permanent neighbour entries to install inside the sandbox (critical peers like DNS).
    pub static_neighbours: Vec<(IpAddr, MacAddr)>,
    /// Names the veth pair (hashed with the child pid); e.g. the sandbox id.
    pub name_hint: String,
    /// The sandbox interface's MAC; derived from `name_hint` and the pid when `None`.
    pub mac: Option<MacAddr>,
    /// The interface name inside the sandbox.
    pub inside_name: String,
}

impl SandboxPortRequest {
    /// A request for a port on `bridge` with `addresses`; interface names derive from `name_hint`.
    pub fn new(
        bridge: impl Into<String>,
        addresses: Vec<IpNet>,
        name_hint: impl Into<String>,
    ) -> Self {
        SandboxPortRequest {
            bridge: bridge.into(),
            addresses,
            static_neighbours: Vec::new(),
            name_hint: name_hint.into(),
            mac: None,
            inside_name: "eth0".into(),
        }
    }
}

/// Parses `IP=MAC` (the `--static-neigh` form), e.g. `10.0.0.53=02:42:ac:11:00:35`.
pub fn parse_static_neighbour(text: &str) -> Result<(IpAddr, MacAddr)> {
    let bad = || {
        Error::InvalidRequest(format!(
            "static neighbour {text:?} is not IP=MAC (e.g. 10.0.0.53=02:42:ac:11:00:35)"
        ))
    };
    let (ip, mac) = text.split_once('=').ok_or_else(bad)?;
    let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
    let mac: MacAddr = mac.trim().parse()?;
    if mac.is_multicast() || mac.is_zero() || ip.is_unspecified() || ip.is_multicast() {
        return Err(bad());
    }
    Ok((ip, mac))
}

/// Installs permanent neighbour entries on `iface` inside `netns`.
pub fn install_static_neighbours(
    netns: &Netns,
    iface: &str,
    entries: &[(IpAddr, MacAddr)],
) -> Result<()> {
    require_root("installing static neighbours")?;
    validate_ifname(iface)?;
    netns.run(|| netlink::add_permanent_neighbours(iface, entries))
}

/// FNV-1a: a stable, dependency-free spread of the hint into interface names and a MAC.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A live sandbox port. Dropping it removes it (errors then go to stderr); call
/// [`SandboxPort::remove`] to see them.
#[derive(Debug)]
pub struct SandboxPort {
    /// The bridge the port is on.
    pub bridge: String,
    /// The host end, on the bridge.
    pub host_iface: String,
    /// The interface name inside the sandbox.
    pub inside_iface: String,
    /// The sandbox interface's MAC.
    pub mac: MacAddr,
    /// The pid whose network namespace holds the inside end.
    pub child_pid: i32,
    /// What the guard allows this port.
    pub binding: PortBinding,
    /// The namespace the bridge lives in (where the port was attached), so removal acts there
    /// whichever thread drops the port.
    bridge_ns: std::fs::File,
    removed: bool,
}

/// Adds the port's guard entry, creating an empty guard table first if the bridge has none.
fn add_guard_entry(bridge: &str, port: &PortBinding) -> Result<()> {
    if !crate::guard::guard_exists(bridge)? {
        nft::apply(
            &ruleset::render_skeleton(bridge),
            &format!("create the guard of bridge {bridge}"),
        )?;
        state::mark_auto_table(bridge)?;
    }
    nft::apply(
        &ruleset::render_add_port(bridge, port),
        &format!("add port {} to the guard of bridge {bridge}", port.iface),
    )?;
    state::save_sandbox_port(bridge, port)
}

/// Removes the port's guard entry if present, and the table if a sandbox created it and this was
/// its last port. Call with the bridge lock held.
fn remove_guard_entry(bridge: &str, port: &PortBinding) -> Result<()> {
    let table = ruleset::table_name(bridge);
    if let Some(json) = nft::list_table_json(&table)? {
        let guarded = json["nftables"].as_array().is_some_and(|items| {
            items.iter().any(|i| {
                i["set"]["name"] == ruleset::PORT_SET
                    && i["set"]["elem"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|e| *e == port.iface.as_str()))
            })
        });
        if guarded {
            let script = ruleset::render_remove_port(bridge, port);
            let action = format!(
                "remove port {} from the guard of bridge {bridge}",
                port.iface
            );
            if nft::apply(&script, &action).is_err() {
                // Someone removed some of the port's elements by hand: delete what is left, one
                // element list at a time, and fail only if the port is still guarded.
                for line in script.lines() {
                    let _ = nft::apply(line, &action);
                }
                nft::apply(
                    &format!(
                        "delete element bridge {table} {} {{ \"{}\" }}",
                        ruleset::PORT_SET,
                        port.iface
                    ),
                    &action,
                )
                .or_else(|e| match nft::list_table_json(&table)? {
                    Some(j) if j.to_string().contains(&format!("\"{}\"", port.iface)) => Err(e),
                    _ => Ok(()),
                })?;
            }
        }
    }
    state::forget_sandbox_port(bridge, &port.iface)?;
    if state::is_auto_table(bridge) && state::sandbox_ports(bridge)?.is_empty() {
        nft::apply(
            &ruleset::render_removal(bridge),
            &format!("remove the guard of bridge {bridge}"),
        )?;
        state::clear_auto_table(bridge)?;
    }
    Ok(())
}

/// Gives process `child_pid` (already in its own network namespace, not yet running the workload)
/// a guarded port on `req.bridge`: a veth pair, host end on the bridge, peer moved into the child's
/// namespace with its addresses, up, loopback up and the static neighbours installed. The guard
/// entry goes in before the host end joins the bridge. On error everything done is undone.
pub fn attach_sandbox_port(req: &SandboxPortRequest, child_pid: i32) -> Result<SandboxPort> {
    require_root("attaching a sandbox to a bridge")?;
    validate_ifname(&req.bridge)?;
    validate_ifname(&req.inside_name)?;
    if child_pid <= 0 {
        return Err(Error::InvalidRequest(format!(
            "child pid {child_pid} is not a process"
        )));
    }
    let h = fnv1a(&[req.name_hint.as_bytes(), b"\0", &child_pid.to_le_bytes()]);
    let host_iface = format!("wth{:08x}", h as u32);
    let peer_iface = format!("wtc{:08x}", h as u32);
    let mac = req.mac.unwrap_or_else(|| {
        let b = (h >> 16).to_be_bytes();
        MacAddr([0x02, b[3], b[4], b[5], b[6], b[7]])
    });
    let mut binding = PortBinding {
        iface: host_iface.clone(),
        mac,
        ipv4: Vec::new(),
        ipv6: Vec::new(),
    };
    for net in &req.addresses {
        match net.addr() {
            IpAddr::V4(a) => binding.ipv4.push(a),
            IpAddr::V6(a) => binding.ipv6.push(a),
        }
    }
    binding.validate()?;
    for (ip, m) in &req.static_neighbours {
        parse_static_neighbour(&format!("{ip}={m}"))?;
    }

    let links = netlink::links()?;
    let bridge_link = netlink::find_bridge(&links, &req.bridge)?.clone();
    nft::probe()?;
    let lock = state::lock(&req.bridge)?;
    // The new port must not claim what another sandbox port on this bridge owns.
    let mut others = Bindings {
        ports: effective_ports(&req.bridge, &Bindings::default(), &links, &bridge_link)?,
    };
    others.ports.push(binding.clone());
    others.validate()?;

    let bridge_ns = crate::netns::current()?;
    netlink::create_veth(&host_iface, &peer_iface, mac)?;
    let port = SandboxPort {
        bridge: req.bridge.clone(),
        host_iface: host_iface.clone(),
        inside_iface: req.inside_name.clone(),
        mac,
        child_pid,
        binding: binding.clone(),
        bridge_ns,
        removed: false,
    };
    let setup = || -> Result<()> {
        add_guard_entry(&req.bridge, &binding)?;
        netlink::attach_to_bridge(&host_iface, bridge_link.index)?;
        netlink::move_to_pid(&peer_iface, child_pid)?;
        Netns::of_pid(child_pid).run(|| {
            netlink::configure_inside(&peer_iface, &req.inside_name, &req.addresses)?;
            netlink::add_permanent_neighbours(&req.inside_name, &req.static_neighbours)
        })
    };
    let outcome = setup();
    drop(lock);
    match outcome {
        Ok(()) => Ok(port),
        Err(e) => {
            // Undo (the port's Drop would too, but report the setup error, not a cleanup one).
            let _ = port.remove();
            Err(e)
        }
    }
}

impl SandboxPort {
    /// Removes the guard entry and the veth pair (if the sandbox's namespace already vanished, the
    /// pair is gone already).
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        self.teardown()
    }

    fn teardown(&self) -> Result<()> {
        let label = std::path::PathBuf::from(format!("(namespace of bridge {})", self.bridge));
        crate::netns::run_in(&self.bridge_ns, &label, || {
            let _lock = state::lock(&self.bridge)?;
            let guard = remove_guard_entry(&self.bridge, &self.binding);
            let link = netlink::delete_link(&self.host_iface);
            guard?;
            link.map(|_| ())
        })
    }
}

impl Drop for SandboxPort {
    fn drop(&mut self) {
        if !self.removed {
            self.removed = true;
            if let Err(e) = self.teardown() {
                eprintln!(
                    "watertight: removing sandbox port {} failed: {e}",
                    self.host_iface
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_neighbour_syntax() {
        let (ip, mac) = parse_static_neighbour("10.0.0.53=02:42:ac:11:00:35").unwrap();
        assert_eq!(ip.to_string(), "10.0.0.53");
        assert_eq!(mac.to_string(), "02:42:ac:11:00:35");
        assert!(parse_static_neighbour("fd00::53=02:42:ac:11:00:35").is_ok());
        for bad in [
            "10.0.0.53",
            "10.0.0.53=zz",
            "x=02:42:ac:11:00:35",
            "0.0.0.0=02:42:ac:11:00:35",
            "10.0.0.1=ff:ff:ff:ff:ff:ff",
        ] {
            assert!(parse_static_neighbour(bad).is_err(), "{bad}");
        }
    }
}
