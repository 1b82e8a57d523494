//! Replay throughput on short chat records (a few hundred bytes each):
//! `simulate/records/{summary,out}` — the summary alone, and with one output line per record —
//! and `simulate/threads/{1,2}`, the summary on rayon pools of one and two threads.
//! A baseline in the same group, `simulate/records/lines`, only splits the log into lines
//! and parses each as JSON: what any replay pays before routing anything.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../examples/gen_traffic.rs"]
mod gen_traffic;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fluxroute::{CompiledPolicy, Simulation};

const RECORDS: usize = 50_000;

fn simulate(c: &mut Criterion) {
    let policy = CompiledPolicy::embedded();
    let log = gen_traffic::generate(RECORDS, true);
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function(BenchmarkId::new("records", "lines"), |b| {
        b.iter(|| {
            log.lines()
                .filter(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok())
                .count()
        })
    });
    group.bench_function(BenchmarkId::new("records", "summary"), |b| {
        b.iter(|| {
            black_box(
                Simulation::new(&policy)
                    .run(log.as_bytes(), None, |_| {})
                    .unwrap()
                    .records(),
            )
        })
    });
    group.bench_function(BenchmarkId::new("records", "out"), |b| {
        let mut out = Vec::with_capacity(log.len() * 4);
        b.iter(|| {
            out.clear();
            black_box(
                Simulation::new(&policy)
                    .run(log.as_bytes(), Some(&mut out), |_| {})
                    .unwrap()
                    .records(),
            )
        })
    });
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter(|| {
                pool.install(|| {
                    Simulation::new(&policy)
                        .run(log.as_bytes(), None, |_| {})
                        .unwrap()
                        .records()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, simulate);
criterion_main!(benches);
