//! Terminal ioctls nix has no safe function for: window size, controlling terminal, line
//! discipline. `watertight run` gives the program a pseudo-terminal of the supervisor's and
//! copies the caller's window size onto it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A terminal's window size (rows, columns and the pixel sizes terminals rarely fill in).
pub type Winsize = libc::winsize;

/// The window size of terminal `fd` (TIOCGWINSZ).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<Winsize> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to a live,
    // writable one; `fd` is a borrowed, open descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws as *mut Winsize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ws)
}

/// Sets the window size of terminal `fd` (TIOCSWINSZ); on a pty master it is the slave's size,
/// and the slave's foreground process group gets SIGWINCH when it changes.
pub fn set_window_size(fd: BorrowedFd<'_>, ws: &Winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ only reads one `struct winsize` through the pointer, which points to a
    // live one; `fd` is a borrowed, open descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const Winsize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes terminal `fd` the calling process's controlling terminal (TIOCSCTTY, without stealing
/// it from another session). The caller must be a session leader without one.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and no memory.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The line discipline number of terminal `fd` (TIOCGETD): 0 is N_TTY, the usual one.
pub fn line_discipline(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut ldisc: libc::c_int = -1;
    // SAFETY: TIOCGETD writes one int through the pointer, which points to a live one.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGETD,
            &mut ldisc as *mut libc::c_int,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ldisc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn window_size_round_trips_on_a_pty() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let ws = Winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_window_size(pty.master.as_fd(), &ws).unwrap();
        let got = window_size(pty.slave.as_fd()).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (33, 111));
        assert_eq!(line_discipline(pty.slave.as_fd()).unwrap(), 0);
    }

    #[test]
    fn a_pipe_is_no_terminal() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(window_size(r.as_fd()).is_err());
        assert!(line_discipline(r.as_fd()).is_err());
    }
}
