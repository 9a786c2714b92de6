//! `watertight man --out DIR`: manual pages generated from the whole command tree (`run`
//! included: the same `commands::run::Args` its fast-path parser flattens): `watertight.1` and
//! one page per subcommand, named after its path (`watertight-run.1`, `watertight-audit-host.1`).
//!
//! The pages are dated by `SOURCE_DATE_EPOCH` when it is set (the reproducible-builds convention:
//! the release scripts set it to the commit's time, so one commit gives the same pages), else by
//! today's date.
//!
//! Exit codes: 0 written; 2 DIR missing or not a directory (one line naming it and the fix), a
//! `SOURCE_DATE_EPOCH` that is not a number of seconds, or a page that could not be written.

use anyhow::Context as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// An existing directory to write the pages to (existing pages of the same names are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `path` as messages show a caller's path: quoted, control characters visible.
fn quoted(path: &Path) -> String {
    watertight_sys::text::quote(path.as_os_str().as_bytes())
}

/// The pages' date, `YYYY-MM-DD`: `SOURCE_DATE_EPOCH` (seconds since 1970) when set, else today.
fn date() -> anyhow::Result<String> {
    let when = match std::env::var_os("SOURCE_DATE_EPOCH") {
        Some(v) => {
            let secs = v.to_str().and_then(|s| s.trim().parse::<u64>().ok());
            let secs = secs.ok_or_else(|| {
                anyhow::anyhow!(
                    "man: SOURCE_DATE_EPOCH={} is not a number of seconds since 1970: fix or unset it",
                    watertight_sys::text::quote(v.as_bytes())
                )
            })?;
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
        }
        None => std::time::SystemTime::now(),
    };
    let mut text = humantime::format_rfc3339_seconds(when).to_string();
    text.truncate("YYYY-MM-DD".len());
    Ok(text)
}

/// Every page of the tree `cmd` (the binary's whole `Cli`) as (file name, roff text), dated
/// `date`: the command itself first, then each visible subcommand, depth first. clap's `help`
/// subcommand has no page.
pub fn pages(cmd: clap::Command, date: &str) -> Vec<(String, Vec<u8>)> {
    fn walk(cmd: clap::Command, date: &str, source: &str, pages: &mut Vec<(String, Vec<u8>)>) {
        let man = clap_mangen::Man::new(cmd.clone())
            .date(date)
            .source(source)
            .manual("watertight manual");
        let mut text = Vec::new();
        man.render(&mut text)
            .expect("rendering to memory cannot fail");
        pages.push((man.get_filename(), text));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), date, source, pages);
        }
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building names each subcommand after its path (its display name, `watertight-audit-host`),
    // which is the page's name.
    cmd.build();
    let source = format!("watertight {}", env!("CARGO_PKG_VERSION"));
    let mut pages = Vec::new();
    walk(cmd, date, &source, &mut pages);
    pages
}

/// Writes the pages; `cmd` is the binary's whole command tree.
pub fn run(args: Args, cmd: clap::Command) -> anyhow::Result<u8> {
    let dir = &args.out;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!(
            "man --out {}: not a directory: give a directory to write the pages to",
            quoted(dir)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "man --out {}: no such directory: create it first (mkdir -p)",
            quoted(dir)
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("man --out {}: cannot read it", quoted(dir)))
        }
    }
    let pages = pages(cmd, &date()?);
    for (name, text) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .with_context(|| format!("man --out {}: cannot write {name}", quoted(dir)))?;
    }
    println!("{}: {} manual pages", dir.display(), pages.len());
    Ok(0)
}
