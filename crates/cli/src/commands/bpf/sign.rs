//! `watertight bpf sign OBJ --key KEY [--out OBJ.sig]`: vets the object against the policy
//! and, when admitted, writes a signature file of its exact bytes (watertight_bpf::sign; format
//! in docs/bpf.md). A refused object is not signed (exit 1, each refusal on stderr).

use super::{read_object, PolicyArgs};
use crate::commands::sink::{say, warn, write_file};
use std::path::PathBuf;
use watertight_bpf::{vet, Error};
use watertight_integrity::SigningKey;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The BPF object to sign.
    #[arg(value_name = "OBJ")]
    pub object: PathBuf,
    /// The private key (`watertight key generate --out KEY`; mode 0600).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Where to write the signature file. Default: OBJ.sig beside the object.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (policy, policy_name) = args.policy.load()?;
    let key = SigningKey::load(&args.key)?;
    let bytes = read_object(&args.object)?;
    let name = args.object.display().to_string();
    let signature = match watertight_bpf::sign(&bytes, &policy, &key) {
        Ok(s) => s,
        Err(Error::Refused { count, .. }) => {
            // Every refusal, not only the first.
            if let Ok(v) = vet(&bytes, &policy) {
                for r in &v.refusals {
                    warn(&format!("{name}: {r}"));
                }
            }
            warn(&format!(
                "{name}: refused by the policy ({policy_name}): {count} refusal(s), not signed"
            ));
            return Ok(1);
        }
        Err(e) => return Err(anyhow::anyhow!("{name}: {e}")),
    };
    let out = args.out.unwrap_or_else(|| {
        let mut p = args.object.clone().into_os_string();
        p.push(".sig");
        PathBuf::from(p)
    });
    write_file(&out, signature.to_json().as_bytes(), "--out")?;
    say(&format!(
        "signed {name} (sha256 {}) with key {}, vetted against the {policy_name} policy: {}",
        signature.object_sha256,
        signature.signer,
        out.display()
    ))?;
    Ok(0)
}
