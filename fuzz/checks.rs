//! What every fuzz input must satisfy; shared by the fuzz targets and by `cargo test`, which
//! replays the checked-in seeds and regressions through the same checks.

use std::sync::LazyLock;

use fluxroute::{CallerContext, CompiledPolicy, ErrorCode, Mode};

static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(CompiledPolicy::embedded);

/// Arbitrary bytes as a request body: classify and route under the embedded default policy.
pub fn body(data: &[u8]) {
    let policy = &*POLICY;
    let features = match policy.classify(data) {
        Ok(f) => f,
        Err(e) => {
            assert!(ErrorCode::ALL.contains(&e.code()));
            return;
        }
    };
    assert!((0.0..=1.0).contains(&features.complexity_score));
    let ctx = CallerContext {
        tenant: Some("free"),
        tags: &["ab-test"],
        unavailable: &["gpt-4.1-nano"],
    };
    for ctx in [CallerContext::default(), ctx] {
        let Ok(d) = policy.route(&features, &ctx) else {
            continue;
        };
        let headers = d.headers();
        assert_eq!(headers[0].1, d.model());
        assert_eq!(headers[1].1 == "true", d.routed());
        assert!(!ctx.unavailable.contains(&d.model()));
        match d.mode() {
            Mode::Pinned | Mode::Passthrough => {
                assert!(!d.routed());
                assert_eq!(d.fallbacks().count(), 0);
            }
            Mode::Redirect => assert_eq!(d.fallbacks().count(), 0),
            _ => assert!(d.routed()),
        }
    }
}

/// Arbitrary text as a policy: parse, validate and compile without panicking; a policy that
/// compiles serves its own listing and a trivial request.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match CompiledPolicy::from_toml(text, "fuzz.toml") {
        Ok(loaded) => {
            let p = loaded.policy;
            assert!(p.models()["data"].as_array().is_some_and(|d| !d.is_empty()));
            let _ = p.route_body(
                br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#,
                &CallerContext::default(),
            );
        }
        Err(e) => assert!(!e.diagnostics().is_empty()),
    }
}
