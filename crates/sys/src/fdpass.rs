//! Passing file descriptors between processes over a unix socket (SCM_RIGHTS): the sandbox's
//! pid 1 hands its seccomp listener to the supervisor, and the supervisor hands pid 1 the cgroup
//! files it joins by itself.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Sends `fd` with a one-byte message.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"f")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one descriptor sent with `send_fd`. Ok(None): the peer closed without sending.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned: Vec<OwnedFd> = fds
                .into_iter()
                // SAFETY: the kernel installed these descriptors in this process for this message;
                // nothing else owns them.
                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
                .collect();
            return Ok(owned.pop());
        }
    }
    Ok(None)
}

/// Sends `data` with `fd` attached (SCM_RIGHTS), all of it: the descriptor rides with the first
/// sendmsg, whatever a short stream write leaves is written after it. For peers that expect a
/// payload with the descriptor, e.g. runc's seccomp listener protocol (the container's state
/// JSON with its notify fd).
pub fn send_data_with_fd(sock: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    if data.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let fds = [fd.as_raw_fd()];
    let mut sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(data)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    while sent < data.len() {
        sent += nix::sys::socket::send(sock.as_raw_fd(), &data[sent..], MsgFlags::MSG_NOSIGNAL)?;
    }
    Ok(())
}

/// Receives one [`send_data_with_fd`] message into `buf`: the bytes read (the first chunk of a
/// stream; 0 when the peer closed) and the descriptor that came with them, if one did.
pub fn recv_data_with_fd(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel installed this descriptor in this process for this
                // message; nothing else owns it. Extra ones are owned and closed here.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, fd))
}

/// The most descriptors one [`send_fds`] message carries.
pub const MAX_FDS: usize = 16;

/// Sends `fds` (none to [`MAX_FDS`]) as one message: the receiver gets all of them or none.
pub fn send_fds(sock: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::other(format!(
            "{} descriptors in one message (at most {MAX_FDS})",
            fds.len()
        )));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"F")],
        cmsgs,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one [`send_fds`] message. Ok(None): the peer closed without sending. A message that
/// carried more than [`MAX_FDS`] (truncated by the kernel) is an error.
pub fn recv_fds(sock: BorrowedFd<'_>) -> io::Result<Option<Vec<OwnedFd>>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut owned = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed these descriptors in this process for this message;
            // nothing else owns them.
            owned.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::other(
            "descriptors were cut off (more than MAX_FDS)",
        ));
    }
    if msg.bytes == 0 && owned.is_empty() {
        return Ok(None);
    }
    Ok(Some(owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    #[test]
    fn a_descriptor_crosses_the_socket() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        send_fd(a.as_fd(), file.as_fd()).unwrap();
        let got = recv_fd(b.as_fd()).unwrap().unwrap();
        assert_ne!(got.as_raw_fd(), file.as_raw_fd());
        drop(a);
        assert!(recv_fd(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn several_descriptors_or_none_cross_in_one_message() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let files: Vec<std::fs::File> = (0..3)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        send_fds(a.as_fd(), &borrowed).unwrap();
        send_fds(a.as_fd(), &[]).unwrap();
        assert_eq!(recv_fds(b.as_fd()).unwrap().unwrap().len(), 3);
        assert_eq!(
            recv_fds(b.as_fd()).unwrap().unwrap().len(),
            0,
            "an empty message"
        );
        let too_many: Vec<BorrowedFd<'_>> = (0..=MAX_FDS).map(|_| files[0].as_fd()).collect();
        assert!(send_fds(a.as_fd(), &too_many).is_err());
        drop(a);
        assert!(recv_fds(b.as_fd()).unwrap().is_none(), "the peer closed");
    }

    #[test]
    fn data_and_a_descriptor_cross_a_stream_together() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        send_data_with_fd(a.as_fd(), br#"{"ociVersion":"1.0.2"}"#, file.as_fd()).unwrap();
        let mut buf = [0u8; 64];
        let (n, fd) = recv_data_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], br#"{"ociVersion":"1.0.2"}"#);
        assert!(fd.is_some());
        assert!(send_data_with_fd(a.as_fd(), b"", file.as_fd()).is_err());
        drop(a);
        assert_eq!(recv_data_with_fd(b.as_fd(), &mut buf).unwrap().0, 0);
    }
}
