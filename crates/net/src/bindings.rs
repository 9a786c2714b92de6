//! The bindings file (`ports.toml`): which MAC and IP addresses each bridge port owns.
//!
//! ```toml
//! [[port]]
//! iface = "veth-dns"
//! mac = "02:42:ac:11:00:35"
//! ipv4 = ["10.0.0.53"]
//! ipv6 = ["fd00::53"]
//! ```

use crate::error::{Error, Result};
use crate::mac::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// What one bridge port may claim to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortBinding {
    /// The bridge port's interface name (the host end of a container's veth).
    pub iface: String,
    /// The only source MAC the port may use (Ethernet and ARP sender).
    pub mac: MacAddr,
    /// IPv4 addresses the port may use as source (and answer ARP for).
    #[serde(default)]
    pub ipv4: Vec<Ipv4Addr>,
    /// Global/ULA addresses; the EUI-64 link-local address of `mac` is always allowed as well.
    #[serde(default)]
    pub ipv6: Vec<Ipv6Addr>,
}

impl PortBinding {
    /// The IPv6 sources the port may use: its declared addresses plus its EUI-64 link-local.
    pub fn ipv6_sources(&self) -> Vec<Ipv6Addr> {
        let mut all = self.ipv6.clone();
        let ll = self.mac.eui64_link_local();
        if !all.contains(&ll) {
            all.push(ll);
        }
        all
    }

    /// Every IP address the port owns, for duplicate and neighbour checks.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ipv4
            .iter()
            .map(|a| IpAddr::V4(*a))
            .chain(self.ipv6_sources().into_iter().map(IpAddr::V6))
    }

    /// Checks one port on its own (names, MAC, addresses usable as a source).
    pub fn validate(&self) -> Result<()> {
        validate_ifname(&self.iface)?;
        let bad = |reason: String| Error::InvalidPort {
            iface: self.iface.clone(),
            reason,
        };
        if self.mac.is_multicast() || self.mac.is_zero() {
            return Err(bad(format!(
                "MAC {} is a group or zero address; give the port its own unicast MAC",
                self.mac
            )));
        }
        for a in &self.ipv4 {
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                return Err(bad(format!(
                    "{a} cannot be a source address; list the port's own unicast IPv4 addresses"
                )));
            }
        }
        for a in &self.ipv6 {
            if a.is_unspecified() || a.is_multicast() {
                return Err(bad(format!(
                    "{a} cannot be a source address; list the port's own unicast IPv6 addresses"
                )));
            }
        }
        Ok(())
    }
}

/// Interface names the ruleset can quote safely: what Linux allows, minus characters nft or a
/// shell would need escaping for.
pub fn validate_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-@+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidIfName(name.to_string()))
    }
}

/// All ports of one bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bindings {
    /// The ports, one `[[port]]` table each.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortBinding>,
}

impl Bindings {
    /// Parses and validates TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let bindings: Bindings = toml::from_str(text).map_err(|e| Error::Bindings {
            path: origin.to_string(),
            reason: one_line(&e.to_string()),
        })?;
        bindings.validate().map_err(|e| Error::Bindings {
            path: origin.to_string(),
            reason: e.to_string(),
        })?;
        Ok(bindings)
    }

    /// Reads, parses and validates a bindings file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read bindings file {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks each port and that no interface, MAC or address is claimed twice.
    pub fn validate(&self) -> Result<()> {
        let mut ifaces: HashMap<&str, ()> = HashMap::new();
        let mut macs: HashMap<MacAddr, &str> = HashMap::new();
        let mut addrs: HashMap<IpAddr, &str> = HashMap::new();
        for port in &self.ports {
            port.validate()?;
            if ifaces.insert(&port.iface, ()).is_some() {
                return Err(Error::InvalidPort {
                    iface: port.iface.clone(),
                    reason: "listed twice; merge its entries into one [[port]]".into(),
                });
            }
            if let Some(first) = macs.insert(port.mac, &port.iface) {
                return Err(Error::InvalidPort {
                    iface: port.iface.clone(),
                    reason: format!("MAC {} is already bound to port {first:?}", port.mac),
                });
            }
            for addr in port.addresses() {
                if let Some(first) = addrs.insert(addr, &port.iface) {
                    if first != port.iface {
                        return Err(Error::DuplicateAddress {
                            addr,
                            first: first.to_string(),
                            second: port.iface.clone(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The binding of interface `iface`, if it has one.
    pub fn port(&self, iface: &str) -> Option<&PortBinding> {
        self.ports.iter().find(|p| p.iface == iface)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[port]]
iface = "veth-dns"
mac = "02:42:ac:11:00:35"
ipv4 = ["10.0.0.53"]
ipv6 = ["fd00::53"]

[[port]]
iface = "veth-web"
mac = "02:42:ac:11:00:50"
ipv4 = ["10.0.0.80", "10.0.0.81"]
"#;

    #[test]
    fn parses_sample() {
        let b = Bindings::parse(SAMPLE, "ports.toml").unwrap();
        assert_eq!(b.ports.len(), 2);
        assert_eq!(b.ports[1].ipv4.len(), 2);
        assert!(b.ports[1].ipv6.is_empty());
        assert_eq!(
            b.ports[0].ipv6_sources(),
            vec![
                "fd00::53".parse::<Ipv6Addr>().unwrap(),
                "fe80::42:acff:fe11:35".parse().unwrap()
            ]
        );
    }

    fn err(text: &str) -> String {
        Bindings::parse(text, "ports.toml").unwrap_err().to_string()
    }

    #[test]
    fn names_the_fault() {
        let e = err(&SAMPLE.replace("02:42:ac:11:00:50", "02:42:ac:11:00"));
        assert!(
            e.contains("malformed MAC") && e.starts_with("ports.toml"),
            "{e}"
        );
        let e = err(&SAMPLE.replace("10.0.0.81", "10.0.0.53"));
        assert!(
            e.contains("10.0.0.53") && e.contains("veth-dns") && e.contains("veth-web"),
            "{e}"
        );
        let e = err(&SAMPLE.replace("10.0.0.81", "10.0.0.300"));
        assert!(e.contains("ports.toml"), "{e}");
        let e = err(&SAMPLE.replace("veth-web", "veth-dns"));
        assert!(e.contains("listed twice"), "{e}");
        let e = err(&SAMPLE.replace("02:42:ac:11:00:50", "02:42:ac:11:00:35"));
        assert!(e.contains("already bound"), "{e}");
        let e = err(&SAMPLE.replace("veth-web", "veth web"));
        assert!(e.contains("not usable"), "{e}");
        let e = err(&SAMPLE.replace("02:42:ac:11:00:50", "01:00:5e:00:00:01"));
        assert!(e.contains("group"), "{e}");
        let e = err(&SAMPLE.replace("ipv4 = [\"10.0.0.53\"]", "ipv4 = [\"10.0.0.53\"]\nvlan = 3"));
        assert!(e.contains("vlan"), "{e}");
        assert!(
            !err("[[port]]\niface = \"a\"\nmac = \"02:00:00:00:00:01\"\nipv6 = [\"ff02::1\"]")
                .is_empty()
        );
    }

    #[test]
    fn empty_file_guards_nothing() {
        assert!(Bindings::parse("", "x").unwrap().ports.is_empty());
    }
}
