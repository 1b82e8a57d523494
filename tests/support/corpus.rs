// The token-estimate corpus: English prose, math problems, source code, JSON, Chinese and
// Japanese text, cut into bodies of 1–16 KB. Shared by the accuracy test and the weight fit.

/// The texts each kind's bodies are cut from.
pub fn sources() -> Vec<(&'static str, String)> {
    let policy: serde_json::Value = toml::from_str(fluxroute::EMBEDDED_POLICY).unwrap();
    let models = fluxroute::CompiledPolicy::embedded().list_models();
    vec![
        (
            "english",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/english.txt"
            ))
            .to_owned(),
        ),
        (
            "markdown",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/markdown.txt"
            ))
            .to_owned(),
        ),
        (
            "math",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/math.txt"
            ))
            .to_owned(),
        ),
        (
            "chinese",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/chinese.txt"
            ))
            .to_owned(),
        ),
        (
            "japanese",
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/japanese.txt"
            ))
            .to_owned(),
        ),
        (
            "scripts",
            [
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/corpus/python.txt"
                )),
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/corpus/javascript.txt"
                )),
            ]
            .concat(),
        ),
        (
            "code",
            // A frozen copy of Rust source, so the corpus does not move with the code.
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/rust.txt"
            ))
            .to_owned(),
        ),
        (
            "json",
            format!(
                "{}\n{}\n{}",
                serde_json::to_string_pretty(&policy).unwrap(),
                serde_json::to_string(&models).unwrap(),
                serde_json::to_string_pretty(&models).unwrap()
            ),
        ),
    ]
}

/// Bodies of each size in `sizes` (bytes), cut from each source at several offsets (the
/// source repeated when shorter), on character boundaries.
pub fn bodies(sizes: &[usize], offsets: usize) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (kind, text) in sources() {
        let repeated = text.repeat(16_384 * 2 / text.len() + 2);
        for &size in sizes {
            for k in 0..offsets {
                let mut start = (k * 7_919 + size / 3) % text.len();
                while !repeated.is_char_boundary(start) {
                    start += 1;
                }
                let mut end = start + size;
                while !repeated.is_char_boundary(end) {
                    end += 1;
                }
                out.push((kind, repeated[start..end].to_owned()));
            }
        }
    }
    out
}
