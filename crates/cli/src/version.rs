//! `watertight -V` and `watertight --version`, the way ripgrep does it: `-V` prints one line for
//! scripts (`watertight 0.1.0 (1a2b3c4d5e6f)`: the version and the git revision it was built
//! from), `--version` that same line followed by the build's facts, one `key: value` per line.
//! The facts come from `build.rs` (revision, target, profile, cargo features, linkage) and from
//! the libraries linked in (libseccomp reports its own version).

use std::sync::OnceLock;

/// The crate's version.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// `git rev-parse --short=12 HEAD`, `-dirty` when the tree differed; `unknown` outside git.
pub const REVISION: &str = env!("WT_BUILD_REVISION");

/// What `-V` prints after the name: the version and the revision.
pub fn short() -> &'static str {
    static SHORT: OnceLock<String> = OnceLock::new();
    SHORT.get_or_init(|| format!("{VERSION} ({REVISION})"))
}

/// What `--version` prints after the name: the short line, then one fact per line.
pub fn long() -> &'static str {
    static LONG: OnceLock<String> = OnceLock::new();
    LONG.get_or_init(|| {
        let features = match env!("WT_BUILD_FEATURES") {
            "" => "none".to_owned(),
            list => list.replace(',', " "),
        };
        let linked = |how: &str| match how {
            "static" => "linked statically",
            _ => "linked dynamically",
        };
        format!(
            "{}\nrevision: {REVISION}\ntarget: {}, {}\nprofile: {}\nfeatures: {features}\nlibseccomp: {}, {}",
            short(),
            env!("WT_BUILD_TARGET"),
            linked(env!("WT_BUILD_LINKAGE")),
            env!("WT_BUILD_PROFILE"),
            watertight_seccomp::libseccomp_version(),
            linked(env!("WT_BUILD_LIBSECCOMP_LINK")),
        )
    })
}
