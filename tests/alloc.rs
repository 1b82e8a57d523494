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

use fluxroute::{CallerContext, CompiledPolicy};

struct Counting;

thread_local! {
    /// Allocations made by this thread: tests run in parallel, each counts its own.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with` fails only while the thread is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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
