//! Writes a realistic, deterministic request log for `fluxroute simulate` to stdout:
//! `cargo run --example gen_traffic -- 1200 | gzip -9n > examples/traffic.jsonl.gz`;
//! `cargo run --example gen_traffic -- 1000000 short` writes only short records (a few hundred
//! bytes each: no long documents), for throughput and memory measurements.
//!
//! Chat traffic of every kind: greetings, questions, explanations, code and debugging,
//! step-by-step reasoning; tools, images, audio, files, JSON modes, reasoning effort and
//! logprobs; long documents; tier, pinned, passthrough and retired model names; a few
//! invalid lines, as real logs have.

// Indices are always taken modulo the length.
#![allow(clippy::indexing_slicing)]

use std::fmt::Write as _;

/// A small deterministic generator (xorshift64*), so the log is the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SIMPLE: &[&str] = &[
    "hi!",
    "Thanks, that worked.",
    "What is the capital of Australia?",
    "How many ounces are in a pound?",
    "Good morning! Who wrote Pride and Prejudice?",
    "What's the boiling point of water in Fahrenheit?",
];
const STANDARD: &[&str] = &[
    "Explain how HTTPS certificates are validated.",
    "Summarize the causes of the French Revolution in a paragraph.",
    "Write a short poem about autumn in Kyoto.",
    "Compare PostgreSQL and MySQL for a small web app.",
    "Describe the water cycle for a ten-year-old.",
    "Translate into French: the meeting is moved to Thursday afternoon.",
];
const COMPLEX: &[&str] = &[
    "Debug this Python function; it returns None for empty lists:\n```python\ndef mean(xs):\n    if xs:\n        return sum(xs) / len(xs)\n```",
    "Design a rate limiter for a distributed API gateway with 50k requests/s; discuss the trade-offs of token bucket vs sliding window and where the state lives.",
    "Refactor this TypeScript to remove the race condition:\n```ts\nlet cache = {};\nasync function get(k) { if (!cache[k]) cache[k] = await fetch(k); return cache[k]; }\n```",
    "Our Kafka consumers lag under load. Here is the stack trace and config; find the bottleneck and propose a migration plan with latency targets.",
];
const REASONING: &[&str] = &[
    "Prove step by step that the square root of 2 is irrational.",
    "A train leaves at 3pm at 60 km/h and another at 4pm at 90 km/h on the same track. Reason through when the second catches up, and justify each step.",
    "Derive the closed form of the sum 1 + 2 + ... + n and prove it by induction.",
    "Think carefully: if 3 machines make 3 widgets in 3 minutes, how long do 100 machines take to make 100 widgets? Show your work.",
];
const AUTO_NAMES: &[&str] = &[
    "flux-auto",
    "flux-auto",
    "flux-auto",
    "flux-auto",
    "flux-auto",
    "flux-auto",
    "flux-fast",
    "flux-balanced",
    "flux-max",
    "flux-reason",
];
const PINNED: &[&str] = &[
    "flux-pinned-gpt-4o",
    "flux-pinned-claude-sonnet-4-5",
    "flux-pinned-gemini-2.5-flash",
    "flux-pinned-o3",
    "flux-pinned-deepseek-chat",
    "flux-pinned-gpt-4.1-nano",
];
const DIRECT: &[&str] = &[
    "gpt-4o-mini",
    "claude-haiku-4-5",
    "gpt-4-turbo",
    "o1-mini",
    "gemini-1.5-pro",
];

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One record's request body as JSON text.
fn request(rng: &mut Rng, i: usize, short: bool) -> String {
    let roll = rng.below(100);
    let model = match roll {
        0..=69 => rng.pick(AUTO_NAMES),
        70..=89 => rng.pick(PINNED),
        _ => rng.pick(DIRECT),
    };
    let prompt = match rng.below(10) {
        0..=2 => rng.pick(SIMPLE),
        3..=5 => rng.pick(STANDARD),
        6..=7 => rng.pick(COMPLEX),
        _ => rng.pick(REASONING),
    };
    let mut messages = String::new();
    if rng.below(3) == 0 {
        messages.push_str(r#"{"role": "system", "content": "You are a helpful assistant."}, "#);
    }
    if rng.below(4) == 0 {
        messages.push_str(r#"{"role": "user", "content": "Earlier question."}, {"role": "assistant", "content": "Earlier answer."}, "#);
    }
    let mut extra = String::new();
    // Capabilities, each on a share of the traffic.
    let content = match rng.below(20) {
        0 => format!(r#"[{{"type": "text", "text": "{}"}}, {{"type": "image_url", "image_url": {{"url": "https://example.com/img/{i}.png"}}}}]"#, escape(prompt)),
        1 => r#"[{"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZFZm10", "format": "wav"}}, {"type": "text", "text": "Transcribe and summarize."}]"#.to_owned(),
        2 => r#"[{"type": "file", "file": {"filename": "report.pdf", "file_data": "JVBERi0xLjQK"}}, {"type": "text", "text": "Summarize this report."}]"#.to_owned(),
        3 if !short => {
            // A long document: tens of thousands of tokens, sometimes past 150k.
            let paragraph = "The quarterly report covers revenue, churn, hiring and the roadmap for the next two quarters. ";
            let times = if rng.below(5) == 0 { 9000 } else { 200 + rng.below(1000) };
            format!(r#""Summarize this document:\n{}""#, paragraph.repeat(times))
        }
        _ => format!(r#""{}""#, escape(prompt)),
    };
    match rng.below(25) {
        0..=2 => extra.push_str(r#", "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]"#),
        3 => extra.push_str(r#", "response_format": {"type": "json_object"}"#),
        4 => extra.push_str(r#", "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}}"#),
        5 => extra.push_str(r#", "reasoning_effort": "medium""#),
        6 => extra.push_str(r#", "logprobs": true, "top_logprobs": 2"#),
        _ => {}
    }
    if rng.below(4) == 0 {
        let _ = write!(
            extra,
            r#", "max_tokens": {}"#,
            [256, 1024, 4096, 20000][rng.below(4)]
        );
    }
    let _ = write!(extra, r#", "user": "user-{}""#, rng.below(200));
    format!(
        r#"{{"model": "{model}", "messages": [{messages}{{"role": "user", "content": {content}}}]{extra}}}"#
    )
}

/// The whole log: `n` records, about 6% of them invalid lines; `short` leaves out long documents.
pub fn generate(n: usize, short: bool) -> String {
    let mut rng = Rng(0x005e_edf1_u64);
    let mut out = String::new();
    for i in 0..n {
        let line = match rng.below(50) {
            0 => r#"{"id": "broken", "request": {"model": "flux-auto", "messages": [{"role": "user", "content": "cut off"#.to_owned(),
            1 => format!(r#"{{"id": "r{i}", "request": {{"model": "flux-auto", "messages": []}}}}"#),
            2 => format!(r#"{{"id": "r{i}", "request": {{"model": "gpt-5-turbo-max", "messages": [{{"role": "user", "content": "hi"}}]}}}}"#),
            3..=9 => request(&mut rng, i, short),
            _ => {
                let body = request(&mut rng, i, short);
                let usage = if rng.below(5) == 0 {
                    format!(r#", "usage": {{"prompt_tokens": {}, "completion_tokens": {}}}"#, 20 + rng.below(2000), 10 + rng.below(800))
                } else {
                    String::new()
                };
                format!(r#"{{"id": "r{i}", "request": {body}{usage}}}"#)
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[allow(dead_code)]
fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1200);
    let short = std::env::args().nth(2).is_some_and(|a| a == "short");
    print!("{}", generate(n, short));
}
