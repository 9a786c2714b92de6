//! The plan as an OCI bundle runsc runs: `config.json` and a root directory, both in the run's
//! private work directory (a tmpfs of its own, in watertight's private mount namespace).
//!
//! What the namespace tier builds with mounts, gVisor gets as OCI mounts its Gofer serves:
//! the host-root default is an empty read-only root with each of `root.host_dirs` bound
//! read-only (merged-/usr symlinks reproduced as symlinks), hidden paths covered by an empty
//! read-only file or directory, /proc's masks as `maskedPaths`/`readonlyPaths`, a /tmp tmpfs
//! (in the Sentry's memory, so under the memory limit), the box, binds and secrets; the
//! process gets the plan's argv, environment, working directory, uid/gid and rlimits, no
//! capabilities and no_new_privs. The network is runsc's `--network=none` (loopback only).

use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use watertight_sandbox::layers::secrets::Secret;
use watertight_sandbox::Plan;

use crate::error::Error;

/// Where the program's box appears (as in the namespace tier).
pub const BOX_TARGET: &str = watertight_sandbox::layers::workbox::TARGET;

/// What the bundle is built from, besides the plan.
pub struct Inputs<'a> {
    /// The checked `--box` directory.
    pub box_dir: Option<&'a Path>,
    /// `--secret`s, already read.
    pub secrets: &'a [Secret],
    /// The path runsc is given for a `--rootfs` root instead of the directory itself: lib.rs's
    /// overlay over it, so that runsc's Gofer never makes its mount points in the caller's
    /// directory.
    pub root_view: Option<&'a Path>,
}

fn text(what: &str, b: &[u8]) -> Result<String, Error> {
    String::from_utf8(b.to_vec()).map_err(|_| {
        Error::Unsupported(format!(
            "{what} {} is not UTF-8, which an OCI config.json cannot carry",
            watertight_sys::text::quote(b)
        ))
    })
}

fn path_text(what: &str, p: &Path) -> Result<String, Error> {
    text(what, p.as_os_str().as_bytes())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::WorkDir {
        path: path.display().to_string(),
        source,
    }
}

fn bind(dest: &str, source: &str, read_only: bool) -> Value {
    let mut options = vec!["rbind", "nosuid", "nodev"];
    options.push(if read_only { "ro" } else { "rw" });
    json!({"destination": dest, "type": "bind", "source": source, "options": options})
}

/// Writes `dir/config.json` and `dir/rootfs` (plus the empty files and secrets it binds) for
/// `plan`. Returns the config as written.
pub fn write(plan: &Plan, inputs: &Inputs, dir: &Path) -> Result<Value, Error> {
    let p = &plan.profile;
    let rootfs = dir.join("rootfs");
    let host_root = p.root.source == "host";
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777",
                           format!("size={}", p.dev.shm_size.bytes())]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", format!("size={}", p.tmp.size.bytes())]}),
    ];
    let root_path = if host_root {
        std::fs::create_dir(&rootfs).map_err(io(&rootfs))?;
        for d in ["proc", "dev", "tmp"] {
            std::fs::create_dir(rootfs.join(d)).map_err(io(&rootfs))?;
        }
        for host in &p.root.host_dirs {
            let rel = host.strip_prefix("/").unwrap_or(host);
            let inside = rootfs.join(rel);
            match std::fs::symlink_metadata(host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(host).map_err(io(host))?;
                    mkdir_parents(&inside)?;
                    std::os::unix::fs::symlink(target, &inside).map_err(io(&inside))?;
                }
                Ok(m) if m.is_dir() => {
                    std::fs::create_dir_all(&inside).map_err(io(&inside))?;
                    let h = path_text("root.host_dirs", host)?;
                    mounts.push(bind(&h, &h, true));
                }
                // Missing ones are skipped, as in the namespace tier.
                _ => {}
            }
        }
        "rootfs".to_string()
    } else {
        match inputs.root_view {
            Some(view) => path_text("root view", view)?,
            None => path_text("root.source", Path::new(&p.root.source))?,
        }
    };
    // Hidden host paths: an empty read-only file or directory over each one that exists.
    let empty_file = dir.join("empty");
    let empty_dir = dir.join("empty.d");
    std::fs::write(&empty_file, b"").map_err(io(&empty_file))?;
    std::fs::create_dir(&empty_dir).map_err(io(&empty_dir))?;
    let seen_root = if host_root {
        None
    } else {
        Some(PathBuf::from(&p.root.source))
    };
    for hidden in &p.root.hide {
        let on_host = match &seen_root {
            None => hidden.clone(),
            Some(r) => r.join(hidden.strip_prefix("/").unwrap_or(hidden)),
        };
        let Ok(m) = std::fs::symlink_metadata(&on_host) else {
            continue;
        };
        if m.file_type().is_symlink() {
            continue;
        }
        let src = if m.is_dir() { &empty_dir } else { &empty_file };
        mounts.push(bind(
            &path_text("root.hide", hidden)?,
            &path_text("work dir", src)?,
            true,
        ));
    }
    for b in &p.binds {
        mounts.push(bind(
            &path_text("bind target", &b.target)?,
            &path_text("bind source", &b.source)?,
            b.read_only,
        ));
        if host_root {
            let inside = rootfs.join(b.target.strip_prefix("/").unwrap_or(&b.target));
            make_mount_point(&inside, b.source.is_dir())?;
        }
    }
    if let Some(dir_on_host) = inputs.box_dir {
        mounts.push(bind(BOX_TARGET, &path_text("--box", dir_on_host)?, false));
        if host_root {
            make_mount_point(&rootfs.join("box"), true)?;
        }
    }
    if !inputs.secrets.is_empty() {
        let secrets = dir.join("secrets");
        std::fs::create_dir(&secrets).map_err(io(&secrets))?;
        for s in inputs.secrets {
            let f = secrets.join(&s.name);
            std::fs::write(&f, &s.contents).map_err(io(&f))?;
            mounts.push(bind(
                &format!("/run/secrets/{}", s.name),
                &path_text("work dir", &f)?,
                true,
            ));
            if host_root {
                make_mount_point(&rootfs.join("run/secrets").join(&s.name), false)?;
            }
        }
    }
    let strings = |v: &[std::ffi::CString], what: &str| -> Result<Vec<String>, Error> {
        v.iter().map(|c| text(what, CStr::to_bytes(c))).collect()
    };
    let rlimits: Vec<Value> = plan
        .rlimits
        .iter()
        .map(|(r, soft, hard)| json!({"type": format!("{r:?}"), "soft": soft, "hard": hard}))
        .collect();
    let no_caps: Vec<String> = Vec::new();
    let config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": p.identity.uid, "gid": p.identity.gid},
            "args": strings(&plan.argv, "argument")?,
            "env": strings(&plan.envp, "environment entry")?,
            "cwd": path_text("working directory", &plan.mounts.workdir)?,
            "capabilities": {"bounding": no_caps, "effective": no_caps, "inheritable": no_caps,
                             "permitted": no_caps, "ambient": no_caps},
            "rlimits": rlimits,
            "noNewPrivileges": true,
        },
        // A writable root (--writable-root, with --rootfs) is writable only through runsc's
        // `--overlay2=root:memory` (lib.rs): the upper layer is in the Sentry's memory and the
        // directory itself is never written.
        "root": {"path": root_path, "readonly": !p.root.writable},
        "hostname": p.hostname,
        "mounts": mounts,
        "linux": {
            "seccomp": oci_seccomp(),
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": p.proc.masked.iter().map(|m| m.display().to_string()).collect::<Vec<_>>(),
            "readonlyPaths": p.proc.read_only.iter().map(|m| m.display().to_string()).collect::<Vec<_>>(),
        },
    });
    let file = dir.join("config.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&config).expect("JSON values serialize"),
    )
    .map_err(io(&file))?;
    Ok(config)
}

fn mkdir_parents(p: &Path) -> Result<(), Error> {
    match p.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(io(parent)),
        None => Ok(()),
    }
}

/// A directory or empty file at `p` in the bundle's own root, for a mount to land on.
fn make_mount_point(p: &Path, dir: bool) -> Result<(), Error> {
    if dir {
        return std::fs::create_dir_all(p).map_err(io(p));
    }
    mkdir_parents(p)?;
    if !p.exists() {
        std::fs::write(p, b"").map_err(io(p))?;
    }
    Ok(())
}

/// watertight's built-in allowlist (crates/seccomp) in OCI form, which runsc's `--oci-seccomp`
/// installs in the Sentry for the program: gVisor implements many calls the namespace tier
/// refuses (user namespaces, ptrace, io_uring, its own syslog), and a call the profile does not
/// allow is refused here too (EPERM, the profile's default action), whichever kernel would have
/// answered. watertight's own extension (the violation list, which the namespace tier turns
/// into user notifications the Sentry cannot deliver) is left out: those calls get the default
/// action, as under `on_violation = "deny"`.
pub fn oci_seccomp() -> Value {
    let mut v: Value = serde_json::from_str(&watertight_seccomp::default_profile().to_json())
        .expect("the built-in seccomp profile is JSON");
    if let Some(o) = v.as_object_mut() {
        for k in [
            "watertight",
            "listenerPath",
            "listenerMetadata",
            "flags",
            "archMap",
        ] {
            o.remove(k);
        }
    }
    v
}
