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

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    /// Swap in policy `i` (owned, or shared when the flag is set).
    Swap(usize, bool),
    /// Reload from the file of policy `i`, or from a broken file when `i` is past the end.
    Reload(usize),
    /// Route body `i`.
    Route(usize),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        // Mostly shared swaps: an owned one compiles the policy again.
        (0usize..3, prop::bool::weighted(0.8)).prop_map(|(i, shared)| Op::Swap(i, shared)),
        (0usize..5).prop_map(Op::Reload),
        (0usize..BODIES.len()).prop_map(Op::Route),
    ]
}

/// The policies the model-based test swaps between, compiled once, with their texts.
static MODEL_POLICIES: std::sync::LazyLock<([String; 3], Vec<Arc<CompiledPolicy>>)> =
    std::sync::LazyLock::new(|| {
        let texts = [
            fluxroute::EMBEDDED_POLICY.to_owned(),
            cheap_strong(),
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/policies/tenants.toml"
            ))
            .unwrap(),
        ];
        let policies = texts
            .iter()
            .map(|t| Arc::new(CompiledPolicy::from_toml(t, "p.toml").unwrap().policy))
            .collect();
        (texts, policies)
    });

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// The router behaves as a single variable holding one of the policies: a swap or reload
    /// reports a change exactly when the policy it installs differs from the one serving, a
    /// failed reload changes nothing, and every route decides as the model's policy does.
    #[test]
    fn the_router_behaves_as_its_model(ops in proptest::collection::vec(op(), 1..40)) {
        let (texts, policies) = &*MODEL_POLICIES;
        let files: Vec<PathBuf> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| policy_file(&format!("model-{i}.toml"), t))
            .chain([
                policy_file("model-broken.toml", "[policy]\nname = \"x\"\n"),
                PathBuf::from("/nonexistent/model.toml"),
            ])
            .collect();
        let router = Router::new(CompiledPolicy::embedded());
        let mut model = 0usize;
        let ctx = CallerContext::default();
        for op in ops {
            match op {
                Op::Swap(i, shared) => {
                    let changed = if shared {
                        router.swap_shared(policies[i].clone())
                    } else {
                        router.swap(CompiledPolicy::from_toml(&texts[i], "p.toml").unwrap().policy)
                    };
                    proptest::prop_assert_eq!(changed, policies[i].fingerprint() != policies[model].fingerprint());
                    model = i;
                }
                Op::Reload(i) => match (router.reload(&files[i]), i < policies.len()) {
                    (Ok(r), true) => {
                        proptest::prop_assert_eq!(r.changed, policies[i].fingerprint() != policies[model].fingerprint());
                        proptest::prop_assert_eq!(r.fingerprint.as_str(), policies[i].fingerprint());
                        model = i;
                    }
                    (Err(e), false) => proptest::prop_assert!(!e.diagnostics().is_empty()),
                    (r, _) => proptest::prop_assert!(false, "reload of file {} gave {:?}", i, r.map(|r| r.fingerprint)),
                },
                Op::Route(b) => {
                    let want = policies[model]
                        .route_body(BODIES[b].as_bytes(), &ctx)
                        .map(|d| d.to_json())
                        .map_err(|e| e.body());
                    let got = router
                        .route(BODIES[b].as_bytes(), &ctx)
                        .map(|r| r.decision().to_json())
                        .map_err(|e| e.body());
                    proptest::prop_assert_eq!(got, want);
                }
            }
            let serving = router.load();
            proptest::prop_assert_eq!(serving.fingerprint(), policies[model].fingerprint());
        }
    }
}
