//! `watertight run` from a terminal: the test makes a pty of its own and runs watertight on its
//! slave, as an operator's shell would. Whatever the program does to its terminal (raw mode,
//! line discipline, window size, escape sequences) must not reach the test's pty.

mod common;
use common::*;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag};
use nix::pty::Winsize;
use nix::sys::termios::{self, LocalFlags, Termios};

/// A hang guard only (a broken relay would otherwise block the test forever), never a measure.
const GUARD: Duration = Duration::from_secs(60);

/// The caller's side: a pty whose slave is watertight's stdin (and more), and its output.
struct Terminal {
    master: File,
    slave: Option<OwnedFd>,
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    fn new(rows: u16, cols: u16) -> Terminal {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(&ws, None).unwrap();
        for fd in [&pty.master, &pty.slave] {
            // Other tests spawn children at the same time: they must not inherit these.
            nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
        }
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads until EIO: every slave descriptor (watertight's and ours) is closed.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            master,
            slave: Some(pty.slave),
            rx,
            seen: Vec::new(),
        }
    }

    fn slave(&self) -> std::os::fd::BorrowedFd<'_> {
        self.slave.as_ref().unwrap().as_fd()
    }

    fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.as_ref().unwrap().try_clone().unwrap())
    }

    /// watertight with stdin, stdout and stderr on the slave. `ctty`: as the session leader of
    /// the slave (through util-linux setsid), as in a login shell, so SIGWINCH reaches it.
    fn spawn(&self, ctty: bool, args: &[&str]) -> Run {
        let mut c = if ctty {
            let mut c = Command::new("setsid");
            c.arg("-c").arg(env!("CARGO_BIN_EXE_watertight"));
            c
        } else {
            watertight()
        };
        c.args(args)
            .stdin(self.stdio())
            .stdout(self.stdio())
            .stderr(self.stdio())
            .spawn()
            .map(Run)
            .unwrap()
    }

    /// Reads until `needle` has been shown.
    fn wait_for(&mut self, needle: &str) {
        while !contains(&self.seen, needle.as_bytes()) {
            match self.rx.recv_timeout(GUARD) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(e) => panic!("{needle:?} never shown ({e}); shown: {:?}", self.text()),
            }
        }
    }

    /// Closes our slave too and reads everything that is left.
    fn finish(&mut self) -> String {
        self.slave = None;
        loop {
            match self.rx.recv_timeout(GUARD) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("the pty never closed ({e}); shown: {:?}", self.text()),
            }
        }
        self.text()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// watertight, killed (and so its sandbox) if the test fails before it ends.
struct Run(Child);

impl Run {
    fn wait(&mut self) -> Option<i32> {
        self.0.wait().unwrap().code()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SIGTERM: watertight kills its sandbox and removes its cgroup.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The settings that matter, comparable.
fn settings(t: &Termios) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        t.input_flags, t.output_flags, t.control_flags, t.local_flags, t.control_chars
    )
}

fn size(fd: std::os::fd::BorrowedFd<'_>) -> (u16, u16) {
    let ws = watertight_sys::tty::window_size(fd).unwrap();
    (ws.ws_row, ws.ws_col)
}

fn run_tty_attack(escapes: Option<&str>) -> (Terminal, String, Option<i32>, String) {
    let mut t = Terminal::new(33, 111);
    let before = settings(&termios::tcgetattr(t.slave()).unwrap());
    let bind = format!("--bind-ro={}:/attack", attack_dir().display());
    let mut args = vec!["run", bind.as_str()];
    if let Some(e) = escapes {
        args.push(e);
    }
    args.extend(["--", "/attack/attack", "tty"]);
    let mut child = t.spawn(false, &args);
    let code = child.wait();
    // The program set raw mode, a 1x1 window and the N_NULL line discipline on its terminal.
    assert_eq!(
        watertight_sys::tty::line_discipline(t.slave()).unwrap(),
        0,
        "the program changed the caller's line discipline"
    );
    assert_eq!(
        settings(&termios::tcgetattr(t.slave()).unwrap()),
        before,
        "the program changed the caller's terminal settings"
    );
    assert_eq!(
        size(t.slave()),
        (33, 111),
        "the program resized the caller's window"
    );
    let shown = t.finish();
    (t, before, code, shown)
}

#[test]
fn the_program_cannot_change_the_callers_terminal_and_escapes_are_stripped() {
    if !require_root("the_program_cannot_change_the_callers_terminal_and_escapes_are_stripped") {
        return;
    }
    let (_t, _, code, shown) = run_tty_attack(None);
    // Exit 1: every step of the attack succeeded, on the pty the program was given.
    assert_eq!(code, Some(1), "shown: {shown:?}");
    assert!(shown.contains("tty-attack-ran"), "{shown:?}");
    assert!(
        shown.contains("size=33x111"),
        "window size not copied: {shown:?}"
    );
    assert!(
        !shown.contains("\x1b]"),
        "an OSC sequence came through: {shown:?}"
    );
    assert!(!shown.contains("owned-title"), "{shown:?}");
    assert!(!shown.contains("T1dORUQ="), "{shown:?}");
    assert!(
        shown.contains("\x1b[31mcolour\x1b[0m"),
        "plain SGR colours pass: {shown:?}"
    );
}

#[test]
fn terminal_escapes_pass_lets_them_through() {
    if !require_root("terminal_escapes_pass_lets_them_through") {
        return;
    }
    let (_t, _, code, shown) = run_tty_attack(Some("--terminal-escapes=pass"));
    assert_eq!(code, Some(1), "shown: {shown:?}");
    assert!(
        shown.contains("\x1b]52;c;T1dORUQ=\x07\x1b]0;owned-title\x07"),
        "{shown:?}"
    );
}

#[test]
fn keystrokes_reach_the_program_and_the_terminal_is_raw_only_during_the_run() {
    if !require_root("keystrokes_reach_the_program_and_the_terminal_is_raw_only_during_the_run") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    let before = termios::tcgetattr(t.slave()).unwrap();
    let mut child = t.spawn(
        true,
        &[
            "run",
            "--",
            "/bin/sh",
            "-c",
            "test -t 0 && echo ready; read line; echo \"got:$line\"",
        ],
    );
    t.wait_for("ready");
    let during = termios::tcgetattr(t.slave()).unwrap();
    assert!(
        !during
            .local_flags
            .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
        "the caller's terminal is not in raw mode: {:?}",
        during.local_flags
    );
    // Enter sends CR; the program's own terminal turns it into a newline.
    t.master.write_all(b"hello\r").unwrap();
    t.wait_for("got:hello");
    assert_eq!(child.wait(), Some(0));
    assert_eq!(
        settings(&termios::tcgetattr(t.slave()).unwrap()),
        settings(&before)
    );
    t.finish();
}

#[test]
fn sigterm_to_watertight_restores_the_terminal() {
    if !require_root("sigterm_to_watertight_restores_the_terminal") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    let before = settings(&termios::tcgetattr(t.slave()).unwrap());
    let mut child = t.spawn(
        false,
        &["run", "--", "/bin/sh", "-c", "echo ready; sleep 300"],
    );
    t.wait_for("ready");
    assert_ne!(settings(&termios::tcgetattr(t.slave()).unwrap()), before);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait(), Some(125), "{}", t.text());
    assert_eq!(settings(&termios::tcgetattr(t.slave()).unwrap()), before);
    let shown = t.finish();
    assert!(shown.contains("interrupted by SIGTERM"), "{shown:?}");
}

#[test]
fn window_size_changes_reach_the_program() {
    if !require_root("window_size_changes_reach_the_program") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    let mut child = t.spawn(
        true,
        &[
            "run",
            "--",
            "/bin/sh",
            "-c",
            "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.1; done",
        ],
    );
    t.wait_for("ready");
    let ws = watertight_sys::tty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // As a terminal emulator does when its window is resized.
    watertight_sys::tty::set_window_size(t.master.as_fd(), &ws).unwrap();
    t.wait_for("40 120");
    assert_eq!(child.wait(), Some(0));
    t.finish();
}

#[test]
fn pipes_beside_a_terminal_stay_pipes() {
    if !require_root("pipes_beside_a_terminal_stay_pipes") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    let child = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args([
            "run",
            "--",
            "/bin/sh",
            "-c",
            "test -t 0 && echo stdin-is-a-terminal; test -t 1 || echo stdout-is-not; echo on-stderr >&2",
        ])
        .stdin(t.stdio())
        .stdout(Stdio::piped())
        .stderr(t.stdio())
        .spawn()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    // Exactly the bytes written: no terminal output processing (\r\n) on the pipe.
    assert_eq!(stdout(&o), "stdin-is-a-terminal\nstdout-is-not\n");
    let shown = t.finish();
    assert!(shown.contains("on-stderr\r\n"), "{shown:?}");
}

#[test]
fn output_limit_counts_what_the_program_writes_to_its_terminal() {
    if !require_root("output_limit_counts_what_the_program_writes_to_its_terminal") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    let mut child = t.spawn(
        false,
        &[
            "run",
            "--output-limit=4K",
            "--",
            "/bin/sh",
            "-c",
            "test -t 1 && echo stdout-is-a-terminal; yes | head -c 1000000",
        ],
    );
    let code = child.wait();
    let shown = t.finish();
    assert_eq!(code, Some(153), "{}", &shown[..shown.len().min(300)]);
    assert!(shown.contains("stdout-is-a-terminal"));
    // 4 KiB of the program's output at most, plus watertight's own line.
    assert!(shown.len() < 5000, "{} bytes shown", shown.len());
}

#[test]
fn the_pty_is_not_reachable_by_path_inside() {
    if !require_root("the_pty_is_not_reachable_by_path_inside") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    let mut child = t.spawn(
        false,
        &[
            "run",
            "--",
            "/bin/sh",
            "-c",
            // The sandbox's devpts is its own: the host's pty (the program's, and the caller's)
            // has no name there, though /dev/tty (its controlling terminal) works.
            "ls /dev/pts; tty; echo via-dev-tty > /dev/tty",
        ],
    );
    assert_eq!(child.wait(), Some(0));
    let shown = t.finish();
    assert!(
        shown.contains("ptmx\r\nnot a tty\r\nvia-dev-tty\r\n"),
        "{shown:?}"
    );
}

#[test]
fn a_stopped_terminal_holds_up_the_program_not_the_time_limit() {
    if !require_root("a_stopped_terminal_holds_up_the_program_not_the_time_limit") {
        return;
    }
    let mut t = Terminal::new(24, 80);
    // As after ^S: nothing written to the terminal goes anywhere until it is started again.
    termios::tcflow(t.slave(), termios::FlowArg::TCOOFF).unwrap();
    let mut child = Run(Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(["run", "--wall-time-limit=1", "--", "yes"])
        .stdin(Stdio::null())
        .stdout(t.stdio())
        .stderr(t.stdio())
        .spawn()
        .unwrap());
    let mut waited = Duration::ZERO;
    let code = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status.code();
        }
        if waited >= GUARD {
            termios::tcflow(t.slave(), termios::FlowArg::TCOON).unwrap();
            panic!("watertight is stuck writing to a stopped terminal");
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    };
    termios::tcflow(t.slave(), termios::FlowArg::TCOON).unwrap();
    assert_eq!(code, Some(124), "the wall-time limit was not enforced");
    t.finish();
}
