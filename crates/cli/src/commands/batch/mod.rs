//! `watertight batch`: run a JSON Lines file of jobs (files, then steps), each step as its own
//! `watertight run` in the job's fresh box, appending one result line per job (docs/batch.md).
//! Exit: 0 every selected job has a result; 2 bad input (jobs file, results file, flags) or a
//! results file that cannot be written; 130/143 stopped by SIGINT/SIGTERM after draining.

pub mod jobs;
pub mod progress;
pub mod results;
pub mod runner;
pub mod worker;

use std::collections::VecDeque;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use watertight_sandbox::profile::Isolation;

#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit status: 0 every selected job has a result line (whatever its verdict); 2 bad \
input (the jobs file: FILE:LINE: FIELD: ...; nothing run), a results file that is not one, or a \
write that failed; 130 / 143 stopped by SIGINT / SIGTERM (running jobs finished and recorded). \
Schema and details: docs/batch.md."
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The jobs file: JSON Lines, one job per line (docs/batch.md); paths in it are relative to
    /// its directory.
    #[arg(value_name = "JOBS", required = true)]
    jobs: Option<PathBuf>,
    /// The results file: one JSON line appended per job; ids already in it are skipped (a
    /// restarted batch resumes).
    #[arg(long, value_name = "FILE", required = true)]
    results: Option<PathBuf>,
    /// Jobs run at once (each job's steps run in order).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// Run only the jobs whose 0-based line index % N == I (e.g. a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I/N", value_parser = jobs::parse_shard)]
    shard: Option<(usize, usize)>,
    /// Where the job boxes go: a private directory made in DIR (default: beside --results).
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Each job's box as a tmpfs of SIZE (`run --box-size`), unless the job sets `box_size`.
    #[arg(long, value_name = "SIZE", value_parser = parse_box_size)]
    box_size: Option<String>,
    /// Each step's `run --isolation` (namespaces or gvisor), unless the job sets `isolation`.
    #[arg(long, value_name = "namespaces|gvisor", value_parser = parse_batch_isolation)]
    isolation: Option<Isolation>,
    /// Choose --isolation by the node kernel's CVE exposure: a policy file (docs/isolation.md,
    /// "Choice by risk") saying above how many reachable CVEs jobs run under gvisor instead.
    #[arg(long, value_name = "FILE", conflicts_with = "isolation")]
    isolation_policy: Option<PathBuf>,
    /// How steps run: `worker` (a long-lived step worker per --parallel slot runs them one
    /// after another, each exactly as `watertight run` would) or `exec` (each step a `watertight
    /// run` process). Same isolation and verdicts; worker saves a process start per step.
    #[arg(long, value_enum, value_name = "HOW", default_value = "worker")]
    step_runner: runner::StepRunner,
}

fn parse_batch_isolation(s: &str) -> Result<Isolation, String> {
    jobs::batch_tier(s.parse()?)
}

/// The tier the policy file picks for this node, said on stderr once (it holds for the whole
/// batch: the running kernel does not change under it).
fn isolation_by_risk(path: &Path) -> anyhow::Result<Isolation> {
    use watertight_kernel_audit::{IsolationTier, RiskPolicy};
    // The library's errors name the policy file (or the CVE data it names) and the fix.
    let policy = RiskPolicy::load(path)?;
    let choice = policy.decide(Path::new("/"))?;
    let tier = match choice.tier {
        IsolationTier::Namespaces => Isolation::Namespaces,
        IsolationTier::Gvisor => Isolation::Gvisor,
        IsolationTier::Vm => Isolation::Vm,
    };
    let tier = jobs::batch_tier(tier)
        .map_err(|e| anyhow::anyhow!("--isolation-policy {}: escalate_to = {e}", path.display()))?;
    eprintln!(
        "watertight: isolation policy {}: {}",
        path.display(),
        choice.reason
    );
    Ok(tier)
}

fn parse_box_size(s: &str) -> Result<String, String> {
    jobs::check_box_size(s)?;
    Ok(s.to_string())
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Merge results files (e.g. one per shard): sorted by id, the first line of an id kept.
    Merge(MergeArgs),
    /// A step worker (started by the batch itself; worker.rs): runs `watertight run` requests
    /// read from stdin, one JSON line each, and answers each with its verdict on stdout.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// The batch's pid: the worker ends when it is gone.
    #[arg(long, value_name = "PID")]
    parent: u32,
}

#[derive(clap::Args)]
struct MergeArgs {
    /// Results files of `watertight batch`.
    #[arg(value_name = "FILE", required = true)]
    parts: Vec<PathBuf>,
    /// Write to FILE (written in place, never renamed over) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `watertight batch`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        Some(Sub::Merge(m)) => return merge(m),
        Some(Sub::Worker(w)) => return worker::serve(w.parent),
        None => {}
    }
    let (Some(jobs_path), Some(results_path)) = (args.jobs, args.results) else {
        anyhow::bail!("batch needs JOBS and --results FILE");
    };
    let all = jobs::load(&jobs_path)?;
    let isolation = match &args.isolation_policy {
        Some(p) => Some(isolation_by_risk(p)?),
        None => args.isolation,
    };
    let (file, done) = results::open(&results_path)?;
    let queue: VecDeque<jobs::Job> = all
        .into_iter()
        .filter(|j| jobs::in_shard(j.index, args.shard) && !done.contains(&j.id))
        .map(|mut j| {
            j.box_size = j.box_size.or_else(|| args.box_size.clone());
            j.isolation = j.isolation.or(isolation);
            j
        })
        .collect();
    let work = work_dir(args.work.as_deref(), &results_path)?;
    let exe = std::env::current_exe().context("cannot find this binary to run the steps")?;

    let signal = Arc::new(AtomicI32::new(0));
    watch_signals(signal.clone())?;
    let progress = Mutex::new(progress::Progress::new(queue.len()));
    let queue = Mutex::new(queue);
    let sink = Mutex::new((&*file, None::<std::io::Error>));
    let syncer = results::Syncer::new(&file);
    let synced = std::thread::scope(|s| {
        s.spawn(|| syncer.run());
        let slots: Vec<_> = (0..args.parallel)
            .map(|_| {
                s.spawn(|| {
                    let mut steps = runner::Steps::new(&exe, args.step_runner);
                    loop {
                        if signal.load(Ordering::SeqCst) != 0 {
                            return;
                        }
                        let Some(job) = queue.lock().unwrap().pop_front() else {
                            return;
                        };
                        let r = runner::run_job(&mut steps, &work, &job);
                        let mut sink = sink.lock().unwrap();
                        if sink.1.is_some() {
                            return;
                        }
                        if let Err(e) = results::append(sink.0, &r) {
                            sink.1 = Some(e);
                            signal.store(-1, Ordering::SeqCst);
                            return;
                        }
                        syncer.appended();
                        if syncer.failed() {
                            signal.store(-1, Ordering::SeqCst);
                        }
                        progress.lock().unwrap().job_done(&r.verdict);
                    }
                })
            })
            .collect();
        let ended: Vec<_> = slots.into_iter().map(|slot| slot.join()).collect();
        let synced = syncer.finish(); // also ends the syncer's thread
        if let Some(panicked) = ended.into_iter().find_map(Result::err) {
            std::panic::resume_unwind(panicked);
        }
        synced
    });
    progress.lock().unwrap().finish();
    let _ = std::fs::remove_dir_all(&work);
    let appended = sink.into_inner().unwrap().1.map_or(Ok(()), Err);
    if let Err(e) = appended.and(synced) {
        return Err(anyhow::anyhow!(
            "--results {}: cannot append: {e}",
            results_path.display()
        ));
    }
    match signal.load(Ordering::SeqCst) {
        0 => Ok(0),
        n => {
            eprintln!("watertight: batch stopped by signal {n} after its running jobs finished; run it again to resume");
            Ok((128 + n) as u8)
        }
    }
}

/// The batch's private work directory (0700): `.<results name>.work` in --work DIR or beside
/// the results file. One left by a killed batch is removed first (the results file's lock says
/// no other batch uses it).
fn work_dir(base: Option<&Path>, results: &Path) -> anyhow::Result<PathBuf> {
    let name = results.file_name().context("--results needs a file name")?;
    let parent = match base {
        Some(b) => b.to_path_buf(),
        None => results
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    };
    let mut n = std::ffi::OsString::from(".");
    n.push(name);
    n.push(".work");
    let work = parent.join(n);
    if std::fs::symlink_metadata(&work).is_ok() {
        std::fs::remove_dir_all(&work).with_context(|| {
            format!(
                "{}: cannot remove the work directory a killed batch left",
                work.display()
            )
        })?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&work)
        .with_context(|| {
            format!(
                "{}: cannot make the batch's work directory (--work DIR)",
                work.display()
            )
        })?;
    Ok(work)
}

/// SIGINT and SIGTERM blocked in every thread and waited for by one: the first sets `signal`,
/// so no new job starts. Children inherit the mask (std's spawn keeps it): a step worker
/// clears it first thing, `watertight run` blocks both anyway while it supervises.
fn watch_signals(signal: Arc<AtomicI32>) -> anyhow::Result<()> {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .context("cannot block SIGINT/SIGTERM")?;
    std::thread::spawn(move || loop {
        if let Ok(sig) = set.wait() {
            if signal.load(Ordering::SeqCst) == 0 {
                eprintln!("watertight: {sig}: finishing the running jobs, starting no more");
                signal.store(sig as i32, Ordering::SeqCst);
            }
        }
    });
    Ok(())
}

fn merge(m: MergeArgs) -> anyhow::Result<u8> {
    let mut parts = Vec::new();
    for p in &m.parts {
        let text = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
        parts.push((p.display().to_string(), text));
    }
    let (out, warnings) = results::merge(&parts).map_err(anyhow::Error::msg)?;
    for w in warnings {
        eprintln!("watertight: {w}");
    }
    match &m.output {
        Some(path) => super::sink::write_file(path, &out, "-o")?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write to stdout");
                }
            }
        }
    }
    Ok(0)
}
