//! Signal names and numbers as `kill` takes them (KILL, SIGKILL, 9).

use nix::sys::signal::Signal;
use std::str::FromStr;

use crate::Error;

/// Parses a signal name (with or without SIG) or number.
pub fn parse(text: &str) -> Result<Signal, Error> {
    let bad = || Error::Signal(text.to_owned());
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("9").unwrap(), Signal::SIGKILL);
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
    }
}
