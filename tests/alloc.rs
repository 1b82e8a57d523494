//! `route()` makes no heap allocation on the way to a decision: checked with a counting
//! global allocator. (A rejection allocates its message; that is the error path.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
// The counting allocator is the one place that needs `unsafe`: it forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fluxroute::{Api, CallerContext, CompiledPolicy};

struct Counting;

thread_local! {
    /// Allocations made by this thread: tests run in parallel, each counts its own.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes asked for by this thread, a reallocation counting its new size.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with` fails only while the thread is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = BYTES.try_with(|n| n.set(n.get() + bytes));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls and bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn bytes_during(f: impl FnOnce()) -> usize {
    let before = BYTES.with(Cell::get);
    f();
    BYTES.with(Cell::get) - before
}

#[test]
fn route_makes_no_heap_allocation() {
    let policy = CompiledPolicy::embedded();
    let bodies = [
        r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}"#,
        r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "Debug this Rust deadlock: ```rust fn main() {}```"}]}"#,
        r#"{"model": "flux-auto", "user": "u", "messages": [{"role": "user", "content": "Summarize Hamlet."}]}"#,
        r#"{"model": "flux-balanced", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]}"#,
        r#"{"model": "flux-pinned-gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#,
        r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#,
        r#"{"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}"#,
    ];
    let ctx = CallerContext {
        tenant: Some("free"),
        tags: &["ab-test"],
        unavailable: &["gpt-4.1-nano"],
    };
    let mut decisions = 0;
    for body in bodies {
        let features = policy.classify(body.as_bytes()).unwrap();
        for ctx in [CallerContext::default(), ctx] {
            // Warm up anything lazily initialised, then count.
            if policy.route(&features, &ctx).is_err() {
                continue;
            }
            let mut used = 0;
            let n = allocations_during(|| {
                let d = policy.route(&features, &ctx).unwrap();
                used = d.model().len() + d.fallbacks().count() + d.headers().len();
            });
            assert_eq!(n, 0, "route() allocated {n} times for {body}");
            assert!(used > 0);
            decisions += 1;
        }
    }
    assert!(decisions >= 10, "only {decisions} decisions were measured");
}

/// A realistic body with `turns` user/assistant turns (code, escapes, non-ASCII), tools, and a
/// last user message of about `last` bytes.
fn conversation(turns: usize, last: usize) -> String {
    let user = r#"{"role": "user", "content": "Why does this fail?\n```rust\nfn f(s: &str) -> u32 { s.parse().unwrap() }\n```\nThe caf\u00e9 log says \"bad\" — 日本語"}"#;
    let parts = r#"{"role": "user", "content": [{"type": "text", "text": "see \"this\""}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}, {"type": "text", "text": "and explain"}]}"#;
    let assistant = r#"{"role": "assistant", "content": "Use `u64`:\n1. parse\n2. convert"}"#;
    let mut messages = vec![r#"{"role": "system", "content": "Be careful."}"#.to_owned()];
    for i in 0..turns {
        messages.push(if i % 3 == 1 { parts } else { user }.to_owned());
        messages.push(assistant.to_owned());
    }
    let filler = r#"Prove it step by step.\n\"x\" \u00e9 "#.repeat(last / 30 + 1);
    messages.push(format!(r#"{{"role": "user", "content": "{filler}"}}"#));
    format!(
        r#"{{"model": "flux-auto", "messages": [{}], "tools": [{{"type": "function", "function": {{"name": "run", "parameters": {{"type": "object"}}}}}}]}}"#,
        messages.join(", ")
    )
}

#[test]
fn classify_and_route_make_a_constant_number_of_allocations() {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let mut counts = Vec::new();
    for (turns, last) in [
        (0, 10),
        (1, 100),
        (10, 1_000),
        (300, 10_000),
        (2_000, 200_000),
    ] {
        let body = conversation(turns, last);
        policy.route_body(body.as_bytes(), &ctx).unwrap();
        let n = allocations_during(|| {
            let d = policy.route_body(body.as_bytes(), &ctx).unwrap();
            assert!(!d.model().is_empty());
        });
        counts.push((body.len(), 2 * turns + 2, n));
    }
    // The one allocation is the decoded pattern text of the (escaped) last user message,
    // bounded by the pattern window whatever the body's size.
    assert!(
        counts.iter().all(|&(_, _, n)| n == 1),
        "allocations by (body bytes, messages, count): {counts:?}"
    );
    // Without escapes in the last user message there is nothing to decode. (Each body is
    // routed once first: the regex engine's lazy DFA allocates while it builds states for text
    // it has not seen, within its fixed cache.)
    let plain =
        r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello there"}]}"#;
    policy.route_body(plain.as_bytes(), &ctx).unwrap();
    assert_eq!(
        allocations_during(|| assert!(policy.route_body(plain.as_bytes(), &ctx).is_ok())),
        0
    );
}

/// Every request API classifies and routes without allocating, and the forwarded body is
/// written into the caller's buffer without any other allocation.
#[test]
fn every_api_classifies_routes_and_forwards_without_allocating() {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let bodies = [
        (
            Api::Chat,
            r#"{"model": "flux-auto", "max_tokens": 300, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}], "web_search_options": {}}"#,
        ),
        (
            Api::Responses,
            r#"{"model": "flux-auto", "instructions": "be brief", "max_output_tokens": 300, "input": [{"role": "user", "content": [{"type": "input_text", "text": "what is this"}, {"type": "input_image", "image_url": "https://x/y.png"}]}, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}, {"type": "function_call_output", "call_id": "c", "output": "ok"}, {"role": "user", "content": "and now"}], "tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "web_search"}], "text": {"format": {"type": "json_object"}}}"#,
        ),
        (
            Api::Messages,
            r#"{"model": "flux-auto", "max_tokens": 300, "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}], "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, {"type": "text", "text": "what is this"}]}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "ok"}]}]}], "tools": [{"name": "f", "input_schema": {}}], "thinking": {"type": "enabled", "budget_tokens": 1024}, "metadata": {"user_id": "u1"}}"#,
        ),
    ];
    for (api, body) in bodies {
        let bytes = body.as_bytes();
        // Warm the pattern caches on this text first.
        let d = policy.route_body_as(api, bytes, &ctx).unwrap();
        assert!(d.fallbacks().count() > 0, "{api}");
        let n = allocations_during(|| {
            let d = policy.route_body_as(api, bytes, &ctx).unwrap();
            assert!(!d.model().is_empty());
        });
        assert_eq!(n, 0, "{api}: classify + route allocated {n} times");
        let mut out = Vec::with_capacity(bytes.len() + 64);
        let n = allocations_during(|| {
            for model in d.candidates() {
                d.forward_to(model, bytes, &mut out).unwrap();
            }
        });
        assert_eq!(
            n, 0,
            "{api}: forwarding into a roomy buffer allocated {n} times"
        );
        let n = allocations_during(|| d.forward(bytes, &mut Vec::new()).unwrap());
        assert_eq!(n, 1, "{api}: forwarding into an empty buffer grows it once");
    }
}

/// A policy of `models` models in one tier and `tenants` tenants, each allowed two models.
fn tenant_policy(models: usize, tenants: usize) -> String {
    let mut text = String::from(
        "[policy]\nname = \"t\"\n\n[[tiers]]\nname = \"s\"\nalias = \"flux-s\"\n\n\
         [auto]\nsimple = \"s\"\nstandard = \"s\"\ncomplex = \"s\"\nreasoning = \"s\"\n\n",
    );
    for i in 0..models {
        text += &format!(
            "[[models]]\nid = \"m{i}\"\nprovider = \"p\"\ntier = \"s\"\ncontext_window = 1000\n\
             max_output_tokens = 100\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\n"
        );
    }
    text += "[pinned]\n";
    for i in 0..models {
        text += &format!("\"flux-pinned-m{i}\" = \"m{i}\"\n");
    }
    for i in 0..tenants {
        let (a, b) = (i % models, (i * 7 + 1) % models);
        text += &format!("[tenants.t{i}]\nmodels = [\"m{a}\", \"m{b}\"]\n\n");
    }
    text
}

/// Compiling a policy allocates in proportion to its text, whatever its shape: a tenant's
/// model list is kept as a list, not as a flag for every model of the catalog, and so is its
/// canonical form. (1,000 tenants over 4,000 models, 0.7 MB of TOML, once made 690 MB of
/// allocations, nearly all of them 4 million flags and their JSON values for the fingerprint.)
#[test]
fn compiling_allocates_in_proportion_to_the_policy_text() {
    let mut ratios = Vec::new();
    for (models, tenants) in [(4_000, 0), (4_000, 1_000), (200, 4_000)] {
        let text = tenant_policy(models, tenants);
        let bytes = bytes_during(|| {
            let loaded = CompiledPolicy::from_toml(&text, "t.toml")
                .unwrap_or_else(|e| panic!("{}", e.diagnostics()[0]));
            assert!(
                loaded
                    .policy
                    .resolve(&format!("flux-pinned-m{}", models - 1))
                    .is_some()
            );
        });
        ratios.push((models, tenants, bytes / text.len()));
    }
    // About 60 for the catalog alone and 100 for many small tenants, most of it the TOML
    // parser's; a flag per model and tenant made it 960 for the second policy.
    assert!(
        ratios.iter().all(|&(_, _, r)| r < 200),
        "bytes allocated per byte of policy text by (models, tenants): {ratios:?}"
    );
}

/// Reading a log to calibrate keeps no line longer than the policy's bodies can be: a record
/// of 32 MiB without a line end is skipped unread, not held in memory.
#[cfg(feature = "simulate")]
#[test]
fn calibrating_skips_a_huge_log_line_without_holding_it() {
    let text = include_str!("../policies/default.toml")
        .replace("max_body_bytes = 16777216", "max_body_bytes = 4096");
    let policy = CompiledPolicy::from_toml(&text, "small.toml")
        .unwrap()
        .policy;
    let path = std::env::temp_dir().join(format!("fluxroute-alloc-log-{}", std::process::id()));
    let short = r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let mut log = format!("{short}\n{short}\n").into_bytes();
    log.extend(std::iter::repeat_n(b'x', 32 << 20));
    std::fs::write(&path, &log).unwrap();
    drop(log);
    let shares = fluxroute::Shares {
        strong: 0.5,
        reasoning: None,
        simple: None,
    };
    let mut result = None;
    let bytes = bytes_during(|| {
        result = Some(fluxroute::calibrate(&policy, &path, shares, Api::Chat));
    });
    std::fs::remove_file(&path).unwrap();
    let calibration = result.unwrap().unwrap();
    assert_eq!(calibration.records, 2, "the long line is skipped");
    assert!(
        bytes < 8 << 20,
        "{bytes} bytes allocated reading a 32 MiB line"
    );
}
