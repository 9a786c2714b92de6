//! The two channels between the supervisor and the sandbox's pid 1, each carrying typed
//! messages only.
//!
//! - **go** (supervisor -> sandbox, a pipe): the steps the sandbox waits for ([`Go`]), one byte
//!   each. The sandbox checks it got the step it waits for; anything else (another step, a
//!   byte that is none, end of file because the supervisor died) ends it at once: it never
//!   goes on with a setup the supervisor did not finish.
//! - **report** (sandbox -> supervisor, a pipe): a setup error (which step, why), an exec
//!   failure, or the program's wait status as pid 1 saw it ([`Report`]). Each message is one
//!   write of less than PIPE_BUF bytes, so it arrives whole; one that does not decode is
//!   dropped, and a run without the program's status ends XX.

use std::os::fd::{AsFd, OwnedFd};

use crate::error::{SetupError, Stage};

/// The steps the supervisor releases the sandbox at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// The sandbox's uid/gid maps are written: it may become its own user and mount.
    MapsWritten,
    /// The sandbox's cgroup is ready (limits, bridge port, exec gate in place) and holds it in
    /// the unified hierarchy; the cgroup v1 `tasks` files it joins by itself are on the notify
    /// socket (`Cgroup::admit`). It joins them, enters its cgroup namespace, locks itself down
    /// and starts the program.
    CgroupReady,
}

impl Go {
    fn byte(self) -> u8 {
        match self {
            Go::MapsWritten => b'm',
            Go::CgroupReady => b'g',
        }
    }

    fn from_byte(b: u8) -> Option<Go> {
        [Go::MapsWritten, Go::CgroupReady]
            .into_iter()
            .find(|g| g.byte() == b)
    }

    /// Supervisor: releases the sandbox at this step.
    pub fn send(self, go: &OwnedFd) -> std::io::Result<()> {
        match nix::unistd::write(go, &[self.byte()]) {
            Ok(1) => Ok(()),
            Ok(_) => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
            Err(e) => Err(e.into()),
        }
    }

    /// Sandbox: reads the next step; `Ok` only when it is `self`. `Err` carries what came instead
    /// (`None`: end of file or a read error, i.e. the supervisor is gone).
    pub fn receive(self, go: &OwnedFd) -> Result<(), Option<u8>> {
        let mut b = [0u8; 1];
        match nix::unistd::read(go, &mut b) {
            Ok(1) if Go::from_byte(b[0]) == Some(self) => Ok(()),
            Ok(1) => Err(Some(b[0])),
            _ => Err(None),
        }
    }
}

/// Whether the supervisor's end of the go pipe is closed (it died): a hang-up with nothing to
/// read.
pub fn supervisor_gone(go: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(go.as_fd(), PollFlags::POLLIN)];
    matches!(nix::poll::poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

/// What the sandbox's pid 1 (or the program before its execve) tells the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A step of pid 1's setup (or the program's last steps) failed: the verdict is XX.
    SetupFailed(SetupError),
    /// The program's execve failed.
    ExecFailed {
        /// The errno execve returned (for a PATH search, the most telling one).
        errno: i32,
    },
    /// The program ended.
    Exited {
        /// Its raw wait status, as wait4 returned it to pid 1.
        status: i32,
    },
}

impl Report {
    /// One message: a tag byte, the payload, a newline; at most 4001 bytes, so one write of it
    /// is atomic on a pipe.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = match self {
            Report::SetupFailed(SetupError { stage, message }) => {
                let mut v = b"F".to_vec();
                v.extend_from_slice(stage.as_str().as_bytes());
                v.push(0);
                v.extend_from_slice(message.as_bytes());
                v
            }
            Report::ExecFailed { errno } => format!("X{errno}").into_bytes(),
            Report::Exited { status } => format!("S{status}").into_bytes(),
        };
        v.truncate(4000);
        v.push(b'\n');
        v
    }

    /// Decodes every message in `buf` (messages end with a newline; messages never contain one
    /// except at the end, since they are written escaped).
    pub fn decode_all(buf: &[u8]) -> Vec<Report> {
        buf.split(|&b| b == b'\n')
            .filter(|m| !m.is_empty())
            .filter_map(Report::decode)
            .collect()
    }

    fn decode(m: &[u8]) -> Option<Report> {
        let (tag, rest) = m.split_first()?;
        let text = String::from_utf8_lossy(rest);
        match tag {
            b'F' => {
                let (stage, message) = text.split_once('\0')?;
                Some(Report::SetupFailed(SetupError {
                    stage: Stage::from_name(stage)?,
                    message: message.into(),
                }))
            }
            b'X' => text.parse().ok().map(|errno| Report::ExecFailed { errno }),
            b'S' => text.parse().ok().map(|status| Report::Exited { status }),
            _ => None,
        }
    }
}

/// Writes `r` to the report pipe as one line (a newline inside becomes a space). A failed write
/// is ignored: there is no one else to tell, and a missing program status makes the verdict XX.
pub fn send(fd: &OwnedFd, r: &Report) {
    let mut bytes = r.encode();
    // Keep one message per line.
    let n = bytes.len();
    for b in &mut bytes[..n - 1] {
        if *b == b'\n' {
            *b = b' ';
        }
    }
    let _ = nix::unistd::write(fd, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut msgs: Vec<Report> = Stage::ALL
            .into_iter()
            .map(|stage| {
                Report::SetupFailed(SetupError {
                    stage,
                    message: "bind /x on /y: EPERM".into(),
                })
            })
            .collect();
        msgs.push(Report::ExecFailed { errno: 2 });
        msgs.push(Report::Exited { status: 256 });
        let mut buf = Vec::new();
        for m in &msgs {
            buf.extend(m.encode());
        }
        assert_eq!(Report::decode_all(&buf), msgs);
    }

    #[test]
    fn garbage_is_ignored() {
        assert!(Report::decode_all(b"Qxx\nS\n\n").is_empty());
        // A stage that is none of ours is not taken for one.
        assert!(Report::decode_all(b"Fsandbox\0oops\n").is_empty());
    }

    #[test]
    fn a_newline_in_a_message_cannot_forge_a_second_one() {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        send(
            &wr,
            &Report::SetupFailed(SetupError {
                stage: Stage::Mount,
                message: "x\nS0".into(),
            }),
        );
        drop(wr);
        let mut buf = [0u8; 256];
        let n = nix::unistd::read(&rd, &mut buf).unwrap();
        let got = Report::decode_all(&buf[..n]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(matches!(&got[0], Report::SetupFailed(e) if e.message == "x S0"));
    }

    #[test]
    fn the_sandbox_goes_on_only_at_the_step_it_waits_for() {
        let (rd, wr) = nix::unistd::pipe().unwrap();
        Go::MapsWritten.send(&wr).unwrap();
        assert_eq!(Go::MapsWritten.receive(&rd), Ok(()));
        // Out of order: the second step where the first is awaited.
        Go::CgroupReady.send(&wr).unwrap();
        assert_eq!(Go::MapsWritten.receive(&rd), Err(Some(b'g')));
        // A byte that is no step.
        nix::unistd::write(&wr, b"x").unwrap();
        assert_eq!(Go::CgroupReady.receive(&rd), Err(Some(b'x')));
        assert!(!supervisor_gone(&rd));
        // The supervisor is gone.
        drop(wr);
        assert!(supervisor_gone(&rd));
        assert_eq!(Go::CgroupReady.receive(&rd), Err(None));
    }
}
