//! The gateway handle: routing through a snapshot, swaps and reloads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fluxroute::{CallerContext, CompiledPolicy, Router};

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

#[test]
fn readers_see_whole_policies_while_a_writer_swaps() {
    let a = CompiledPolicy::embedded();
    let b = CompiledPolicy::from_toml(&cheap_strong(), "b")
        .unwrap()
        .policy;
    let (fa, fb) = (a.fingerprint().to_owned(), b.fingerprint().to_owned());
    let router = Arc::new(Router::new(a));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (router, done, fa, fb) = (router.clone(), done.clone(), fa.clone(), fb.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) || n == 0 {
                    let routed = router.route(BODY, &CallerContext::default()).unwrap();
                    let d = routed.decision();
                    let expected = if d.policy().fingerprint() == fa {
                        "gpt-4.1-nano"
                    } else {
                        assert_eq!(d.policy().fingerprint(), fb);
                        "mixtral-8x7b-instruct"
                    };
                    assert_eq!(d.model(), expected);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let text = cheap_strong();
    for i in 0..200 {
        let next = if i % 2 == 0 {
            CompiledPolicy::from_toml(&text, "b").unwrap().policy
        } else {
            CompiledPolicy::embedded()
        };
        assert!(router.swap(next));
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}
