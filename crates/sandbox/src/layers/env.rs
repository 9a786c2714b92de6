//! Environment layer: a clean environment built from the profile (nothing of the caller's
//! leaks in except the names it lists), and the command resolved on the sandbox's PATH.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use watertight_sys::text::quote;

use crate::error::Error;
use crate::profile::Env;

/// KEY=VALUE strings for execve, from the profile and `--env` overrides. Names and values are
/// bytes, as the kernel takes them: not UTF-8 is fine, a NUL byte is not (execve could not carry
/// it).
pub fn build(env: &Env, overrides: &[(OsString, OsString)]) -> Result<Vec<CString>, Error> {
    let mut vars: BTreeMap<OsString, OsString> =
        env.set.iter().map(|(k, v)| (k.into(), v.into())).collect();
    for name in &env.pass {
        if let Some(v) = std::env::var_os(name) {
            vars.insert(name.into(), v);
        }
    }
    for (k, v) in overrides {
        vars.insert(k.clone(), v.clone());
    }
    vars.into_iter()
        .map(|(k, v)| {
            let (k, v) = (k.into_vec(), v.into_vec());
            if k.is_empty() || k.contains(&b'=') {
                return Err(Error::Config(format!(
                    "environment variable name {} is invalid",
                    quote(&k)
                )));
            }
            let mut kv = Vec::with_capacity(k.len() + 1 + v.len());
            kv.extend_from_slice(&k);
            kv.push(b'=');
            kv.extend_from_slice(&v);
            CString::new(kv).map_err(|_| {
                Error::Config(format!(
                    "environment variable {} contains a NUL byte",
                    quote(&k)
                ))
            })
        })
        .collect()
}

/// Parses `--env K=V` (bytes: neither part need be UTF-8).
pub fn parse_assignment(s: &OsStr) -> Result<(OsString, OsString), Error> {
    let b = s.as_bytes();
    match b.iter().position(|&c| c == b'=') {
        Some(eq) if eq > 0 => Ok((
            OsStr::from_bytes(&b[..eq]).into(),
            OsStr::from_bytes(&b[eq + 1..]).into(),
        )),
        _ => Err(Error::Config(format!(
            "--env {}: expected KEY=VALUE",
            quote(b)
        ))),
    }
}

/// The PATH value the program will see (bytes, as execve takes them).
pub fn path_of(envp: &[CString]) -> &[u8] {
    envp.iter()
        .find_map(|c| c.as_bytes().strip_prefix(b"PATH="))
        .unwrap_or(b"/usr/local/bin:/usr/bin:/bin")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::default_profile;

    #[test]
    fn caller_environment_does_not_leak() {
        std::env::set_var("WATERTIGHT_TEST_SECRET", "x");
        let env = build(&default_profile().env, &[]).unwrap();
        assert!(!env
            .iter()
            .any(|c| c.to_str().unwrap().contains("WATERTIGHT_TEST_SECRET")));
        assert!(env.iter().any(|c| c.to_str().unwrap().starts_with("PATH=")));
    }

    #[test]
    fn overrides_win() {
        let env = build(&default_profile().env, &[("HOME".into(), "/work".into())]).unwrap();
        assert!(env.iter().any(|c| c.to_str().unwrap() == "HOME=/work"));
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let (k, v) = parse_assignment(OsStr::from_bytes(b"K\xff=\xfe\x1b")).unwrap();
        let env = build(&default_profile().env, &[(k, v)]).unwrap();
        assert!(env.iter().any(|c| c.as_bytes() == b"K\xff=\xfe\x1b"));
        let nul = build(
            &default_profile().env,
            &[("K".into(), OsStr::from_bytes(b"a\0b").into())],
        );
        assert!(nul
            .unwrap_err()
            .to_string()
            .contains("\"K\" contains a NUL byte"));
        assert!(parse_assignment(OsStr::from_bytes(b"=\n"))
            .unwrap_err()
            .to_string()
            .contains("\"=\\n\": expected KEY=VALUE"));
    }

    #[test]
    fn bad_assignment_is_named() {
        assert!(parse_assignment(OsStr::new("NOVALUE")).is_err());
        assert_eq!(
            parse_assignment(OsStr::new("A=b=c")).unwrap(),
            ("A".into(), "b=c".into())
        );
    }
}
