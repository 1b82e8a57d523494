//! Routing behaviour beyond single cases: sticky splits and their distribution.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;

use fluxroute::{CallerContext, CompiledPolicy};

fn body(user: &str) -> String {
    format!(
        r#"{{"model": "flux-auto", "user": "{user}", "messages": [{{"role": "user", "content": "Summarize the plot of Hamlet."}}]}}"#
    )
}

#[test]
fn a_split_is_sticky_per_user_and_follows_its_weights() {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext {
        tags: &["ab-test"],
        ..CallerContext::default()
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..4000 {
        let b = body(&format!("user-{i}"));
        let first = policy.route_body(b.as_bytes(), &ctx).unwrap();
        let again = policy.route_body(b.as_bytes(), &ctx).unwrap();
        assert_eq!(
            first.model(),
            again.model(),
            "user-{i} must stick to one model"
        );
        assert_eq!(first.rule(), Some("balanced-ab"));
        *counts.entry(first.model().to_owned()).or_default() += 1;
    }
    // 50/50 weights: each arm gets 50% ± 4% of 4000 users.
    assert_eq!(counts.len(), 2, "{counts:?}");
    for n in counts.values() {
        assert!((1840..=2160).contains(n), "{counts:?}");
    }
}

#[test]
fn a_split_without_a_user_sticks_to_the_conversation() {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext {
        tags: &["ab-test"],
        ..CallerContext::default()
    };
    let mut models = std::collections::BTreeSet::new();
    for topic in [
        "Hamlet",
        "Macbeth",
        "Othello",
        "King Lear",
        "The Tempest",
        "Twelfth Night",
        "Richard III",
        "Henry V",
    ] {
        let b = format!(
            r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": "Summarize {topic}."}}]}}"#
        );
        let a = policy.route_body(b.as_bytes(), &ctx).unwrap().model();
        assert_eq!(a, policy.route_body(b.as_bytes(), &ctx).unwrap().model());
        models.insert(a);
    }
    assert_eq!(
        models.len(),
        2,
        "different conversations spread over both arms"
    );
}

#[test]
fn weights_three_to_one() {
    let policy = CompiledPolicy::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cases/policies/edge.toml"
    )))
    .unwrap()
    .policy;
    let ctx = CallerContext {
        tags: &["ab"],
        ..CallerContext::default()
    };
    let mut cheap_vision = 0;
    for i in 0..4000 {
        let b = format!(
            r#"{{"model": "flux-auto", "user": "u{i}", "messages": [{{"role": "user", "content": "hi"}}]}}"#
        );
        if policy.route_body(b.as_bytes(), &ctx).unwrap().model() == "cheap-vision" {
            cheap_vision += 1;
        }
    }
    // weight 3 of 4: 75% ± 4%.
    assert!((2840..=3160).contains(&cheap_vision), "{cheap_vision}");
}
