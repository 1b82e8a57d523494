//! flux-auto's complexity classes on everyday prompts: a table of labelled prompts
//! (`tests/labels/complexity.toml`) and the agreement the default policy must hold.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;

use fluxroute::{CompiledPolicy, Complexity};

#[derive(serde::Deserialize)]
struct Table {
    simple: Vec<String>,
    standard: Vec<String>,
    complex: Vec<String>,
    reasoning: Vec<String>,
}

fn classify(policy: &CompiledPolicy, prompt: &str) -> Complexity {
    let body = serde_json::json!({"model": "flux-auto", "messages": [{"role": "user", "content": prompt}]});
    policy
        .classify(body.to_string().as_bytes())
        .unwrap()
        .complexity
}

#[test]
fn the_default_policy_agrees_with_the_labelled_prompts() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/labels/complexity.toml"
    ))
    .unwrap();
    let table: Table = toml::from_str(&text).unwrap();
    let policy = CompiledPolicy::embedded();
    let mut total = 0;
    let mut agree = 0;
    let mut confusion: BTreeMap<(Complexity, Complexity), Vec<String>> = BTreeMap::new();
    for (label, prompts) in [
        (Complexity::Simple, &table.simple),
        (Complexity::Standard, &table.standard),
        (Complexity::Complex, &table.complex),
        (Complexity::Reasoning, &table.reasoning),
    ] {
        assert!(prompts.len() >= 15, "{label}: too few prompts");
        for p in prompts {
            let got = classify(&policy, p);
            total += 1;
            if got == label {
                agree += 1;
            } else {
                confusion
                    .entry((label, got))
                    .or_default()
                    .push(p.chars().take(60).collect());
            }
        }
    }
    for ((want, got), ps) in &confusion {
        println!("{want} -> {got}: {ps:?}");
    }
    let rate = f64::from(agree) / f64::from(total);
    println!("agreement {agree}/{total} = {rate:.3}");
    assert!(total >= 60);
    assert!(rate >= AGREEMENT, "agreement {rate:.3} below {AGREEMENT}");
}

/// The agreement the default policy holds on the table.
const AGREEMENT: f64 = 0.80;
