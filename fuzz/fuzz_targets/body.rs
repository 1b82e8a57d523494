//! Arbitrary bytes as a request body under the embedded default policy.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::body(data));
