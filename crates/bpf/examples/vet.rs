//! Vets each object named on the command line against the built-in policy, many times, and
//! prints the time per pass and each object's verdict (benches/bpf/vet.sh runs it in release).
//! `vet [--iterations N] OBJ...`

use std::time::Instant;
use watertight_bpf::{vet, Policy};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut iterations = 1usize;
    if args.first().map(String::as_str) == Some("--iterations") && args.len() > 1 {
        iterations = args[1].parse().unwrap_or(1);
        args.drain(..2);
    }
    let policy = Policy::builtin();
    let objects: Vec<(String, Vec<u8>)> = args
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap_or_default()))
        .collect();
    let bytes: usize = objects.iter().map(|(_, b)| b.len()).sum();
    let start = Instant::now();
    let mut admitted = 0;
    for _ in 0..iterations {
        admitted = 0;
        for (_, b) in &objects {
            if vet(b, &policy).is_ok_and(|v| v.admitted()) {
                admitted += 1;
            }
        }
    }
    let per_pass = start.elapsed() / iterations.max(1) as u32;
    println!(
        "{} object(s), {bytes} bytes: {per_pass:?} per pass ({iterations} passes); {admitted} admitted by the built-in policy",
        objects.len()
    );
    if std::env::var_os("VET_VERBOSE").is_some() {
        for (name, b) in &objects {
            match vet(b, &policy) {
                Ok(v) => {
                    println!(
                        "{name}: {}",
                        if v.admitted() { "admitted" } else { "refused" }
                    );
                    for p in &v.programs {
                        let ids: Vec<u32> = p.helpers.iter().map(|h| h.id).collect();
                        println!(
                            "  {} {} {:?} {:?} kfuncs={:?}",
                            p.name,
                            p.prog_type,
                            p.attach,
                            ids,
                            p.kfuncs.iter().map(|k| &k.name).collect::<Vec<_>>()
                        );
                    }
                    for m in &v.maps {
                        println!("  map {} {} inner={:?}", m.name, m.type_name, m.inner);
                    }
                    for r in &v.refusals {
                        println!("  - {r}");
                    }
                }
                Err(e) => println!("{name}: error: {e}"),
            }
        }
    }
}
