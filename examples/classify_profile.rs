//! Classifies and routes the classify bench's body in a loop, for profilers:
//! `cargo build --release --example classify_profile`, then for instance
//! `valgrind --tool=callgrind target/release/examples/classify_profile 1048576 4`
//! (body size in bytes, iterations). Instructions per classification are the difference
//! between two iteration counts divided by the difference, which removes the set-up. A third
//! argument names a file whose bytes are classified instead of the bench's body.

use fluxroute::{CallerContext, CompiledPolicy};

#[path = "../benches/support/body.rs"]
mod body;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default| {
        args.get(i)
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (size, iterations) = (number(0, 1 << 20), number(1, 1000));
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let bytes = match args.get(2) {
        Some(path) => match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        },
        None => body::body(size),
    };
    let mut served = 0;
    for _ in 0..iterations {
        if let Ok(d) = policy.route_body(std::hint::black_box(&bytes), &ctx) {
            served += d.model().len();
        }
    }
    println!("{} bytes, {iterations} iterations, {served}", bytes.len());
}
