//! What must survive between processes: the ports that running sandboxes added to a bridge's
//! guard (so re-applying the bindings keeps them), and a lock that serialises every change to one
//! bridge's table across processes.

use crate::bindings::PortBinding;
use crate::error::{Error, Result};
use crate::ruleset::table_name;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::path::PathBuf;

/// Where records live; under /run so they vanish at reboot, as the tables do.
pub const STATE_ROOT: &str = "/run/watertight/net";

fn bridge_dir(bridge: &str) -> PathBuf {
    PathBuf::from(STATE_ROOT).join(table_name(bridge))
}

/// Exclusive lock over every bridge guard on this host, released on drop. One lock on the state
/// directory itself (rather than a file per bridge) leaves no lock files behind; changes are rare
/// and short, so bridges never wait long on each other.
pub struct BridgeLock(#[allow(dead_code)] Flock<File>);

/// Takes the host-wide bridge-guard lock (the bridge is not used: one lock for all).
pub fn lock(_bridge: &str) -> Result<BridgeLock> {
    fs::create_dir_all(STATE_ROOT)
        .map_err(|e| Error::io(format!("cannot create {STATE_ROOT}"), e))?;
    let dir =
        File::open(STATE_ROOT).map_err(|e| Error::io(format!("cannot open {STATE_ROOT}"), e))?;
    Flock::lock(dir, FlockArg::LockExclusive)
        .map(BridgeLock)
        .map_err(|(_, errno)| {
            Error::io(
                format!("cannot lock {STATE_ROOT}"),
                std::io::Error::from(errno),
            )
        })
}

/// Records a sandbox port's binding.
pub fn save_sandbox_port(bridge: &str, port: &PortBinding) -> Result<()> {
    let dir = bridge_dir(bridge);
    fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let path = dir.join(format!("{}.json", port.iface));
    let text = serde_json::to_string(port).expect("a binding always serialises");
    fs::write(&path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Forgets a sandbox port (no error if it was never recorded).
pub fn forget_sandbox_port(bridge: &str, iface: &str) -> Result<()> {
    let path = bridge_dir(bridge).join(format!("{iface}.json"));
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }?;
    // Drop the directory once empty; a concurrent writer holds the bridge lock, so this is safe.
    let _ = fs::remove_dir(bridge_dir(bridge));
    Ok(())
}

/// Forgets every sandbox port of a bridge.
pub fn forget_bridge(bridge: &str) -> Result<()> {
    let dir = bridge_dir(bridge);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", dir.display()), e)),
    }
}

/// The sandbox ports recorded for a bridge. Unreadable records are skipped: they can only come
/// from a crash mid-write, and the port they describe is gone with its sandbox.
pub fn sandbox_ports(bridge: &str) -> Result<Vec<PortBinding>> {
    let dir = bridge_dir(bridge);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", dir.display()), e)),
    };
    let mut ports = Vec::new();
    for entry in entries.flatten() {
        if let Ok(text) = fs::read_to_string(entry.path()) {
            if let Ok(port) = serde_json::from_str::<PortBinding>(&text) {
                ports.push(port);
            }
        }
    }
    ports.sort_by(|a, b| a.iface.cmp(&b.iface));
    Ok(ports)
}

const AUTO_MARKER: &str = "created-by-sandbox";

/// Notes that the table was created by a sandbox port rather than by `net guard`, so the last
/// sandbox port to leave removes it again.
pub fn mark_auto_table(bridge: &str) -> Result<()> {
    let dir = bridge_dir(bridge);
    fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let path = dir.join(AUTO_MARKER);
    fs::write(&path, b"").map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Whether a sandbox port created the bridge's table (so the last one to leave removes it).
pub fn is_auto_table(bridge: &str) -> bool {
    bridge_dir(bridge).join(AUTO_MARKER).exists()
}

/// `net guard` took ownership of the table.
pub fn clear_auto_table(bridge: &str) -> Result<()> {
    let path = bridge_dir(bridge).join(AUTO_MARKER);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }?;
    let _ = fs::remove_dir(bridge_dir(bridge));
    Ok(())
}
