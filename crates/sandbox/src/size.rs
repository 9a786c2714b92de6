//! Byte sizes as people write them: `256M`, `1G`, `512K`, `4096` (binary multiples).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The unit suffixes a [`Size`] takes, each a power of 1024 (`KB`, `KiB` and lowercase forms
/// are read too, and `B` for plain bytes), smallest first.
pub const UNITS: [(&str, u32); 4] = [("K", 10), ("M", 20), ("G", 30), ("T", 40)];

/// [`UNITS`] as every description of sizes names them (profile comment, help, errors, docs).
/// `units_text_lists_exactly_the_units` keeps the two in step.
pub const UNITS_TEXT: &str = "K/M/G/T";

/// A byte count. Parsed from a number with an optional [`UNITS`] suffix (powers of 1024),
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
                "invalid size {s:?}: use a number of bytes with an optional {UNITS_TEXT} suffix (powers of 1024), e.g. 256M"
            )
        };
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if digits_end == 0 {
            return Err(bad());
        }
        let n: u64 = t[..digits_end].parse().map_err(|_| bad())?;
        let suffix = t[digits_end..].trim().to_ascii_uppercase();
        let shift = match suffix.as_str() {
            "" | "B" => 0,
            _ => match UNITS.iter().find(|(unit, _)| {
                suffix
                    .strip_prefix(unit)
                    .is_some_and(|rest| matches!(rest, "" | "B" | "IB"))
            }) {
                Some(&(_, shift)) => shift,
                None => return Err(bad()),
            },
        };
        n.checked_mul(1u64 << shift)
            .map(Size)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &(suffix, shift) in UNITS.iter().rev() {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
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
        struct SizeVisitor;
        impl serde::de::Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a size: a number of bytes, or text with a {UNITS_TEXT} suffix such as \"256M\""
                )
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Size, E> {
                u64::try_from(n)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {n}: a size cannot be negative")))
            }
            fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Size, E> {
                t.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(SizeVisitor)
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
    fn units_text_lists_exactly_the_units() {
        let listed: Vec<&str> = UNITS_TEXT.split('/').collect();
        let units: Vec<&str> = UNITS.iter().map(|(u, _)| *u).collect();
        assert_eq!(listed, units);
        // And the parser takes exactly these letters as multiples (B is plain bytes).
        let mut multiples: Vec<(u64, String)> = ('A'..='Z')
            .map(String::from)
            .filter_map(|u| Some((format!("1{u}").parse::<Size>().ok()?.bytes(), u)))
            .filter(|(bytes, _)| *bytes > 1)
            .collect();
        multiples.sort();
        let multiples: Vec<&str> = multiples.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(multiples, listed);
        for (unit, shift) in UNITS {
            for form in [unit.to_string(), format!("{unit}B"), format!("{unit}iB")] {
                assert_eq!(
                    format!("3{form}").parse::<Size>().unwrap().bytes(),
                    3 << shift
                );
            }
        }
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Size::mib(512).to_string(), "512M");
        assert_eq!(Size(1 << 30).to_string(), "1G");
        assert_eq!(Size(1000).to_string(), "1000");
    }
}
