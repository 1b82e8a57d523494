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
use std::sync::atomic::{AtomicUsize, Ordering};

use fluxroute::{CallerContext, CompiledPolicy};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
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
