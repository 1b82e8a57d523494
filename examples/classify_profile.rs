//! Classifies and routes the classify bench's body in a loop, for profilers:
//! `cargo build --release --example classify_profile`, then for instance
//! `valgrind --tool=callgrind target/release/examples/classify_profile 1048576 4`
//! (body size in bytes, iterations). Instructions per classification are the difference
//! between two iteration counts divided by the difference, which removes the set-up. A third
//! argument names a file whose bytes are classified instead of the bench's body; `--serde`
//! runs the bench's `serde` yardstick over the same bytes instead of classifying them;
//! `--api responses` or `--api messages` builds and reads the same conversation in that API.

use fluxroute::{Api, CallerContext, CompiledPolicy};

#[path = "../benches/support/body.rs"]
mod body;

fn main() {
    // `--serde` runs the bench's `serde` yardstick over the same bytes instead.
    let serde = std::env::args().any(|a| a == "--serde");
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--serde")
        .collect();
    let api = match args.iter().position(|a| a == "--api") {
        Some(i) => {
            let name = args.get(i + 1).cloned().unwrap_or_default();
            args.drain(i..(i + 2).min(args.len()));
            name.parse::<Api>().unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(2);
            })
        }
        None => Api::Chat,
    };
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
        None => body::body_in(api, size),
    };
    let mut served = 0;
    for _ in 0..iterations {
        let bytes = std::hint::black_box(&bytes);
        if serde {
            served += body::serde_baseline(bytes).unwrap_or(0);
        } else if let Ok(d) = policy.route_body_as(api, bytes, &ctx) {
            served += d.model().len();
        }
    }
    println!("{} bytes, {iterations} iterations, {served}", bytes.len());
}
