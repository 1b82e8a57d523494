//! Routing on pre-classified features under the default policy: `route/features/{auto,tier,pinned}`.

#![allow(clippy::panic)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fluxroute::{CallerContext, CompiledPolicy};

fn route(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded();
    let body = |model: &str| {
        format!(
            r#"{{"model": "{model}", "messages": [{{"role": "system", "content": "You are helpful."}}, {{"role": "user", "content": "Explain how a B-tree splits a full node, with an example."}}], "tools": [{{"type": "function", "function": {{"name": "search"}}}}]}}"#
        )
    };
    let ctx = CallerContext::default();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for (param, model) in [
        ("auto", "flux-auto"),
        ("tier", "flux-balanced"),
        ("pinned", "flux-pinned-gpt-4o"),
    ] {
        let features = policy
            .classify(body(model).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        group.bench_function(BenchmarkId::new("features", param), |b| {
            b.iter(|| {
                black_box(
                    policy
                        .route(black_box(&features), &ctx)
                        .map(|d| d.model().len()),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
