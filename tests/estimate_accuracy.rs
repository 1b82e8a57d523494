//! The prompt-token estimate against exact `o200k_base` counts (tiktoken-rs, a dev-dependency
//! only) on a mixed corpus of 1–16 KB bodies.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::string_slice)]

#[path = "support/corpus.rs"]
mod corpus;

use std::collections::BTreeMap;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn the_estimate_is_within_ten_percent_at_the_90th_percentile() {
    let bpe = tiktoken_rs::o200k_base_singleton();
    let sizes = [1_024, 2_048, 4_096, 8_192, 16_384];
    let mut errors: Vec<f64> = Vec::new();
    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (kind, text) in corpus::bodies(&sizes, 4) {
        let exact = bpe.encode_ordinary(&text).len() as f64;
        let estimate = f64::from(fluxroute::estimate_tokens(&text));
        let err = (estimate - exact).abs() / exact;
        errors.push(err);
        by_kind
            .entry(kind)
            .or_default()
            .push((estimate - exact) / exact);
    }
    for (kind, errs) in &mut by_kind {
        errs.sort_by(f64::total_cmp);
        let abs: Vec<f64> = {
            let mut a: Vec<f64> = errs.iter().map(|e| e.abs()).collect();
            a.sort_by(f64::total_cmp);
            a
        };
        println!(
            "{kind:>9}: signed error min {:+.3} median {:+.3} max {:+.3}; |error| P90 {:.3}",
            errs[0],
            percentile(errs, 0.5),
            errs[errs.len() - 1],
            percentile(&abs, 0.9)
        );
    }
    errors.sort_by(f64::total_cmp);
    let (p50, p90, max) = (
        percentile(&errors, 0.5),
        percentile(&errors, 0.9),
        errors[errors.len() - 1],
    );
    println!(
        "all {} bodies: |error| P50 {p50:.3} P90 {p90:.3} max {max:.3}",
        errors.len()
    );
    assert!(p90 <= 0.10, "P90 relative error {p90:.3} above 10%");
}
