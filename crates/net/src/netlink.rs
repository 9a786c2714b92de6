//! rtnetlink work: finding bridges and their ports, veth pairs, addresses and neighbour entries.
//! Each call opens its own netlink socket on the calling thread, so it acts in that thread's
//! network namespace (see [`crate::netns`]).

use crate::error::{Error, Result};
use crate::mac::MacAddr;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::{Handle, LinkUnspec, LinkVeth};
use std::future::Future;
use std::net::IpAddr;

/// Runs one netlink conversation on a private single-threaded runtime.
pub(crate) fn with_handle<T, F, Fut>(work: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::io("cannot start the netlink runtime", e))?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::io("cannot open a netlink socket", e))?;
        let task = tokio::spawn(conn);
        let out = work(handle).await;
        task.abort();
        out
    })
}

/// What the guard needs to know about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// The MAC address, for interfaces that have one.
    pub mac: Option<MacAddr>,
    /// Index of the bridge (or other controller) the interface is a port of.
    pub controller: Option<u32>,
    /// Whether the interface is itself a bridge.
    pub is_bridge: bool,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: None,
            controller: None,
            is_bridge: false,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Address(a) => link.mac = MacAddr::try_from(a.as_slice()).ok(),
                LinkAttribute::Controller(c) => link.controller = Some(*c),
                LinkAttribute::LinkInfo(infos) => {
                    link.is_bridge = infos
                        .iter()
                        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)))
                }
                _ => {}
            }
        }
        link
    }
}

/// Every interface in the calling thread's namespace.
pub fn links() -> Result<Vec<Link>> {
    with_handle(|h| async move {
        let msgs: Vec<LinkMessage> = h
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("list links", e))?;
        Ok(msgs.iter().map(Link::from_message).collect())
    })
}

/// The bridge called `name`, or why it cannot be guarded.
pub fn find_bridge<'a>(links: &'a [Link], name: &str) -> Result<&'a Link> {
    let link = links
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| Error::UnknownBridge(name.to_string()))?;
    if !link.is_bridge {
        return Err(Error::NotABridge(name.to_string()));
    }
    Ok(link)
}

/// Checks that `iface` exists and is a port of `bridge`.
pub fn require_port(links: &[Link], bridge: &Link, iface: &str) -> Result<()> {
    let link = links
        .iter()
        .find(|l| l.name == iface)
        .ok_or_else(|| Error::MissingPort {
            iface: iface.to_string(),
            bridge: bridge.name.clone(),
        })?;
    if link.controller == Some(bridge.index) {
        return Ok(());
    }
    let actual = match link.controller {
        None => "it has no controller".to_string(),
        Some(i) => match links.iter().find(|l| l.index == i) {
            Some(c) => format!("it is on {:?}", c.name),
            None => format!("its controller is interface #{i}"),
        },
    };
    Err(Error::PortNotOnBridge {
        iface: iface.to_string(),
        bridge: bridge.name.clone(),
        actual,
    })
}

/// Creates a veth pair with `peer` carrying `peer_mac`, leaving both ends down.
pub fn create_veth(host: &str, peer: &str, peer_mac: MacAddr) -> Result<()> {
    with_handle(|h| async move {
        h.link()
            .add(LinkVeth::new(host, peer).build())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("create veth pair {host}/{peer}"), e))?;
        let peer_index = index_of(&h, peer).await?;
        h.link()
            .set(
                LinkUnspec::new_with_index(peer_index)
                    .address(peer_mac.octets().to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set MAC of {peer}"), e))
    })
}

async fn index_of(h: &Handle, name: &str) -> Result<u32> {
    let msgs: Vec<LinkMessage> = h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_collect()
        .await
        .map_err(|e| Error::netlink(format!("find interface {name}"), e))?;
    msgs.first()
        .map(|m| m.header.index)
        .ok_or_else(|| Error::InvalidRequest(format!("interface {name} vanished")))
}

/// Puts `iface` on bridge `bridge` and brings it up.
pub fn attach_to_bridge(iface: &str, bridge_index: u32) -> Result<()> {
    with_handle(|h| async move {
        let index = index_of(&h, iface).await?;
        h.link()
            .set(
                LinkUnspec::new_with_index(index)
                    .controller(bridge_index)
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("attach {iface} to the bridge"), e))
    })
}

/// Moves `iface` into the network namespace of process `pid`.
pub fn move_to_pid(iface: &str, pid: i32) -> Result<()> {
    let pid =
        u32::try_from(pid).map_err(|_| Error::InvalidRequest(format!("bad child pid {pid}")))?;
    with_handle(|h| async move {
        let index = index_of(&h, iface).await?;
        h.link()
            .set(LinkUnspec::new_with_index(index).setns_by_pid(pid).build())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("move {iface} into the namespace of pid {pid}"), e))
    })
}

/// Deletes `iface` (for a veth, both ends). Returns false if it did not exist.
pub fn delete_link(iface: &str) -> Result<bool> {
    with_handle(|h| async move {
        let msgs: Vec<LinkMessage> = match h
            .link()
            .get()
            .match_name(iface.to_string())
            .execute()
            .try_collect()
            .await
        {
            Ok(m) => m,
            Err(_) => return Ok(false),
        };
        let Some(m) = msgs.first() else {
            return Ok(false);
        };
        h.link()
            .del(m.header.index)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete {iface}"), e))?;
        Ok(true)
    })
}

/// Inside a sandbox's namespace: renames `iface` to `new_name`, adds the addresses, brings it and
/// loopback up.
pub fn configure_inside(iface: &str, new_name: &str, addresses: &[ipnet::IpNet]) -> Result<()> {
    with_handle(|h| async move {
        let index = index_of(&h, iface).await?;
        if iface != new_name {
            h.link()
                .set(
                    LinkUnspec::new_with_index(index)
                        .name(new_name.to_string())
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("rename {iface} to {new_name}"), e))?;
        }
        for net in addresses {
            h.address()
                .add(index, net.addr(), net.prefix_len())
                .execute()
                .await
                .map_err(|e| Error::netlink(format!("add address {net} to {new_name}"), e))?;
        }
        for i in [index_of(&h, "lo").await?, index] {
            h.link()
                .set(LinkUnspec::new_with_index(i).up().build())
                .execute()
                .await
                .map_err(|e| Error::netlink("bring interfaces up", e))?;
        }
        Ok(())
    })
}

/// Installs permanent neighbour entries on `iface`, replacing any existing entry for the address.
pub fn add_permanent_neighbours(iface: &str, entries: &[(IpAddr, MacAddr)]) -> Result<()> {
    with_handle(|h| async move {
        let index = index_of(&h, iface).await?;
        for (ip, mac) in entries {
            h.neighbours()
                .add(index, *ip)
                .link_layer_address(&mac.octets())
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(|e| {
                    Error::netlink(format!("add neighbour {ip} lladdr {mac} on {iface}"), e)
                })?;
        }
        Ok(())
    })
}

/// One IPv4/IPv6 neighbour cache entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Neighbour {
    /// The interface the entry is on.
    pub ifindex: u32,
    /// The neighbour's address.
    pub ip: IpAddr,
    /// The neighbour's link-layer address, once resolved.
    pub mac: Option<MacAddr>,
    /// The entry's NUD state (permanent, reachable, stale, ...).
    pub state: String,
}

fn neighbour_from(msg: &NeighbourMessage) -> Option<Neighbour> {
    let mut ip = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac = MacAddr::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    Some(Neighbour {
        ifindex: msg.header.ifindex,
        ip: ip?,
        mac,
        state: msg.header.state.to_string(),
    })
}

/// Every IPv4 and IPv6 neighbour entry in the calling thread's namespace.
pub fn neighbours() -> Result<Vec<Neighbour>> {
    with_handle(|h| async move {
        let msgs: Vec<NeighbourMessage> = h
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("list neighbours", e))?;
        Ok(msgs.iter().filter_map(neighbour_from).collect())
    })
}
