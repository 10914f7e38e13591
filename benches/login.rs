//! Log-in benchmark: what one attempt costs, and whether the time tells a
//! name that is an operator's from one that is not.
//!
//! Run with `cargo bench --bench login`; `HOTLINE_BENCH_QUICK=1` takes 4
//! samples of each instead of 20. Prints a table, then one JSON line.
//!
//! What is measured, interleaved so that drift on a noisy machine falls on
//! every series alike:
//! - floor: bare argon2id verification of the operator's hash (a wrong
//!   passphrase), at the cost new hashes are made with;
//! - wrong passphrase: [`Authenticator::check`] for the operator's name;
//! - unknown name: the same for a name that is no operator's (checked
//!   against the decoy);
//! - right passphrase: a successful log-in.

mod common;

use std::time::{Duration, Instant};

use age::secrecy::SecretString;
use common::{Summary, round};
use hotline::config::Config;
use hotline::passphrase;
use hotline::station::Authenticator;
use serde_json::json;

const RIGHT: &str = "the right passphrase";

fn main() {
    let quick = std::env::var_os("HOTLINE_BENCH_QUICK").is_some();
    let samples = if quick { 4 } else { 20 };
    let secret = |s: &str| SecretString::from(s.to_string());
    let hash = passphrase::hash(&secret(RIGHT)).expect("hash");
    let text = format!(
        "[station]\nname = \"WASHINGTON\"\n\n[console]\nlockout_after = 100\n\n\
         [[operators]]\nname = \"op\"\nclearance = \"BENCH\"\npassphrase_hash = \"{hash}\"\n"
    );
    let config = Config::parse(&text, std::path::Path::new("operator.toml")).expect("config");
    let auth = Authenticator::new(&config);

    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut floor, mut wrong, mut unknown, mut right) = (vec![], vec![], vec![], vec![]);
    for _ in 0..samples {
        floor.push(time(&|| {
            assert!(!passphrase::verify(&secret("wrong"), &hash));
        }));
        wrong.push(time(&|| {
            assert!(auth.check("op", &secret("wrong")).is_err());
        }));
        unknown.push(time(&|| {
            assert!(auth.check("nobody", &secret("wrong")).is_err());
        }));
        right.push(time(&|| {
            assert!(auth.check("op", &secret(RIGHT)).is_ok());
        }));
    }
    let series = [
        ("floor (bare argon2id)", Summary::of(&floor)),
        ("wrong passphrase", Summary::of(&wrong)),
        ("unknown name", Summary::of(&unknown)),
        ("right passphrase", Summary::of(&right)),
    ];
    let ms = |d: Duration| round(d.as_secs_f64() * 1e3, 1);
    println!(
        "argon2id m={} KiB t={} p={}; {samples} samples each",
        passphrase::MEMORY_KIB,
        passphrase::PASSES,
        passphrase::LANES
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9}",
        "series", "p50 ms", "mean ms", "max ms"
    );
    for (name, s) in &series {
        println!(
            "{name:<24} {:>9} {:>9} {:>9}",
            ms(s.p50),
            ms(s.mean),
            ms(s.max)
        );
    }
    let ratio = |a: &Summary, b: &Summary| round(a.p50.as_secs_f64() / b.p50.as_secs_f64(), 3);
    let unknown_vs_known = ratio(&series[2].1, &series[1].1);
    let known_vs_floor = ratio(&series[1].1, &series[0].1);
    println!("unknown name / wrong passphrase (p50): {unknown_vs_known}");
    println!("wrong passphrase / floor (p50): {known_vs_floor}");
    let json = json!({
        "bench": "login",
        "samples": samples,
        "argon2id": {
            "memory_kib": passphrase::MEMORY_KIB,
            "passes": passphrase::PASSES,
            "lanes": passphrase::LANES,
        },
        "p50_ms": series.iter().map(|(n, s)| (n.to_string(), json!(ms(s.p50)))).collect::<serde_json::Map<_, _>>(),
        "unknown_over_known_p50": unknown_vs_known,
        "known_over_floor_p50": known_vs_floor,
    });
    println!("{json}");
}
