//! The program's terminal. When the caller's stdin, stdout or stderr is a terminal, the program
//! does not get it: it gets the slave of a pseudo-terminal the supervisor opened (as runc,
//! conmon and nsjail do), for exactly the streams that were terminals, as its controlling
//! terminal. The supervisor relays: the caller's keystrokes to the master (the caller's terminal
//! in raw mode meanwhile, restored on drop), the master's output to the caller through an escape
//! filter, and the caller's window size (at start and on SIGWINCH). Whatever the program does to
//! its terminal (termios, line discipline, window size, hang-up) happens to the pty, never to
//! the caller's. The slave is a descriptor of the host's devpts passed across clone; the
//! sandbox mounts its own devpts instance, so the host's ptys cannot be opened by path inside.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use watertight_sys::tty;

use crate::error::{Error, IoContext};
use crate::profile::TerminalEscapes;

/// Keystrokes the master has not taken yet (the program is not reading): past this the
/// supervisor stops reading the caller's terminal until the program catches up.
const INPUT_PENDING_MAX: usize = 64 << 10;
/// Output the caller's terminal has not taken yet: past this the supervisor stops reading the
/// master, and the program's writes to its terminal block.
const OUTPUT_PENDING_MAX: usize = 64 << 10;
/// How long the last output may wait for a stopped terminal after the sandbox is gone.
const FINAL_OUTPUT_WAIT_MS: u16 = 2000;

/// Which of the caller's stdin, stdout and stderr are terminals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    /// stdin is a terminal: keys reach the program through its pty.
    pub stdin: bool,
    /// stdout is a terminal: the program's stdout is the pty (not a counted pipe).
    pub stdout: bool,
    /// stderr is a terminal: the program's stderr is the pty (not a counted pipe).
    pub stderr: bool,
}

impl Streams {
    /// The caller's streams as they are now.
    pub fn of_caller() -> Streams {
        let is_tty = |fd: BorrowedFd<'_>| nix::unistd::isatty(fd).unwrap_or(false);
        Streams {
            stdin: is_tty(std::io::stdin().as_fd()),
            stdout: is_tty(std::io::stdout().as_fd()),
            stderr: is_tty(std::io::stderr().as_fd()),
        }
    }

    fn any(self) -> bool {
        self.stdin || self.stdout || self.stderr
    }
}

/// The caller's terminal the program's output is shown on and whose size is copied: stdout,
/// else stderr, else stdin (a terminal opened for reading and writing, as shells have). Opened
/// anew, non-blocking: a stopped terminal (^S, a paused emulator) must hold up the program, not
/// the supervisor and its time limits, and the flag must not touch the caller's own open file
/// (the shell shares it). Where it cannot be reopened, a duplicate of the descriptor (blocking).
fn caller_terminal(streams: Streams) -> Result<File, Error> {
    let fd = if streams.stdout {
        std::io::stdout().as_fd().try_clone_to_owned()
    } else if streams.stderr {
        std::io::stderr().as_fd().try_clone_to_owned()
    } else {
        std::io::stdin().as_fd().try_clone_to_owned()
    };
    let fd = fd.ctx(|| "duplicate the caller's terminal descriptor".into())?;
    set_cloexec(&fd)?;
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok(reopened.unwrap_or_else(|_| File::from(fd)))
}

fn set_cloexec(fd: &OwnedFd) -> Result<(), Error> {
    nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(drop)
        .ctx(|| "mark the terminal close-on-exec".into())
}

/// A pseudo-terminal pair made before clone: the sandbox keeps the slave, the supervisor the
/// master.
pub struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    streams: Streams,
    caller: File,
}

impl Pty {
    /// A pty shaped like the caller's terminal (its termios and window size), or None when none
    /// of stdin, stdout, stderr is a terminal (pipes and files stay exactly as they are).
    /// `redirected`: the streams that come from or go to a `--stdin`/`--stdout`/`--stderr` file
    /// instead of the caller's (never the terminal then).
    pub fn for_caller(redirected: Streams) -> Result<Option<Pty>, Error> {
        let caller = Streams::of_caller();
        let streams = Streams {
            stdin: caller.stdin && !redirected.stdin,
            stdout: caller.stdout && !redirected.stdout,
            stderr: caller.stderr && !redirected.stderr,
        };
        if !streams.any() {
            return Ok(None);
        }
        let caller = caller_terminal(streams)?;
        let attrs = termios::tcgetattr(&caller).ok();
        let size = tty::window_size(caller.as_fd()).ok();
        let pair = nix::pty::openpty(size.as_ref(), attrs.as_ref())
            .ctx(|| "open a pseudo-terminal for the program (/dev/ptmx)".into())?;
        set_cloexec(&pair.master)?;
        set_cloexec(&pair.slave)?;
        Ok(Some(Pty {
            master: pair.master,
            slave: pair.slave,
            streams,
            caller,
        }))
    }

    /// Which caller streams the pty stands in for.
    pub fn streams(&self) -> Streams {
        self.streams
    }

    /// The sandbox's side: the slave alone (the master is closed here).
    pub fn into_slave(self) -> Slave {
        Slave {
            fd: self.slave,
            streams: self.streams,
        }
    }

    /// The supervisor's side: the master alone, relaying to and from the caller's terminal.
    /// The caller's terminal goes into raw mode here when stdin is one; `Relay`'s drop
    /// restores it.
    pub fn into_relay(self, escapes: TerminalEscapes) -> Result<Relay, Error> {
        let Pty {
            master,
            slave,
            streams,
            caller,
        } = self;
        // Only the sandbox holds the slave now: when it is gone the master reads EIO.
        drop(slave);
        let flags = nix::fcntl::fcntl(&master, FcntlArg::F_GETFL).ctx(|| "pty flags".into())?;
        // The supervisor never blocks on the program's terminal (a program that does not read
        // its input must not stall the wall-time limit).
        nix::fcntl::fcntl(
            &master,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
        )
        .ctx(|| "make the pty master non-blocking".into())?;
        let resize = Resize::watch()?;
        let (input, raw) = if streams.stdin && in_foreground() {
            let stdin = std::io::stdin().as_fd().try_clone_to_owned();
            let stdin = stdin.ctx(|| "duplicate the caller's stdin".into())?;
            set_cloexec(&stdin)?;
            let raw = RawMode::enter(stdin.as_fd())?;
            (Some(File::from(stdin)), Some(raw))
        } else {
            (None, None)
        };
        let mut relay = Relay {
            master: Some(master),
            input,
            pending: Vec::new(),
            caller,
            filter: EscapeFilter::new(escapes),
            unshown: Vec::new(),
            resize,
            _raw: raw,
        };
        // A resize between opening the pty and watching SIGWINCH would be lost otherwise.
        relay.copy_window_size();
        Ok(relay)
    }
}

/// Whether this process may read and reconfigure the terminal on stdin: it is not its
/// controlling terminal, or this process group is the terminal's foreground. A run started in
/// the background (`watertight run ... &`) would otherwise be stopped by SIGTTOU/SIGTTIN with
/// its sandbox unsupervised; it gives the program no keyboard input instead.
fn in_foreground() -> bool {
    match nix::unistd::tcgetpgrp(std::io::stdin().as_fd()) {
        Ok(pg) => pg == nix::unistd::getpgrp(),
        Err(_) => true,
    }
}

/// The slave end inside the sandbox.
pub struct Slave {
    fd: OwnedFd,
    streams: Streams,
}

impl Slave {
    /// Puts the slave in place of each caller stream that was a terminal (sandbox pid 1, before
    /// anything else: the caller's terminal never stays open inside the sandbox).
    pub fn attach_stdio(&self) -> Result<(), Error> {
        let fd = self.fd.as_fd();
        if self.streams.stdin {
            nix::unistd::dup2_stdin(fd).ctx(|| "terminal as stdin".into())?;
        }
        if self.streams.stdout {
            nix::unistd::dup2_stdout(fd).ctx(|| "terminal as stdout".into())?;
        }
        if self.streams.stderr {
            nix::unistd::dup2_stderr(fd).ctx(|| "terminal as stderr".into())?;
        }
        Ok(())
    }

    /// Makes the slave the controlling terminal of the calling session leader (the program,
    /// right after setsid), so /dev/tty, job control and ^C work inside.
    pub fn make_controlling(&self) -> Result<(), Error> {
        tty::set_controlling_terminal(self.fd.as_fd())
            .ctx(|| "make the pty the program's controlling terminal".into())
    }
}

/// The caller's terminal in raw mode (keystrokes, ^C included, go to the program's pty, whose
/// own line discipline interprets them); the saved settings are put back on drop.
pub struct RawMode {
    fd: File,
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode (cfmakeraw), saving its settings for the drop.
    pub fn enter(fd: BorrowedFd<'_>) -> Result<RawMode, Error> {
        let fd = fd
            .try_clone_to_owned()
            .ctx(|| "duplicate the caller's terminal".into())?;
        set_cloexec(&fd)?;
        let saved = termios::tcgetattr(&fd).ctx(|| "read the caller's terminal settings".into())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw)
            .ctx(|| "put the caller's terminal in raw mode".into())?;
        Ok(RawMode {
            fd: File::from(fd),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// SIGWINCH through a signalfd of its own; the signal is unblocked again on drop if it was not
/// blocked before.
struct Resize {
    fd: SignalFd,
    was_blocked: bool,
}

impl Resize {
    fn watch() -> Result<Resize, Error> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .ctx(|| "block SIGWINCH".into())?;
        let was_blocked = old.contains(Signal::SIGWINCH);
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK);
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) => {
                if !was_blocked {
                    let _ =
                        nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
                }
                return Err(e).ctx(|| "signalfd for SIGWINCH".into());
            }
        };
        Ok(Resize { fd, was_blocked })
    }
}

impl Drop for Resize {
    fn drop(&mut self) {
        if !self.was_blocked {
            let mut set = SigSet::empty();
            set.add(Signal::SIGWINCH);
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        }
    }
}

/// Which of the relay's descriptors polled ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFd {
    /// The caller's terminal has keys to read.
    Input,
    /// The pty master: the program's output to read, or room for pending keys.
    Master,
    /// The caller's terminal changed size (SIGWINCH).
    Resize,
    /// The caller's terminal can take more of the program's output.
    Output,
}

/// The supervisor's end of the program's terminal. Field order is drop order: the caller's
/// terminal leaves raw mode last, after everything shown has been written.
pub struct Relay {
    /// None once the sandbox has closed every slave descriptor (EIO).
    master: Option<OwnedFd>,
    /// The caller's stdin while it is a terminal still being read.
    input: Option<File>,
    pending: Vec<u8>,
    caller: File,
    filter: EscapeFilter,
    /// Filtered output the caller's terminal has not taken yet.
    unshown: Vec<u8>,
    resize: Resize,
    _raw: Option<RawMode>,
}

impl Relay {
    /// The descriptors to poll and what for, with their tags.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags, RelayFd)> {
        let mut v = vec![(self.resize.fd.as_fd(), PollFlags::POLLIN, RelayFd::Resize)];
        if !self.unshown.is_empty() {
            v.push((self.caller.as_fd(), PollFlags::POLLOUT, RelayFd::Output));
        }
        if let Some(m) = &self.master {
            let mut flags = PollFlags::empty();
            if self.unshown.len() < OUTPUT_PENDING_MAX {
                flags |= PollFlags::POLLIN;
            }
            if !self.pending.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            // Not polled at all while it may not be read: a hang-up would report at once.
            if !flags.is_empty() {
                v.push((m.as_fd(), flags, RelayFd::Master));
            }
            if let Some(input) = self
                .input
                .as_ref()
                .filter(|_| self.pending.len() < INPUT_PENDING_MAX)
            {
                v.push((input.as_fd(), PollFlags::POLLIN, RelayFd::Input));
            }
        }
        v
    }

    /// Handles one ready descriptor. `admit(n)` counts n bytes of the program's output against
    /// the output limit and says how many of them may still be shown.
    pub fn on_ready(&mut self, fd: RelayFd, buf: &mut [u8], admit: &mut dyn FnMut(usize) -> usize) {
        match fd {
            RelayFd::Resize => {
                while let Ok(Some(_)) = self.resize.fd.read_signal() {}
                self.copy_window_size();
            }
            RelayFd::Input => self.read_input(buf),
            RelayFd::Master => {
                self.flush_input();
                if self.unshown.len() < OUTPUT_PENDING_MAX {
                    self.read_output(buf, admit);
                }
            }
            RelayFd::Output => self.show(),
        }
    }

    /// After the sandbox is gone: shows what is left in the pty.
    pub fn drain(&mut self, buf: &mut [u8], admit: &mut dyn FnMut(usize) -> usize) {
        self.pending.clear();
        // Ends: every slave descriptor is closed, so the master holds a finite rest and then
        // reads EIO (a short wait covers output the kernel is still moving into it), and the
        // caller's terminal either takes the output or is given up on after a wait.
        loop {
            if let Some(m) = self
                .master
                .as_ref()
                .filter(|_| self.unshown.len() < OUTPUT_PENDING_MAX)
            {
                let mut p = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
                if matches!(nix::poll::poll(&mut p, PollTimeout::from(100u8)), Ok(n) if n > 0) {
                    self.read_output(buf, admit);
                } else {
                    self.master = None;
                }
                continue;
            }
            if self.unshown.is_empty() {
                break;
            }
            let mut p = [PollFd::new(self.caller.as_fd(), PollFlags::POLLOUT)];
            let wait = PollTimeout::from(FINAL_OUTPUT_WAIT_MS);
            if !matches!(nix::poll::poll(&mut p, wait), Ok(n) if n > 0) {
                break;
            }
            self.show();
        }
    }

    /// Writes what the caller's terminal takes now.
    fn show(&mut self) {
        while !self.unshown.is_empty() {
            match nix::unistd::write(&self.caller, &self.unshown) {
                Ok(n) => {
                    self.unshown.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                // The caller's terminal is gone: nobody to show it to.
                Err(_) => self.unshown.clear(),
            }
        }
    }

    fn copy_window_size(&mut self) {
        if let (Some(m), Ok(ws)) = (&self.master, tty::window_size(self.caller.as_fd())) {
            let _ = tty::set_window_size(m.as_fd(), &ws);
        }
    }

    fn read_input(&mut self, buf: &mut [u8]) {
        let Some(input) = &self.input else { return };
        let room = INPUT_PENDING_MAX.saturating_sub(self.pending.len());
        let want = buf.len().min(room);
        match nix::unistd::read(input, &mut buf[..want]) {
            Ok(0) => self.input = None,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.flush_input();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.input = None,
        }
    }

    fn flush_input(&mut self) {
        let Some(m) = &self.master else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match nix::unistd::write(m, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    self.pending.clear();
                    break;
                }
            }
        }
    }

    fn read_output(&mut self, buf: &mut [u8], admit: &mut dyn FnMut(usize) -> usize) {
        let Some(m) = &self.master else { return };
        match nix::unistd::read(m, buf) {
            Ok(0) => self.master = None,
            Ok(n) => {
                let allowed = admit(n);
                self.filter.feed(&buf[..allowed], &mut self.unshown);
                self.show();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            // EIO: every slave descriptor is closed.
            Err(_) => self.master = None,
        }
    }
}

/// Removes from the program's output what would act on the caller's terminal rather than be
/// shown by it, one read at a time (a sequence may be split across reads) in a fixed amount of
/// memory. With `Strip`, what comes out is printable text, valid UTF-8 (a UTF-8 terminal is
/// assumed: other bytes from 0xA0 up pass as they are, for Latin-1 text), tab, newline,
/// carriage return, backspace, bell, and complete SGR sequences (`ESC [ digits ; : m`: colours
/// and attributes). Removed whole: OSC (window titles, clipboard writes, hyperlinks), DCS, APC,
/// PM and SOS strings, every other CSI sequence (cursor, erase, modes, reports), every other
/// escape (charsets, reset), C1 controls in 8-bit or UTF-8 form, and other C0 controls
/// (shift-out, form feed, ...).
pub struct EscapeFilter {
    mode: TerminalEscapes,
    state: State,
    /// A UTF-8 sequence in progress: its bytes and its full length.
    utf8: [u8; 4],
    utf8_len: u8,
    utf8_need: u8,
    /// The parameters of a CSI sequence in progress, kept only while it may still be SGR.
    params: [u8; SGR_PARAMS_MAX],
    params_len: usize,
    sgr: bool,
}

/// Longer SGR parameter lists than this are dropped (real ones are a few bytes).
const SGR_PARAMS_MAX: usize = 48;

const ESC: u8 = 0x1b;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    EscapeIntermediate,
    Csi,
    /// Inside an OSC (`osc`: BEL ends it too), DCS, SOS, PM or APC string.
    Str {
        osc: bool,
    },
    /// ESC inside a string: `\` ends it (ST), anything else starts a new escape.
    StrEscape,
}

impl EscapeFilter {
    /// A filter in `mode`, at the start of a stream.
    pub fn new(mode: TerminalEscapes) -> EscapeFilter {
        EscapeFilter {
            mode,
            state: State::Ground,
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
            params: [0; SGR_PARAMS_MAX],
            params_len: 0,
            sgr: false,
        }
    }

    /// Appends to `out` what of `input` may reach the caller's terminal.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.mode == TerminalEscapes::Pass {
            out.extend_from_slice(input);
            return;
        }
        let mut rest = input;
        while let Some((&b, tail)) = rest.split_first() {
            if self.state == State::Ground && self.utf8_need == 0 {
                // Plain text, by far most of any output, is copied in runs.
                let run = rest
                    .iter()
                    .position(|&c| !is_plain(c))
                    .unwrap_or(rest.len());
                if run > 0 {
                    out.extend_from_slice(&rest[..run]);
                    rest = &rest[run..];
                    continue;
                }
            }
            self.byte(b, out);
            rest = tail;
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => self.ground(b, out),
            State::Escape => self.escape(b, out),
            State::EscapeIntermediate => match b {
                0x20..=0x2f | 0x7f => {}
                0x30..=0x7e => self.state = State::Ground,
                _ => self.control_in_sequence(b, out),
            },
            State::Csi => match b {
                b'0'..=b'9' | b';' | b':' => {
                    if self.sgr && self.params_len < SGR_PARAMS_MAX {
                        self.params[self.params_len] = b;
                        self.params_len += 1;
                    } else {
                        self.sgr = false;
                    }
                }
                // Private parameters (`?`, `<`...) and intermediates: never SGR.
                0x3c..=0x3f | 0x20..=0x2f => self.sgr = false,
                0x40..=0x7e => {
                    if b == b'm' && self.sgr {
                        out.extend_from_slice(&[ESC, b'[']);
                        out.extend_from_slice(&self.params[..self.params_len]);
                        out.push(b'm');
                    }
                    self.state = State::Ground;
                }
                0x7f => {}
                _ => self.control_in_sequence(b, out),
            },
            State::Str { osc } => match b {
                0x07 if osc => self.state = State::Ground,
                ESC => self.state = State::StrEscape,
                // CAN, SUB abort; 8-bit ST ends.
                0x18 | 0x1a | 0x9c => self.state = State::Ground,
                _ => {}
            },
            State::StrEscape => {
                if b == b'\\' {
                    self.state = State::Ground;
                } else {
                    self.state = State::Escape;
                    self.escape(b, out);
                }
            }
        }
    }

    /// A byte that is not part of the sequence in progress: ESC starts a new one, CAN and SUB
    /// cancel it, other C0 controls act in place (as terminals do), anything else ends it and
    /// is read afresh.
    fn control_in_sequence(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            ESC => self.state = State::Escape,
            0x18 | 0x1a => self.state = State::Ground,
            0x00..=0x1f => c0(b, out),
            _ => {
                self.state = State::Ground;
                self.ground(b, out);
            }
        }
    }

    fn escape(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0x20..=0x2f => self.state = State::EscapeIntermediate,
            0x30..=0x7e => self.introducer(b),
            0x7f => {}
            _ => self.control_in_sequence(b, out),
        }
    }

    /// The byte after ESC (or a C1 control less 0x40): which sequence starts.
    fn introducer(&mut self, b: u8) {
        self.state = match b {
            b'[' => {
                self.params_len = 0;
                self.sgr = true;
                State::Csi
            }
            b']' => State::Str { osc: true },
            b'P' | b'X' | b'^' | b'_' => State::Str { osc: false },
            // A complete two-byte escape (or a C1 control with no string): dropped.
            _ => State::Ground,
        };
    }

    fn ground(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.utf8_need > 0 {
            if (0x80..=0xbf).contains(&b) {
                self.utf8[self.utf8_len as usize] = b;
                self.utf8_len += 1;
                if self.utf8_len == self.utf8_need {
                    self.finish_utf8(out);
                }
                return;
            }
            // The abandoned bytes may have started a sequence: read this byte in its state.
            self.abandon_utf8(out);
            return self.byte(b, out);
        }
        match b {
            ESC => self.state = State::Escape,
            0x00..=0x1f | 0x7f => c0(b, out),
            0x20..=0x7e => out.push(b),
            // An 8-bit C1 control, outside any UTF-8 sequence.
            0x80..=0x9f => self.introducer(b - 0x40),
            0xc2..=0xdf => self.start_utf8(b, 2),
            0xe0..=0xef => self.start_utf8(b, 3),
            0xf0..=0xf4 => self.start_utf8(b, 4),
            // 0xa0..=0xc1, 0xf5..: no control meaning in any encoding.
            _ => out.push(b),
        }
    }

    fn start_utf8(&mut self, lead: u8, len: u8) {
        self.utf8[0] = lead;
        self.utf8_len = 1;
        self.utf8_need = len;
    }

    fn finish_utf8(&mut self, out: &mut Vec<u8>) {
        let seq = &self.utf8[..self.utf8_len as usize];
        match std::str::from_utf8(seq) {
            Ok(s) => {
                let c = s.chars().next().expect("one character");
                self.utf8_need = 0;
                self.utf8_len = 0;
                if ('\u{80}'..='\u{9f}').contains(&c) {
                    // A C1 control written as UTF-8: the same as its 8-bit form.
                    self.introducer(c as u8 - 0x40);
                } else {
                    out.extend_from_slice(s.as_bytes());
                }
            }
            Err(_) => self.abandon_utf8(out),
        }
    }

    /// An invalid or cut-off UTF-8 sequence: its lead byte passes (harmless, and Latin-1 text
    /// keeps its letters), its continuation bytes are read again one by one, so that one in the
    /// C1 range is treated as the control it is to an 8-bit terminal.
    fn abandon_utf8(&mut self, out: &mut Vec<u8>) {
        let seq = self.utf8;
        let len = self.utf8_len as usize;
        self.utf8_need = 0;
        self.utf8_len = 0;
        out.push(seq[0]);
        for &c in &seq[1..len] {
            self.byte(c, out);
        }
    }
}

/// C0 controls that only move within the text: tab, newline, carriage return, backspace, bell.
fn c0(b: u8, out: &mut Vec<u8>) {
    if matches!(b, 0x07..=0x0a | 0x0d) {
        out.push(b);
    }
}

/// Bytes that pass unchanged in the ground state and leave it unchanged: printable ASCII and
/// the C0 controls `c0` keeps.
fn is_plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | 0x07..=0x0a | 0x0d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(input: &[u8]) -> Vec<u8> {
        let mut f = EscapeFilter::new(TerminalEscapes::Strip);
        let mut out = Vec::new();
        f.feed(input, &mut out);
        out
    }

    /// The same input fed one byte at a time.
    fn strip_bytewise(input: &[u8]) -> Vec<u8> {
        let mut f = EscapeFilter::new(TerminalEscapes::Strip);
        let mut out = Vec::new();
        for b in input {
            f.feed(std::slice::from_ref(b), &mut out);
        }
        out
    }

    #[test]
    fn text_and_utf8_pass() {
        let s = "hello, wörld ě€𝄞\r\n\ttab\x08\x07".as_bytes();
        assert_eq!(strip(s), s);
        assert_eq!(strip_bytewise(s), s);
    }

    #[test]
    fn osc_52_and_titles_are_removed_with_either_terminator() {
        let s =
            b"a\x1b]52;c;ZXZpbA==\x07b\x1b]0;owned\x1b\\c\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\d";
        assert_eq!(strip(s), b"abclinkd");
        assert_eq!(strip_bytewise(s), b"abclinkd");
    }

    #[test]
    fn strings_dcs_apc_pm_sos_are_removed() {
        let s = b"1\x1bPq#0;2;0;0;0\x1b\\2\x1b_apc\x1b\\3\x1b^pm\x1b\\4\x1bXsos\x1b\\5";
        assert_eq!(strip(s), b"12345");
    }

    #[test]
    fn sgr_passes_other_csi_does_not() {
        let s = b"\x1b[1;31mred\x1b[0m \x1b[2J\x1b[H\x1b[?1049h\x1b[6n\x1b[38:5:1mx\x1b[?25lz";
        assert_eq!(strip(s), b"\x1b[1;31mred\x1b[0m \x1b[38:5:1mxz".as_slice());
        assert_eq!(strip_bytewise(s), strip(s));
        // A very long "SGR" is not kept.
        let long = [b"\x1b[".as_slice(), &[b'1'; 100], b"mq"].concat();
        assert_eq!(strip(&long), b"q");
    }

    #[test]
    fn other_escapes_and_c0_are_removed() {
        // RIS, charset designation, keypad mode, shift-out/in, form feed, NUL.
        let s = b"a\x1bcb\x1b(0c\x1b=d\x0e\x0fe\x0c\x00f\x1b#8g";
        assert_eq!(strip(s), b"abcdefg");
    }

    #[test]
    fn c1_controls_in_8_bit_and_utf8_form_are_removed() {
        // 8-bit CSI 2 J; 8-bit OSC ... ST; UTF-8 encoded OSC (U+009D) ... BEL; UTF-8 CSI (U+009B).
        let s = b"a\x9b2Jb\x9d0;t\x9cc\xc2\x9d52;c;eA==\x07d\xc2\x9b2Je";
        assert_eq!(strip(s), b"abcde");
        assert_eq!(strip_bytewise(s), b"abcde");
    }

    #[test]
    fn broken_utf8_cannot_smuggle_a_c1_control() {
        // A 3-byte lead whose sequence breaks after a C1-range continuation byte.
        assert_eq!(strip(b"\xe9\x9b2Jx"), b"\xe9x");
        // Overlong ESC.
        assert_eq!(strip(b"\xc0\x9b2Jy"), b"\xc0y");
    }

    #[test]
    fn can_cancels_and_esc_restarts() {
        assert_eq!(strip(b"\x1b]0;t\x18a"), b"a");
        assert_eq!(strip(b"\x1b[12\x1b[1mb"), b"\x1b[1mb");
        assert_eq!(strip(b"\x1b]0;t\x1b[31mc"), b"\x1b[31mc");
    }

    #[test]
    fn an_endless_string_is_swallowed_in_fixed_memory() {
        let mut f = EscapeFilter::new(TerminalEscapes::Strip);
        let mut out = Vec::new();
        f.feed(b"\x1b]52;c;", &mut out);
        let chunk = vec![b'A'; 1 << 16];
        for _ in 0..160 {
            f.feed(&chunk, &mut out);
        }
        assert!(out.is_empty());
        f.feed(b"\x07ok", &mut out);
        assert_eq!(out, b"ok");
        // The filter holds no buffer that grows: its size is fixed.
        assert!(std::mem::size_of::<EscapeFilter>() < 128);
    }

    #[test]
    fn pass_mode_passes_everything() {
        let s = b"\x1b]52;c;ZXZpbA==\x07\x9b2J\x0e";
        let mut f = EscapeFilter::new(TerminalEscapes::Pass);
        let mut out = Vec::new();
        f.feed(s, &mut out);
        assert_eq!(out, s);
    }

    /// What `Strip` promises of its output, checked on any input: no ESC but at the start of a
    /// complete SGR, no byte 0x80-0x9F but inside valid UTF-8 above U+009F, no other C0.
    fn assert_inert(out: &[u8]) {
        let mut i = 0;
        while i < out.len() {
            let b = out[i];
            if b == ESC {
                assert_eq!(out.get(i + 1), Some(&b'['), "ESC at {i} in {out:?}");
                let mut j = i + 2;
                while j < out.len() && (out[j].is_ascii_digit() || out[j] == b';' || out[j] == b':')
                {
                    j += 1;
                }
                assert_eq!(out.get(j), Some(&b'm'), "unfinished SGR at {i} in {out:?}");
                i = j + 1;
                continue;
            }
            assert!(
                (b >= 0x20 && b != 0x7f) || matches!(b, 0x07..=0x0a | 0x0d),
                "control {b:#x} at {i}"
            );
            if (0xc2..=0xf4).contains(&b) {
                let len = match b {
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                if let Some(seq) = out.get(i..i + len) {
                    if let Ok(s) = std::str::from_utf8(seq) {
                        let c = s.chars().next().unwrap();
                        assert!(!('\u{80}'..='\u{9f}').contains(&c), "UTF-8 C1 at {i}");
                        i += len;
                        continue;
                    }
                }
            }
            assert!(!(0x80..=0x9f).contains(&b), "8-bit C1 {b:#x} at {i}");
            i += 1;
        }
    }

    #[test]
    #[should_panic(expected = "ESC at 0")]
    fn the_inertness_check_catches_an_osc() {
        assert_inert(b"\x1b]0;t\x07");
    }

    #[test]
    fn any_input_comes_out_inert_in_any_split() {
        // A fixed pseudo-random generator (no time, no crate): the same bytes every run, drawn
        // mostly from the bytes that matter to the parser.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let interesting = b"\x1b[]PX^_\\;:0123m\x07\x18\x9b\x9d\x9c\xc2\xe0\xf0\x80\xbf?aZ \n";
        for round in 0..300 {
            let mut input = Vec::new();
            for _ in 0..400 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = if x.is_multiple_of(3) {
                    (x >> 8) as u8
                } else {
                    interesting[(x >> 8) as usize % interesting.len()]
                };
                input.push(b);
            }
            let whole = strip(&input);
            assert_inert(&whole);
            assert_eq!(strip_bytewise(&input), whole, "round {round}");
        }
    }
}
