//! Classification plus routing from raw JSON bytes: `classify/body/{200B,2KiB,32KiB,256KiB,1MiB}`,
//! beside two yardsticks over the same bytes in the same group: `classify/serde/*`, a
//! `serde_json::from_slice` into a borrowed struct (what a straightforward implementation pays
//! just to parse), and `classify/scan/*`, one `memchr` count of `"` (the memory-speed limit).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fluxroute::{CallerContext, CompiledPolicy};
use serde::Deserialize;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    #[allow(dead_code)]
    messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    #[allow(dead_code)]
    content: Option<Cow<'a, str>>,
}

const TURN_USER: &str = r#"{"role": "user", "content": "Why does this fail?\n```rust\nfn parse(s: &str) -> Result<u32, String> {\n    s.trim().parse::<u32>().map_err(|e| format!(\"bad \\\"{s}\\\": {e}\"))\n}\n```\nThe caf\u00e9 owner says it worked before — 日本語のログも見てください."}"#;
const TURN_ASSISTANT: &str = r#"{"role": "assistant", "content": "The input has a trailing \"\\r\" from Windows line endings; `trim()` removes it, so the error is elsewhere: the value 4294967296 overflows `u32`. Use `u64` or check the range first.\n\n1. Log the raw bytes.\n2. Parse as u64.\n3. Convert with `try_from`."}"#;
const TOOLS: &str = r#""tools": [{"type": "function", "function": {"name": "run_tests", "description": "Run the test suite and return failures", "parameters": {"type": "object", "properties": {"filter": {"type": "string"}}}}}]"#;

/// A realistic body of about `size` bytes: a system prompt, turns with code and escapes, tools.
fn body(size: usize) -> Vec<u8> {
    let mut turns = Vec::new();
    let head = r#"{"model": "flux-auto", "messages": [{"role": "system", "content": "You are a careful senior engineer. Answer with code when it helps."}, "#;
    let mut len = head.len() + TOOLS.len() + 8;
    while len < size || turns.len() < 2 {
        let t = if turns.len() % 2 == 0 {
            TURN_USER
        } else {
            TURN_ASSISTANT
        };
        len += t.len() + 2;
        turns.push(t);
    }
    if turns.len() % 2 == 0 {
        turns.pop();
    }
    format!("{head}{}], {TOOLS}}}", turns.join(", ")).into_bytes()
}

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
        group.bench_function(BenchmarkId::new("body", name), |b| {
            b.iter(|| {
                black_box(
                    policy
                        .route_body(black_box(&bytes), &ctx)
                        .map(|d| d.model().len()),
                )
            })
        });
        group.bench_function(BenchmarkId::new("serde", name), |b| {
            b.iter(|| {
                black_box(
                    serde_json::from_slice::<Body<'_>>(black_box(&bytes)).map(|b| b.messages.len()),
                )
            })
        });
        group.bench_function(BenchmarkId::new("scan", name), |b| {
            b.iter(|| black_box(memchr::memchr_iter(b'"', black_box(&bytes)).count()))
        });
    }
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
