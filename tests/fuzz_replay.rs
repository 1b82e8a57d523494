//! Replays the checked-in fuzz seeds and every kept fuzz finding (`fuzz/regressions/`)
//! through the fuzz targets' own checks, on stable, as part of `cargo test`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails its checks", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn body_seeds_and_regressions() {
    assert!(replay("body", checks::body) >= 50);
}

#[test]
fn policy_seeds_and_regressions() {
    assert!(replay("policy", checks::policy) >= 4);
}

#[test]
fn request_seeds_and_regressions() {
    assert!(replay("request", checks::request) >= 8);
}
