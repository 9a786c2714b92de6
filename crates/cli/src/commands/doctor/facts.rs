//! What `watertight doctor` measures on the host, as plain data: [`HostFacts::probe`] fills it
//! from the kernel's files, a few harmless probes and the programs on PATH; the assessment
//! (`assess.rs`) reads only this struct, so tests describe other hosts by filling it in.
//!
//! Every probe leaves nothing behind: a user namespace is cloned into by a child that exits at
//! once; the BPF token and device-program probes create nothing that outlives a descriptor;
//! the nftables probe applies its table in a scratch network namespace; /dev/kvm is only opened.
//! Probes that need root are skipped without it and say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watertight_cgroups::Layout;
use watertight_integrity::EnforcementReport;

/// The namespace types `watertight run` creates (as named under /proc/self/ns).
pub const NAMESPACES: [&str; 7] = ["user", "pid", "mnt", "net", "uts", "ipc", "cgroup"];

/// A measurement that may not have been possible.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe<T> {
    /// What the probe found.
    Found(T),
    /// Not probed: it needs root and doctor runs without.
    NeedsRoot,
    /// Not probed, for this reason (e.g. nothing to probe on this host).
    Skipped(String),
}

/// Everything doctor knows about the host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel: String,
    /// The effective uid doctor ran as.
    pub euid: u32,
    /// Each of [`NAMESPACES`], and whether this kernel has it (/proc/self/ns/<name> exists).
    pub namespaces: Vec<(&'static str, bool)>,
    /// The cgroup layout (the cgroups crate's detection), or why it could not be detected.
    pub cgroup_layout: Result<Layout, String>,
    /// v1 only: whether the memory hierarchy has swap accounting (memory.memsw.* files).
    pub memsw: Option<bool>,
    /// Swap devices in use (/proc/swaps lines after the header).
    pub swap_devices: usize,
    /// On cgroup2 without a v1 devices hierarchy: whether the device allowlist program loads.
    pub device_program: Probe<Result<(), String>>,
    /// `user.max_user_namespaces`.
    pub max_user_namespaces: Option<u64>,
    /// `kernel.unprivileged_userns_clone` (Debian and Ubuntu kernels before 6.x), if present.
    pub unprivileged_userns_clone: Option<u64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+), if present.
    pub apparmor_restrict_userns: Option<u64>,
    /// Creating a user namespace the way run does: the uid it was tried as and the errno it
    /// failed with, if it did.
    pub userns_probe: (u32, Result<(), i32>),
    /// /proc/sys/kernel/seccomp/actions_avail, if readable.
    pub seccomp_actions: Option<String>,
    /// Landlock, the BPF exec gate, BPF LSM and memfd_noexec, as the integrity crate probes
    /// them for `run --manifest`.
    pub integrity: EnforcementReport,
    /// /sys/kernel/security/lsm, or why it could not be read.
    pub lsm_list: Result<String, String>,
    /// Whether the kernel knows BPF_TOKEN_CREATE, or the errno that left it unknown.
    pub bpf_token: Result<bool, i32>,
    /// `nft --version`, or why nft could not run (None: not on PATH).
    pub nft: Option<Result<String, String>>,
    /// The guard table applied in a scratch network namespace.
    pub nft_bridge: Probe<Result<(), String>>,
    /// runsc on PATH and its `--version` line.
    pub runsc: Option<Tool>,
    /// qemu-system-x86_64 (or the host architecture's) on PATH and its `--version` line.
    pub qemu: Option<Tool>,
    /// /dev/kvm opened read-write (never written to): Ok, or the errno.
    pub kvm_open: Result<(), i32>,
    /// The CPU flags show hardware virtualization (vmx or svm in /proc/cpuinfo).
    pub cpu_virtualization: bool,
}

/// A program found on PATH.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Where it was found.
    pub path: PathBuf,
    /// The first line of its `--version` output, or why there was none.
    pub version: Result<String, String>,
}

impl HostFacts {
    /// Measures this host. Never fails: what cannot be measured is recorded as such.
    pub fn probe() -> HostFacts {
        let euid = nix::unistd::geteuid().as_raw();
        let root = euid == 0;
        let cgroup_layout = watertight_cgroups::detect().map_err(|e| e.to_string());
        let memsw = cgroup_layout.as_ref().ok().and_then(|l| {
            l.v1_root(watertight_cgroups::Controller::Memory)
                .map(|root| root.join("memory.memsw.limit_in_bytes").exists())
        });
        let device_program = match &cgroup_layout {
            Ok(l) if l.device_backend() == watertight_cgroups::DeviceBackend::Bpf => {
                if root {
                    Probe::Found(load_device_program())
                } else {
                    Probe::NeedsRoot
                }
            }
            _ => Probe::Skipped("the v1 devices hierarchy holds the allowlist".into()),
        };
        // The uid run creates a sandbox's user namespace as: a slot's, never root.
        let identity = watertight_sandbox::default_profile().identity;
        let probe_uid = if root {
            identity.host_id_base + identity.slots - 1
        } else {
            euid
        };
        let userns = watertight_sys::process::probe_user_namespace(root.then_some(probe_uid))
            .map_err(|e| e.raw_os_error().unwrap_or(0));
        // The integrity probes start a thread (Landlock): after the user namespace probe, which
        // changes this thread's effective uid for a moment.
        let integrity = watertight_integrity::probe_enforcement();
        let nft =
            find_on_path("nft").map(|_| watertight_net::nft::version().map_err(|e| e.to_string()));
        let nft_bridge = match (&nft, root) {
            (None, _) => Probe::Skipped("nft is not installed".into()),
            (Some(_), false) => Probe::NeedsRoot,
            (Some(_), true) => Probe::Found(
                watertight_net::guard::probe_guard_support().map_err(|e| e.to_string()),
            ),
        };
        HostFacts {
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unknown".into()),
            euid,
            namespaces: NAMESPACES
                .iter()
                .map(|n| (*n, Path::new("/proc/self/ns").join(n).exists()))
                .collect(),
            cgroup_layout,
            memsw,
            swap_devices: std::fs::read_to_string("/proc/swaps")
                .map(|s| s.lines().skip(1).filter(|l| !l.trim().is_empty()).count())
                .unwrap_or(0),
            device_program,
            max_user_namespaces: read_number("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read_number("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict_userns: read_number(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            ),
            userns_probe: (probe_uid, userns),
            seccomp_actions: std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
                .ok()
                .map(|s| s.trim().to_owned()),
            integrity,
            lsm_list: std::fs::read_to_string("/sys/kernel/security/lsm")
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("/sys/kernel/security/lsm: {e}")),
            bpf_token: watertight_sys::bpf::token_create_supported()
                .map_err(|e| e.raw_os_error().unwrap_or(0)),
            nft,
            nft_bridge,
            runsc: find_on_path("runsc").map(|path| tool(path, "--version")),
            qemu: find_on_path(&qemu_name()).map(|path| tool(path, "--version")),
            kvm_open: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .map(drop)
                .map_err(|e| e.raw_os_error().unwrap_or(0)),
            cpu_virtualization: std::fs::read_to_string("/proc/cpuinfo")
                .map(|s| {
                    s.lines()
                        .filter(|l| l.starts_with("flags"))
                        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
                })
                .unwrap_or(false),
        }
    }
}

/// The QEMU system emulator for this machine's architecture.
pub fn qemu_name() -> String {
    format!("qemu-system-{}", std::env::consts::ARCH)
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The cgroup2 device allowlist program of the default profile, loaded and dropped (it is
/// never attached).
fn load_device_program() -> Result<(), String> {
    use watertight_sys::bpf;
    let profile = watertight_sandbox::default_profile();
    let rules = watertight_sandbox::layers::dev::allowlist(&profile.dev);
    let insns = watertight_cgroups::device_program::assemble(&rules);
    bpf::prog_load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        bpf::ATTACH_CGROUP_DEVICE,
        &insns,
        c"GPL",
        "wt_doctor",
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

/// The first executable file called `name` in PATH's directories.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// How long a program's `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// `path` with its version: the first non-empty line `path arg` prints within
/// [`VERSION_TIMEOUT`] (it is killed after that).
fn tool(path: PathBuf, arg: &str) -> Tool {
    let version = run_for_version(&path, arg);
    Tool { path, version }
}

fn run_for_version(path: &Path, arg: &str) -> Result<String, String> {
    use std::io::Read;
    let mut child = Command::new(path)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{arg}` gave no answer within {} s",
                    VERSION_TIMEOUT.as_secs()
                ));
            }
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let first = out.lines().map(str::trim).find(|l| !l.is_empty());
    match (status.success(), first) {
        (true, Some(line)) => Ok(line.to_owned()),
        (_, _) => Err(format!("`{arg}` failed ({status})")),
    }
}
