//! The guest's init: the watertight binary itself, started by the guest kernel as `/init`.
//! It mounts the pseudo filesystems, loads the virtio and 9p modules, mounts the host's root
//! read-only (9p) and moves onto it, then runs the program in the same namespace sandbox as
//! `watertight run` (no capabilities, no_new_privs, the seccomp allowlist, a private writable
//! /tmp, the profile's cgroup v2 memory/pids/CPU limits, CPU and wall time, output limit),
//! writes one JSON line to the `wt.verdict` port and powers the guest off.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::wire::{self, GuestJob, GuestReport};

/// Whether this process is the guest's init: pid 1 started as `/init` (how the kernel runs an
/// initramfs's init). Never true on a host, whose pid 1 is its own init system.
pub fn is_guest_init(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0.is_some_and(|a| a == "/init") && std::process::id() == 1
}

/// Runs the guest's job and powers the guest off; never returns.
pub fn init_main() -> ! {
    let uptime = || {
        std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut report = GuestReport {
        verdict: None,
        boot_s: 0.0,
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        error: None,
    };
    let mut port: Option<std::fs::File> = None;
    let result = (|| -> Result<serde_json::Value, String> {
        mount_fs("proc", "/proc", "proc", MsFlags::empty(), "")?;
        report.boot_s = uptime();
        // benches/run/vm.sh's bare boot: the same kernel and initramfs, off at once.
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        if cmdline.split_whitespace().any(|w| w == BARE_BOOT_PARAM) {
            power_off();
        }
        mount_fs("sysfs", "/sys", "sysfs", MsFlags::empty(), "")?;
        mount_fs("dev", "/dev", "devtmpfs", MsFlags::empty(), "")?;
        load_modules()?;
        let ports = find_ports()?;
        port = Some(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&ports.verdict)
                .map_err(|e| format!("open {}: {e}", ports.verdict.display()))?,
        );
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount_9p(wire::JOB_TAG, "/job", ro)?;
        let job: GuestJob = serde_json::from_slice(
            &std::fs::read(Path::new("/job").join(wire::JOB_FILE))
                .map_err(|e| format!("read the job: {e}"))?,
        )
        .map_err(|e| format!("parse the job: {e}"))?;
        // Opened before the root moves (the job share is out of reach after it), and reopened
        // by the sandbox through /proc/self/fd as the program's stdin.
        let stdin = match job.stdin {
            true => Some(
                std::fs::File::open(Path::new("/job").join(wire::STDIN_FILE))
                    .map_err(|e| format!("open the stdin file: {e}"))?,
            ),
            false => None,
        };
        let secrets = job
            .secrets
            .iter()
            .enumerate()
            .map(|(i, name)| {
                std::fs::read(Path::new("/job").join(wire::secret_file(i)))
                    .map(|contents| watertight_sandbox::layers::secrets::Secret {
                        name: name.clone(),
                        contents,
                    })
                    .map_err(|e| format!("read secret {name}: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        mount_9p(wire::ROOT_TAG, "/newroot", MsFlags::MS_RDONLY)?;
        enter_root()?;
        // As on a booted host: the root cgroup delegates its controllers to watertight's.
        let _ = std::fs::write(
            "/sys/fs/cgroup/cgroup.subtree_control",
            "+memory +pids +cpu",
        );
        let stdin_path = stdin
            .as_ref()
            .map(|f| PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())));
        let verdict = run_job(job, &ports, stdin_path, secrets)?;
        serde_json::to_value(&verdict).map_err(|e| e.to_string())
    })();
    match result {
        Ok(v) => report.verdict = Some(v),
        Err(e) => report.error = Some(e),
    }
    let line = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into()) + "\n";
    match port.as_mut() {
        Some(p) => {
            if let Err(e) = p.write_all(line.as_bytes()) {
                eprint!("watertight guest init: write the verdict port: {e}: {line}");
            }
        }
        // No port: the console (the host keeps its log) is the only way out.
        None => eprint!("watertight guest init: {line}"),
    }
    power_off()
}

/// On the guest's kernel command line: power off as soon as init runs (the bench's bare boot).
pub const BARE_BOOT_PARAM: &str = "watertight.bare_boot";

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // reboot(2) does not return on success; pid 1 must not exit either (a kernel panic).
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn mount_fs(src: &str, dst: &str, fstype: &str, flags: MsFlags, data: &str) -> Result<(), String> {
    mount(Some(src), dst, Some(fstype), flags, Some(data))
        .map_err(|e| format!("mount {fstype} on {dst}: {e}"))
}

fn mount_9p(tag: &str, dst: &str, flags: MsFlags) -> Result<(), String> {
    // msize: 512 KiB messages (the default 8 KiB makes reading a binary hundreds of round
    // trips); cache=loose: the share is read-only, so the guest may cache what it read.
    mount_fs(
        tag,
        dst,
        "9p",
        flags,
        "trans=virtio,version=9p2000.L,msize=524288,cache=loose",
    )
}

/// finit_module for each /modules/NN-name.ko, in the order their names sort (the host wrote
/// them dependencies first).
fn load_modules() -> Result<(), String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/modules")
        .map_err(|e| format!("read /modules: {e}"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    // The kernel unpacks what fits of the initramfs and says so only on its console: no
    // module here means a truncated archive (too little guest RAM), not a kernel without them.
    if files.is_empty() {
        return Err("no kernel module in /modules: the initramfs was not unpacked whole".into());
    }
    for f in files {
        let file = std::fs::File::open(&f).map_err(|e| format!("open {}: {e}", f.display()))?;
        match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(format!("load module {}: {e}", f.display())),
        }
    }
    Ok(())
}

/// The virtio-serial ports' device nodes.
struct Ports {
    verdict: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    events: PathBuf,
}

/// Finds each port by its name; the host announces ports after the driver loads, so this
/// waits for them (up to 10 s).
fn find_ports() -> Result<Ports, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut found = std::collections::HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") {
            for e in entries.flatten() {
                if let Ok(name) = std::fs::read_to_string(e.path().join("name")) {
                    let dev = Path::new("/dev").join(e.file_name());
                    if dev.exists() {
                        found.insert(name.trim().to_owned(), dev);
                    }
                }
            }
        }
        let get = |n: &str| found.get(n).cloned();
        if let (Some(verdict), Some(stdout), Some(stderr), Some(events)) = (
            get(wire::VERDICT_PORT),
            get(wire::STDOUT_PORT),
            get(wire::STDERR_PORT),
            get(wire::EVENTS_PORT),
        ) {
            return Ok(Ports {
                verdict,
                stdout,
                stderr,
                events,
            });
        }
        if std::time::Instant::now() > deadline {
            return Err("the virtio-serial ports did not appear within 10 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Mounts /proc, /sys (with cgroup2), /dev, a private /tmp and /run on the read-only root at
/// /newroot, then makes it the root the way switch_root does (move it onto /, chroot): the
/// sandbox's pivot_root refuses the initramfs itself, a mount with no parent.
fn enter_root() -> Result<(), String> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", "/newroot/proc", "proc", nosuid, "")?;
    mount_fs("sysfs", "/newroot/sys", "sysfs", nosuid, "")?;
    mount_fs("cgroup2", "/newroot/sys/fs/cgroup", "cgroup2", nosuid, "")?;
    mount_fs("dev", "/newroot/dev", "devtmpfs", MsFlags::MS_NOSUID, "")?;
    mount_fs(
        "tmp",
        "/newroot/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    mount_fs("run", "/newroot/run", "tmpfs", nosuid, "mode=0755")?;
    std::env::set_current_dir("/newroot").map_err(|e| format!("chdir /newroot: {e}"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("move the root: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

/// The namespace sandbox inside the guest, as `watertight run` would run it.
fn run_job(
    job: GuestJob,
    ports: &Ports,
    stdin: Option<PathBuf>,
    secrets: Vec<watertight_sandbox::layers::secrets::Secret>,
) -> Result<watertight_sandbox::Verdict, String> {
    let profile = job.profile;
    let forensics = watertight_sandbox::forensic::ForensicConfig::for_profile(
        &profile,
        watertight_sandbox::forensic::DEFAULT_EVIDENCE_DIR.into(),
        watertight_sandbox::forensic::DEFAULT_KEY_PATH.into(),
        None,
    );
    let sandbox_job = watertight_sandbox::Job {
        profile,
        argv: job.argv.into_iter().map(OsString::from_vec).collect(),
        workdir: job.workdir.map(|w| PathBuf::from(OsString::from_vec(w))),
        box_dir: None,
        stdio: watertight_sandbox::stdio::StdioPaths {
            stdin: Some(stdin.unwrap_or_else(|| "/dev/null".into())),
            stdout: Some(ports.stdout.clone()),
            stderr: Some(ports.stderr.clone()),
        },
        env: job
            .env
            .into_iter()
            .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
            .collect(),
        secrets,
        events: job.events.then(|| ports.events.clone()),
        forensics,
        bridge_port: None,
        integrity: None,
    };
    watertight_sandbox::run(&sandbox_job).map_err(|e| format!("sandbox: {e}"))
}
