//! `exec`: --process FILE, or args with the flags over config.json's process.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use watertight_oci::lifecycle::ExecOptions;

#[derive(Args, Debug)]
pub(super) struct ExecArgs {
    /// A process.json (the OCI process object) instead of args and flags.
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Give the process a pty (its master goes to --console-socket).
    #[arg(long, short = 't')]
    tty: bool,
    /// Unix socket that receives the pty master.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// KEY=VALUE added to (or replacing in) config.json's environment.
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// uid[:gid].
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Supplementary gids.
    #[arg(long, short = 'g')]
    additional_gids: Vec<u32>,
    /// Capabilities added to config.json's sets.
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    no_new_privs: bool,
    /// Pass this many fds from 3 upward.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container id.
    pub(super) id: String,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn parse_user(text: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (u, g) = text
        .split_once(':')
        .map(|(u, g)| (u, Some(g)))
        .unwrap_or((text, None));
    let uid = u
        .parse()
        .with_context(|| format!("--user {text:?}: the uid must be a number"))?;
    let gid = g
        .map(|g| {
            g.parse()
                .with_context(|| format!("--user {text:?}: the gid must be a number"))
        })
        .transpose()?;
    Ok((uid, gid))
}

pub(super) fn run(root: &Path, floor_config: Option<&Path>, a: ExecArgs) -> anyhow::Result<u8> {
    let state = watertight_oci::lifecycle::state(root, &a.id)?;
    let bundle = PathBuf::from(state["bundle"].as_str().unwrap_or_default());
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--process {}", path.display()))?;
            serde_json::from_str::<oci_spec::runtime::Process>(&text)
                .with_context(|| format!("--process {}", path.display()))?
        }
        None => {
            if a.args.is_empty() {
                anyhow::bail!(
                    "exec: name the program to run after the container id (or give --process FILE)"
                );
            }
            let (spec, _) = watertight_oci::plan::load_config(&bundle)?;
            let mut p = spec
                .process()
                .clone()
                .context("config.json has no process")?;
            p.set_args(Some(a.args.clone()));
            let mut env = p.env().clone().unwrap_or_default();
            for e in &a.env {
                let key = e.split('=').next().unwrap_or_default();
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            p.set_env(Some(env));
            if let Some(cwd) = &a.cwd {
                p.set_cwd(cwd.into());
            }
            if let Some(user) = &a.user {
                let (uid, gid) = parse_user(user)?;
                p.user_mut().set_uid(uid);
                if let Some(gid) = gid {
                    p.user_mut().set_gid(gid);
                }
            }
            if !a.additional_gids.is_empty() {
                p.user_mut()
                    .set_additional_gids(Some(a.additional_gids.clone()));
            }
            p.set_terminal(Some(a.tty));
            p.set_console_size(None);
            if a.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            if !a.cap.is_empty() {
                let mut caps = p.capabilities().clone().unwrap_or_default();
                let add: oci_spec::runtime::Capabilities = a
                    .cap
                    .iter()
                    .map(|c| {
                        c.parse()
                            .with_context(|| format!("--cap {c}: not a capability name"))
                    })
                    .collect::<anyhow::Result<_>>()?;
                let merge = |set: &Option<oci_spec::runtime::Capabilities>| {
                    let mut s = set.clone().unwrap_or_default();
                    s.extend(add.iter().cloned());
                    Some(s)
                };
                caps.set_bounding(merge(caps.bounding()));
                caps.set_effective(merge(caps.effective()));
                caps.set_permitted(merge(caps.permitted()));
                p.set_capabilities(Some(caps));
            }
            p
        }
    };
    let plan = super::process_plan(&bundle, floor_config, process, a.preserve_fds)?;
    if plan.terminal && a.console_socket.is_none() {
        anyhow::bail!("exec --tty needs --console-socket to receive the pty");
    }
    let code = watertight_oci::lifecycle::exec(
        root,
        &a.id,
        ExecOptions {
            process: plan,
            console_socket: a.console_socket.clone(),
            pid_file: a.pid_file.clone(),
            detach: a.detach,
        },
    )?;
    Ok(code.clamp(0, 255) as u8)
}
