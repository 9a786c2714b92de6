//! Environment layer: a clean environment built from the profile (nothing of the caller's
//! leaks in except the names it lists), and the command resolved on the sandbox's PATH.

use std::collections::BTreeMap;
use std::ffi::CString;

use crate::error::Error;
use crate::profile::Env;

/// KEY=VALUE strings for execve, from the profile and `--env` overrides.
pub fn build(env: &Env, overrides: &[(String, String)]) -> Result<Vec<CString>, Error> {
    let mut vars: BTreeMap<String, String> = env.set.clone();
    for name in &env.pass {
        if let Ok(v) = std::env::var(name) {
            vars.insert(name.clone(), v);
        }
    }
    for (k, v) in overrides {
        vars.insert(k.clone(), v.clone());
    }
    vars.into_iter()
        .map(|(k, v)| {
            if k.is_empty() || k.contains('=') {
                return Err(Error::Config(format!(
                    "environment variable name {k:?} is invalid"
                )));
            }
            CString::new(format!("{k}={v}"))
                .map_err(|_| Error::Config(format!("environment variable {k} contains a NUL byte")))
        })
        .collect()
}

/// Parses `--env K=V`.
pub fn parse_assignment(s: &str) -> Result<(String, String), Error> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(Error::Config(format!("--env {s:?}: expected KEY=VALUE"))),
    }
}

/// The PATH value the program will see.
pub fn path_of(envp: &[CString]) -> String {
    envp.iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|s| s.strip_prefix("PATH="))
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .to_string()
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
    fn bad_assignment_is_named() {
        assert!(parse_assignment("NOVALUE").is_err());
        assert_eq!(
            parse_assignment("A=b=c").unwrap(),
            ("A".into(), "b=c".into())
        );
    }
}
