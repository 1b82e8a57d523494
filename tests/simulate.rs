//! Offline simulation: order, malformed lines, gzip, `--against`, usage, quality, trade-off.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use fluxroute::{CompiledPolicy, Simulation, Tradeoff};
use serde_json::Value;

fn edge() -> CompiledPolicy {
    CompiledPolicy::from_file(&root().join("tests/cases/policies/edge.toml"))
        .unwrap()
        .policy
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxroute-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn record(id: &str, model: &str, text: &str) -> String {
    format!(
        r#"{{"id": "{id}", "request": {{"model": "{model}", "messages": [{{"role": "user", "content": "{text}"}}]}}}}"#
    )
}

fn run(policy: &CompiledPolicy, log: &str) -> (Value, Vec<Value>) {
    let mut out = Vec::new();
    let report = Simulation::new(policy)
        .run(log.as_bytes(), Some(&mut out), |_| {})
        .unwrap();
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (report.to_json(), lines)
}

#[test]
fn output_keeps_input_order_on_many_threads() {
    let policy = CompiledPolicy::embedded();
    let mut log = String::new();
    for i in 0..20_000 {
        let line = match i % 7 {
            0 => format!(
                r#"{{"id": "r{i}", "request": {{"model": "nope", "messages": [{{"role": "user", "content": "x"}}]}}}}"#
            ),
            1 => record(&format!("r{i}"), "flux-pinned-o3", "prove step by step"),
            _ => record(&format!("r{i}"), "flux-auto", &"word ".repeat(i % 50)),
        };
        log.push_str(&line);
        log.push('\n');
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .unwrap();
    let mut out = Vec::new();
    let report = pool
        .install(|| Simulation::new(&policy).run(log.as_bytes(), Some(&mut out), |_| {}))
        .unwrap();
    assert_eq!(report.records(), 20_000);
    let ids: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..20_000).map(|i| format!("r{i}")).collect();
    assert_eq!(ids, expected);
    // The same log on one thread gives the same report.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let single = one
        .install(|| Simulation::new(&policy).run(log.as_bytes(), None, |_| {}))
        .unwrap();
    assert_eq!(single.to_json(), report.to_json());
}

#[test]
fn malformed_lines_are_counted_with_their_line_numbers() {
    let log = [
        record("a", "flux-auto", "hi"),
        "{not json".to_owned(),
        String::new(),
        "[1, 2, 3]".to_owned(),
        r#"{"id": "no-request"}"#.to_owned(),
        r#"{"id": "e", "request": {"model": "flux-auto", "messages": []}}"#.to_owned(),
        record("f", "flux-small", "hi"),
    ]
    .join("\n");
    let (summary, out) = run(&edge(), &log);
    assert_eq!(summary["records"], 6);
    assert_eq!(summary["blank_lines"], 1);
    assert_eq!(summary["decisions"], 2);
    assert_eq!(summary["errors"]["invalid_json"], 2);
    assert_eq!(summary["errors"]["invalid_request"], 2);
    let lines: Vec<(u64, &str)> = summary["error_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            (2, "invalid_json"),
            (4, "invalid_json"),
            (5, "invalid_request"),
            (6, "invalid_request")
        ]
    );
    assert_eq!(out.len(), 6);
    assert_eq!(out[1]["id"], "line:2");
    assert_eq!(out[1]["error"]["code"], "invalid_json");
    assert_eq!(out[1]["line"], 2);
    assert_eq!(out[3]["id"], "no-request");
    assert_eq!(out[5]["decision"]["model"], "tiny");
}

#[test]
fn gzip_logs_read_like_plain_ones() {
    let log: String = (0..500)
        .map(|i| record(&format!("r{i}"), "flux-auto", "hello") + "\n")
        .collect();
    let plain = temp("plain.jsonl");
    std::fs::write(&plain, &log).unwrap();
    let gz = temp("log.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(log.as_bytes()).unwrap();
    enc.finish().unwrap();
    let policy = edge();
    let report = |p: &Path| {
        let (input, _) = fluxroute::open_log(p).unwrap();
        Simulation::new(&policy)
            .run(input, None, |_| {})
            .unwrap()
            .to_json()
    };
    let (a, b) = (report(&plain), report(&gz));
    assert_eq!(a["records"], 500);
    assert_eq!(a, b);
}

#[test]
fn against_reports_a_known_difference() {
    let a = edge();
    let text = std::fs::read_to_string(root().join("tests/cases/policies/edge.toml")).unwrap();
    // Make tiny dearer than cheap-vision: every simple request moves from tiny to cheap-vision.
    let b = CompiledPolicy::from_toml(
        &text.replacen("input_per_mtok = 1.0", "input_per_mtok = 50.0", 1),
        "b",
    )
    .unwrap()
    .policy;
    let mut log: String = (0..30)
        .map(|i| record(&format!("s{i}"), "flux-auto", "hi") + "\n")
        .collect();
    log += &(record("pinned", "flux-pinned-mid", "hi") + "\n");
    let mut out = Vec::new();
    let report = Simulation::new(&a)
        .against(&b)
        .run(log.as_bytes(), Some(&mut out), |_| {})
        .unwrap();
    let s = report.to_json();
    let diff = &s["against"];
    assert_eq!(diff["policy"]["name"], "edge");
    assert_ne!(diff["policy"]["fingerprint"], s["policy"]["fingerprint"]);
    assert_eq!(diff["changed"], 30);
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0]["from"].as_str(), changes[0]["to"].as_str()),
        (Some("tiny"), Some("cheap-vision"))
    );
    assert_eq!(changes[0]["count"], 30);
    assert_eq!(changes[0]["examples"].as_array().unwrap().len(), 5);
    assert_eq!(diff["models"]["cheap-vision"]["count"], 30);
    assert_eq!(s["models"]["tiny"]["count"], 30);
    assert!(diff["cost_delta_usd"].as_f64().unwrap() > 0.0);
    assert!(report.to_table().contains("tiny -> cheap-vision"));
}

#[test]
fn usage_gives_real_cost_and_quality_labels_give_mean_quality() {
    let log = [
        r#"{"id": "u", "request": {"model": "flux-pinned-tiny", "messages": [{"role": "user", "content": "hi"}]}, "usage": {"prompt_tokens": 1000000, "completion_tokens": 500000}}"#,
        r#"{"id": "q1", "request": {"model": "flux-pinned-mid", "messages": [{"role": "user", "content": "hi"}]}, "quality": {"mid": 0.5, "tiny": 0.0}}"#,
        r#"{"id": "q2", "request": {"model": "flux-pinned-mid", "messages": [{"role": "user", "content": "hi"}]}, "quality": {"mid": 1.0}}"#,
        r#"{"id": "q3", "request": {"model": "flux-pinned-mid", "messages": [{"role": "user", "content": "hi"}]}, "quality": {"long": 1.0}}"#,
        r#"{"id": "bad", "request": {"model": "flux-pinned-mid", "messages": [{"role": "user", "content": "hi"}]}, "usage": "lots"}"#,
    ]
    .join("\n");
    let (s, _) = run(&edge(), &log);
    // tiny: 1.0 USD per million input tokens, 2.0 per million output tokens.
    assert_eq!(s["models"]["tiny"]["estimated_cost_usd"], 2.0);
    assert_eq!(s["quality"]["labelled"], 2);
    assert_eq!(s["quality"]["mean"], 0.75);
    assert_eq!(s["ignored_fields"]["usage"], 1);
    assert!(
        s.get("tradeoff").is_none(),
        "labels for varying model sets are not an evaluation pair"
    );
}

#[test]
fn summary_has_every_field() {
    let (s, _) = run(&CompiledPolicy::embedded(), &record("a", "flux-auto", "hi"));
    for field in [
        "records",
        "errors",
        "models",
        "estimated_cost_usd",
        "quality",
        "policy",
        "decisions",
        "modes",
        "complexity",
    ] {
        assert!(s.get(field).is_some(), "missing {field}");
    }
    assert_eq!(s["models"]["gpt-4.1-nano"]["count"], 1);
    assert_eq!(s["models"]["gpt-4.1-nano"]["share"], 1.0);
    assert!(
        s["models"]["gpt-4.1-nano"]["estimated_cost_usd"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(s["policy"]["name"], "default");
}

/// A two-model evaluation set: the report's curve is the one the scores and labels give.
#[test]
fn two_model_sets_get_the_tradeoff_of_their_scores() {
    let policy = CompiledPolicy::from_file(&root().join("policies/cheap-strong.toml"))
        .unwrap()
        .policy;
    let prompts = [
        "hi",
        "what is 2+2?",
        "prove step by step that 7 is prime",
        "explain why the sky is blue",
        "ok",
    ];
    let labels = [(1.0, 1.0), (0.0, 1.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)];
    let mut log = String::new();
    let mut set = Vec::new();
    for (i, (p, (w, s))) in prompts.iter().zip(labels).enumerate() {
        let body = format!(
            r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": "{p}"}}]}}"#
        );
        let score = f64::from(policy.classify(body.as_bytes()).unwrap().complexity_score);
        set.push((score, w, s));
        log += &format!(
            r#"{{"id": "e{i}", "request": {body}, "quality": {{"mixtral-8x7b-instruct": {w}, "gpt-4-1106-preview": {s}}}}}"#
        );
        log.push('\n');
    }
    let report = Simulation::new(&policy)
        .run(log.as_bytes(), None, |_| {})
        .unwrap();
    let t = report.tradeoff().expect("a two-model set");
    assert_eq!(
        (t.weak.as_str(), t.strong.as_str()),
        ("mixtral-8x7b-instruct", "gpt-4-1106-preview")
    );
    assert_eq!(
        *t,
        Tradeoff::new("mixtral-8x7b-instruct", "gpt-4-1106-preview", &set, 10).unwrap()
    );
    let j = report.to_json();
    assert_eq!(j["tradeoff"]["points"].as_array().unwrap().len(), 11);
    assert!(j["tradeoff"]["apgr"].is_f64() && j["tradeoff"]["random_apgr"] == 0.5);
}

#[test]
fn gsm8k_tradeoff_when_the_data_is_present() {
    let path = root().join("../shared/data/routing-eval/gsm8k.jsonl");
    if !path.exists() {
        println!("skipped: {} is absent", path.display());
        return;
    }
    let policy = CompiledPolicy::from_file(&root().join("policies/cheap-strong.toml"))
        .unwrap()
        .policy;
    let (input, _) = fluxroute::open_log(&path).unwrap();
    let report = Simulation::new(&policy).run(input, None, |_| {}).unwrap();
    let t = report.tradeoff().unwrap();
    assert_eq!(t.records, 1307);
    assert_eq!(t.strong, "gpt-4-1106-preview");
    // The all-weak and all-strong ends are the models' own accuracies on the set.
    assert!((t.weak_quality - 0.6373).abs() < 1e-3 && (t.strong_quality - 0.8577).abs() < 1e-3);
    println!("gsm8k APGR {:.4} CPT(50%) {:?}", t.apgr(), t.cpt(0.5));
    // flux-auto's own classifier, thresholded, as a router on this set: above the paper's
    // best trained router (0.622).
    let (input, _) = fluxroute::open_log(&path).unwrap();
    let report = Simulation::new(&CompiledPolicy::embedded())
        .run(input, None, |_| {})
        .unwrap();
    let t = report.tradeoff().unwrap();
    println!(
        "gsm8k default policy APGR {:.4} CPT(50%) {:?} CPT(80%) {:?}",
        t.apgr(),
        t.cpt(0.5),
        t.cpt(0.8)
    );
    assert!(t.apgr() >= 0.62, "APGR {:.4}", t.apgr());
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fluxroute"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn cli_simulate_replays_the_sample_log() {
    let out_path = temp("decisions.jsonl");
    let out = cli(&[
        "simulate",
        "--format",
        "json",
        "--out",
        out_path.to_str().unwrap(),
        "examples/traffic.jsonl.gz",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no progress when stderr is not a terminal"
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["records"], 1200);
    let lines = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(lines.lines().count(), 1200);
    // The sample covers every capability, long inputs, every mode, and invalid lines.
    let mut caps = std::collections::BTreeSet::new();
    let mut rules = std::collections::BTreeSet::new();
    for l in lines.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if let Some(d) = v.get("decision") {
            caps.extend(
                d["features"]["capabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned()),
            );
            rules.insert(d["rule"].as_str().unwrap_or("-").to_owned());
        }
    }
    assert_eq!(caps.len(), 8, "{caps:?}");
    assert!(rules.contains("long-context"), "{rules:?}");
    assert_eq!(s["modes"].as_object().unwrap().len(), 5);
    assert!(s["errors"]["invalid_json"].as_u64().unwrap() > 0);
    let table = cli(&["simulate", "examples/traffic.jsonl.gz"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("policy default@"));
}

#[test]
fn cli_plot_draws_an_svg() {
    let log = temp("eval.jsonl");
    let lines: String = (0..40)
        .map(|i| {
            format!(
                r#"{{"id": {i}, "request": {{"model": "flux-auto", "messages": [{{"role": "user", "content": "{}"}}]}}, "quality": {{"mixtral-8x7b-instruct": {}, "gpt-4-1106-preview": 1}}}}"#,
                "how many apples ".repeat(i % 9 + 1),
                i % 2
            ) + "\n"
        })
        .collect();
    std::fs::write(&log, lines).unwrap();
    let svg = temp("curve.svg");
    let out = cli(&[
        "simulate",
        "--policy",
        "policies/cheap-strong.toml",
        "--plot",
        svg.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.contains("APGR"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("APGR"));
}

#[test]
fn cli_simulate_against_and_bad_inputs() {
    let out = cli(&[
        "simulate",
        "--against",
        "policies/tenants.toml",
        "--format",
        "json",
        "examples/traffic.jsonl.gz",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["against"]["changed"].as_u64().unwrap() > 0);
    assert_eq!(
        cli(&["simulate", "/nonexistent.jsonl"]).status.code(),
        Some(1)
    );
    assert_eq!(
        cli(&[
            "simulate",
            "--against",
            "/nonexistent.toml",
            "examples/traffic.jsonl.gz"
        ])
        .status
        .code(),
        Some(1)
    );
}

#[path = "../examples/gen_traffic.rs"]
mod gen_traffic;

#[test]
fn the_sample_log_is_what_its_generator_writes() {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root().join("examples/traffic.jsonl.gz")).unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    assert!(
        text == gen_traffic::generate(1200, false),
        "regenerate: cargo run --example gen_traffic -- 1200 | gzip -9n > examples/traffic.jsonl.gz"
    );
}

#[test]
fn an_overlong_line_is_skipped_and_counted_without_reading_it_whole() {
    // The edge policy takes bodies of up to 2048 bytes; a line of 1 MB is skipped to its end.
    let long = format!(
        r#"{{"model": "tiny", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(1 << 20)
    );
    let log = format!(
        "{long}\n{}\n{}",
        record("after", "tiny", "hi"),
        "y".repeat(200_000)
    );
    let (s, out) = run(&edge(), &log);
    assert_eq!(s["records"], 3);
    assert_eq!(s["errors"]["request_too_large"], 2);
    assert_eq!(s["error_lines"][0]["line"], 1);
    assert_eq!(out[1]["id"], "after");
    assert_eq!(out[1]["decision"]["model"], "tiny");
    assert_eq!(out[2]["error"]["code"], "request_too_large");
}

#[test]
fn out_of_range_usage_and_quality_are_malformed_not_summed() {
    let log = [
        r#"{"id": "ok", "request": {"model": "flux-pinned-mid", "messages": [{"role": "user", "content": "hi"}]}, "quality": {"mid": 0.5}}"#,
        r#"{"id": "huge", "request": {"model": "flux-pinned-mid", "messages": [{"role": "user", "content": "hi"}]}, "quality": {"mid": 1e308}}"#,
        r#"{"id": "tokens", "request": {"model": "flux-pinned-tiny", "messages": [{"role": "user", "content": "hi"}]}, "usage": {"prompt_tokens": 18446744073709551615, "completion_tokens": 1}}"#,
    ]
    .join("\n");
    let (s, _) = run(&edge(), &log);
    assert_eq!(s["ignored_fields"]["quality"], 1);
    assert_eq!(s["ignored_fields"]["usage"], 1);
    assert_eq!(s["quality"]["mean"], 0.5);
    assert!(
        s["estimated_cost_usd"].as_f64().unwrap() < 1.0,
        "{}",
        s["estimated_cost_usd"]
    );
}

#[test]
fn a_policy_may_not_buffer_bodies_past_64_mib() {
    let text = fluxroute::EMBEDDED_POLICY
        .replace("max_body_bytes = 16777216", "max_body_bytes = 4294967295");
    let err = CompiledPolicy::from_toml(&text, "p.toml").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(
        (d.kind.as_str(), d.path.as_str()),
        ("invalid_value", "limits.max_body_bytes"),
        "{err}"
    );
}

#[test]
fn a_log_can_mix_request_apis() {
    let policy = CompiledPolicy::embedded();
    let log = [
        r#"{"id": "c", "request": {"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}}"#,
        r#"{"id": "r", "api": "responses", "request": {"model": "flux-auto", "input": "hi"}}"#,
        r#"{"id": "m", "api": "messages", "request": {"model": "flux-auto", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}}"#,
        r#"{"id": "x", "api": "gemini", "request": {"model": "flux-auto", "contents": []}}"#,
        r#"{"id": "y", "api": 3, "request": {"model": "flux-auto", "input": "hi"}}"#,
        // Read as chat, a Responses body lacks `messages`.
        r#"{"id": "z", "request": {"model": "flux-auto", "input": "hi"}}"#,
    ]
    .join("\n");
    let (summary, out) = run(&policy, &log);
    assert_eq!(summary["decisions"], 3);
    assert_eq!(summary["errors"]["invalid_request"], 3);
    for line in &out[..3] {
        assert_eq!(line["decision"]["model"], "gpt-4.1-nano", "{line}");
    }
    assert_eq!(out[3]["error"]["param"], "api");
    assert!(
        out[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gemini")
    );
    assert_eq!(out[4]["error"]["param"], "api");
    assert_eq!(out[5]["error"]["param"], "messages");

    // Usage as the Responses and Anthropic APIs name it prices the record like chat's names.
    let usage = |names: (&str, &str)| {
        let line = format!(
            r#"{{"id": "u", "api": "messages", "usage": {{"{}": 1000000, "{}": 0}}, "request": {{"model": "flux-pinned-gpt-4o", "max_tokens": 5, "messages": [{{"role": "user", "content": "hi"}}]}}}}"#,
            names.0, names.1
        );
        run(&policy, &line).0["estimated_cost_usd"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(usage(("input_tokens", "output_tokens")), 2.5);
    assert_eq!(usage(("prompt_tokens", "completion_tokens")), 2.5);

    // Bare bodies take the run's API.
    let bare = r#"{"model": "flux-auto", "input": "hi"}"#;
    let mut buf = Vec::new();
    let report = Simulation::new(&policy)
        .api(fluxroute::Api::Responses)
        .run(bare.as_bytes(), Some(&mut buf), |_| {})
        .unwrap();
    assert_eq!(report.to_json()["decisions"], 1);
}
