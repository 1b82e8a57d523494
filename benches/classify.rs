//! Classification plus routing from raw JSON bytes: `classify/body/{200B,2KiB,32KiB,256KiB,1MiB}`,
//! beside three yardsticks over the same bytes in the same group: `classify/serde/*`, a
//! `serde_json::from_slice` into a borrowed struct (what a straightforward implementation pays
//! just to parse), `classify/scan/*`, one `memchr` count of `"` (the memory-speed limit), and
//! `classify/estimate/*`, the token estimator alone over all the bytes as one text (the part
//! of classification's work that grows with the text, without the JSON).
//! `classify_shapes/*` does the same for many short messages, for text written as `\u`
//! escapes, and for one long user message (where the patterns' windows are searched).
//! `classify_scorer/{model,sum}/{200B,2KiB}` classifies and routes the 200 B and 2 KiB bodies with the default
//! policy as it is (its trained scorer) and with its `model` line removed (the weighted signal
//! sum), so the ratio is what the scorer costs.
//! `classify_api/{chat,responses,messages}/2KiB` classifies and routes the same conversation
//! written for each request API; `classify_api/forward/2KiB` writes the forwarded body beside
//! `classify_api/copy/2KiB`, a plain copy of the same bytes into the same buffer.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use fluxroute::{Api, CallerContext, CompiledPolicy};

#[path = "support/body.rs"]
mod body;
use body::body;

fn classify(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let mut group = c.benchmark_group("classify");
    for (name, size) in [
        ("200B", 200),
        ("2KiB", 2 << 10),
        ("32KiB", 32 << 10),
        ("256KiB", 256 << 10),
        ("1MiB", 1 << 20),
    ] {
        let bytes = body(size);
        policy
            .route_body(&bytes, &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        if size >= 256 << 10 {
            group.sample_size(20);
        }
        bench_body(&mut group, name, &bytes, &policy, &ctx);
    }
    group.finish();
}

/// `body`, `serde`, `scan` and `estimate` over the same bytes, in `group`.
fn bench_body(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: &[u8],
    policy: &CompiledPolicy,
    ctx: &CallerContext<'_>,
) {
    group.bench_function(BenchmarkId::new("body", name), |b| {
        b.iter(|| {
            black_box(
                policy
                    .route_body(black_box(bytes), ctx)
                    .map(|d| d.model().len()),
            )
        })
    });
    group.bench_function(BenchmarkId::new("serde", name), |b| {
        b.iter(|| black_box(body::serde_baseline(black_box(bytes))))
    });
    group.bench_function(BenchmarkId::new("scan", name), |b| {
        b.iter(|| black_box(memchr::memchr_iter(b'"', black_box(bytes)).count()))
    });
    let text = std::str::from_utf8(bytes).unwrap();
    group.bench_function(BenchmarkId::new("estimate", name), |b| {
        b.iter(|| black_box(fluxroute::estimate_tokens(black_box(text))))
    });
}

/// Shapes the main body does not stress, each with the same yardsticks: many short messages
/// (the walk between strings), text written entirely as `\u` escapes, and one long user
/// message (the patterns search its head and tail windows).
fn shapes(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let mut group = c.benchmark_group("classify_shapes");
    for (name, bytes) in [
        ("4000msgs", body::many_messages(4000)),
        ("cjk_escaped_1MiB", body::escaped_cjk(1 << 20)),
        ("one_user_64KiB", body::long_user(64 << 10)),
    ] {
        policy
            .route_body(&bytes, &ctx)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.sample_size(20);
        bench_body(&mut group, name, &bytes, &policy, &ctx);
    }
    group.finish();
}

/// The same 2 KiB conversation in each request API, and forwarding it.
fn apis(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let mut group = c.benchmark_group("classify_api");
    for api in Api::ALL {
        let bytes = body::body_in(api, 2 << 10);
        policy
            .route_body_as(api, &bytes, &ctx)
            .unwrap_or_else(|e| panic!("{api}: {e}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new(api.as_str(), "2KiB"), |b| {
            b.iter(|| {
                black_box(
                    policy
                        .route_body_as(api, black_box(&bytes), &ctx)
                        .map(|d| d.model().len()),
                )
            })
        });
    }
    let bytes = body(2 << 10);
    let d = policy.route_body(&bytes, &ctx).unwrap();
    let mut out = Vec::with_capacity(bytes.len() + 64);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(BenchmarkId::new("forward", "2KiB"), |b| {
        b.iter(|| {
            d.forward(black_box(&bytes), &mut out).unwrap();
            black_box(out.len())
        })
    });
    group.bench_function(BenchmarkId::new("copy", "2KiB"), |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&bytes));
            black_box(out.len())
        })
    });
    group.finish();
}

/// The 200 B and 2 KiB bodies with the default policy's scorer and without it.
fn scorer(c: &mut Criterion) {
    let ctx = CallerContext::default();
    let text = include_str!("../policies/default.toml");
    let line = "model = \"builtin:default\"";
    assert!(text.contains(line), "the default policy names its scorer");
    let sum = CompiledPolicy::from_toml(&text.replace(line, ""), "default-sum.toml")
        .unwrap()
        .policy;
    let model = CompiledPolicy::embedded();
    let mut group = c.benchmark_group("classify_scorer");
    for (size_name, size) in [("200B", 200), ("2KiB", 2 << 10)] {
        let bytes = body(size);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        for (name, policy) in [("model", &model), ("sum", &sum)] {
            group.bench_function(BenchmarkId::new(name, size_name), |b| {
                b.iter(|| {
                    black_box(
                        policy
                            .route_body(black_box(&bytes), &ctx)
                            .map(|d| d.model().len()),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, classify, shapes, apis, scorer);
criterion_main!(benches);
