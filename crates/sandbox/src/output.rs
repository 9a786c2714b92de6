//! The program's stdout and stderr. Unless a stream is the caller's terminal (the pty of
//! `terminal.rs` carries and counts it then) or is not open for writing in the caller (the
//! program then has no such stream either), the program writes it into a pipe the supervisor
//! reads and passes on to the caller's descriptor, counting every byte ([`OutputMeter`]): the
//! verdict's `output_bytes` is exact with or without an output limit, and past the limit the
//! rest is counted, not shown.
//!
//! Passing on never blocks the supervisor, whose loop enforces the time limits and answers
//! violations, and copies nothing through its memory where it can avoid it:
//! - into a pipe or FIFO: splice(2), non-blocking on both ends; when the reader's pipe is full
//!   the stream waits for room (POLLOUT) while the program's own pipe fills and its writes
//!   block, as they would without watertight;
//! - into a regular file or a device: splice(2) too (a file takes what it is given); a file
//!   opened for appending, which splice refuses, gets read(2) and write(2);
//! - into a socket (a splice there can block): read(2) and send(2) with MSG_DONTWAIT, the unsent
//!   rest held back until the socket has room.
//!
//! The caller's own open files are used as they are (no flag of theirs changes). When the
//! caller's stdout and stderr are one open file (`2>&1`), the program gets one pipe for both,
//! so its writes keep their order across the two streams.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use nix::sys::stat::SFlag;

use crate::error::{Error, IoContext};
use crate::terminal::Streams;

/// Bytes moved from a program's pipe per step: a pipe's default capacity.
const CHUNK: usize = 64 << 10;

/// One of the program's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its stdout.
    Stdout,
    /// Its stderr.
    Stderr,
}

impl Stream {
    const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    fn index(self) -> usize {
        self as usize
    }
}

/// The output pipes, made before clone: the program keeps the write ends, the supervisor the
/// read ends.
#[derive(Debug, Default)]
pub struct Pipes {
    read: [Option<OwnedFd>; 2],
    write: [Option<OwnedFd>; 2],
}

impl Pipes {
    /// A pipe for each of the destinations `dest` (the caller's stdout and stderr, or the
    /// `--stdout`/`--stderr` files: `stdio::destinations`) that is open for writing and is not a
    /// terminal in `tty`; one for both when they are one open file.
    pub fn open(tty: Streams, dest: &[Option<OwnedFd>; 2]) -> Result<Pipes, Error> {
        let is_writable = |d: &Option<OwnedFd>| d.as_ref().is_some_and(|d| writable(d.as_fd()));
        let relay_out = !tty.stdout && is_writable(&dest[0]);
        let relay_err = !tty.stderr && is_writable(&dest[1]);
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into());
        let mut pipes = Pipes::default();
        if relay_out {
            let (r, w) = pipe()?;
            pipes.read[0] = Some(r);
            pipes.write[0] = Some(w);
        }
        if relay_err {
            match &pipes.write[0] {
                Some(w) if matches!(dest, [Some(out), Some(err)] if same_destination(out.as_fd(), err.as_fd())) =>
                {
                    pipes.write[1] = Some(w.try_clone().ctx(|| "dup the output pipe".into())?);
                }
                _ => {
                    let (r, w) = pipe()?;
                    pipes.read[1] = Some(r);
                    pipes.write[1] = Some(w);
                }
            }
        }
        Ok(pipes)
    }

    /// In the sandbox: the program's stdout and stderr (None: it inherits the caller's).
    pub fn program_ends(self) -> [Option<OwnedFd>; 2] {
        self.write
    }

    /// In the supervisor: the pipes to read, for [`OutputRelay::new`].
    pub fn supervisor_ends(self) -> [Option<OwnedFd>; 2] {
        self.read
    }

    /// Both sides at once, (program's write ends, supervisor's read ends), for a supervisor
    /// that hands the write ends to a program it starts itself (the gVisor tier's runsc).
    pub fn split(self) -> ([Option<OwnedFd>; 2], [Option<OwnedFd>; 2]) {
        (self.write, self.read)
    }
}

/// Whether `fd` is open for writing.
fn writable(fd: BorrowedFd<'_>) -> bool {
    nix::fcntl::fcntl(fd, FcntlArg::F_GETFL).is_ok_and(|flags| {
        let mode = OFlag::from_bits_retain(flags) & OFlag::O_ACCMODE;
        mode == OFlag::O_WRONLY || mode == OFlag::O_RDWR
    })
}

/// Whether writes to `a` and `b` land in one place in one order: one open file (kcmp), or,
/// where the kernel cannot say, one pipe, FIFO or device (which have no file offset).
fn same_destination(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    if let Ok(same) = watertight_sys::process::same_open_file(a, b) {
        return same;
    }
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => {
            let kind = SFlag::from_bits_truncate(x.st_mode) & SFlag::S_IFMT;
            (x.st_dev, x.st_ino, x.st_rdev) == (y.st_dev, y.st_ino, y.st_rdev)
                && (kind == SFlag::S_IFIFO || kind == SFlag::S_IFCHR)
        }
        _ => false,
    }
}

/// Counts the program's output against the output limit; what passes the limit is counted
/// but not shown.
#[derive(Debug)]
pub struct OutputMeter {
    limit: Option<u64>,
    /// Every byte of output taken from the program so far.
    pub bytes: u64,
}

impl OutputMeter {
    /// A meter for `limit` bytes (None: no limit).
    pub fn new(limit: Option<u64>) -> OutputMeter {
        OutputMeter { limit, bytes: 0 }
    }

    /// Counts `n` bytes of output; how many of them may still be shown.
    pub fn admit(&mut self, n: usize) -> usize {
        let allowed = self
            .limit
            .map_or(n as u64, |l| l.saturating_sub(self.bytes).min(n as u64));
        self.bytes += n as u64;
        allowed as usize
    }

    /// How many more bytes may be shown, at most `max`.
    fn room(&self, max: usize) -> usize {
        self.limit.map_or(max, |l| {
            l.saturating_sub(self.bytes).min(max as u64) as usize
        })
    }

    /// Whether the output passed the limit.
    pub fn exceeded(&self) -> bool {
        self.limit.is_some_and(|l| self.bytes > l)
    }
}

/// How a stream's bytes reach the caller's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// splice(2): no copy; non-blocking on both ends when the destination is a pipe.
    Splice,
    /// read(2), then send(2) with MSG_DONTWAIT: a socket, where a splice could block.
    Send,
    /// read(2), then write(2): where splice is refused (a file opened for appending).
    Write,
}

/// How to reach the open file `dst`.
fn way_to(dst: BorrowedFd<'_>) -> Way {
    match nix::sys::stat::fstat(dst) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK => {
            Way::Send
        }
        _ => Way::Splice,
    }
}

/// One stream on its way.
#[derive(Debug)]
struct Relayed {
    /// The program's pipe; None at its end (or once the caller's side is gone).
    src: Option<OwnedFd>,
    /// Where it goes: a duplicate of the caller's descriptor, or a `--stdout`/`--stderr` file.
    dst: OwnedFd,
    way: Way,
    /// Taken from the program, not yet taken by the caller's descriptor (Send and Write).
    pending: Vec<u8>,
    /// The caller's descriptor has no room: wait for it before moving more.
    full: bool,
}

impl Relayed {
    fn done(&self) -> bool {
        self.src.is_none() && self.pending.is_empty()
    }
}

/// A descriptor of the relay that polled ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFd {
    /// The program's pipe has output (or its end).
    Program(Stream),
    /// The caller's descriptor has room again.
    Caller(Stream),
}

/// The supervisor's side: passes each stream on to its destination (the caller's stdout or
/// stderr, or a `--stdout`/`--stderr` file), counting it.
#[derive(Debug)]
pub struct OutputRelay {
    streams: [Option<Relayed>; 2],
}

impl OutputRelay {
    /// Relays the pipes of [`Pipes::supervisor_ends`] to `dest`, the destinations the pipes
    /// were opened for.
    pub fn new(ends: [Option<OwnedFd>; 2], dest: [Option<OwnedFd>; 2]) -> OutputRelay {
        let mut relay = OutputRelay {
            streams: [None, None],
        };
        for ((stream, src), dst) in Stream::BOTH.into_iter().zip(ends).zip(dest) {
            if let (Some(src), Some(dst)) = (src, dst) {
                let way = way_to(dst.as_fd());
                relay.streams[stream.index()] = Some(Relayed {
                    src: Some(src),
                    dst,
                    way,
                    pending: Vec::new(),
                    full: false,
                });
            }
        }
        relay
    }

    /// Whether anything is still to be passed on.
    pub fn active(&self) -> bool {
        self.streams.iter().any(Option::is_some)
    }

    /// The descriptors to poll: a stream's pipe while it may move, the caller's descriptor
    /// while the stream waits for room there.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags, OutputFd)> {
        let mut v = Vec::with_capacity(2);
        for stream in Stream::BOTH {
            let Some(s) = &self.streams[stream.index()] else {
                continue;
            };
            if s.full || !s.pending.is_empty() {
                v.push((s.dst.as_fd(), PollFlags::POLLOUT, OutputFd::Caller(stream)));
            } else if let Some(src) = &s.src {
                v.push((src.as_fd(), PollFlags::POLLIN, OutputFd::Program(stream)));
            }
        }
        v
    }

    /// Moves what `which` allows: a step of output from the program, or what waited for room.
    /// `buf` is scratch space for the ways that copy (grown to a chunk when needed).
    pub fn on_ready(&mut self, which: OutputFd, meter: &mut OutputMeter, buf: &mut Vec<u8>) {
        match which {
            OutputFd::Program(stream) => self.step(stream, meter, buf),
            OutputFd::Caller(stream) => self.flush(stream),
        }
        for slot in &mut self.streams {
            if slot.as_ref().is_some_and(Relayed::done) {
                *slot = None;
            }
        }
    }

    /// Moves one chunk of `stream` from the program's pipe.
    fn step(&mut self, stream: Stream, meter: &mut OutputMeter, buf: &mut Vec<u8>) {
        let i = stream.index();
        let Some(s) = self.streams[i].as_mut() else {
            return;
        };
        let caller = s.dst.as_fd();
        let Some(src) = &s.src else { return };
        if s.full || !s.pending.is_empty() {
            return;
        }
        let room = meter.room(CHUNK);
        if s.way == Way::Splice && room > 0 {
            match nix::fcntl::splice(
                src,
                None,
                caller,
                None,
                room,
                SpliceFFlags::SPLICE_F_NONBLOCK,
            ) {
                Ok(0) => s.src = None,
                Ok(n) => {
                    meter.admit(n);
                }
                // The caller's pipe is full (the program's has data: it polled readable).
                Err(Errno::EAGAIN) => s.full = true,
                Err(Errno::EINTR) => {}
                // Refused for this destination (a file opened for appending): copy instead.
                Err(Errno::EINVAL) => s.way = Way::Write,
                // The reader went away (EPIPE) or the file failed: the program's next write
                // fails as it would have on the caller's descriptor (EPIPE, SIGPIPE).
                Err(_) => s.src = None,
            }
            return;
        }
        // Past the limit the output is read and counted only; Send and Write copy.
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        match nix::unistd::read(src, &mut buf[..CHUNK]) {
            Ok(0) => s.src = None,
            Ok(n) => {
                let shown = meter.admit(n);
                s.pending.extend_from_slice(&buf[..shown]);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(_) => s.src = None,
        }
        self.flush(stream);
    }

    /// Writes what waits for the caller's descriptor, as far as it takes it now.
    fn flush(&mut self, stream: Stream) {
        let Some(s) = self.streams[stream.index()].as_mut() else {
            return;
        };
        let caller = s.dst.as_fd();
        while !s.pending.is_empty() {
            let written = match s.way {
                Way::Send => nix::sys::socket::send(
                    std::os::fd::AsRawFd::as_raw_fd(&caller),
                    &s.pending,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                ),
                Way::Write | Way::Splice => nix::unistd::write(caller, &s.pending),
            };
            match written {
                Ok(n) => {
                    s.pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    s.full = true;
                    return;
                }
                // Nobody takes it any more: drop it, and let the program's next write fail.
                Err(_) => {
                    s.pending.clear();
                    s.src = None;
                }
            }
        }
        s.full = false;
    }

    /// After the sandbox is gone (every writer of the pipes has exited): passes on what is
    /// left. Waits for a full caller's descriptor until `deadline` (the wall-time limit: the
    /// program would have waited no longer) or a signal on `interrupt`; what is still unsent
    /// then is dropped (and was counted).
    pub fn drain(
        &mut self,
        meter: &mut OutputMeter,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
        interrupt: BorrowedFd<'_>,
    ) {
        while self.active() {
            let ready: Vec<OutputFd> = {
                let watched = self.poll_fds();
                let mut fds: Vec<PollFd> = watched
                    .iter()
                    .map(|(fd, flags, _)| PollFd::new(*fd, *flags))
                    .collect();
                fds.push(PollFd::new(interrupt, PollFlags::POLLIN));
                let timeout = match deadline {
                    None => PollTimeout::NONE,
                    Some(d) => PollTimeout::try_from(
                        d.saturating_duration_since(Instant::now())
                            .as_millis()
                            .min(60_000) as i32,
                    )
                    .unwrap_or(PollTimeout::ZERO),
                };
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => break,
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
                if fds
                    .last()
                    .and_then(PollFd::revents)
                    .is_some_and(|r| !r.is_empty())
                {
                    break;
                }
                fds.iter()
                    .zip(&watched)
                    .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(_, (_, _, which))| *which)
                    .collect()
            };
            for which in ready {
                self.on_ready(which, meter, buf);
            }
        }
        self.streams = [None, None];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_limit_is_counted_not_shown() {
        let mut meter = OutputMeter::new(Some(10));
        assert_eq!(meter.room(64), 10);
        assert_eq!(meter.admit(6), 6);
        assert!(!meter.exceeded());
        assert_eq!(meter.admit(4), 4, "exactly the limit is allowed");
        assert!(!meter.exceeded());
        assert_eq!(meter.room(64), 0);
        assert_eq!(meter.admit(5), 0);
        assert!(meter.exceeded());
        assert_eq!(meter.bytes, 15, "counted all the same");
        let mut unlimited = OutputMeter::new(None);
        assert_eq!(unlimited.admit(1 << 30), 1 << 30);
        assert_eq!(unlimited.room(CHUNK), CHUNK);
        assert!(!unlimited.exceeded());
    }

    #[test]
    fn streams_index_their_slots() {
        assert_eq!(Stream::BOTH.map(Stream::index), [0, 1]);
    }

    #[test]
    fn one_open_file_is_one_destination() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let dup = w.try_clone().unwrap();
        assert!(same_destination(w.as_fd(), dup.as_fd()));
        assert!(!same_destination(r.as_fd(), w.as_fd()));
        assert!(writable(w.as_fd()) && !writable(r.as_fd()));
        assert_eq!(way_to(w.as_fd()), Way::Splice);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(way_to(a.as_fd()), Way::Send);
    }
}
