//! Build facts for `watertight --version`: the git revision the binary was built from, the
//! target, the profile, the cargo features and how it was linked, as `WT_BUILD_*` environment
//! variables for `env!`.
//!
//! The revision is `git rev-parse --short=12 HEAD`, with `-dirty` when a tracked file differs
//! from HEAD; `unknown` when this crate is not built from its own git checkout (a tarball, a
//! vendored copy inside another repository); `WATERTIGHT_BUILD_REVISION` overrides it (for
//! packagers who build from a tarball of a known revision).
//!
//! Reruns (so the crate is rebuilt) only when the revision can have changed: when HEAD or the
//! branch it points at moves (a commit, a checkout), or when a file that goes into the binary
//! changes (a `src/`, `build.rs`, `Cargo.toml`, `bpf/`, `data/` or `profiles/` of a workspace
//! crate, `Cargo.lock`, `.cargo/config.toml`): the binary is rebuilt for those anyway, and that
//! is when the tree may have become dirty. Edits elsewhere (tests, docs) rebuild nothing; they
//! show as `-dirty` the next time the binary is rebuilt.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WATERTIGHT_BUILD_REVISION");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LINK_TYPE");

    let revision = match std::env::var("WATERTIGHT_BUILD_REVISION") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_owned(),
        _ => git_revision(&manifest_dir).unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=WT_BUILD_REVISION={revision}");

    let env = |k: &str| std::env::var(k).unwrap_or_default();
    println!("cargo:rustc-env=WT_BUILD_TARGET={}", env("TARGET"));
    println!("cargo:rustc-env=WT_BUILD_PROFILE={}", env("PROFILE"));
    // This crate's enabled cargo features, as cargo tells the build script (none today).
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase()))
        .collect();
    features.sort();
    println!("cargo:rustc-env=WT_BUILD_FEATURES={}", features.join(","));
    let crt_static = env("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    println!(
        "cargo:rustc-env=WT_BUILD_LINKAGE={}",
        if crt_static { "static" } else { "dynamic" }
    );
    // How libseccomp-sys links libseccomp (.cargo/config.toml sets `static`).
    let seccomp = match env("LIBSECCOMP_LINK_TYPE").as_str() {
        "" => "dylib".to_owned(),
        other => other.to_owned(),
    };
    println!("cargo:rustc-env=WT_BUILD_LIBSECCOMP_LINK={seccomp}");
}

/// `git` in `dir`, its standard output trimmed when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The short revision of HEAD, `-dirty` when the tracked tree differs from it; `None` when this
/// crate is not part of the checkout git finds (or git is missing). Registers what to rerun on.
fn git_revision(manifest_dir: &Path) -> Option<String> {
    // Inside someone else's repository (a vendored copy), this crate is not tracked: that
    // repository's revision would say nothing about this code.
    git(manifest_dir, &["ls-files", "--error-unmatch", "Cargo.toml"])?;
    let top = PathBuf::from(git(manifest_dir, &["rev-parse", "--show-toplevel"])?);
    let git_dir = absolute(
        manifest_dir,
        &git(manifest_dir, &["rev-parse", "--git-dir"])?,
    );
    let common_dir = absolute(
        manifest_dir,
        &git(manifest_dir, &["rev-parse", "--git-common-dir"])?,
    );
    rerun_if_changed(&git_dir.join("HEAD"));
    // The branch HEAD points at: a loose ref file, or a line of packed-refs.
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = common_dir.join(&branch);
        if loose.exists() {
            rerun_if_changed(&loose);
        }
    }
    let packed = common_dir.join("packed-refs");
    if packed.exists() {
        rerun_if_changed(&packed);
    }
    // What goes into the binary: when any of it changes, the binary is rebuilt anyway and the
    // tree may have become dirty.
    for name in ["Cargo.lock", "Cargo.toml", ".cargo/config.toml"] {
        let path = top.join(name);
        if path.exists() {
            rerun_if_changed(&path);
        }
    }
    if let Ok(crates) = std::fs::read_dir(top.join("crates")) {
        for krate in crates.flatten() {
            // Test helpers never go into the binary.
            if krate.file_name() == "testkit" {
                continue;
            }
            for part in ["src", "build.rs", "Cargo.toml", "bpf", "data", "profiles"] {
                let path = krate.path().join(part);
                if path.exists() {
                    rerun_if_changed(&path);
                }
            }
        }
    }
    let hash = git(manifest_dir, &["rev-parse", "--short=12", "HEAD"])?;
    // git status compares the contents of files whose stat data changed: a touched but
    // unchanged file is not dirty.
    // Without optional locks: a build never writes the index under a developer's feet.
    let changes = git(
        manifest_dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )?;
    Some(if changes.is_empty() {
        hash
    } else {
        format!("{hash}-dirty")
    })
}

fn absolute(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
