//! Operator safety: hostile requests and policies stay bounded, and policy mistakes never
//! widen access.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use fluxroute::{CallerContext, CompiledPolicy, ErrorCode};

#[test]
fn error_messages_quote_a_bounded_part_of_untrusted_names() {
    let policy = CompiledPolicy::embedded();
    let huge = "m".repeat(8 << 20);
    for body in [
        format!(r#"{{"model": "{huge}", "messages": [{{"role": "user", "content": "hi"}}]}}"#),
        format!(r#"{{"model": "flux-auto", "messages": [{{"role": "{huge}", "content": "hi"}}]}}"#),
        format!(
            r#"{{"model": "flux-auto", "messages": [{{"role": "user", "content": [{{"type": "{huge}"}}]}}]}}"#
        ),
        format!(
            r#"{{"model": "flux-auto", "response_format": {{"type": "{huge}"}}, "messages": [{{"role": "user", "content": "hi"}}]}}"#
        ),
    ] {
        let err = policy.classify(body.as_bytes()).unwrap_err();
        assert!(err.message().len() < 1024, "{} bytes", err.message().len());
        assert!(err.message().contains("bytes in all"), "{}", err.message());
    }
}

#[test]
fn diagnostics_quote_a_bounded_part_of_policy_names() {
    let name = "x".repeat(1 << 20);
    let text = fluxroute::EMBEDDED_POLICY.replace(
        "\"flux-pinned-gpt-4o\" = \"gpt-4o\"",
        &format!("\"flux-pinned-gpt-4o\" = \"{name}\""),
    );
    let diagnostics = CompiledPolicy::validate(&text, "p.toml");
    assert!(!diagnostics.is_empty());
    for d in &diagnostics {
        assert!(d.message.len() < 4096 && d.path.len() < 4096, "{d}");
    }
}

/// A one-model policy whose policy name, model id and tier alias are `name`, `id`, `alias`.
fn named_policy(name: &str, id: &str, alias: &str) -> String {
    let q = |s: &str| toml_string(s);
    format!(
        "[policy]\nname = {}\n[[tiers]]\nname = \"only\"\nalias = {}\n[auto]\nsimple = \"only\"\nstandard = \"only\"\ncomplex = \"only\"\nreasoning = \"only\"\n[[models]]\nid = {}\nprovider = \"p\"\ntier = \"only\"\ncontext_window = 100000\nmax_output_tokens = 1000\ninput_per_mtok = 1\noutput_per_mtok = 1\n[pinned]\n{} = {}\n",
        q(name),
        q(alias),
        q(id),
        q(&format!("flux-pinned-{id}")),
        q(id)
    )
}

/// A TOML basic string holding `s` exactly.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Whatever names a policy holds, a policy that loads never puts a line break, a control
    /// character or a space into a response header.
    #[test]
    fn headers_never_carry_line_breaks(
        name in "[a-z\r\n \t\u{0}\u{7f}é:.-]{0,12}",
        id in "[a-z\r\n \t\u{0}é:.-]{1,12}",
        alias in "[a-z\r\n \té-]{1,12}",
    ) {
        let text = named_policy(&name, &id, &alias);
        let Ok(loaded) = CompiledPolicy::from_toml(&text, "p.toml") else {
            return Ok(());
        };
        let policy = loaded.policy;
        let body = format!(r#"{{"model": "flux-pinned-{}", "messages": [{{"role": "user", "content": "hi"}}]}}"#, id.escape_default());
        let features = policy.classify(body.as_bytes());
        let features = features.map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{e}")))?;
        let d = policy.route(&features, &CallerContext::default()).unwrap();
        for (header, value) in d.headers() {
            proptest::prop_assert!(
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() || b == b'@'),
                "{header}: {value:?}"
            );
        }
    }
}

#[test]
fn names_that_cannot_be_headers_are_rejected_where_they_are_written() {
    let text = named_policy("ops\r\nX-Injected: 1", "gpt\n4", "flux fast");
    let diagnostics = CompiledPolicy::validate(&text, "p.toml");
    let invalid: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d.kind == fluxroute::DiagnosticKind::InvalidName)
        .map(|d| d.path.as_str())
        .collect();
    assert!(invalid.contains(&"policy.name"), "{diagnostics:?}");
    assert!(invalid.contains(&"models[0].id"), "{diagnostics:?}");
    assert!(invalid.contains(&"tiers[0].alias"), "{diagnostics:?}");
    let name = diagnostics
        .iter()
        .find(|d| d.path == "policy.name")
        .unwrap();
    assert_eq!((name.line, name.column), (2, 8));
    assert!(
        CompiledPolicy::from_toml(&named_policy("ops", "gpt-4", "flux-fast"), "p.toml").is_ok()
    );
}

fn tenants_policy(unknown: &str) -> CompiledPolicy {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/tenants.toml"
    ))
    .unwrap()
    .replace("unknown_tenants = \"allow\"", unknown);
    CompiledPolicy::from_toml(&text, "tenants.toml")
        .unwrap()
        .policy
}

const HELLO: &[u8] =
    br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}"#;

fn route_as(
    policy: &CompiledPolicy,
    tenant: Option<&str>,
    body: &[u8],
) -> Result<String, ErrorCode> {
    let ctx = CallerContext {
        tenant,
        ..CallerContext::default()
    };
    policy
        .route_body(body, &ctx)
        .map(|d| d.model().to_owned())
        .map_err(|e| e.code())
}

#[test]
fn a_denying_policy_serves_only_the_tenants_it_declares_by_their_exact_names() {
    let deny = tenants_policy("unknown_tenants = \"deny\"");
    let trial = route_as(&deny, Some("trial"), HELLO).unwrap();
    assert!(["gemini-2.5-flash-lite", "mistral-small-latest"].contains(&trial.as_str()));
    for tenant in [
        None,
        Some(""),
        Some("Trial"),
        Some("trial "),
        Some(" trial"),
        Some("free"),
    ] {
        assert_eq!(
            route_as(&deny, tenant, HELLO),
            Err(ErrorCode::ModelNotAllowed),
            "{tenant:?}"
        );
    }
    // The rejection quotes a bounded part of the name the host passed on.
    let huge = "t".repeat(1 << 20);
    let ctx = CallerContext {
        tenant: Some(&huge),
        ..CallerContext::default()
    };
    let err = deny.route_body(HELLO, &ctx).unwrap_err();
    assert!(err.message().len() < 1024, "{}", err.message().len());
    // Under "allow", the same names are unrestricted: they reach models trial may not use.
    let allow = tenants_policy("unknown_tenants = \"allow\"");
    let pinned = br#"{"model": "flux-pinned-gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}"#;
    assert_eq!(
        route_as(&allow, Some("trial"), pinned),
        Err(ErrorCode::ModelNotAllowed)
    );
    assert_eq!(
        route_as(&allow, Some("Trial"), pinned).as_deref(),
        Ok("gpt-4o-mini")
    );
    assert_eq!(
        route_as(&allow, Some(""), pinned).as_deref(),
        Ok("gpt-4o-mini")
    );
    // Deny is part of the policy's meaning: it changes the fingerprint.
    assert_ne!(deny.fingerprint(), allow.fingerprint());
}

#[test]
fn declared_tenants_without_a_stance_on_others_warn_and_rules_name_only_declared_ones() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/tenants.toml"
    ))
    .unwrap();
    let implicit = text.replace("unknown_tenants = \"allow\"\n", "");
    let warnings = CompiledPolicy::from_toml(&implicit, "t.toml")
        .unwrap()
        .warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].kind.as_str(), "open_tenants");
    assert!(
        CompiledPolicy::from_toml(&text, "t.toml")
            .unwrap()
            .warnings
            .is_empty()
    );
    // A rule naming a tenant that is not declared (here misspelled) is an error, located.
    let misspelled = text.replace("tenants = [\"enterprise\"]", "tenants = [\"enterprize\"]");
    let err = CompiledPolicy::from_toml(&misspelled, "t.toml").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(
        (d.kind.as_str(), d.path.as_str()),
        ("unknown_name", "rules[0].tenants[0]")
    );
    assert!(d.message.contains("enterprize"), "{}", d.message);
}

#[test]
fn a_tenant_lists_only_what_it_may_use() {
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let deny = tenants_policy("unknown_tenants = \"deny\"");
    let trial = deny.models_for(Some("trial"));
    assert_eq!(ids(&trial), ["flux-auto"]);
    assert_eq!(
        trial["data"][0]["flux"]["models"],
        serde_json::json!(["gemini-2.5-flash-lite", "mistral-small-latest"])
    );
    let startup = ids(&deny.models_for(Some("startup")));
    assert!(
        startup.contains(&"flux-fast".to_owned()) && !startup.contains(&"flux-strong".to_owned())
    );
    assert!(ids(&deny.models_for(Some("stranger"))).is_empty());
    assert!(ids(&deny.models_for(None)).is_empty());
    // Under "allow", an undeclared tenant sees the whole listing.
    let allow = tenants_policy("unknown_tenants = \"allow\"");
    assert_eq!(allow.models_for(Some("stranger")), allow.list_models());
    // Every name a tenant is shown, it may request.
    for name in ids(&deny.models_for(Some("startup"))) {
        let body =
            format!(r#"{{"model": "{name}", "messages": [{{"role": "user", "content": "hi"}}]}}"#);
        assert_ne!(
            route_as(&deny, Some("startup"), body.as_bytes()),
            Err(ErrorCode::ModelNotAllowed),
            "{name}"
        );
    }
}

/// Bodies whose keys repeat, and whether a key classification reads is among the repeats.
fn repeated_key_bodies() -> Vec<(String, bool)> {
    let m = r#"[{"role": "user", "content": "hi"}]"#;
    let big = r#"[{"role": "user", "content": "Prove step by step that there are infinitely many primes."}]"#;
    vec![
        (format!(r#"{{"model": "flux-auto", "messages": {m}, "messages": {big}}}"#), true),
        (format!(r#"{{"model": "flux-auto", "model": "flux-pinned-o3", "messages": {m}}}"#), true),
        (
            format!(
                r#"{{"model": "flux-auto", "tools": [{{"type": "function", "function": {{"name": "f"}}}}], "tools": [], "messages": {m}}}"#
            ),
            true,
        ),
        (
            format!(
                r#"{{"model": "flux-auto", "response_format": {{"type": "json_object", "type": "text"}}, "messages": {m}}}"#
            ),
            true,
        ),
        (format!(r#"{{"model": "flux-auto", "max_tokens": 10, "max_tokens": 900000, "messages": {m}}}"#), true),
        (
            r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "a", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}"#.to_owned(),
            true,
        ),
        (
            r#"{"model": "flux-auto", "messages": [{"role": "user", "role": "system", "content": "a"}]}"#.to_owned(),
            true,
        ),
        (
            r#"{"model": "flux-auto", "messages": [{"role": "user", "content": [{"type": "text", "text": "a", "text": "b"}]}]}"#.to_owned(),
            true,
        ),
        // Repeats of keys classification does not read change nothing it reads.
        (format!(r#"{{"model": "flux-auto", "temperature": 0.1, "temperature": 1.5, "messages": {m}}}"#), false),
        (
            format!(r#"{{"model": "flux-auto", "metadata": {{"a": 1, "a": 2}}, "messages": {big}}}"#),
            false,
        ),
    ]
}

#[test]
fn a_repeated_key_the_engine_reads_is_refused_as_invalid_json() {
    let policy = CompiledPolicy::embedded();
    for (body, refused) in repeated_key_bodies() {
        let got = policy.classify(body.as_bytes());
        if refused {
            let e = got.unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidJson, "{body}");
            assert!(e.message().contains("more than once"), "{e}");
        } else {
            // What Python, JavaScript, Go and serde_json read: the last copy of each key.
            let last: serde_json::Value = serde_json::from_str(&body).unwrap();
            let expected = policy.classify(last.to_string().as_bytes()).unwrap();
            assert_eq!(got.unwrap(), expected, "{body}");
        }
    }
}

/// The same against Python's own `json` module, where a Python 3 is on the machine.
#[test]
fn bodies_the_engine_accepts_read_as_python_reads_them() {
    let Ok(out) = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys\nfor line in sys.stdin:\n    print(json.dumps(json.loads(line)))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            for (body, _) in repeated_key_bodies() {
                writeln!(input, "{body}")?;
            }
            drop(input);
            child.wait_with_output()
        })
    else {
        println!("skipped: no python3 on this machine");
        return;
    };
    let python: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let policy = CompiledPolicy::embedded();
    assert_eq!(python.len(), repeated_key_bodies().len());
    for ((body, refused), read) in repeated_key_bodies().into_iter().zip(python) {
        let ours = policy.classify(body.as_bytes());
        let theirs = policy.classify(read.as_bytes()).unwrap();
        match ours {
            // Refused: Python would have read one copy and dropped the other.
            Err(e) => assert!(refused && e.code() == ErrorCode::InvalidJson, "{body}"),
            Ok(f) => assert_eq!(f, theirs, "{body}"),
        }
    }
}

#[test]
fn a_restricting_rule_never_lets_other_models_serve() {
    let policy = tenants_policy("unknown_tenants = \"deny\"");
    let eu = ["mistral-small-latest", "mistral-large-latest"];
    let route = |body: &[u8], unavailable: &[&str]| {
        let ctx = CallerContext {
            tenant: Some("enterprise"),
            tags: &["eu-only"],
            unavailable,
        };
        policy.route_body(body, &ctx).map(|d| {
            let fallbacks: Vec<String> = d.fallbacks().map(str::to_owned).collect();
            (d.model().to_owned(), d.rule().map(str::to_owned), fallbacks)
        })
    };
    let (model, rule, fallbacks) = route(HELLO, &[]).unwrap();
    assert_eq!(rule.as_deref(), Some("eu-only"));
    assert!(eu.contains(&model.as_str()));
    assert!(
        fallbacks.iter().all(|f| eu.contains(&f.as_str())),
        "{fallbacks:?}"
    );
    // Both regulated models down: an error naming the rule, not a silent trip elsewhere.
    let err = route(HELLO, &eu).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ModelUnavailable);
    assert!(err.message().contains("rule `eu-only`"), "{err}");
    // A capability neither has (audio input): no_eligible_model, naming the rule.
    let audio = br#"{"model": "flux-auto", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]}"#;
    let err = route(audio, &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoEligibleModel);
    assert!(err.message().contains("rule `eu-only`"), "{err}");
    // Without the tag the rule does not match, and other models serve as before.
    let ctx = CallerContext {
        tenant: Some("enterprise"),
        ..CallerContext::default()
    };
    assert!(policy.route_body(audio, &ctx).is_ok());
    // The same rule without `restrict` only prefers: with its models down, others serve.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/tenants.toml"
    ))
    .unwrap()
    .replace("restrict = true", "restrict = false");
    let preferring = CompiledPolicy::from_toml(&text, "t.toml").unwrap().policy;
    assert_ne!(preferring.fingerprint(), policy.fingerprint());
    let ctx = CallerContext {
        tenant: Some("enterprise"),
        tags: &["eu-only"],
        unavailable: &eu,
    };
    let served = preferring.route_body(HELLO, &ctx).unwrap();
    assert!(!eu.contains(&served.model()));
}

/// A two-tier policy: `fast` holds `a` (prices `fast_prices`), `strong` holds `b` and, when
/// given, a third model `extra`.
fn two_tiers(
    fast_prices: (f64, f64),
    strong_prices: (f64, f64),
    extra: Option<&str>,
    classifier: bool,
) -> String {
    let model = |id: &str, tier: &str, (i, o): (f64, f64)| {
        format!(
            "[[models]]\nid = \"{id}\"\nprovider = \"p\"\ntier = \"{tier}\"\ncontext_window = 100000\nmax_output_tokens = 1000\ninput_per_mtok = {i:?}\noutput_per_mtok = {o:?}\n"
        )
    };
    let mut s = String::from(
        "[policy]\nname = \"advice\"\n[[tiers]]\nname = \"fast\"\nalias = \"flux-fast\"\n[[tiers]]\nname = \"strong\"\nalias = \"flux-strong\"\n[auto]\nsimple = \"fast\"\nstandard = \"fast\"\ncomplex = \"strong\"\nreasoning = \"strong\"\n",
    );
    s += &model("a", "fast", fast_prices);
    s += &model("b", "strong", strong_prices);
    if let Some(id) = extra {
        s += &model(id, "strong", strong_prices);
    }
    s += "[pinned]\n\"flux-pinned-a\" = \"a\"\n\"flux-pinned-b\" = \"b\"\n";
    if let Some(id) = extra {
        s += &format!("\"flux-pinned-x\" = \"{id}\"\n");
    }
    if classifier {
        s += "[classifier]\nthresholds = { standard = 0.25, complex = 0.5, reasoning = 0.75 }\nlength = { weight = 0.6, saturation = 2000 }\ndepth = { weight = 0.25, saturation = 12 }\ntools = { weight = 0.15 }\n";
    }
    s
}

fn warning_kinds(text: &str) -> Vec<(String, String)> {
    CompiledPolicy::from_toml(text, "advice.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .warnings
        .iter()
        .map(|d| (d.kind.as_str().to_owned(), d.path.clone()))
        .collect()
}

#[test]
fn likely_authoring_mistakes_are_warned_about_where_they_are_written() {
    // A sound policy: no warnings.
    assert_eq!(
        warning_kinds(&two_tiers((0.15, 0.6), (3.0, 15.0), None, true)),
        []
    );
    // Without [classifier].
    assert_eq!(
        warning_kinds(&two_tiers((0.15, 0.6), (3.0, 15.0), None, false)),
        [("missing_classifier".to_owned(), "classifier".to_owned())]
    );
    // LiteLLM's per-token prices pasted as per-million prices; zero (free) is fine.
    assert_eq!(
        warning_kinds(&two_tiers((0.00000015, 0.0), (3.0, 15.0), None, true)),
        [(
            "price_unit".to_owned(),
            "models[0].input_per_mtok".to_owned()
        )]
    );
    // The weak tier's cheapest model costs more than the strong tier's dearest.
    assert_eq!(
        warning_kinds(&two_tiers((5.0, 20.0), (0.15, 0.6), None, true)),
        [("tier_prices".to_owned(), "tiers[0]".to_owned())]
    );
    // The same model with and without its provider prefix.
    assert_eq!(
        warning_kinds(&two_tiers((0.15, 0.6), (3.0, 15.0), Some("openai/b"), true)),
        [("provider_prefix".to_owned(), "models[2].id".to_owned())]
    );
    // Warnings never keep a policy from loading, and `--deny-warnings` is the CLI's to apply.
    assert!(
        CompiledPolicy::from_toml(&two_tiers((5.0, 20.0), (0.15, 0.6), None, false), "a.toml")
            .is_ok()
    );
}

#[test]
fn a_pattern_whose_automaton_keeps_growing_is_warned_about() {
    let base = two_tiers((0.15, 0.6), (3.0, 15.0), None, true);
    let with = |pattern: &str| {
        format!("{base}[[rules]]\nname = \"r\"\npattern = '{pattern}'\nmodels = [\"a\"]\n")
    };
    assert_eq!(
        warning_kinds(&with(r"(?-u:\w){0,300}X(?-u:\w){300}")),
        [("slow_pattern".to_owned(), "rules[0].pattern".to_owned())]
    );
    // Small counts and unbounded repetitions are fine.
    assert_eq!(warning_kinds(&with(r"(?-u:\w){2,8}ing(?-u:\b)")), []);
    assert_eq!(warning_kinds(&with(r"(?-u:\w)+X")), []);
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxroute-safety-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn io_message(path: &std::path::Path) -> String {
    let err = CompiledPolicy::from_file(path).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.kind.as_str(), "io", "{err}");
    d.message.clone()
}

#[test]
fn policy_files_are_regular_files_of_bounded_size() {
    assert!(io_message(std::path::Path::new("/dev/zero")).contains("not a regular file"));
    let dir = temp_dir("bounded");
    // A FIFO would block the reader until a writer came: it is refused without opening it.
    let fifo = dir.join("policy.fifo");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(io_message(&fifo).contains("not a regular file"));
    } else {
        println!("skipped the FIFO case: no mkfifo");
    }
    let big = dir.join("big.toml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(17 << 20))).unwrap();
    assert!(io_message(&big).contains("limit"), "{}", io_message(&big));
    let huge = format!("# {}\n", "x".repeat(17 << 20));
    assert!(CompiledPolicy::from_toml(&huge, "huge.toml").is_err());
}

#[test]
fn a_catalog_must_lie_beside_its_policy_unless_the_caller_allows_otherwise() {
    let root = temp_dir("catalogs");
    let inner = root.join("policies");
    std::fs::create_dir_all(&inner).unwrap();
    let catalog = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/catalogs/frontier.toml"
    ))
    .unwrap();
    std::fs::write(root.join("outside.toml"), &catalog).unwrap();
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/with-catalog.toml"
    ))
    .unwrap();
    let outside = inner.join("outside.toml");
    std::fs::write(
        &outside,
        policy.replace("catalogs/frontier.toml", "../outside.toml"),
    )
    .unwrap();
    let message = io_message(&outside);
    assert!(
        message.contains("outside the policy's directory"),
        "{message}"
    );
    // The same through an absolute path to a system file: refused before it is read, so
    // nothing of it is quoted.
    let passwd = inner.join("passwd.toml");
    std::fs::write(
        &passwd,
        policy.replace("catalogs/frontier.toml", "/etc/passwd"),
    )
    .unwrap();
    assert!(!io_message(&passwd).contains("root"));
    // The caller may allow it.
    let mut options = fluxroute::LoadOptions::default();
    options.catalog_anywhere = true;
    assert!(CompiledPolicy::from_file_with(&outside, options).is_ok());
}

#[test]
fn rules_and_their_lists_are_bounded() {
    let base = two_tiers((0.15, 0.6), (3.0, 15.0), None, true);
    let tags: Vec<String> = (0..65).map(|i| format!("\"t{i}\"")).collect();
    let text = format!(
        "{base}[[rules]]\nname = \"r\"\ntags = [{}]\nmodels = [\"a\"]\n",
        tags.join(", ")
    );
    let err = CompiledPolicy::from_toml(&text, "p.toml").unwrap_err();
    assert!(
        err.diagnostics().iter().any(|d| d.path == "rules[0].tags"),
        "{err}"
    );
    let mut many = base.clone();
    for i in 0..1025 {
        many += &format!("[[rules]]\nname = \"r{i}\"\nmin_prompt_tokens = {i}\nmodels = [\"a\"]\n");
    }
    let err = CompiledPolicy::from_toml(&many, "p.toml").unwrap_err();
    assert!(
        err.diagnostics()
            .iter()
            .any(|d| d.path == "rules" && d.message.contains("at most 1024")),
        "{err}"
    );
}
