//! Routing on pre-classified features: `route/features/{auto,tier,pinned}` under the default
//! policy, and `route/catalog5000/{auto,tier,pinned}` under a generated 5,000-model catalog
//! (decision cost must not grow with the catalog); `route/unknown_model/{default,catalog5000}`,
//! the rejection of a misspelled model name with its "did you mean" hint.

#![allow(clippy::panic, clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "support/catalog.rs"]
mod catalog;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fluxroute::{CallerContext, CompiledPolicy};

fn body(model: &str) -> String {
    format!(
        r#"{{"model": "{model}", "messages": [{{"role": "system", "content": "You are helpful."}}, {{"role": "user", "content": "Explain how a B-tree splits a full node, with an example."}}], "tools": [{{"type": "function", "function": {{"name": "search"}}}}]}}"#
    )
}

fn bench(c: &mut Criterion, function: &str, policy: &CompiledPolicy, models: [(&str, &str); 3]) {
    let models = models.map(|(p, m)| (p, m.to_owned()));
    let ctx = CallerContext::default();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for (param, model) in models {
        let features = policy
            .classify(body(&model).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        // Decisions, not rejections, are what is measured.
        policy
            .route(&features, &ctx)
            .unwrap_or_else(|e| panic!("{function}/{param}: {e}"));
        group.bench_function(BenchmarkId::new(function, param), |b| {
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

fn route(c: &mut Criterion) {
    let default = CompiledPolicy::embedded();
    bench(
        c,
        "features",
        &default,
        [
            ("auto", "flux-auto"),
            ("tier", "flux-balanced"),
            ("pinned", "flux-pinned-gpt-4o"),
        ],
    );
    let large = CompiledPolicy::from_toml(&catalog::catalog_toml(5_000), "generated.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .policy;
    // A pinned model from the middle of the catalog that can serve the request (it has tools).
    let ctx = CallerContext::default();
    let pinned = (2_500..5_000)
        .map(|i| format!("flux-pinned-m{i}"))
        .find(|name| large.route_body(body(name).as_bytes(), &ctx).is_ok())
        .unwrap();
    bench(
        c,
        "catalog5000",
        &large,
        [
            ("auto", "flux-auto"),
            ("tier", "flux-t1"),
            ("pinned", &pinned),
        ],
    );
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for (param, policy, model, hint) in [
        ("default", &default, "gpt-4o-mimi", "gpt-4o-mini"),
        (
            "catalog5000",
            &large,
            "flux-pinned-m2o17",
            "flux-pinned-m2017",
        ),
    ] {
        let bytes = body(model).into_bytes();
        let e = policy.classify(&bytes).unwrap_err();
        assert!(e.message().contains(hint), "{}", e.message());
        group.bench_function(BenchmarkId::new("unknown_model", param), |b| {
            b.iter(|| black_box(policy.classify(black_box(&bytes)).map(|f| f.prompt_tokens)))
        });
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
