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
        // The same user later, asking something else: the split keys on `user`, not the text.
        let later = format!(
            r#"{{"model": "flux-auto", "user": "user-{i}", "messages": [{{"role": "user", "content": "Explain how a bill becomes law in the United States."}}]}}"#
        );
        let again = policy.route_body(later.as_bytes(), &ctx).unwrap();
        assert_eq!(again.rule(), Some("balanced-ab"));
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

/// Every ASCII letter of `text` as a `\u` escape.
fn letters_escaped(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[test]
fn the_sticky_key_is_the_same_however_the_text_is_escaped() {
    let policy = CompiledPolicy::embedded();
    let key = |user: Option<&str>, text: &str| {
        let user = user.map_or(String::new(), |u| format!(r#""user": "{u}", "#));
        let b = format!(
            r#"{{"model": "flux-auto", {user}"messages": [{{"role": "user", "content": "{text}"}}]}}"#
        );
        policy.classify(b.as_bytes()).unwrap().key
    };
    // Past the hashed prefix of 256 bytes, so that the cut falls inside escaped text too.
    let text = "Summarize the plot of Hamlet, act by act. ".repeat(8);
    assert_eq!(key(None, &text), key(None, &letters_escaped(&text)));
    assert_ne!(key(None, &text), key(None, "Summarize Macbeth."));
    assert_eq!(
        key(Some("user-7"), "a"),
        key(Some(&letters_escaped("user-7")), "b")
    );
    assert_ne!(key(Some("user-7"), "a"), key(Some("user-8"), "a"));
}

#[test]
fn weights_three_to_one() {
    let policy = CompiledPolicy::from_file(std::path::Path::new(concat!(
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

/// A user message: `head`, then filler text of about `filler` bytes (with escapes when
/// `escaped`), then `tail`.
fn long_user(head: &str, filler: usize, tail: &str, escaped: bool) -> String {
    let unit = if escaped {
        r#"the cat sat on the mat.\n\"quiet\" \u00e9 "#
    } else {
        "the cat sat on the mat. "
    };
    let text = format!("{head} {} {tail}", unit.repeat(filler / unit.len()));
    format!(r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": "{text}"}}]}}"#)
}

#[test]
fn patterns_see_the_head_and_tail_of_a_long_last_user_message() {
    let policy = CompiledPolicy::embedded();
    let matched = |body: &str| policy.classify(body.as_bytes()).unwrap().matched;
    for escaped in [false, true] {
        let plain = matched(&long_user("", 100_000, "", escaped));
        for (head, tail) in [("Prove it rigorously.", ""), ("", "Prove it rigorously.")] {
            let m = matched(&long_user(head, 100_000, tail, escaped));
            assert_ne!(m, plain, "{head:?}/{tail:?} escaped={escaped}");
            // A short message sees its whole text either way.
            assert_eq!(m, matched(&long_user(head, 200, tail, escaped)));
        }
        // The middle of a message longer than the window is not searched.
        let middle = format!(
            r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": "{} Prove it rigorously. {}"}}]}}"#,
            "word ".repeat(fluxroute::PATTERN_WINDOW / 4),
            "word ".repeat(fluxroute::PATTERN_WINDOW / 4)
        );
        assert_eq!(
            matched(&middle),
            matched(&long_user("", 100_000, "", false))
        );
    }
}

/// Every character as a `\u` escape: six bytes of JSON per byte of text.
fn all_escaped(text: &str) -> String {
    text.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
}

#[test]
fn the_window_counts_decoded_text_however_it_is_escaped() {
    let policy = CompiledPolicy::embedded();
    let matched = |content: &str| {
        let body = format!(
            r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": "{content}"}}]}}"#
        );
        policy.classify(body.as_bytes()).unwrap().matched
    };
    let filler = |n: usize| "word ".repeat(n / 5);
    let window = fluxroute::PATTERN_WINDOW;
    // Decoded text within the window: searched whole, even when its escaped form is six times
    // longer; text past the window: only its head and tail, again however it is escaped.
    for (before, after, whole) in [
        (window / 2, window / 4, true),
        (window / 4, window / 2, true),
        (window, window, false),
    ] {
        let text = format!("{} Prove it rigorously. {}", filler(before), filler(after));
        let plain = matched(&text);
        let none = matched(&filler(before + after));
        assert_eq!(plain != none, whole, "{before}/{after}");
        assert_eq!(matched(&all_escaped(&text)), plain, "{before}/{after}");
    }
    // The tail is the last half window of the decoded text.
    let text = format!(
        "{}Prove it rigorously.{}",
        filler(window),
        filler(window / 2 - 40)
    );
    let plain = matched(&text);
    assert_ne!(plain, matched(&filler(2 * window)));
    assert_eq!(matched(&all_escaped(&text)), plain);
}

#[test]
fn patterns_see_the_first_and_last_text_parts() {
    let policy = CompiledPolicy::embedded();
    let parts = |a: &str, b: &str| {
        format!(
            r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": [{{"type": "text", "text": "{a}"}}, {{"type": "image_url", "image_url": {{"url": "https://x/y.png"}}}}, {{"type": "text", "text": "{b}"}}]}}]}}"#
        )
    };
    let m = |body: String| policy.classify(body.as_bytes()).unwrap().matched;
    let none = m(parts("look at this", "and this"));
    assert_ne!(m(parts("Prove it", "and this")), none);
    assert_ne!(m(parts("look at this", "prove it")), none);
}

/// `n` completions are charged `n` times the output of one; the prompt once.
#[test]
fn n_completions_multiply_the_output_side_of_the_cost() {
    let policy = CompiledPolicy::embedded();
    let cost = |n: u32, max_tokens: u32| {
        let body = format!(
            r#"{{"model": "flux-pinned-gpt-4o", "n": {n}, "max_tokens": {max_tokens}, "messages": [{{"role": "user", "content": "Name a colour."}}]}}"#
        );
        let d = policy
            .route_body(body.as_bytes(), &CallerContext::default())
            .unwrap();
        assert_eq!(d.model(), "gpt-4o");
        assert_eq!(d.features().choices, n);
        d.estimated_cost_usd()
    };
    // gpt-4o: $10 per million output tokens, so 100 output tokens cost $0.001.
    let one = cost(1, 100);
    assert!((cost(3, 100) - one - 2.0 * 0.001).abs() < 1e-12);
    assert!((cost(8, 100) - one - 7.0 * 0.001).abs() < 1e-12);
    // Each completion is charged the policy's expected output (512) at most, and the output
    // limit is per completion: 128 completions of up to 16,000 tokens still fit gpt-4o.
    assert!((cost(128, 16_000) - cost(1, 16_000) - 127.0 * 512.0 * 10e-6).abs() < 1e-9);
}
