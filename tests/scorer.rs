//! The trained scorer end to end: training, the model file in a policy, its fingerprint, its
//! diagnostics and reloads, and threshold calibration.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use fluxroute::{
    CompiledPolicy, DiagnosticKind, EMBEDDED_POLICY, Router, Shares, TrainOptions, calibrate,
    train_scorer, write_thresholds,
};

/// A fresh folder of its own for a test.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxroute-scorer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HARD: &[&str] = &[
    "Prove that the eigenvalues of a symmetric matrix are real",
    "Derive the closed form of the recurrence T(n) = 2T(n/2) + n log n",
    "Show by induction that the sum of the first n odd numbers is n squared",
    "Find every integer solution of x^3 + y^3 = z^3 with a rigorous lemma",
    "Compute the integral of x^2 e^x from 0 to 7 and justify each step",
];
const EASY: &[&str] = &[
    "Say hello to my friend",
    "Translate good morning into French",
    "What colour is the sky",
    "Write a two line poem about tea",
    "Give me a synonym for happy",
];

/// A labelled file: hard prompts only the strong model answers well, easy ones both do.
fn labelled(dir: &Path, records: usize) -> PathBuf {
    let path = dir.join("labelled.jsonl");
    let mut out = String::new();
    for i in 0..records {
        let hard = i % 2 == 0;
        let prompts = if hard { HARD } else { EASY };
        // Easy prompts are the longer ones, so length alone ranks them the wrong way.
        let padding = if hard {
            ""
        } else {
            ", please, and thank you so much for your kind help with this small request today"
        };
        let prompt = format!("{}{padding} (case {i})", prompts[i / 2 % prompts.len()]);
        let weak = if hard { 0.1 } else { 0.9 };
        let line = serde_json::json!({
            "id": format!("r{i}"),
            "request": {"model": "flux-auto", "messages": [{"role": "user", "content": prompt}]},
            "quality": {"small": weak, "large": 0.95},
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
    path
}

fn options(seed: u64) -> TrainOptions {
    let mut o = TrainOptions::default();
    o.seed = seed;
    o.bits = 10;
    o
}

/// The default policy with its classifier's model replaced by `model`, written to `dir`.
fn policy_with_model(dir: &Path, model: &str) -> PathBuf {
    let text = EMBEDDED_POLICY.replace(
        "model = \"builtin:default\"",
        &format!("model = \"{model}\""),
    );
    assert_ne!(text, EMBEDDED_POLICY);
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn score(policy: &CompiledPolicy, prompt: &str) -> f32 {
    let body = serde_json::json!({"model": "flux-auto", "messages": [{"role": "user", "content": prompt}]});
    policy
        .classify(body.to_string().as_bytes())
        .unwrap()
        .complexity_score
}

#[test]
fn a_trained_model_scores_what_it_learned() {
    let dir = folder("learn");
    let file = labelled(&dir, 200);
    let trained = train_scorer(&CompiledPolicy::embedded(), &[file], &options(3)).unwrap();
    let report = &trained.files[0];
    assert_eq!((report.records, report.skipped), (200, 0));
    // Held out, the model tells the two kinds apart; length alone does not.
    // Half the prompts hold nearly all the gap, so a perfect router's APGR is about 0.72.
    assert!(report.model.0 > 0.7, "held-out APGR {}", report.model.0);
    assert!(report.length.0 < 0.5, "length APGR {}", report.length.0);
    std::fs::write(dir.join("learned.scorer"), &trained.text).unwrap();
    let policy = CompiledPolicy::from_file(&policy_with_model(&dir, "learned.scorer"))
        .unwrap()
        .policy;
    // Prompts it has not seen, of each kind.
    let hard = score(
        &policy,
        "Prove that the square root of 2 is irrational by a rigorous lemma",
    );
    let easy = score(&policy, "Translate thank you into German");
    assert!(hard > easy + 0.1, "hard {hard}, easy {easy}");
    let terms = policy
        .explain_score(fluxroute::Api::Chat, br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "Prove the lemma"}]}"#)
        .unwrap();
    assert!(
        terms
            .iter()
            .any(|t| t.feature == "word:prove" || t.feature == "word:lemma"),
        "{terms:?}"
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let dir = folder("seed");
    let file = labelled(&dir, 120);
    let policy = CompiledPolicy::embedded();
    let a = train_scorer(&policy, std::slice::from_ref(&file), &options(5)).unwrap();
    let b = train_scorer(&policy, std::slice::from_ref(&file), &options(5)).unwrap();
    let c = train_scorer(&policy, &[file], &options(6)).unwrap();
    assert_eq!(a.text, b.text);
    assert_ne!(a.text, c.text);
}

#[test]
fn too_few_labelled_pairs_are_refused() {
    let dir = folder("few");
    let file = labelled(&dir, 30);
    let err = train_scorer(&CompiledPolicy::embedded(), &[file], &options(1)).unwrap_err();
    assert!(
        err.contains("only 30 labelled pairs") && err.contains("at least 50"),
        "{err}"
    );
}

#[test]
fn the_fingerprint_follows_the_model_bytes() {
    let dir = folder("fingerprint");
    let model = include_str!("../policies/default.scorer");
    std::fs::write(dir.join("m.scorer"), model).unwrap();
    let path = policy_with_model(&dir, "m.scorer");
    let same = CompiledPolicy::from_file(&path).unwrap().policy;
    assert_eq!(same.fingerprint(), CompiledPolicy::embedded().fingerprint());
    // One weight changed in its last digit.
    let line = model.lines().find(|l| l.starts_with("hashed ")).unwrap();
    let changed = format!("{line}1");
    std::fs::write(dir.join("m.scorer"), model.replacen(line, &changed, 1)).unwrap();
    let other = CompiledPolicy::from_file(&path).unwrap().policy;
    assert_ne!(other.fingerprint(), same.fingerprint());
    // Without a model, the fingerprint is the weighted sum's.
    let sum = EMBEDDED_POLICY.replace("model = \"builtin:default\"", "");
    let sum = CompiledPolicy::from_toml(&sum, "sum.toml").unwrap().policy;
    assert_ne!(sum.fingerprint(), same.fingerprint());
}

#[test]
fn a_broken_model_is_a_located_diagnostic_and_a_reload_keeps_the_old_policy() {
    let dir = folder("broken");
    let model = include_str!("../policies/default.scorer");
    let model_path = dir.join("m.scorer");
    std::fs::write(&model_path, model).unwrap();
    let path = policy_with_model(&dir, "m.scorer");
    let router = Router::new(CompiledPolicy::from_file(&path).unwrap().policy);
    let serving = router.load().fingerprint().to_owned();
    let head_line = model
        .lines()
        .position(|l| l.starts_with("head math"))
        .unwrap()
        + 1;
    let cases: Vec<(String, &str, usize)> = vec![
        (
            model.replacen("fluxroute-scorer 1", "fluxroute-scorer 9", 1),
            "version 9",
            1,
        ),
        (
            model[..model.find("head math").unwrap()].to_owned(),
            "no `head math` line",
            0,
        ),
        (
            model.replacen("head math ", "head math nan ", 1),
            "not a finite number",
            head_line,
        ),
        ("\u{0}\u{1}binary".to_owned(), "not a scorer model", 1),
        (String::new(), "empty", 0),
    ];
    for (text, message, line) in cases {
        std::fs::write(&model_path, &text).unwrap();
        let err = router.reload(&path).unwrap_err();
        let d = err
            .diagnostics()
            .iter()
            .find(|d| d.kind == DiagnosticKind::InvalidScorer)
            .unwrap_or_else(|| panic!("{message}: {err}"));
        assert!(d.message.contains(message), "{}", d.message);
        assert_eq!(d.origin, model_path.display().to_string());
        if line > 0 {
            assert_eq!(d.line, line, "{message}");
            assert!(d.column > 0);
        }
        assert_eq!(router.load().fingerprint(), serving, "{message}");
    }
    // A model that weighs a signal the policy lacks.
    std::fs::write(
        &model_path,
        model.replacen("signals code", "signals nosuch", 1),
    )
    .unwrap();
    let err = router.reload(&path).unwrap_err();
    assert!(err.to_string().contains("signal `nosuch`"), "{err}");
    // A missing file names the policy's `model` key.
    std::fs::remove_file(&model_path).unwrap();
    let err = router.reload(&path).unwrap_err();
    assert!(
        err.to_string().contains("cannot read scorer model"),
        "{err}"
    );
    assert_eq!(router.load().fingerprint(), serving);
    // A model outside the policy's folder is refused.
    let name = format!("elsewhere-{}.scorer", std::process::id());
    std::fs::write(dir.parent().unwrap().join(&name), model).unwrap();
    let outside = policy_with_model(&dir, &format!("../{name}"));
    let err = CompiledPolicy::from_file(&outside).unwrap_err();
    assert!(
        err.to_string().contains("outside the policy's directory"),
        "{err}"
    );
}

/// The share of a log's requests in `complex` or `reasoning` under `policy`.
fn strong_share(policy: &CompiledPolicy, log: &Path) -> f64 {
    let (reader, _) = fluxroute::open_log(log).unwrap();
    let (mut strong, mut n) = (0, 0);
    for line in std::io::BufRead::lines(reader) {
        let line = line.unwrap();
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let body = v.get("request").cloned().unwrap_or(v);
        let api = match body.get("input") {
            Some(_) => fluxroute::Api::Responses,
            None => fluxroute::Api::Chat,
        };
        if let Ok(f) = policy.classify_as(api, body.to_string().as_bytes()) {
            n += 1;
            if f.complexity >= fluxroute::Complexity::Complex {
                strong += 1;
            }
        }
    }
    f64::from(strong) / f64::from(n)
}

#[test]
fn calibration_hits_the_asked_share() {
    let log = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/traffic.jsonl.gz"
    ));
    let policy = CompiledPolicy::embedded();
    // Signal floors alone make about 32% of this log strong.
    for asked in [0.4, 0.5, 0.7] {
        let shares = Shares {
            strong: asked,
            reasoning: None,
            simple: None,
        };
        let c = calibrate(&policy, log, shares, fluxroute::Api::Chat).unwrap();
        assert!(
            (c.strong_share - asked).abs() <= 0.02,
            "{asked}: {}",
            c.strong_share
        );
        let [s, x, r] = c.thresholds;
        assert!(0.0 <= s && s < x && x < r && r <= 1.0, "{:?}", c.thresholds);
        // Written into the policy, the thresholds give the log that share.
        let text = write_thresholds(EMBEDDED_POLICY, "calibrated.toml", c.thresholds).unwrap();
        let calibrated = CompiledPolicy::from_toml(&text, "calibrated.toml")
            .unwrap()
            .policy;
        let got = strong_share(&calibrated, log);
        assert!((got - asked).abs() <= 0.02, "{asked}: {got} once written");
    }
    let bad = Shares {
        strong: 1.5,
        reasoning: None,
        simple: None,
    };
    assert!(calibrate(&policy, log, bad, fluxroute::Api::Chat).is_err());
    let below_floors = Shares {
        strong: 0.2,
        reasoning: None,
        simple: None,
    };
    let err = calibrate(&policy, log, below_floors, fluxroute::Api::Chat).unwrap_err();
    assert!(err.contains("floors alone"), "{err}");
}

/// The built-in scorer is what `fluxroute train` makes from the shared data with the
/// command in the README.
#[test]
fn the_default_scorer_is_rebuilt_byte_for_byte() {
    let data = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data"));
    let files = [
        data.join("routing-train/arena-bench-v1.jsonl"),
        data.join("routing-eval/gsm8k.jsonl"),
    ];
    if !files.iter().all(|f| f.exists()) {
        println!("skipped: ../shared/data is not beside the repository");
        return;
    }
    let mut o = TrainOptions::default();
    o.weak = vec!["mixtral-8x7b-instruct".into()];
    o.strong = Some("gpt-4-1106-preview".into());
    o.seed = 1;
    let trained = train_scorer(&CompiledPolicy::embedded(), &files, &o).unwrap();
    // Paths appear only in the printed report, never in the file.
    assert_eq!(trained.text, include_str!("../policies/default.scorer"));
    for f in &trained.files {
        println!(
            "{}: model APGR {:.3}, length {:.3}, policy {:.3}",
            f.file, f.model.0, f.length.0, f.policy.0
        );
    }
}

#[test]
fn a_follow_up_is_scored_with_the_turn_before_it() {
    let policy = CompiledPolicy::embedded();
    let hard = "Prove that for every prime p > 3, p^2 - 1 is divisible by 24. Then find all integer solutions of x^2 - 7y^2 = 1 with x < 1000.";
    let easy = "hi! how are you today?";
    let follow = "And for the second one?";
    let conversation = |turns: &[&str]| {
        let mut messages = Vec::new();
        for (i, t) in turns.iter().enumerate() {
            if i > 0 {
                messages.push(serde_json::json!({"role": "assistant", "content": "Sure."}));
            }
            messages.push(serde_json::json!({"role": "user", "content": t}));
        }
        serde_json::json!({"model": "flux-auto", "messages": messages}).to_string()
    };
    let score = |body: &str| policy.classify(body.as_bytes()).unwrap().complexity_score;
    let after_hard = score(&conversation(&[hard, follow]));
    let after_easy = score(&conversation(&[easy, follow]));
    assert!(
        after_hard > after_easy,
        "{after_hard} after a proof, {after_easy} after a greeting"
    );
    // The turn before the last is read, not earlier ones.
    assert_eq!(
        score(&conversation(&[hard, easy, follow])),
        score(&conversation(&[easy, easy, follow]))
    );
    // However the earlier turn is escaped, it reads the same.
    let body = conversation(&[hard, follow]);
    let escaped = body
        .replacen("Prove", r"\u0050rove", 1)
        .replacen(" p > 3", r" p \u003e 3", 1);
    assert_ne!(escaped, body);
    assert_eq!(score(&escaped), after_hard);
}
