//! `net guard`: validates bindings against the live bridge and applies or removes its table.

use crate::bindings::{Bindings, PortBinding};
use crate::error::{Error, Result};
use crate::netlink::{self, Link};
use crate::{nft, ruleset, state};

pub(crate) fn require_root(what: &'static str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot { what })
    }
}

/// The ports a guard for `bridge` covers: the bindings plus the ports running sandboxes added
/// (those whose interface is still on the bridge). Fails if a sandbox port collides with the
/// bindings.
pub(crate) fn effective_ports(
    bridge: &str,
    bindings: &Bindings,
    links: &[Link],
    bridge_link: &Link,
) -> Result<Vec<PortBinding>> {
    let mut all = bindings.clone();
    for port in state::sandbox_ports(bridge)? {
        if netlink::require_port(links, bridge_link, &port.iface).is_ok()
            && bindings.port(&port.iface).is_none()
        {
            all.ports.push(port);
        }
    }
    all.validate()?;
    Ok(all.ports)
}

/// Replaces the guard table of `bridge` with one built from `bindings`, in one transaction.
/// Every port must exist and be on the bridge; on any error nothing is changed.
/// Returns the nft script that was applied.
pub fn apply_guard(bridge: &str, bindings: &Bindings) -> Result<String> {
    require_root("net guard")?;
    crate::bindings::validate_ifname(bridge)?;
    bindings.validate()?;
    let links = netlink::links()?;
    let bridge_link = netlink::find_bridge(&links, bridge)?;
    for port in &bindings.ports {
        netlink::require_port(&links, bridge_link, &port.iface)?;
    }
    nft::probe()?;
    let _lock = state::lock(bridge)?;
    let ports = effective_ports(bridge, bindings, &links, bridge_link)?;
    let refs: Vec<&PortBinding> = ports.iter().collect();
    let script = ruleset::render_table(bridge, &refs);
    nft::apply(&script, &format!("apply the guard of bridge {bridge}"))?;
    state::clear_auto_table(bridge)?;
    Ok(script)
}

/// The script `apply_guard` would apply, without touching the kernel or checking the bridge.
pub fn render_guard(bridge: &str, bindings: &Bindings) -> Result<String> {
    crate::bindings::validate_ifname(bridge)?;
    bindings.validate()?;
    let refs: Vec<&PortBinding> = bindings.ports.iter().collect();
    Ok(ruleset::render_table(bridge, &refs))
}

/// Removes the guard table of `bridge` and its sandbox-port records. Succeeds if there was none.
pub fn remove_guard(bridge: &str) -> Result<()> {
    require_root("net guard --remove")?;
    crate::bindings::validate_ifname(bridge)?;
    nft::probe()?;
    let _lock = state::lock(bridge)?;
    nft::apply(
        &ruleset::render_removal(bridge),
        &format!("remove the guard of bridge {bridge}"),
    )?;
    state::forget_bridge(bridge)
}

/// Whether this host can hold a guard: the whole guard table of a bridge with no ports (its
/// sets, chains and prerouting hook in the bridge family) is applied by `nft` in a scratch
/// network namespace that vanishes with it, so nothing of the host's ruleset changes. Needs
/// root (creating a network namespace).
pub fn probe_guard_support() -> Result<()> {
    require_root("the nftables bridge probe")?;
    crate::netns::in_scratch_netns(|| {
        nft::apply(
            &ruleset::render_skeleton("wtprobe0"),
            "apply a guard table in a scratch network namespace",
        )
    })
}

/// Whether a guard table exists for `bridge` in this namespace.
pub fn guard_exists(bridge: &str) -> Result<bool> {
    Ok(nft::list_table_json(&ruleset::table_name(bridge))?.is_some())
}
