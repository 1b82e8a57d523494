//! The command line: output shapes and exit codes (`docs/contract.md`, section 7).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fluxroute"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading its input (a bad policy): a broken pipe is fine.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

const HELLO: &str = r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}"#;

#[test]
fn route_prints_the_decision_and_exits_0() {
    let out = run(&["route"], HELLO);
    assert_eq!(out.status.code(), Some(0));
    let d = json(&out);
    for field in [
        "requested",
        "mode",
        "model",
        "routed",
        "tier",
        "rule",
        "headers",
        "features",
        "estimated_cost_usd",
        "fallbacks",
        "policy",
    ] {
        assert!(d.get(field).is_some(), "missing {field} in {d}");
    }
    for field in [
        "prompt_tokens",
        "max_output_tokens",
        "capabilities",
        "complexity",
        "complexity_score",
    ] {
        assert!(
            d["features"].get(field).is_some(),
            "missing features.{field}"
        );
    }
    assert_eq!(d["requested"], "flux-auto");
    assert_eq!(d["mode"], "auto");
    assert_eq!(d["routed"], true);
    assert_eq!(d["headers"]["X-Flux-Model"], d["model"]);
    assert_eq!(d["headers"]["X-Flux-Routed"], "true");
    assert_eq!(d["policy"]["name"], "default");
    assert_eq!(d["policy"]["fingerprint"].as_str().unwrap().len(), 16);
    assert!(d.get("explain").is_none());
}

#[test]
fn route_reads_a_file_and_dash_means_stdin() {
    let dir = std::env::temp_dir().join(format!("fluxroute-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.json");
    std::fs::write(&file, HELLO.replace("flux-auto", "flux-pinned-o3")).unwrap();
    let d = json(&run(&["route", file.to_str().unwrap()], ""));
    assert_eq!(
        (d["model"].as_str(), d["routed"].as_bool()),
        (Some("o3"), Some(false))
    );
    let d = json(&run(&["route", "-"], HELLO));
    assert_eq!(d["requested"], "flux-auto");
}

#[test]
fn route_error_prints_status_and_body_and_exits_2() {
    let out = run(
        &["route"],
        r#"{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}"#,
    );
    assert_eq!(out.status.code(), Some(2));
    let e = json(&out);
    assert_eq!(e["status"], 404);
    assert_eq!(e["error"]["code"], "model_not_found");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(e["error"]["param"], "model");
    assert!(e["error"]["message"].is_string());
    let out = run(&["route"], "not json");
    assert_eq!(
        (out.status.code(), json(&out)["error"]["code"].as_str()),
        (Some(2), Some("invalid_json"))
    );
}

#[test]
fn route_takes_tenant_tags_and_unavailable_models() {
    let out = run(
        &["route", "--tenant", "free"],
        &HELLO.replace("flux-auto", "flux-max"),
    );
    assert_eq!(
        (out.status.code(), json(&out)["status"].as_u64()),
        (Some(2), Some(403))
    );
    let d = json(&run(
        &[
            "route",
            "--unavailable",
            "gpt-4.1-nano,gemini-2.5-flash-lite",
        ],
        HELLO,
    ));
    assert_eq!(d["model"], "deepseek-chat");
    let body = r#"{"model": "flux-auto", "user": "u1", "messages": [{"role": "user", "content": "Summarize Hamlet."}]}"#;
    let d = json(&run(&["route", "--tag", "ab-test"], body));
    assert_eq!(d["rule"], "balanced-ab");
}

#[test]
fn explain_lists_every_candidate_with_a_reason() {
    let body = r#"{"model": "flux-auto", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}"#;
    let d = json(&run(&["route", "--explain"], body));
    let candidates = d["explain"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 21);
    let kept: Vec<&str> = candidates
        .iter()
        .filter(|c| c["kept"] == true)
        .map(|c| c["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            "gemini-2.5-flash-lite",
            "gpt-4o-mini-audio-preview",
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "gpt-4o-audio-preview"
        ]
    );
    let gpt = candidates.iter().find(|c| c["model"] == "gpt-4o").unwrap();
    assert_eq!(gpt["reason"], "model `gpt-4o` does not support audio_input");
    assert_eq!(d["explain"]["rules"].as_array().unwrap().len(), 3);
    // Errors are explained too.
    let out = run(
        &[
            "route",
            "--explain",
            "--unavailable",
            "gemini-2.5-flash-lite,gemini-2.5-flash,gemini-2.5-pro,gpt-4o-mini-audio-preview,gpt-4o-audio-preview",
        ],
        body,
    );
    assert_eq!(out.status.code(), Some(2));
    let e = json(&out);
    assert_eq!(e["error"]["code"], "model_unavailable");
    assert!(
        e["explain"]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["reason"] == "model `gemini-2.5-pro` is unavailable")
    );
}

#[test]
fn route_with_a_policy_file_and_a_bad_policy() {
    let d = json(&run(
        &["route", "--policy", "policies/cheap-strong.toml"],
        HELLO,
    ));
    assert_eq!(d["model"], "mixtral-8x7b-instruct");
    assert_eq!(d["policy"]["name"], "cheap-strong");
    let out = run(&["route", "--policy", "/nonexistent.toml"], HELLO);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read policy"));
}

#[test]
fn models_prints_the_list() {
    let out = run(&["models"], "");
    assert_eq!(out.status.code(), Some(0));
    let m = json(&out);
    assert_eq!(m["object"], "list");
    let data = m["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        &ids[..5],
        [
            "flux-auto",
            "flux-fast",
            "flux-balanced",
            "flux-reason",
            "flux-max"
        ]
    );
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("flux-pinned-")).count(),
        21
    );
    for e in data {
        assert_eq!(e["object"], "model");
        assert!(e["created"].is_u64() && e["owned_by"].is_string());
        match e["flux"]["kind"].as_str().unwrap() {
            "auto" | "tier" => assert!(!e["flux"]["models"].as_array().unwrap().is_empty()),
            "pinned" | "model" => {
                let f = &e["flux"];
                assert!(
                    f["model"].is_string()
                        && f["context_window"].is_u64()
                        && f["max_output_tokens"].is_u64()
                );
                assert!(f["capabilities"].is_array() && f["tier"].is_string());
                assert!(
                    f["pricing"]["input_per_mtok"].is_f64()
                        && f["pricing"]["output_per_mtok"].is_f64()
                );
            }
            other => panic!("unknown kind {other}"),
        }
    }
    // Passthrough is on in the default policy: backing ids are listed too.
    assert!(
        data.iter()
            .any(|e| e["id"] == "gpt-4o" && e["flux"]["kind"] == "model")
    );
}

#[test]
fn check_exit_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(
        &["check", "policies/default.toml", "policies/tenants.toml"],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("fluxroute-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root.join("policies/cheap-strong.toml")).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text.replace("tier = \"strong\"", "tier = \"stronk\"")).unwrap();
    let out = run(&["check", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[unknown_tier]") && err.contains("bad.toml:"),
        "{err}"
    );
    // A warning passes, unless warnings are denied.
    let warn = dir.join("warn.toml");
    let rule =
        "\n[[rules]]\nname = \"never\"\nmin_score = 0.9\nmax_score = 0.1\ntier = \"strong\"\n";
    std::fs::write(&warn, format!("{text}{rule}")).unwrap();
    assert_eq!(
        run(&["check", warn.to_str().unwrap()], "").status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["check", "--deny-warnings", warn.to_str().unwrap()], "")
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn usage_errors_exit_1() {
    assert_eq!(run(&["route", "--bogus"], "").status.code(), Some(1));
    assert_eq!(run(&["check"], "").status.code(), Some(1));
    assert_eq!(run(&["--help"], "").status.code(), Some(0));
}

#[test]
fn a_catalog_outside_the_policy_folder_needs_the_flag_and_tenants_list_their_own_models() {
    let dir = std::env::temp_dir().join(format!("fluxroute-cli-catalog-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("policies/catalogs/frontier.toml"),
        dir.join("cat.toml"),
    )
    .unwrap();
    let policy = std::fs::read_to_string(root.join("policies/with-catalog.toml")).unwrap();
    let path = dir.join("p/pol.toml");
    std::fs::write(
        &path,
        policy.replace("catalogs/frontier.toml", "../cat.toml"),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let refused = run(&["check", path], "");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--catalog-anywhere"));
    assert_eq!(
        run(&["check", "--catalog-anywhere", path], "")
            .status
            .code(),
        Some(0)
    );
    // `models --tenant`: the tenant's own listing.
    let out = run(
        &[
            "models",
            "--policy",
            "policies/tenants.toml",
            "--tenant",
            "trial",
        ],
        "",
    );
    let listing = json(&out);
    let ids: Vec<&str> = listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["flux-auto"]);
}

#[test]
fn route_reads_the_named_api_and_writes_the_body_to_forward() {
    let dir = std::env::temp_dir().join(format!("fluxroute-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let forward = dir.join("upstream.json");
    let body = r#"{"model": "flux-auto", "max_tokens": 64, "system": "Be brief.", "messages": [{"role": "user", "content": "hello"}]}"#;
    let out = run(
        &[
            "route",
            "--api",
            "messages",
            "--forward",
            forward.to_str().unwrap(),
        ],
        body,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = json(&out);
    let model = d["model"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(&forward).unwrap(),
        body.replace("flux-auto", model)
    );
    // Read as Responses, the same body lacks `input`.
    let e = json(&run(&["route", "--api", "responses"], body));
    assert_eq!(e["error"]["param"], "input");
    // An unknown API is a usage error.
    let bad = run(&["route", "--api", "gemini"], body);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown API"));
    // A rejected request writes nothing to forward.
    std::fs::remove_file(&forward).unwrap();
    let out = run(
        &[
            "route",
            "--api",
            "messages",
            "--forward",
            forward.to_str().unwrap(),
        ],
        r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}"#,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!forward.exists());
}

#[test]
fn train_refuses_too_few_pairs_and_calibrate_writes_thresholds() {
    let dir = std::env::temp_dir().join(format!("fluxroute-cli-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labelled = dir.join("few.jsonl");
    let line = r#"{"id": "a", "request": {"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}, "quality": {"weak": 0.5, "strong": 0.9}}"#;
    std::fs::write(&labelled, format!("{line}\n").repeat(10)).unwrap();
    let out = dir.join("m.scorer");
    let (l, o) = (labelled.to_str().unwrap(), out.to_str().unwrap());
    let r = run(&["train", l, "--out", o], "");
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("only 10 labelled pairs"), "{err}");
    assert!(!out.exists());

    // Calibrate a copy of the default policy on the example traffic, in place.
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, fluxroute::EMBEDDED_POLICY).unwrap();
    let log = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/traffic.jsonl.gz");
    let p = policy.to_str().unwrap();
    let r = run(
        &[
            "calibrate",
            "--policy",
            p,
            "--strong-share",
            "0.6",
            "--write",
            log,
        ],
        "",
    );
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("strong share on") && text.contains("asked 60.0%"),
        "{text}"
    );
    let written = std::fs::read_to_string(&policy).unwrap();
    assert_ne!(written, fluxroute::EMBEDDED_POLICY);
    assert!(fluxroute::CompiledPolicy::from_file(&policy).is_ok());
    // Without a policy file, --write has nothing to write.
    let r = run(&["calibrate", "--strong-share", "0.6", "--write", log], "");
    assert_eq!(r.status.code(), Some(1));
}
