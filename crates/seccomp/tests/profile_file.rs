//! The shipped profiles/default.json and the Rust constructor must not drift.

use watertight_seccomp::{default_profile, Profile, DEFAULT_PROFILE_JSON};

#[test]
fn shipped_default_json_equals_the_constructor() {
    let generated = default_profile().to_json_pretty();
    if std::env::var_os("WATERTIGHT_REGENERATE_PROFILES").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/default.json");
        std::fs::write(path, &generated).expect("write profiles/default.json");
        return;
    }
    assert_eq!(
        DEFAULT_PROFILE_JSON, generated,
        "profiles/default.json differs from default_profile(); regenerate with \
         WATERTIGHT_REGENERATE_PROFILES=1 cargo test -p watertight-seccomp --test profile_file"
    );
    let parsed = Profile::from_json(DEFAULT_PROFILE_JSON).expect("shipped profile parses");
    assert_eq!(parsed, default_profile());
}
