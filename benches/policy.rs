//! Policy life cycle: `policy/compile/{default,catalog5000,catalog20000}` (parse + validate +
//! compile; with `Throughput::Bytes`, so equal rates mean compile time linear in the catalog),
//! `policy/reject/broken5000` (the 5,000-model catalog with every pinned alias misspelled:
//! 10,000 diagnostics, the first of them with hints), and
//! `policy/route/{steady,swapping}`: classify + route through a `Router` on this thread while
//! another thread does nothing, or swaps between two compiled policies without pause.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "support/catalog.rs"]
mod catalog;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fluxroute::{CallerContext, CompiledPolicy, EMBEDDED_POLICY, Router};

const BODY: &[u8] = br#"{"model": "flux-auto", "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Explain how a B-tree splits a full node, with an example."}]}"#;

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy");
    group.sample_size(20);
    let large = catalog::catalog_toml(5_000);
    let larger = catalog::catalog_toml(20_000);
    for (name, text) in [
        ("default", EMBEDDED_POLICY),
        ("catalog5000", large.as_str()),
        ("catalog20000", larger.as_str()),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("compile", name), |b| {
            b.iter(|| black_box(CompiledPolicy::from_toml(black_box(text), "p.toml").unwrap()))
        });
    }
    // Every pinned alias names a model one letter off: each is unknown, each model unaliased.
    let broken = large.replace("\" = \"m", "\" = \"mx");
    let errors = CompiledPolicy::from_toml(&broken, "p.toml")
        .unwrap_err()
        .diagnostics()
        .len();
    assert_eq!(errors, 10_000);
    group.throughput(Throughput::Bytes(broken.len() as u64));
    group.bench_function(BenchmarkId::new("reject", "broken5000"), |b| {
        b.iter(|| black_box(CompiledPolicy::from_toml(black_box(&broken), "p.toml").unwrap_err()))
    });
    group.finish();
}

fn route(c: &mut Criterion) {
    let a = Arc::new(CompiledPolicy::embedded());
    let cheap_strong = include_str!("../policies/cheap-strong.toml");
    let b = Arc::new(
        CompiledPolicy::from_toml(cheap_strong, "b.toml")
            .unwrap()
            .policy,
    );
    let router = Arc::new(Router::new(CompiledPolicy::embedded()));
    let ctx = CallerContext::default();
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(1));
    for swapping in [false, true] {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let writer = swapping.then(|| {
            let (router, stop, swaps, a, b) = (
                router.clone(),
                stop.clone(),
                swaps.clone(),
                a.clone(),
                b.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = if swaps.load(Ordering::Relaxed) % 2 == 0 {
                        &b
                    } else {
                        &a
                    };
                    router.swap_shared(next.clone());
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            })
        });
        let name = if swapping { "swapping" } else { "steady" };
        group.bench_function(BenchmarkId::new("route", name), |bench| {
            bench.iter(|| {
                let routed = router.route(black_box(BODY), &ctx).unwrap();
                black_box(routed.decision().model().len())
            })
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(w) = writer {
            w.join().unwrap();
            assert!(swaps.load(Ordering::Relaxed) > 0);
        }
    }
    group.finish();
}

criterion_group!(benches, compile, route);
criterion_main!(benches);
