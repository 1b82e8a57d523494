//! The gateway handle: routing through a snapshot, swaps and reloads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fluxroute::{CallerContext, CompiledPolicy, ErrorCode, Router};

const BODY: &[u8] =
    br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}"#;

fn policy_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxroute-router-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn cheap_strong() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/cheap-strong.toml"
    ))
    .unwrap()
}

#[test]
fn reload_swaps_a_valid_policy_and_reports_change() {
    let router = Router::new(CompiledPolicy::embedded());
    let before = router.route(BODY, &CallerContext::default()).unwrap();
    assert_eq!(before.decision().policy().name(), "default");
    let path = policy_file("good.toml", &cheap_strong());
    let r = router.reload(&path).unwrap();
    assert!(r.changed);
    assert_eq!(router.load().name(), "cheap-strong");
    assert_eq!(r.fingerprint, router.load().fingerprint());
    // A decision made before the swap still reads the policy it was made with.
    assert_eq!(before.decision().model(), "gpt-4.1-nano");
    let after = router.route(BODY, &CallerContext::default()).unwrap();
    assert_eq!(after.decision().model(), "mixtral-8x7b-instruct");
    // The same policy again: unchanged.
    assert!(!router.reload(&path).unwrap().changed);
}

#[test]
fn invalid_reload_keeps_the_old_policy_serving() {
    let router = Router::new(CompiledPolicy::embedded());
    let fingerprint = router.load().fingerprint().to_owned();
    let bad_toml = policy_file("bad-toml.toml", "[policy\nname = ");
    let err = router.reload(&bad_toml).unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, fluxroute::DiagnosticKind::Syntax);
    let bad_meaning = policy_file(
        "bad-meaning.toml",
        &cheap_strong().replace(
            "-preview\" = \"gpt-4-1106-preview\"",
            "-preview\" = \"gpt-5-preview\"",
        ),
    );
    let err = router.reload(&bad_meaning).unwrap_err();
    assert!(
        err.diagnostics()
            .iter()
            .any(|d| d.kind == fluxroute::DiagnosticKind::UnknownModel),
        "{err}"
    );
    assert!(
        router
            .reload(&PathBuf::from("/nonexistent/p.toml"))
            .is_err()
    );
    assert_eq!(router.load().fingerprint(), fingerprint);
    assert!(router.route(BODY, &CallerContext::default()).is_ok());
}

/// Bodies of different shapes, so a torn policy would show in some decision.
const BODIES: [&str; 5] = [
    r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#,
    r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "Prove step by step that 2 is prime."}]}"#,
    r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "Debug this deadlock in my Rust service"}], "tools": [{"type": "function", "function": {"name": "f"}}]}"#,
    r#"{"model": "flux-auto", "messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}"#,
    r#"{"model": "flux-auto", "max_tokens": 5000, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarize the plot of Hamlet."}]}"#,
];

#[test]
fn readers_see_whole_policies_while_a_writer_swaps() {
    let a = Arc::new(CompiledPolicy::embedded());
    let b = Arc::new(
        CompiledPolicy::from_toml(&cheap_strong(), "b")
            .unwrap()
            .policy,
    );
    // What each policy decides for each body, routed directly.
    let ctx = CallerContext::default();
    type Outcome = Result<(String, Vec<String>), ErrorCode>;
    let outcome = |r: Result<fluxroute::Decision<'_>, fluxroute::RouteError>| -> Outcome {
        r.map(|d| {
            let fallbacks = d.fallbacks().map(str::to_owned).collect();
            (d.model().to_owned(), fallbacks)
        })
        .map_err(|e| e.code())
    };
    let expected: Arc<HashMap<(String, usize), Outcome>> = Arc::new(
        [&a, &b]
            .iter()
            .flat_map(|p| {
                BODIES.iter().enumerate().map(|(i, body)| {
                    let o = outcome(p.route_body(body.as_bytes(), &ctx));
                    ((p.fingerprint().to_owned(), i), o)
                })
            })
            .collect(),
    );
    assert_ne!(a.fingerprint(), b.fingerprint());
    let fa = a.fingerprint().to_owned();
    let router = Arc::new(Router::new(CompiledPolicy::embedded()));
    let swaps = Arc::new(AtomicUsize::new(0));
    // Decisions made so far: the writer swaps only after readers made progress, so swaps and
    // decisions interleave.
    let decisions: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    const SWAPS: usize = 10_000;
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (router, swaps, expected) = (router.clone(), swaps.clone(), expected.clone());
            let decisions = decisions.clone();
            let fa = fa.clone();
            std::thread::spawn(move || {
                let (mut n, mut seen) = (0u64, [false; 2]);
                let mut i = r;
                while swaps.load(Ordering::Relaxed) < SWAPS || n == 0 {
                    i = (i + 1) % BODIES.len();
                    let policy = router.load();
                    let fp = policy.fingerprint().to_owned();
                    let features = policy.classify(BODIES[i].as_bytes()).unwrap();
                    let got = outcome(policy.route(&features, &CallerContext::default()));
                    assert_eq!(got, expected[&(fp.clone(), i)], "body {i} under {fp}");
                    seen[usize::from(fp != fa)] = true;
                    // The convenience path reports the policy it decided with.
                    if let Ok(routed) =
                        router.route(BODIES[i].as_bytes(), &CallerContext::default())
                    {
                        let d = routed.decision();
                        let fp = d.policy().fingerprint().to_owned();
                        let (model, _) = expected[&(fp, i)].as_ref().unwrap();
                        assert_eq!(d.model(), model);
                    }
                    n += 1;
                    decisions[r].fetch_add(1, Ordering::Relaxed);
                }
                (n, seen)
            })
        })
        .collect();
    for k in 0..SWAPS {
        // Every third swap waits until each reader has decided again (an odd period, so the
        // waits fall under both policies in turn).
        let before = decisions.each_ref().map(|d| d.load(Ordering::Relaxed));
        while k % 3 == 0
            && decisions
                .iter()
                .zip(before)
                .any(|(d, b)| d.load(Ordering::Relaxed) == b)
        {
            std::thread::yield_now();
        }
        let next = if k % 2 == 0 { &b } else { &a };
        assert!(
            router.swap_shared(next.clone()),
            "swap {k} reported no change"
        );
        swaps.store(k + 1, Ordering::Relaxed);
    }
    for r in readers {
        let (n, seen) = r.join().unwrap();
        assert!(n > 0);
        // Each reader saw decisions from both policies.
        assert!(
            seen[0] && seen[1],
            "a reader saw only one policy in {n} decisions"
        );
    }
}
