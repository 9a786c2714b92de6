//! QEMU's command line for one guest, and which accelerator it gets.

use std::ffi::OsString;
use std::path::Path;

use crate::wire;

/// How the guest's CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's binary translator: slow, but needs nothing from the host CPU.
    Tcg,
}

impl Accelerator {
    /// The name in the verdict and on QEMU's command line.
    pub fn name(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }

    /// KVM when it can run a guest here, else TCG, and why. `WATERTIGHT_VM_ACCEL=kvm|tcg`
    /// forces one. Opening /dev/kvm is not enough: in a nested VM without the virtualization
    /// flag (this project's CI machine) KVM creates VMs and vCPUs whose guests never run, so
    /// KVM also needs the CPU's vmx/svm flag, which a working nested setup passes through.
    pub fn detect() -> (Accelerator, &'static str) {
        match std::env::var("WATERTIGHT_VM_ACCEL").as_deref() {
            Ok("kvm") => return (Accelerator::Kvm, "WATERTIGHT_VM_ACCEL=kvm"),
            Ok("tcg") => return (Accelerator::Tcg, "WATERTIGHT_VM_ACCEL=tcg"),
            _ => {}
        }
        let opens = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if !opens {
            return (Accelerator::Tcg, "/dev/kvm does not open");
        }
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let has_flag = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
        if has_flag {
            (Accelerator::Kvm, "/dev/kvm opens and the CPU has vmx/svm")
        } else {
            (
                Accelerator::Tcg,
                "/dev/kvm opens but the CPU lacks vmx/svm (nested guests would not run)",
            )
        }
    }
}

/// Host paths of one guest's files.
pub struct GuestFiles<'a> {
    /// The kernel image.
    pub kernel: &'a Path,
    /// The initramfs.
    pub initramfs: &'a Path,
    /// The directory shared as the guest's root (read-only).
    pub root: &'a Path,
    /// The job directory (read-only).
    pub job: &'a Path,
    /// Where the verdict port, the output ports and the console are written.
    pub verdict: &'a Path,
    /// The program's stdout.
    pub stdout: &'a Path,
    /// The program's stderr.
    pub stderr: &'a Path,
    /// The sandbox's event log.
    pub events: &'a Path,
    /// The guest kernel's console (quiet: a few lines unless it panics).
    pub console: &'a Path,
}

/// The arguments after `qemu-system-x86_64`.
///
/// `-M microvm`: no PCI, no firmware tables beyond ACPI's device list, the smallest machine
/// QEMU has; its virtio devices sit on virtio-mmio, which ACPI describes to the kernel (the
/// Debian kernel has no virtio_mmio.device= command-line support). `-sandbox on` turns on
/// QEMU's own seccomp filter with every optional deny set. `-no-reboot`: the guest's
/// power-off or a panic ends QEMU.
pub fn args(f: &GuestFiles, accel: Accelerator, memory_mib: u64) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    push("-M");
    push("microvm");
    push("-accel");
    // tb-size bounds TCG's translation cache (1 GiB by default) so QEMU's cgroup can be sized.
    push(match accel {
        Accelerator::Kvm => "kvm",
        Accelerator::Tcg => "tcg,tb-size=64",
    });
    push("-cpu");
    // TCG: `max` gives the guest RDRAND, which seeds its CRNG at once (the default model has
    // none, and watertight's key generation would wait for entropy). KVM: the host's CPU.
    push(match accel {
        Accelerator::Kvm => "host",
        Accelerator::Tcg => "max",
    });
    push("-m");
    push(&memory_mib.to_string());
    push("-smp");
    push("1");
    for s in [
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-sandbox",
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ] {
        push(s);
    }
    let path = |p: &Path| p.to_string_lossy().replace(',', ",,");
    push("-kernel");
    push(&path(f.kernel));
    push("-initrd");
    push(&path(f.initramfs));
    push("-append");
    // The console must be named: without console=ttyS0 this kernel stalls at boot on microvm
    // (measured). quiet/loglevel=1 keep it to a few lines.
    // WATERTIGHT_VM_DEBUG=1: the kernel's messages too (the host prints the console log).
    let mut cmdline = String::from(if debug() {
        "console=ttyS0 loglevel=7 panic=-1 rdinit=/init"
    } else {
        "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init"
    });
    if accel == Accelerator::Tcg {
        if let Some(khz) = host_tsc_khz() {
            // microvm has no HPET or ACPI PM timer, so the kernel calibrates its TSC against
            // the PIT alone, and under TCG on a loaded host that fails: the TSC is marked
            // unstable and boot stalls before the timer works (measured here at load 10 on
            // 2 cores: every boot). A TCG guest's TSC is the host's, so say its rate.
            cmdline.push_str(&format!(" tsc_early_khz={khz} tsc=reliable"));
        }
    }
    push(&cmdline);
    push("-serial");
    push(&format!("file:{}", path(f.console)));
    for (id, dir, tag) in [
        ("wtroot", f.root, wire::ROOT_TAG),
        ("wtjob", f.job, wire::JOB_TAG),
    ] {
        push("-fsdev");
        // security_model=none: the guest sees the files' real owners and modes; readonly: no
        // write reaches the host. multidevs=remap: the root spans several host filesystems.
        push(&format!(
            "local,id={id},path={},readonly=on,security_model=none,multidevs=remap",
            path(dir)
        ));
        push("-device");
        push(&format!("virtio-9p-device,fsdev={id},mount_tag={tag}"));
    }
    push("-device");
    push("virtio-serial-device");
    for (id, file, name) in [
        ("verdict", f.verdict, wire::VERDICT_PORT),
        ("out", f.stdout, wire::STDOUT_PORT),
        ("err", f.stderr, wire::STDERR_PORT),
        ("events", f.events, wire::EVENTS_PORT),
    ] {
        push("-chardev");
        push(&format!("file,id={id},path={}", path(file)));
        push("-device");
        push(&format!("virtserialport,chardev={id},name={name}"));
    }
    a
}

/// `WATERTIGHT_VM_DEBUG=1`: a verbose guest kernel, its console log printed after the run.
pub fn debug() -> bool {
    std::env::var_os("WATERTIGHT_VM_DEBUG").is_some_and(|v| v == "1")
}

/// The host's TSC rate in kHz, from the first `cpu MHz` of /proc/cpuinfo (the kernel's own
/// calibrated figure; on x86 hosts with an invariant TSC, the TSC's rate).
pub fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    (mhz > 0.0).then_some((mhz * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_gets_a_microvm_with_read_only_shares_and_qemus_own_seccomp() {
        let p = Path::new;
        let files = GuestFiles {
            kernel: p("/k"),
            initramfs: p("/i"),
            root: p("/"),
            job: p("/run,dir"),
            verdict: p("/v"),
            stdout: p("/o"),
            stderr: p("/e"),
            events: p("/ev"),
            console: p("/c"),
        };
        let args: Vec<String> = args(&files, Accelerator::Tcg, 300)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let after = |flag: &str| {
            args.iter()
                .zip(args.iter().skip(1))
                .filter(|(f, _)| *f == flag)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(after("-M"), ["microvm"]);
        assert_eq!(after("-accel"), ["tcg,tb-size=64"]);
        assert_eq!(after("-m"), ["300"]);
        assert!(after("-sandbox")[0].starts_with("on,"));
        let shares = after("-fsdev");
        assert_eq!(shares.len(), 2);
        assert!(
            shares.iter().all(|s| s.contains(",readonly=on,")),
            "{shares:?}"
        );
        // A comma in a path is doubled, so it cannot add an option.
        assert!(shares[1].contains("path=/run,,dir,"), "{shares:?}");
        for flag in ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"] {
            assert!(args.iter().any(|a| a == flag), "{flag}");
        }
    }
}
