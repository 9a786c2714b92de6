//! Messages from the sandbox to the supervisor over a pipe: a setup error (which layer, why),
//! an exec failure, or the program's wait status as pid 1 saw it. Each message is one write
//! of less than PIPE_BUF bytes, so it arrives whole.

use std::os::fd::OwnedFd;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    SetupFailed { stage: String, message: String },
    ExecFailed { errno: i32 },
    Exited { status: i32 },
}

impl Report {
    pub fn from_error(e: &Error) -> Report {
        match e {
            Error::Setup { stage, message } => Report::SetupFailed {
                stage: stage.clone(),
                message: message.clone(),
            },
            other => Report::SetupFailed {
                stage: "sandbox".into(),
                message: other.to_string(),
            },
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = match self {
            Report::SetupFailed { stage, message } => {
                let mut v = b"F".to_vec();
                v.extend_from_slice(stage.as_bytes());
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
                Some(Report::SetupFailed {
                    stage: stage.into(),
                    message: message.into(),
                })
            }
            b'X' => text.parse().ok().map(|errno| Report::ExecFailed { errno }),
            b'S' => text.parse().ok().map(|status| Report::Exited { status }),
            _ => None,
        }
    }
}

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
        let msgs = [
            Report::SetupFailed {
                stage: "mount".into(),
                message: "bind /x on /y: EPERM".into(),
            },
            Report::ExecFailed { errno: 2 },
            Report::Exited { status: 256 },
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            buf.extend(m.encode());
        }
        assert_eq!(Report::decode_all(&buf), msgs);
    }

    #[test]
    fn garbage_is_ignored() {
        assert!(Report::decode_all(b"Qxx\nS\n\n").is_empty());
    }
}
