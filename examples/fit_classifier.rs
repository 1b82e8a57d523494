//! How the default policy's `clauses` signal was fitted: a grid over its two free numbers on a
//! two-model routing-eval file, printing the complexity score's APGR and CPT(50%) as a router
//! at every point.
//!
//! `cargo run --release --features simulate --example fit_classifier -- ../shared/data/routing-eval/gsm8k.jsonl`
//!
//! The weights of a classifier sum to 1, so the signal's weight is taken from the length
//! feature: every point keeps `length + clauses` at the default policy's total. The other
//! weights are the policy's own and stay fixed. The default policy takes a point on the broad
//! plateau the grid shows, not its single best cell.

// A command-line tool: a bad argument or file ends it with a message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use fluxroute::{CompiledPolicy, EMBEDDED_POLICY, Simulation};

/// `policy` with the length weight, and the `clauses` signal's weight and saturation, replaced.
fn with(policy: &str, length: f64, clauses: f64, saturation: u32) -> String {
    let mut out = String::new();
    let mut in_clauses = false;
    for line in policy.lines() {
        if line.starts_with('[') {
            in_clauses = false;
        }
        if line == "name = \"clauses\"" {
            in_clauses = true;
        }
        let line = if line.starts_with("length = { weight = ") {
            format!("length = {{ weight = {length:.3}, saturation = 1500 }}")
        } else if in_clauses && line.starts_with("weight = ") {
            format!("weight = {clauses:.3}")
        } else if in_clauses && line.starts_with("saturation = ") {
            format!("saturation = {saturation}")
        } else {
            line.to_owned()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: fit_classifier ROUTING-EVAL.jsonl");
    let total = 0.20;
    println!("length  clauses  saturation    APGR  CPT(50%)");
    let mut best = (0.0, String::new());
    for clauses in [0.0, 0.04, 0.06, 0.08, 0.10, 0.12] {
        for saturation in [2, 4, 6, 8, 12, 20] {
            let text = with(EMBEDDED_POLICY, total - clauses, clauses, saturation);
            let policy = CompiledPolicy::from_toml(&text, "grid.toml")
                .expect("every point of the grid is a valid policy")
                .policy;
            let (input, _) = fluxroute::open_log(Path::new(&path)).expect("readable log");
            let report = Simulation::new(&policy)
                .run(input, None, |_| {})
                .expect("a readable log");
            let t = report
                .tradeoff()
                .expect("a two-model routing-eval file with quality labels");
            let cpt = t
                .cpt(0.5)
                .map_or("-".to_owned(), |c| format!("{:.1}%", c * 100.0));
            let row = format!(
                "{:6.2}  {clauses:7.2}  {saturation:10}  {:.4}  {cpt:>8}",
                total - clauses,
                t.apgr()
            );
            println!("{row}");
            if t.apgr() > best.0 {
                best = (t.apgr(), row);
            }
        }
    }
    println!("best: {}", best.1);
}
