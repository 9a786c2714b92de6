//! `watertight batch` on the real kernel: C submissions compiled inside the sandbox and judged
//! (AC, WA, CE, TO, ML, RE, one that looks for the expected output), a batch killed with SIGKILL
//! and restarted, two shards merged, and a bad jobs file refused before anything runs.

mod common;
use common::*;
use watertight_testkit::this_test;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

/// The submissions, by job id: each reads two numbers and prints their sum, in its own way.
fn submissions(expected: &Path) -> Vec<(&'static str, String)> {
    let main = |body: &str| {
        format!("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nint main(void) {{ int a, b; if (scanf(\"%d %d\", &a, &b) != 2) return 9; {body} }}\n")
    };
    vec![
        ("ac", main("printf(\"%d\\n\", a + b); return 0;")),
        ("wa", main("printf(\"%d\\n\", a - b); return 0;")),
        ("ce", "int main(void) { this is not C; }\n".to_string()),
        ("to", main("volatile unsigned long x = 0; for (;;) x++; return 0;")),
        ("ml", main("for (;;) { char *p = malloc(1 << 20); if (!p) return 1; memset(p, 1, 1 << 20); } return 0;")),
        ("re", main("printf(\"%d\\n\", a + b); return 3;")),
        // Looks for the answer beside its box and at the host path of the expected file.
        ("evil", main(&format!(
            "const char *tries[] = {{\"../1.out\", \"../../1.out\", \"{}\", \"{}\"}}; \
             for (int i = 0; i < 4; i++) {{ FILE *f = fopen(tries[i], \"r\"); int v; \
               if (f && fscanf(f, \"%d\", &v) == 1) {{ printf(\"%d\\n\", v); return 0; }} }} \
             printf(\"nothing\\n\"); return 0;",
            expected.display(),
            expected.parent().unwrap().join("jobs.jsonl").display()
        ))),
    ]
}

/// Writes the submissions, the test data and the jobs file into `dir`; returns the jobs file.
fn write_jobs(dir: &Path) -> std::path::PathBuf {
    let expected = dir.join("1.out");
    std::fs::write(dir.join("1.in"), "2 3\n").unwrap();
    std::fs::write(&expected, "5\n").unwrap();
    let mut lines = String::new();
    for (id, src) in submissions(&expected) {
        std::fs::write(dir.join(format!("{id}.c")), src).unwrap();
        let job = serde_json::json!({
            "id": id,
            "files": {"prog.c": format!("{id}.c")},
            "steps": [
                {"name": "compile", "argv": ["cc", "-O1", "-o", "a.out", "prog.c"], "time_limit": 20},
                {"name": "test1", "argv": ["./a.out"], "stdin": "1.in", "expected": "1.out",
                 "time_limit": 1, "memory_limit": "64M"},
            ]
        });
        lines.push_str(&format!("{job}\n"));
    }
    let jobs = dir.join("jobs.jsonl");
    std::fs::write(&jobs, lines).unwrap();
    jobs
}

/// Result lines by id.
fn results(path: &Path) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a torn line: {text:?}"
    );
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let id = v["id"].as_str().unwrap().to_string();
        assert!(out.insert(id.clone(), v).is_none(), "{id} twice in {text}");
    }
    out
}

/// What must be the same across runs: the verdict and each step's name, status and judgement.
fn outcome(v: &Value) -> String {
    let steps: Vec<String> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}:{}:{}", s["name"], s["status"], s["judged"]))
        .collect();
    format!("{} {}", v["verdict"], steps.join(","))
}

/// Nothing but what the test made (no work directory, no box) is left in `dir`.
fn assert_clean(dir: &Path, allowed: &[&str]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let ok = allowed.iter().any(|a| name == *a)
            || name.ends_with(".c")
            || name.starts_with("1.")
            || name == "jobs.jsonl";
        assert!(ok, "{name} left in {}", dir.display());
    }
}

#[test]
fn submissions_are_compiled_in_the_sandbox_and_judged() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["cc"], "gcc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs = write_jobs(dir.path());
    let res = dir.path().join("results.jsonl");
    let o = watertight()
        .args(["batch", "--parallel", "2", "--results"])
        .arg(&res)
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Progress: stderr is not a terminal, so JSON events, the last one complete.
    let last = stderr(&o)
        .lines()
        .rfind(|l| l.starts_with('{'))
        .map(str::to_string);
    let last: Value = serde_json::from_str(&last.expect("a progress event")).unwrap();
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(7), Some(7))
    );

    let r = results(&res);
    let verdicts: BTreeMap<&str, &str> = r
        .iter()
        .map(|(k, v)| (k.as_str(), v["verdict"].as_str().unwrap()))
        .collect();
    let want: BTreeMap<&str, &str> = [
        ("ac", "AC"),
        ("wa", "WA"),
        ("ce", "CE"),
        ("to", "TO"),
        ("ml", "ML"),
        ("re", "RE"),
    ]
    .into();
    for (id, v) in &want {
        assert_eq!(verdicts.get(id), Some(v), "{id}: {}", r[*id]);
    }
    assert!(
        matches!(verdicts["evil"], "WA" | "RE"),
        "the program read the expected output: {}",
        r["evil"]
    );
    assert_eq!(r["ce"]["steps"][1]["status"], "skipped");
    assert_eq!(r["ce"]["steps"][0]["status"], "RE");
    assert_eq!(r["ac"]["steps"][1]["judged"], "AC");
    assert!(r["ac"]["steps"][1]["plan_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(r["re"]["steps"][1]["exit_code"], 3);
    assert_clean(dir.path(), &["results.jsonl"]);
}

/// Jobs that each take a moment, so a batch can be killed between two.
fn slow_jobs(dir: &Path, n: usize) -> std::path::PathBuf {
    std::fs::write(dir.join("1.out"), "x\n").unwrap();
    let mut lines = String::new();
    for i in 0..n {
        let out = if i % 3 == 0 { "y" } else { "x" };
        let job = serde_json::json!({"id": format!("j{i:02}"), "steps": [
            {"name": "run", "argv": ["sh", "-c", format!("sleep 0.3; echo {out}")], "expected": "1.out"}]});
        lines.push_str(&format!("{job}\n"));
    }
    let jobs = dir.join("jobs.jsonl");
    std::fs::write(&jobs, lines).unwrap();
    jobs
}

#[test]
fn a_killed_batch_resumes_to_the_same_results() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs = slow_jobs(dir.path(), 8);
    let whole = dir.path().join("whole.jsonl");
    let o = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&whole)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let part = dir.path().join("part.jsonl");
    let mut child = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&part)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once it has written two results and before it has written all of them.
    let killed_early = loop {
        let n = std::fs::read_to_string(&part).map_or(0, |t| t.lines().count());
        if n >= 2 {
            child.kill().unwrap();
            child.wait().unwrap();
            break n < 8;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the batch ended ({s}) before it was killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // As if it had died in the middle of a write: a torn last line.
    let mut text = std::fs::read_to_string(&part).unwrap();
    text.push_str("{\"id\":\"j07\",\"verd");
    std::fs::write(&part, text).unwrap();

    let o = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&part)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("torn last line"), "{}", stderr(&o));
    let (a, b) = (results(&whole), results(&part));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (id, v) in &a {
        assert_eq!(outcome(v), outcome(&b[id]), "{id}");
    }
    assert_eq!(a["j00"]["verdict"], "WA");
    assert_eq!(a["j01"]["verdict"], "AC");
    assert!(killed_early || a.len() == 8);
    assert_clean(dir.path(), &["whole.jsonl", "part.jsonl"]);
}

#[test]
fn two_shards_merged_equal_one_batch() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs = slow_jobs(dir.path(), 5);
    let run = |name: &str, shard: Option<&str>| {
        let mut c = watertight();
        c.arg("batch")
            .arg(&jobs)
            .arg("--results")
            .arg(dir.path().join(name));
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    run("all.jsonl", None);
    run("p0.jsonl", Some("0/2"));
    run("p1.jsonl", Some("1/2"));
    let p0 = results(&dir.path().join("p0.jsonl"));
    assert_eq!(p0.keys().collect::<Vec<_>>(), ["j00", "j02", "j04"]);
    let merged = dir.path().join("merged.jsonl");
    std::fs::write(&merged, "").unwrap();
    let o = watertight()
        .args(["batch", "merge"])
        .arg(dir.path().join("p1.jsonl"))
        .arg(dir.path().join("p0.jsonl"))
        .arg(dir.path().join("p0.jsonl"))
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("appears again"), "{}", stderr(&o));
    let (a, m) = (results(&dir.path().join("all.jsonl")), results(&merged));
    assert_eq!(a.keys().collect::<Vec<_>>(), m.keys().collect::<Vec<_>>());
    for (id, v) in &a {
        assert_eq!(outcome(v), outcome(&m[id]), "{id}");
    }
    let text = std::fs::read_to_string(&merged).unwrap();
    let ids: Vec<_> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].clone())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(ids, sorted, "merge output sorted by id");
    assert_clean(
        dir.path(),
        &["all.jsonl", "p0.jsonl", "p1.jsonl", "merged.jsonl"],
    );
}

#[test]
fn a_bad_jobs_file_names_line_and_field_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs.jsonl");
    std::fs::write(
        &jobs,
        "{\"id\":\"a\",\"steps\":[{\"name\":\"x\",\"argv\":[\"touch\",\"/tmp/never\"]}]}\n\
         {\"id\":\"b\",\"steps\":[{\"name\":\"x\",\"argv\":[\"true\"]},{\"name\":\"y\",\"argv\":[\"true\"],\"stdin\":\"missing.in\"}]}\n",
    )
    .unwrap();
    let res = dir.path().join("r.jsonl");
    let o = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&res)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("jobs.jsonl:2: steps[1].stdin: ") && err.contains("missing.in"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!res.exists(), "nothing run, no results file");
}

#[test]
fn sigterm_drains_the_running_job_and_exits_143() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs = slow_jobs(dir.path(), 8);
    let res = dir.path().join("r.jsonl");
    let child = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&res)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while std::fs::read_to_string(&res).map_or(0, |t| t.lines().count()) < 1 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("run it again to resume"),
        "{}",
        stderr(&o)
    );
    let partial = results(&res);
    // The restart completes the set.
    let o = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&res)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all = results(&res);
    assert_eq!(all.len(), 8);
    assert!(partial.keys().all(|k| all.contains_key(k)));
    assert_clean(dir.path(), &["r.jsonl"]);
}

/// A process on the host, as /proc shows it.
struct Proc {
    pid: u32,
    ppid: u32,
    /// The state letter of /proc/PID/stat (Z: a zombie).
    state: String,
    /// Its arguments joined by spaces.
    cmdline: String,
}

/// Every process on the host (those that end while being read are left out).
fn processes() -> Vec<Proc> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace();
        let state = fields.next().unwrap_or_default().to_string();
        let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        v.push(Proc {
            pid,
            ppid,
            state,
            cmdline: cmdline.trim_end().to_string(),
        });
    }
    v
}

/// The pids of `parent`'s children whose command line contains `word`.
fn children_with(parent: u32, word: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == parent && p.cmdline.contains(word))
        .map(|p| p.pid)
        .collect()
}

/// Whether any process on the host has `word` in its command line.
fn any_process_with(word: &str) -> bool {
    processes().iter().any(|p| p.cmdline.contains(word))
}

/// Live (not zombie) processes whose command line contains `word`.
fn live_processes_with(word: &str) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.state != "Z" && p.cmdline.contains(word))
        .map(|p| p.pid)
        .collect()
}

/// A jobs file in `dir` of one-step jobs (`run`), by id and argv.
fn one_step_jobs(dir: &Path, jobs: &[(&str, &[&str])]) -> std::path::PathBuf {
    let mut lines = String::new();
    for (id, argv) in jobs {
        let job = serde_json::json!({"id": id, "steps": [{"name": "run", "argv": argv}]});
        lines.push_str(&format!("{job}\n"));
    }
    let path = dir.join("jobs.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_step_worker_killed_mid_step_costs_that_job_only() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("sleep 29.{}", std::process::id());
    let jobs = one_step_jobs(
        dir.path(),
        &[
            ("long", &["sh", "-c", &marker]),
            ("next", &["sh", "-c", "true"]),
        ],
    );
    let res = dir.path().join("r.jsonl");
    let batch = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(&res)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut worker = Vec::new();
    wait_for("the step worker and its sandbox", || {
        worker = children_with(batch.id(), "worker");
        worker.len() == 1 && any_process_with(&marker)
    });
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &worker[0].to_string()])
        .status()
        .unwrap()
        .success());
    let o = batch.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&res);
    assert_eq!(r["long"]["verdict"], "XX", "{}", r["long"]);
    let message = r["long"]["steps"][0]["message"].as_str().unwrap();
    assert!(message.contains("step worker ended"), "{message}");
    // The next job ran in a new worker.
    assert_eq!(r["next"]["verdict"], "OK", "{}", r["next"]);
    // The killed worker's sandbox died with it (its pid 1's parent-death signal).
    wait_for("the killed worker's sandbox to end", || {
        !any_process_with(&marker)
    });
    assert_clean(dir.path(), &["r.jsonl"]);
}

#[test]
fn a_batch_killed_with_sigkill_stops_its_running_steps_and_cleans_them_up() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("sleep 28.{}", std::process::id());
    let jobs = one_step_jobs(dir.path(), &[("long", &["sh", "-c", &marker])]);
    let mut batch = watertight()
        .arg("batch")
        .arg(&jobs)
        .arg("--results")
        .arg(dir.path().join("r.jsonl"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the step's sandbox", || any_process_with(&marker));
    let worker = children_with(batch.id(), "worker");
    assert_eq!(worker.len(), 1);
    batch.kill().unwrap();
    batch.wait().unwrap();
    // The worker gets SIGTERM (its parent-death signal) and stops the step the way `run` stops
    // on SIGTERM: the sandbox killed, its cgroup removed, and then it exits.
    wait_for("the sandbox and its worker to end", || {
        !any_process_with(&marker) && !Path::new(&format!("/proc/{}", worker[0])).exists()
    });
    // Its cgroups are named after it (`watertight-NAME@PID-STARTTIME`).
    let owned = format!("@{}-", worker[0]);
    let left: Vec<_> = watertight_cgroups()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&owned))
        .collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

/// A step worker this test talks to directly, in the batch's protocol (one JSON line each way).
struct TestWorker {
    child: std::process::Child,
    requests: std::process::ChildStdin,
    answers: std::io::BufReader<std::process::ChildStdout>,
}

impl TestWorker {
    fn start() -> TestWorker {
        let mut child = watertight()
            .args(["batch", "worker", "--parent"])
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let requests = child.stdin.take().unwrap();
        let answers = std::io::BufReader::new(child.stdout.take().unwrap());
        TestWorker {
            child,
            requests,
            answers,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one request line (sent as it is, JSON or not).
    fn send(&mut self, request: &str) {
        use std::io::Write;
        self.requests
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
    }

    fn answer(&mut self) -> Value {
        use std::io::BufRead;
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Ends it (its stdin closed) and checks that it exits 0.
    fn finish(self) {
        let TestWorker {
            mut child,
            requests,
            ..
        } = self;
        drop(requests);
        assert!(child.wait().unwrap().success());
    }
}

/// A temporary directory only root can reach (a box's parent must be).
fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn a_step_worker_holds_no_more_descriptors_or_memory_after_many_steps() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = private_dir();
    let mut worker = TestWorker::start();
    let pid = worker.pid();
    let boxd = dir.path().join("box");
    // `argv`: run's flags after the box, then `--` and the command (or just the command).
    let mut step = |argv: &[&str]| -> Value {
        std::fs::create_dir(&boxd).unwrap();
        let mut run: Vec<String> = vec!["--box".into(), boxd.display().to_string()];
        if !argv.contains(&"--") {
            run.push("--".into());
        }
        run.extend(argv.iter().map(|s| s.to_string()));
        worker.send(&serde_json::json!({"run": run}).to_string());
        let answer = worker.answer();
        // Nothing of the step stays mounted in the worker (a sized box's tmpfs would otherwise
        // be carried into every later step's mount namespace); checked while the box exists,
        // since removing a mount point detaches what is mounted on it in every namespace.
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        assert!(
            !mounts.contains(&boxd.display().to_string()),
            "a box mount left in the worker: {mounts}"
        );
        std::fs::remove_dir_all(&boxd).unwrap();
        answer
    };
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let rss_kb = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
    };
    for _ in 0..10 {
        let v = step(&["/bin/true"]);
        assert_eq!(v["verdict"]["status"], "OK", "{v}");
    }
    let (fds_early, rss_early) = (fds(), rss_kb());
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let v = step(&["/bin/true"]);
        assert_eq!(v["verdict"]["status"], "OK", "{v}");
        ids.insert(v["verdict"]["sandbox_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 200, "every step has a sandbox id of its own");
    // Sized boxes: each step's tmpfs is gone from the worker's mount namespace afterwards.
    for _ in 0..3 {
        let v = step(&["--box-size", "1M", "--", "sh", "-c", "echo x > f"]);
        assert_eq!(v["verdict"]["status"], "OK", "{v}");
    }
    // What a worker may hold beyond its first steps' descriptors: an idmap namespace per slot
    // it was given (other tests take slots meanwhile; at most IDMAPS_KEPT) and, for a moment,
    // the socket of the helper making the next network namespace (it shares the table).
    let bound = fds_early + watertight_sandbox::layers::user::IDMAPS_KEPT + 1;
    assert!(
        fds() <= bound,
        "descriptors grew over 200 steps: {} > {bound}",
        fds()
    );
    let rss = rss_kb();
    assert!(
        rss < rss_early + 4096,
        "RSS grew from {rss_early} to {rss} KiB over 200 steps"
    );
    // A request it cannot run is answered with run's one-line error, and the worker goes on.
    let mut raw = |req: &str| -> Value {
        worker.send(req);
        worker.answer()
    };
    let v = raw(r#"{"run": ["--no-such-flag", "--", "true"]}"#);
    let e = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(e.contains("--no-such-flag") && !e.contains('\n'), "{e}");
    let v = raw(r#"{"run": ["--isolation", "gvisor", "--", "true"]}"#);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("only the namespace tier"),
        "{v}"
    );
    let v = raw("not json");
    assert!(v["error"].as_str().unwrap().contains("not one"), "{v}");
    worker.finish();
}

/// A step worker's sandboxes get network namespaces made ahead (crates/sandbox
/// `namespaces::JoinedNet`): a new one for every step, with `lo` up, and owned by the host's
/// user namespace, so the sandbox has no capability over it.
#[test]
fn a_step_workers_network_namespaces_are_new_each_step_with_lo_up_and_not_the_sandboxs() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["python3"], "python3") {
        return;
    }
    let dir = private_dir();
    let mut worker = TestWorker::start();
    let marker = format!("sleep 1.{}", std::process::id());
    let script = format!(
        "readlink /proc/self/ns/net; python3 -c 'import socket; s = socket.socket(); \
         s.bind((\"127.0.0.1\", 0)); s.listen(1); socket.create_connection(s.getsockname()); \
         print(\"lo ok\")'; {marker}"
    );
    let host_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..3 {
        let boxd = dir.path().join(format!("box{i}"));
        let out = dir.path().join(format!("out{i}"));
        std::fs::create_dir(&boxd).unwrap();
        let req =
            serde_json::json!({"run": ["--box", boxd, "--stdout", out, "--", "sh", "-c", script]});
        worker.send(&req.to_string());
        // While it sleeps: its network namespace's owner, seen from the host.
        let mut program = None;
        wait_for("the step's program", || {
            program = processes().into_iter().find(|p| p.cmdline == marker);
            program.is_some()
        });
        let proc_dir = Path::new("/proc").join(program.unwrap().pid.to_string());
        let net = std::fs::File::open(proc_dir.join("ns/net")).unwrap();
        let owner = watertight_sys::netns::owner(&net).unwrap();
        let owner_link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&owner)
        ))
        .unwrap();
        let sandbox_userns = std::fs::read_link(proc_dir.join("ns/user")).unwrap();
        assert_ne!(
            owner_link, sandbox_userns,
            "step {i}: the sandbox owns its network namespace"
        );
        assert_eq!(owner_link, host_userns, "step {i}");
        let v = worker.answer();
        assert_eq!(v["verdict"]["status"], "OK", "{v}");
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        let ns = lines.next().unwrap().to_string();
        assert_eq!(lines.next(), Some("lo ok"), "{text}");
        assert_ne!(
            ns,
            std::fs::read_link("/proc/self/ns/net")
                .unwrap()
                .display()
                .to_string()
        );
        assert!(
            seen.insert(ns),
            "step {i} reused a network namespace: {text}"
        );
    }
    worker.finish();
}

/// Batches that end normally leave no step worker and no helper of one (the helper making the
/// next network namespace shares the worker's memory, so it shows the worker's command line).
/// Found by hand: one batch in six left a helper whose parent-death signal was set after the
/// worker had exited; so many small batches, four workers each.
#[test]
fn batches_leave_no_worker_or_helper_behind() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..8).map(|i| format!("j{i}")).collect();
    let jobs: Vec<(&str, &[&str])> = ids.iter().map(|id| (id.as_str(), &["true"][..])).collect();
    let jobs = one_step_jobs(dir.path(), &jobs);
    let mut batches = Vec::new();
    for round in 0..12 {
        let res = dir.path().join(format!("r{round}.jsonl"));
        let child = watertight()
            .args(["batch", "--parallel", "4", "--results"])
            .arg(&res)
            .arg(&jobs)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        batches.push(child.id());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for pid in batches {
        let left = live_processes_with(&format!("batch worker --parent {pid}"));
        assert!(left.is_empty(), "batch {pid} left {left:?}");
    }
}
