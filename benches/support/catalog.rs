//! A generated policy with a large catalog: `n` models over four tiers, varied prices, windows
//! and capabilities, a pinned alias for each, and the default policy's classifier.

#![allow(clippy::indexing_slicing, clippy::string_slice)]

pub fn catalog_toml(n: usize) -> String {
    const CAPS: [&str; 6] = [
        "tools",
        "vision",
        "json_mode",
        "json_schema",
        "logprobs",
        "reasoning",
    ];
    let tiers = ["fast", "balanced", "reasoning", "max"];
    let mut s =
        String::from("[policy]\nname = \"generated\"\npassthrough = true\nmax_fallbacks = 3\n\n");
    for (i, t) in tiers.iter().enumerate() {
        s += &format!("[[tiers]]\nname = \"{t}\"\nalias = \"flux-t{i}\"\n\n");
    }
    s += "[auto]\nsimple = \"fast\"\nstandard = \"balanced\"\ncomplex = \"max\"\nreasoning = \"reasoning\"\n\n";
    // A small deterministic generator, so every run benches the same catalog.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let tier = tiers[i % tiers.len()];
        let scale = [0.1, 1.0, 5.0, 10.0][i % tiers.len()];
        let input = scale * (1.0 + (next() % 1000) as f64 / 100.0);
        let output = input * (2.0 + (next() % 4) as f64);
        let window = [32_768, 128_000, 200_000, 1_000_000][(next() % 4) as usize];
        let caps: Vec<String> = CAPS
            .iter()
            .filter(|_| next() % 3 != 0)
            .map(|c| format!("\"{c}\""))
            .collect();
        s += &format!(
            "[[models]]\nid = \"m{i}\"\nprovider = \"p{}\"\ntier = \"{tier}\"\ncontext_window = {window}\nmax_output_tokens = 16384\ninput_per_mtok = {input:.4}\noutput_per_mtok = {output:.4}\ncapabilities = [{}]\n\n",
            i % 7,
            caps.join(", ")
        );
    }
    s += "[pinned]\n";
    for i in 0..n {
        s += &format!("\"flux-pinned-m{i}\" = \"m{i}\"\n");
    }
    let default = fluxroute::EMBEDDED_POLICY;
    let classifier = default
        .find("[classifier]")
        .map(|at| &default[at..])
        .and_then(|rest| rest.find("[[rules]]").map(|end| &rest[..end]))
        .unwrap_or("");
    s += "\n";
    s += classifier;
    s
}
