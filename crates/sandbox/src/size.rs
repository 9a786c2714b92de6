//! Byte sizes as people write them: `256M`, `1G`, `512K`, `4096` (binary multiples).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A byte count. Parsed from a number with an optional K, M, G or T suffix (powers of 1024),
/// written back in the largest exact unit (`256M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(u64);

impl Size {
    /// `n` bytes.
    pub const fn bytes_exact(n: u64) -> Size {
        Size(n)
    }
    /// `n` MiB.
    pub const fn mib(n: u64) -> Size {
        Size(n << 20)
    }
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let bad = || {
            format!(
                "invalid size {s:?}: use a number with an optional K, M, G or T suffix, e.g. 256M"
            )
        };
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits_end == 0 {
            return Err(bad());
        }
        let n: u64 = t[..digits_end].parse().map_err(|_| bad())?;
        let shift = match t[digits_end..].trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            _ => return Err(bad()),
        };
        n.checked_mul(1u64 << shift)
            .map(Size)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, suffix) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
            if self.0 != 0 && self.0 % (1u64 << shift) == 0 {
                return write!(f, "{}{}", self.0 >> shift, suffix);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Size(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!("256M".parse::<Size>().unwrap().bytes(), 256 << 20);
        assert_eq!("1g".parse::<Size>().unwrap().bytes(), 1 << 30);
        assert_eq!("4096".parse::<Size>().unwrap().bytes(), 4096);
        assert_eq!("64KiB".parse::<Size>().unwrap().bytes(), 64 << 10);
    }

    #[test]
    fn rejects_garbage() {
        for s in ["12XB", "", "M", "-5M", "1.5G", "99999999999999999999T"] {
            assert!(s.parse::<Size>().is_err(), "{s}");
        }
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Size::mib(512).to_string(), "512M");
        assert_eq!(Size(1 << 30).to_string(), "1G");
        assert_eq!(Size(1000).to_string(), "1000");
    }
}
