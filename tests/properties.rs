//! Properties of the public API over generated requests, contexts and bodies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "support/json.rs"]
mod json;
use json::escape_letters;

use fluxroute::{
    CallerContext, Capability, CapabilitySet, CompiledPolicy, Complexity, ErrorCode, Mode,
    RequestFeatures, RouteError,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::LazyLock;

static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(CompiledPolicy::embedded);

/// A second compilation of the same text: compiling must be deterministic, down to indices.
static COPY: LazyLock<CompiledPolicy> = LazyLock::new(|| {
    CompiledPolicy::from_toml(fluxroute::EMBEDDED_POLICY, "copy.toml")
        .unwrap()
        .policy
});

/// Facts of one backing model, read from the public `/v1/models` body.
struct Facts {
    id: String,
    context_window: u64,
    max_output_tokens: u64,
    capabilities: Vec<String>,
}

static FACTS: LazyLock<Vec<Facts>> = LazyLock::new(|| {
    let models = POLICY.list_models();
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["flux"]["kind"] == "pinned")
        .map(|e| Facts {
            id: e["flux"]["model"].as_str().unwrap().to_owned(),
            context_window: e["flux"]["context_window"].as_u64().unwrap(),
            max_output_tokens: e["flux"]["max_output_tokens"].as_u64().unwrap(),
            capabilities: e["flux"]["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect(),
        })
        .collect()
});

fn facts(id: &str) -> &'static Facts {
    FACTS.iter().find(|f| f.id == id).unwrap()
}

/// The default policy's fitting parameters (policies/default.toml `[limits]`).
const MARGIN: f64 = 0.05;
const RESERVE: u64 = 4096;
/// The default policy's `free` tenant and the models it may be served by.
const FREE_MODELS: [&str; 4] = [
    "gpt-4.1-nano",
    "gpt-4o-mini",
    "gemini-2.5-flash-lite",
    "deepseek-chat",
];

#[derive(Debug, Clone)]
struct Input {
    name: String,
    prompt_tokens: u32,
    max_output_tokens: Option<u32>,
    capabilities: u16,
    complexity: Complexity,
    score: f32,
    key: u64,
    tenant: Option<&'static str>,
    unavailable: Vec<String>,
}

impl Input {
    fn features(&self) -> RequestFeatures {
        let mut f = RequestFeatures::new(POLICY.resolve(&self.name).unwrap());
        f.prompt_tokens = self.prompt_tokens;
        f.max_output_tokens = self.max_output_tokens;
        f.capabilities = caps(self.capabilities);
        f.complexity = self.complexity;
        f.complexity_score = self.score;
        f.key = self.key;
        f
    }
}

fn caps(bits: u16) -> CapabilitySet {
    Capability::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect()
}

fn input() -> impl Strategy<Value = Input> {
    let names: Vec<String> = POLICY.names().into_iter().map(str::to_owned).collect();
    let ids: Vec<String> = POLICY.model_ids().map(str::to_owned).collect();
    let n = ids.len();
    (
        prop::sample::select(names),
        prop_oneof![0u32..5_000, 0u32..2_000_000, boundary_prompt()],
        prop::option::of(prop_oneof![1u32..5_000, 1u32..300_000, boundary_output()]),
        // Mostly few capabilities, sometimes many.
        prop_oneof![
            Just(0u16),
            0u16..1 << Capability::COUNT,
            (0..Capability::COUNT).prop_map(|i| 1u16 << i)
        ],
        prop::sample::select(Complexity::ALL.to_vec()),
        0f32..=1.0,
        any::<u64>(),
        prop::sample::select(vec![
            None,
            Some("free"),
            Some("internal-evals"),
            Some("nobody"),
        ]),
        prop::collection::vec(any::<bool>(), n).prop_map(move |mask| {
            ids.iter()
                .zip(mask)
                .filter(|(_, m)| *m)
                .map(|(i, _)| i.clone())
                .take(6)
                .collect()
        }),
    )
        .prop_map(
            |(
                name,
                prompt_tokens,
                max_output_tokens,
                capabilities,
                complexity,
                score,
                key,
                tenant,
                unavailable,
            )| Input {
                name,
                prompt_tokens,
                max_output_tokens,
                capabilities,
                complexity,
                score,
                key,
                tenant,
                unavailable,
            },
        )
}

/// Output lengths at and just past some model's limit.
fn boundary_output() -> impl Strategy<Value = u32> {
    (
        prop::sample::select(
            FACTS
                .iter()
                .map(|f| f.max_output_tokens as u32)
                .collect::<Vec<_>>(),
        ),
        0u32..2,
    )
        .prop_map(|(n, d)| n + d)
}

/// Prompt lengths within a few tokens of where some model's window (with margin and the
/// default reserve) runs out.
fn boundary_prompt() -> impl Strategy<Value = u32> {
    (
        prop::sample::select(
            FACTS
                .iter()
                .map(|f| (f.context_window, f.max_output_tokens))
                .collect::<Vec<_>>(),
        ),
        0u64..6,
    )
        .prop_map(|((window, max_out), d)| {
            let room = window - RESERVE.min(max_out);
            (room * 20 / 21 + d).saturating_sub(3) as u32
        })
}

type Outcome = Result<(String, Vec<String>, bool, Mode), ErrorCode>;

fn outcome(input: &Input) -> Outcome {
    outcome_under(&POLICY, input)
}

fn outcome_under(policy: &CompiledPolicy, input: &Input) -> Outcome {
    let unavailable: Vec<&str> = input.unavailable.iter().map(String::as_str).collect();
    let ctx = CallerContext {
        tenant: input.tenant,
        tags: &[],
        unavailable: &unavailable,
    };
    policy
        .route(&input.features(), &ctx)
        .map(|d| {
            (
                d.model().to_owned(),
                d.fallbacks().map(str::to_owned).collect(),
                d.routed(),
                d.mode(),
            )
        })
        .map_err(|e| e.code())
}

fn fits(f: &Facts, input: &Input) -> bool {
    let p = u64::from(input.prompt_tokens);
    let margin = (p as f64 * MARGIN).ceil() as u64;
    let out = input
        .max_output_tokens
        .map_or(RESERVE.min(f.max_output_tokens), u64::from);
    p + margin + out <= f.context_window
        && input
            .max_output_tokens
            .is_none_or(|n| u64::from(n) <= f.max_output_tokens)
}

/// Every invariant a served model must satisfy for a request.
fn check_served(input: &Input, model: &str) -> Result<(), TestCaseError> {
    let f = facts(model);
    for cap in caps(input.capabilities).iter() {
        prop_assert!(
            f.capabilities.iter().any(|c| c == cap.as_str()),
            "{model} lacks {cap}"
        );
    }
    prop_assert!(fits(f, input), "{model} cannot fit {input:?}");
    prop_assert!(
        !input.unavailable.iter().any(|u| u == model),
        "{model} is unavailable"
    );
    if input.tenant == Some("free") {
        prop_assert!(
            FREE_MODELS.contains(&model),
            "tenant free may not use {model}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decisions_do_not_depend_on_the_compiled_copy_or_the_thread(input in input()) {
        let there = std::thread::scope(|s| s.spawn(|| outcome_under(&COPY, &input)).join().unwrap());
        prop_assert_eq!(outcome(&input), there);
    }

    #[test]
    fn every_served_model_can_serve_the_request(input in input()) {
        if let Ok((model, fallbacks, _, mode)) = outcome(&input) {
            check_served(&input, &model)?;
            for fb in &fallbacks {
                check_served(&input, fb)?;
                prop_assert_ne!(fb, &model);
            }
            if !matches!(mode, Mode::Auto | Mode::Tier) {
                prop_assert!(fallbacks.is_empty(), "{mode:?} never falls back");
            }
        }
    }

    #[test]
    fn pinned_is_exactly_its_model_or_an_error(input in input(), i in any::<prop::sample::Index>()) {
        let pinned: Vec<&str> = POLICY.names().into_iter().filter(|n| n.starts_with("flux-pinned-")).collect();
        let name = pinned[i.index(pinned.len())];
        let input = Input { name: name.to_owned(), ..input };
        let backing = POLICY.list_models()["data"].as_array().unwrap().iter()
            .find(|e| e["id"] == name).unwrap()["flux"]["model"].as_str().unwrap().to_owned();
        match outcome(&input) {
            Ok((model, fallbacks, routed, mode)) => {
                prop_assert_eq!(model, backing);
                prop_assert!(!routed);
                prop_assert_eq!(mode, Mode::Pinned);
                prop_assert!(fallbacks.is_empty());
            }
            Err(code) => prop_assert!(code != ErrorCode::NoEligibleModel, "pinned errors name the model's own limit"),
        }
    }

    #[test]
    fn auto_serves_whenever_some_model_could(input in input()) {
        let input = Input { name: "flux-auto".into(), tenant: None, ..input };
        let someone_can = FACTS.iter().any(|f| {
            caps(input.capabilities).iter().all(|c| f.capabilities.iter().any(|x| x == c.as_str()))
                && fits(f, &input)
                && !input.unavailable.contains(&f.id)
        });
        prop_assert_eq!(outcome(&input).is_ok(), someone_can);
    }

    #[test]
    fn adding_a_requirement_never_yields_a_model_lacking_it(input in input(), extra in 0..Capability::COUNT) {
        let cap = Capability::ALL[extra];
        let more = Input { capabilities: input.capabilities | (1 << extra), ..input };
        if let Ok((model, ..)) = outcome(&more) {
            prop_assert!(facts(&model).capabilities.iter().any(|c| c == cap.as_str()), "{model} lacks {cap}");
        }
    }

    #[test]
    fn classification_of_arbitrary_json_never_panics(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        classify_and_route(&body)?;
    }

    #[test]
    fn classification_of_request_shaped_json_never_panics(body in request_like()) {
        classify_and_route(&serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn classification_of_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        classify_and_route(&body)?;
    }

    #[test]
    fn classification_does_not_depend_on_the_compiled_copy_or_the_thread(body in request_like()) {
        // A fresh thread starts with cold pattern caches; the copy was compiled separately.
        let bytes = serde_json::to_vec(&body).unwrap();
        let here = POLICY.classify(&bytes).map_err(|e| e.code());
        let there = std::thread::scope(|s| s.spawn(|| COPY.classify(&bytes).map_err(|e| e.code())).join().unwrap());
        prop_assert_eq!(here, there);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Short plain keys and roles are read by a fast path, anything else by the general one:
    /// the same request written compactly, pretty-printed, or with every letter of every key and
    /// string escaped classifies the same, errors included.
    #[test]
    fn classification_does_not_depend_on_how_the_json_is_written(body in request_like()) {
        let compact = POLICY.classify(&serde_json::to_vec(&body).unwrap());
        let pretty = POLICY.classify(&serde_json::to_vec_pretty(&body).unwrap());
        let escaped = POLICY.classify(escape_letters(&body, false).as_bytes());
        let show = |r: &Result<RequestFeatures, RouteError>| match r {
            Ok(f) => format!("{f:?}"),
            Err(e) => format!("{} {e}", e.code()),
        };
        prop_assert_eq!(show(&compact), show(&pretty));
        prop_assert_eq!(show(&compact), show(&escaped));
    }
}

fn classify_and_route(body: &[u8]) -> Result<(), TestCaseError> {
    match POLICY.classify(body) {
        Ok(f) => {
            prop_assert!((0.0..=1.0).contains(&f.complexity_score));
            if let Err(e) = POLICY.route(&f, &CallerContext::default()) {
                prop_assert!(e.status() >= 400);
            }
        }
        Err(e) => {
            // Classification rejects only with its own codes, each with the contract's status.
            let status = match e.code().as_str() {
                "invalid_json" | "invalid_request" => 400,
                "request_too_large" => 413,
                "model_not_found" => 404,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "classify rejected with {other}"
                    )));
                }
            };
            prop_assert_eq!(e.status(), status);
            let body = e.body();
            prop_assert_eq!(body["error"]["code"].as_str(), Some(e.code().as_str()));
            prop_assert!(!e.message().is_empty());
        }
    }
    Ok(())
}

const KEYS: [&str; 24] = [
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "input_audio",
    "file",
    "tools",
    "functions",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "response_format",
    "json_schema",
    "reasoning_effort",
    "reasoning",
    "logprobs",
    "top_logprobs",
    "max_tokens",
    "user",
];
const STRINGS: [&str; 16] = [
    "flux-auto",
    "flux-fast",
    "flux-pinned-gpt-4o",
    "gpt-4o",
    "gpt-4-turbo",
    "user",
    "assistant",
    "system",
    "tool",
    "text",
    "image_url",
    "input_audio",
    "file",
    "json_object",
    "json_schema",
    "prove it step by step",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(STRINGS.to_vec()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..8).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

/// Mostly valid requests with random damage.
fn request_like() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        ".{0,60}".prop_map(|t| json!({"type": "text", "text": t})),
        Just(json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}})),
        Just(json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}})),
        Just(json!({"type": "file", "file": {"file_data": "JVBE"}})),
        json_value(),
    ];
    let content = prop_oneof![
        ".{0,200}".prop_map(Value::from),
        prop::collection::vec(part, 0..4).prop_map(Value::from),
        json_value()
    ];
    let message = (
        prop::sample::select(vec![
            "system",
            "user",
            "assistant",
            "tool",
            "developer",
            "bogus",
        ]),
        content,
    )
        .prop_map(|(role, content)| json!({"role": role, "content": content}));
    (
        prop::sample::select(STRINGS.to_vec()),
        prop::collection::vec(message, 0..6),
        prop::option::of(json_value()),
        prop::option::of(0u64..200_000),
    )
        .prop_map(|(model, messages, extra, max_tokens)| {
            let mut body = json!({"model": model, "messages": messages});
            if let Some(extra) = extra {
                body["tools"] = extra;
            }
            if let Some(n) = max_tokens {
                body["max_tokens"] = json!(n);
            }
            body
        })
}
