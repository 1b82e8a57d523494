//! Structured requests (`arbitrary`): every capability, edge sizes, escaped and plain text.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::request(data));
