//! Data-driven cases: `tests/cases/*.toml`, each a request (a body, or features set by hand)
//! with caller context, and the decision or error it must produce.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use fluxroute::{
    Api, CallerContext, Capability, CompiledPolicy, Complexity, ErrorCode, RequestFeatures,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: String,
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The request API of `body` (default `chat`).
    api: Option<String>,
    body: Option<String>,
    fill: Option<Fill>,
    features: Option<Features>,
    tenant: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    unavailable: Vec<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fill {
    text: String,
    times: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Features {
    model: String,
    #[serde(default)]
    prompt_tokens: u32,
    max_output_tokens: Option<u32>,
    #[serde(default)]
    capabilities: Vec<Capability>,
    complexity: Option<Complexity>,
    #[serde(default)]
    key: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    model: Option<String>,
    model_in: Option<Vec<String>>,
    mode: Option<String>,
    routed: Option<bool>,
    tier: Option<String>,
    /// `""` means no rule (pinned, passthrough, redirect).
    rule: Option<String>,
    fallbacks: Option<Vec<String>>,
    capabilities: Option<Vec<String>>,
    complexity: Option<String>,
    max_output_tokens: Option<u32>,
    min_prompt_tokens: Option<u32>,
    max_prompt_tokens: Option<u32>,
    cost: Option<f64>,
    error: Option<String>,
    status: Option<u16>,
    param: Option<String>,
    message_contains: Option<String>,
}

/// What every case of every file covered, to check the table covers the contract.
#[derive(Default)]
struct Coverage {
    errors: BTreeSet<String>,
    modes: BTreeSet<String>,
    capabilities: BTreeSet<String>,
    /// Per API, whether a case decided and whether one was rejected.
    apis: BTreeSet<(String, bool)>,
}

fn run_case(policy: &CompiledPolicy, case: &Case, seen: &mut Coverage) -> Result<(), String> {
    let tags: Vec<&str> = case.tags.iter().map(String::as_str).collect();
    let unavailable: Vec<&str> = case.unavailable.iter().map(String::as_str).collect();
    let ctx = CallerContext {
        tenant: case.tenant.as_deref(),
        tags: &tags,
        unavailable: &unavailable,
    };
    let api: Api = match &case.api {
        Some(name) => name.parse().map_err(|e| format!("{e}"))?,
        None => Api::Chat,
    };
    let mut body_text = None;
    let features = match (&case.body, &case.features) {
        (Some(body), None) => {
            let body = match &case.fill {
                Some(f) => body.replace("@FILL@", &f.text.repeat(f.times)),
                None => body.clone(),
            };
            let f = policy.classify_as(api, body.as_bytes());
            body_text = Some(body);
            f
        }
        (None, Some(f)) => {
            let target = policy
                .resolve(&f.model)
                .ok_or(format!("case names unknown model {}", f.model))?;
            let mut features = RequestFeatures::new(target);
            features.prompt_tokens = f.prompt_tokens;
            features.max_output_tokens = f.max_output_tokens;
            features.capabilities = f.capabilities.iter().copied().collect();
            features.complexity = f.complexity.unwrap_or(Complexity::Simple);
            features.key = f.key;
            Ok(features)
        }
        _ => return Err("a case needs exactly one of `body` and `features`".into()),
    };
    let outcome = features.and_then(|f| policy.route(&f, &ctx).map(|d| (f, d)));
    if body_text.is_some() {
        seen.apis.insert((api.as_str().to_owned(), outcome.is_ok()));
    }
    if let (Ok((_, d)), Some(body)) = (&outcome, &body_text) {
        check_forward(d, body)?;
    }
    let e = &case.expect;
    match (outcome, &e.error) {
        (Err(err), Some(code)) => {
            seen.errors.insert(err.code().as_str().to_owned());
            check("error", code.as_str(), err.code().as_str())?;
            if let Some(status) = e.status {
                check("status", status, err.status())?;
            }
            if let Some(param) = &e.param {
                check("param", Some(param.as_str()), err.param())?;
            }
            if let Some(part) = &e.message_contains
                && !err.message().contains(part.as_str())
            {
                return Err(format!("message {:?} lacks {part:?}", err.message()));
            }
            let body = err.body();
            check(
                "body.code",
                code.as_str(),
                body["error"]["code"].as_str().unwrap_or(""),
            )?;
            Ok(())
        }
        (Err(err), None) => Err(format!("expected a decision, got {err}")),
        (Ok((_, d)), Some(code)) => Err(format!("expected error {code}, got model {}", d.model())),
        (Ok((f, d)), None) => {
            seen.modes.insert(d.mode().as_str().to_owned());
            seen.capabilities
                .extend(f.capabilities.names().into_iter().map(str::to_owned));
            if let Some(m) = &e.model {
                check("model", m.as_str(), d.model())?;
            }
            if let Some(ms) = &e.model_in
                && !ms.iter().any(|m| m == d.model())
            {
                return Err(format!("model {} not in {ms:?}", d.model()));
            }
            if let Some(mode) = &e.mode {
                check("mode", mode.as_str(), d.mode().as_str())?;
            }
            if let Some(routed) = e.routed {
                check("routed", routed, d.routed())?;
            }
            if let Some(tier) = &e.tier {
                check("tier", tier.as_str(), d.tier())?;
            }
            if let Some(rule) = &e.rule {
                check("rule", rule.as_str(), d.rule().unwrap_or(""))?;
            }
            if let Some(fallbacks) = &e.fallbacks {
                check(
                    "fallbacks",
                    fallbacks.clone(),
                    d.fallbacks().map(str::to_owned).collect::<Vec<_>>(),
                )?;
            }
            if let Some(caps) = &e.capabilities {
                check(
                    "capabilities",
                    caps.clone(),
                    f.capabilities
                        .names()
                        .into_iter()
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )?;
            }
            if let Some(c) = &e.complexity {
                check("complexity", c.as_str(), f.complexity.as_str())?;
            }
            if let Some(n) = e.max_output_tokens {
                check("max_output_tokens", Some(n), f.max_output_tokens)?;
            }
            if let Some(n) = e.min_prompt_tokens
                && f.prompt_tokens < n
            {
                return Err(format!("prompt_tokens {} below {n}", f.prompt_tokens));
            }
            if let Some(n) = e.max_prompt_tokens
                && f.prompt_tokens > n
            {
                return Err(format!("prompt_tokens {} above {n}", f.prompt_tokens));
            }
            if let Some(cost) = e.cost
                && (cost - d.estimated_cost_usd()).abs() > 1e-12
            {
                return Err(format!(
                    "cost: expected {cost}, got {}",
                    d.estimated_cost_usd()
                ));
            }
            // The headers say what the case expects, and name the policy that decided.
            let h = d.headers();
            if let Some(m) = &e.model {
                check("X-Flux-Model", m.as_str(), h[0].1)?;
            }
            if let Some(routed) = e.routed {
                check(
                    "X-Flux-Routed",
                    if routed { "true" } else { "false" },
                    h[1].1,
                )?;
            }
            let policy = d.policy();
            check(
                "X-Flux-Policy",
                format!("{}@{}", policy.name(), policy.fingerprint()).as_str(),
                h[2].1,
            )?;
            Ok(())
        }
    }
}

/// The forwarded body of every decided case (and of each fallback) is the case's JSON with
/// only `model` replaced.
fn check_forward(d: &fluxroute::Decision<'_>, body: &str) -> Result<(), String> {
    let original: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("case body is not JSON: {e}"))?;
    let mut out = Vec::new();
    for model in d.candidates() {
        d.forward_to(model, body.as_bytes(), &mut out)
            .map_err(|e| format!("forward: {e}"))?;
        let forwarded: serde_json::Value =
            serde_json::from_slice(&out).map_err(|e| format!("forwarded body: {e}"))?;
        let mut expected = original.clone();
        expected["model"] = model.into();
        check("forwarded body", &expected, &forwarded)?;
    }
    Ok(())
}

fn check<T: PartialEq + std::fmt::Debug>(what: &str, expected: T, got: T) -> Result<(), String> {
    if expected == got {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {got:?}"))
    }
}

#[test]
fn case_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    let mut seen = Coverage::default();
    let mut count = 0;
    let mut paths: Vec<_> = fs::read_dir(root.join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 2, "case files are missing");
    for path in paths {
        let file: File = toml::from_str(&fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let policy = CompiledPolicy::from_file(&root.join(&file.policy))
            .unwrap()
            .policy;
        for case in &file.case {
            count += 1;
            if let Err(why) = run_case(&policy, case, &mut seen) {
                failures.push(format!("{} / {}: {why}", path.display(), case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The table covers every error code, every mode and every capability.
    let codes: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(seen.errors, codes, "error codes without a case");
    let modes: BTreeSet<String> = ["auto", "tier", "pinned", "passthrough", "redirect"]
        .map(String::from)
        .into();
    assert_eq!(seen.modes, modes, "modes without a case");
    let caps: BTreeSet<String> = Capability::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(seen.capabilities, caps, "capabilities without a case");
    let apis: BTreeSet<(String, bool)> = Api::ALL
        .iter()
        .flat_map(|a| {
            [
                (a.as_str().to_owned(), false),
                (a.as_str().to_owned(), true),
            ]
        })
        .collect();
    assert_eq!(
        seen.apis, apis,
        "request APIs without a decided and a rejected case"
    );
    println!("{count} cases passed");
}
