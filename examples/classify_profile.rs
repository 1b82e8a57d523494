//! Classifies and routes the classify bench's body in a loop, for profilers:
//! `cargo build --release --example classify_profile`, then for instance
//! `valgrind --tool=callgrind target/release/examples/classify_profile 1048576 4`
//! (body size in bytes, iterations). Instructions per classification are the difference
//! between two iteration counts divided by the difference, which removes the set-up.

use fluxroute::{CallerContext, CompiledPolicy};

#[path = "../benches/support/body.rs"]
mod body;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let size = args.next().and_then(Result::ok).unwrap_or(1 << 20);
    let iterations = args.next().and_then(Result::ok).unwrap_or(1000);
    let policy = CompiledPolicy::embedded();
    let ctx = CallerContext::default();
    let bytes = body::body(size);
    let mut served = 0;
    for _ in 0..iterations {
        if let Ok(d) = policy.route_body(std::hint::black_box(&bytes), &ctx) {
            served += d.model().len();
        }
    }
    println!("{} bytes, {iterations} iterations, {served}", bytes.len());
}
