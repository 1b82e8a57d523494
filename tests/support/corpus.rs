// The token-estimate corpus: English prose, math problems, source code, JSON, Chinese and
// Japanese text, cut into bodies of 1–16 KB. Shared by the accuracy test and the weight fit.

macro_rules! text {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/",
            $name,
            ".txt"
        ))
    };
}

/// Kinds of natural prose, in several languages and scripts.
pub const PROSE: &[&str] = &[
    "english", "markdown", "math", "chinese", "japanese", "german", "spanish", "french", "russian",
    "korean", "arabic", "hindi",
];

/// The texts each kind's bodies are cut from.
pub fn sources() -> Vec<(&'static str, String)> {
    let policy: serde_json::Value = toml::from_str(fluxroute::EMBEDDED_POLICY).unwrap();
    let models = fluxroute::CompiledPolicy::embedded().list_models();
    vec![
        ("english", text!("english").to_owned()),
        ("markdown", text!("markdown").to_owned()),
        ("math", text!("math").to_owned()),
        ("chinese", text!("chinese").to_owned()),
        ("japanese", text!("japanese").to_owned()),
        ("german", text!("german").to_owned()),
        ("spanish", text!("spanish").to_owned()),
        ("french", text!("french").to_owned()),
        ("russian", text!("russian").to_owned()),
        ("korean", text!("korean").to_owned()),
        ("arabic", text!("arabic").to_owned()),
        ("hindi", text!("hindi").to_owned()),
        ("scripts", [text!("python"), text!("javascript")].concat()),
        // A frozen copy of Rust source, so the corpus does not move with the code.
        ("code", text!("rust").to_owned()),
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
