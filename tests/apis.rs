//! The three request APIs read the same request the same way, and the forwarded body is the
//! caller's body with only `model` replaced.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "support/json.rs"]
mod json;
use json::escape_letters;

use std::sync::LazyLock;

use fluxroute::{
    Api, CallerContext, CompiledPolicy, ErrorCode, ForwardError, RequestFeatures, Router,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(CompiledPolicy::embedded);

/// One turn of a generated conversation.
#[derive(Debug, Clone)]
enum Turn {
    User {
        text: String,
        image: bool,
    },
    Assistant(String),
    /// An assistant tool call and the tool's result.
    ToolRound {
        name: String,
        args: String,
        result: String,
    },
}

/// A chat request that every API can express.
#[derive(Debug, Clone)]
struct Request {
    model: &'static str,
    system: Option<String>,
    turns: Vec<Turn>,
    tool: Option<(String, String)>,
    schema: bool,
    effort: Option<&'static str>,
    max_tokens: u32,
}

fn words() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "the",
        "proof",
        "of",
        "lemma",
        "Rust",
        "deadlock",
        "café",
        "日本語",
        "x²",
        "step",
        "by",
        "explain",
        "why",
        "\"quoted\"",
        "line\nbreak",
        "tab\there",
        "fn",
        "{}",
        "42",
        "naïve",
        "😀",
        "because",
        "therefore",
        "summarize",
    ]);
    prop::collection::vec(word, 1..60).prop_map(|w| w.join(" "))
}

fn turn() -> impl Strategy<Value = Turn> {
    prop_oneof![
        3 => (words(), prop::bool::weighted(0.2)).prop_map(|(text, image)| Turn::User { text, image }),
        2 => words().prop_map(Turn::Assistant),
        1 => ("[a-z_]{1,12}", words(), words())
            .prop_map(|(name, args, result)| Turn::ToolRound { name, args, result }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(vec![
            "flux-auto",
            "flux-balanced",
            "flux-max",
            "flux-pinned-gpt-4.1",
        ]),
        prop::option::of(words()),
        prop::collection::vec(turn(), 0..6),
        words(),
        prop::option::of(("[a-z_]{1,12}", words())),
        prop::bool::weighted(0.2),
        prop::option::of(prop::sample::select(vec!["low", "high", "none"])),
        1u32..40_000,
    )
        .prop_map(
            |(model, system, mut turns, last, tool, schema, effort, max_tokens)| {
                // Every conversation ends with a user turn.
                turns.push(Turn::User {
                    text: last,
                    image: false,
                });
                Request {
                    model,
                    system,
                    turns,
                    tool,
                    schema,
                    effort,
                    max_tokens,
                }
            },
        )
}

impl Request {
    fn schema() -> Value {
        json!({"type": "object", "properties": {"answer": {"type": "string"}}})
    }

    fn chat(&self) -> Value {
        let mut messages = Vec::new();
        if let Some(s) = &self.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        for (i, t) in self.turns.iter().enumerate() {
            match t {
                Turn::User { text, image: false } => {
                    messages.push(json!({"role": "user", "content": text}))
                }
                Turn::User { text, image: true } => {
                    messages.push(json!({"role": "user", "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}))
                }
                Turn::Assistant(text) => {
                    messages.push(json!({"role": "assistant", "content": text}))
                }
                Turn::ToolRound { name, args, result } => {
                    let id = format!("call_{i}");
                    messages.push(json!({"role": "assistant", "tool_calls": [
                        {"id": id, "type": "function", "function": {"name": name, "arguments": args}}]}));
                    messages.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
                }
            }
        }
        let mut body =
            json!({"model": self.model, "messages": messages, "max_tokens": self.max_tokens});
        if let Some((name, description)) = &self.tool {
            body["tools"] = json!([{"type": "function", "function": {
                "name": name, "description": description, "parameters": Self::schema()}}]);
        }
        if self.schema {
            body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "r", "schema": Self::schema()}});
        }
        if let Some(e) = self.effort {
            body["reasoning_effort"] = json!(e);
        }
        body
    }

    fn responses(&self) -> Value {
        let mut input = Vec::new();
        for (i, t) in self.turns.iter().enumerate() {
            match t {
                Turn::User { text, image: false } => {
                    input.push(json!({"role": "user", "content": text}))
                }
                Turn::User { text, image: true } => {
                    input.push(json!({"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": text},
                    {"type": "input_image", "image_url": "https://example.com/a.png"}]}))
                }
                Turn::Assistant(text) => input
                    .push(json!({"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": text, "annotations": []}]})),
                Turn::ToolRound { name, args, result } => {
                    let id = format!("call_{i}");
                    input.push(json!({"type": "function_call", "call_id": id, "name": name, "arguments": args}));
                    input.push(
                        json!({"type": "function_call_output", "call_id": id, "output": result}),
                    );
                }
            }
        }
        let mut body =
            json!({"model": self.model, "input": input, "max_output_tokens": self.max_tokens});
        if let Some(s) = &self.system {
            body["instructions"] = json!(s);
        }
        if let Some((name, description)) = &self.tool {
            body["tools"] = json!([{"type": "function", "name": name, "description": description,
                "parameters": Self::schema()}]);
        }
        if self.schema {
            body["text"] =
                json!({"format": {"type": "json_schema", "name": "r", "schema": Self::schema()}});
        }
        if let Some(e) = self.effort {
            body["reasoning"] = json!({"effort": e});
        }
        body
    }

    fn messages(&self) -> Value {
        let mut messages = Vec::new();
        for (i, t) in self.turns.iter().enumerate() {
            match t {
                Turn::User { text, image: false } => messages.push(json!({"role": "user", "content": text})),
                Turn::User { text, image: true } => messages.push(json!({"role": "user", "content": [
                    {"type": "text", "text": text},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]})),
                Turn::Assistant(text) => messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": text}]})),
                Turn::ToolRound { name, args, result } => {
                    let id = format!("toolu_{i}");
                    messages.push(json!({"role": "assistant", "content": [
                        {"type": "tool_use", "id": id, "name": name, "input": {"arguments": args}}]}));
                    messages.push(json!({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": id, "content": result}]}));
                }
            }
        }
        let mut body =
            json!({"model": self.model, "messages": messages, "max_tokens": self.max_tokens});
        if let Some(s) = &self.system {
            body["system"] =
                json!([{"type": "text", "text": s, "cache_control": {"type": "ephemeral"}}]);
        }
        if let Some((name, description)) = &self.tool {
            body["tools"] =
                json!([{"name": name, "description": description, "input_schema": Self::schema()}]);
        }
        if self.schema {
            body["output_format"] = json!({"type": "json_schema", "schema": Self::schema()});
        }
        match self.effort {
            Some("none") => body["thinking"] = json!({"type": "disabled"}),
            Some(_) => body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024}),
            None => {}
        }
        body
    }
}

fn classify(api: Api, body: &Value) -> RequestFeatures {
    POLICY
        .classify_as(api, &serde_json::to_vec(body).unwrap())
        .unwrap_or_else(|e| panic!("{api}: {e}\n{body}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A chat request written for the Responses API or for Anthropic Messages reads the same:
    /// capabilities, output length, complexity, message count and pattern matches exactly,
    /// prompt tokens within 5% (3 tokens for the smallest prompts, where tool-call framing
    /// differs by a word or two), and with the same estimate the same model serves it.
    #[test]
    fn the_same_request_reads_the_same_in_every_api(r in request()) {
        let chat = classify(Api::Chat, &r.chat());
        let ctx = CallerContext::default();
        let served = |f: &RequestFeatures| POLICY.route(f, &ctx).map(|d| d.model().to_owned()).map_err(|e| e.code());
        for (api, body) in [(Api::Responses, r.responses()), (Api::Messages, r.messages())] {
            let other = classify(api, &body);
            prop_assert_eq!(other.capabilities, chat.capabilities, "{}", api);
            prop_assert_eq!(other.max_output_tokens, chat.max_output_tokens, "{}", api);
            prop_assert_eq!(other.complexity, chat.complexity, "{}", api);
            prop_assert_eq!(other.messages, chat.messages, "{}", api);
            prop_assert_eq!(other.matched, chat.matched, "{}", api);
            let (a, b) = (f64::from(chat.prompt_tokens), f64::from(other.prompt_tokens));
            prop_assert!((a - b).abs() <= (0.05 * a).max(3.0), "{api}: {a} vs {b} prompt tokens");
            // Every other feature is equal, so with the same estimate the same model serves. (A
            // few tokens more or less can move a request across a price crossing of two models,
            // which is the estimate's business, checked above.)
            let mut aligned = other;
            aligned.prompt_tokens = chat.prompt_tokens;
            prop_assert_eq!(served(&aligned), served(&chat), "{}", api);
            // Unaligned, the API's own estimate is served too (an error only where chat's is).
            prop_assert_eq!(served(&other).is_ok(), served(&chat).is_ok(), "{}", api);
        }
    }
}

/// `body` with unknown members added at the top level, before and after the known ones.
fn with_extras(body: &Value, extras: &[(String, Value)]) -> Value {
    let mut out = Map::new();
    let (front, back) = extras.split_at(extras.len() / 2);
    for (k, v) in front {
        out.insert(format!("x_{k}"), v.clone());
    }
    for (k, v) in body.as_object().unwrap() {
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in back {
        out.insert(format!("y_{k}"), v.clone());
    }
    Value::Object(out)
}

fn extra_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Strings that mention the model key and hold every kind of escape.
        prop::sample::select(vec![
            "\"model\": \"x\"",
            "model",
            "\\",
            "\u{0}\u{1f}",
            "é😀",
            "</script>"
        ])
        .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For any valid body of any API, however written: parsing the forwarded body gives the
    /// original JSON with `model` replaced by the id forwarded to (served or fallback).
    #[test]
    fn the_forwarded_body_is_the_original_with_only_model_replaced(
        r in request(),
        extras in prop::collection::vec(("[a-z]{1,8}", extra_value()), 0..6),
        odd in any::<bool>(),
    ) {
        let mut out = Vec::new();
        for (api, body) in [(Api::Chat, r.chat()), (Api::Responses, r.responses()), (Api::Messages, r.messages())] {
            let body = with_extras(&body, &extras);
            let text = if odd { escape_letters(&body, true) } else { serde_json::to_string_pretty(&body).unwrap() };
            let Ok(d) = POLICY.route_body_as(api, text.as_bytes(), &CallerContext::default()) else {
                continue;
            };
            for model in d.candidates() {
                d.forward_to(model, text.as_bytes(), &mut out).unwrap();
                let forwarded: Value = serde_json::from_slice(&out).unwrap();
                let mut expected = body.clone();
                expected["model"] = json!(model);
                prop_assert_eq!(&forwarded, &expected);
            }
        }
    }
}

#[test]
fn forwarding_changes_no_byte_outside_the_model_value() {
    let body = br#"{ "messages":[{"role":"user","content":"caf\u00e9 \"hi\""}],
        "model" :  "flux\u002dauto"  , "stream":true }"#;
    let d = POLICY.route_body(body, &CallerContext::default()).unwrap();
    let mut out = Vec::new();
    d.forward(body, &mut out).unwrap();
    let text = std::str::from_utf8(body).unwrap();
    let start = text.find("\"flux").unwrap();
    let end = text.find("  , ").unwrap();
    let expected = format!("{}\"{}\"{}", &text[..start], d.model(), &text[end..]);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn forwarding_refuses_what_it_cannot_do_exactly() {
    let body = br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let d = POLICY.route_body(body, &CallerContext::default()).unwrap();
    let mut out = b"left over".to_vec();
    // Another body, even of the same length.
    assert_eq!(
        d.forward(&body[..10], &mut out),
        Err(ForwardError::OtherBody)
    );
    let other = br#"{"model": "flux-fast", "messages": [{"role": "user", "content": "hi"}]}"#;
    assert_eq!(other.len(), body.len());
    assert_eq!(d.forward(other, &mut out), Err(ForwardError::OtherBody));
    // A model that is neither served nor a fallback.
    assert!(matches!(
        d.forward_to("o3", body, &mut out),
        Err(ForwardError::NotACandidate(m)) if m == "o3"
    ));
    // Features made by hand were read from no body.
    let f = RequestFeatures::new(POLICY.resolve("flux-auto").unwrap());
    let hand = POLICY.route(&f, &CallerContext::default()).unwrap();
    assert_eq!(hand.forward(body, &mut out), Err(ForwardError::NoBody));
    // Nothing was written by the refusals.
    assert_eq!(out, b"left over");
}

#[test]
fn after_a_failover_the_headers_and_meta_name_the_model_that_served() {
    let text = fluxroute::EMBEDDED_POLICY.replace(
        "id = \"gpt-4.1-nano\"\n",
        "id = \"gpt-4.1-nano\"\nmeta = { api_base = \"https://a.example/v1\", deployment = \"nano-eu\" }\n",
    );
    let policy = CompiledPolicy::from_toml(&text, "meta.toml")
        .unwrap()
        .policy;
    let router = Router::new(policy);
    let body = br#"{"model": "flux-auto", "input": "hi there"}"#;
    let routed = router
        .route_as(Api::Responses, body, &CallerContext::default())
        .unwrap();
    let d = routed.decision();
    assert_eq!(d.model(), "gpt-4.1-nano");
    assert_eq!(d.meta().get("deployment"), Some("nano-eu"));
    let next = d.fallbacks().next().unwrap();
    assert!(d.meta_for(next).unwrap().is_empty());
    let h = d.headers_for(next).unwrap();
    assert_eq!((h[0].1, h[1].1), (next, "true"));
    assert_eq!(h[2], d.headers()[2]);
    assert_eq!(d.headers_for("claude-opus-4-5"), None);
    let mut out = Vec::new();
    d.forward_to(next, body, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(r#"{{"model": "{next}", "input": "hi there"}}"#)
    );
    // The decision JSON carries the served and fallback models' metadata.
    let json = d.to_json();
    assert_eq!(
        json["meta"]["gpt-4.1-nano"]["api_base"],
        "https://a.example/v1"
    );
}

#[test]
fn a_pinned_decision_has_no_other_candidate_and_routes_nothing() {
    let body = br#"{"model": "flux-pinned-gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}"#;
    let d = POLICY
        .route_body_as(Api::Messages, body, &CallerContext::default())
        .unwrap();
    assert_eq!(d.candidates().collect::<Vec<_>>(), ["gpt-4o"]);
    assert_eq!(
        d.headers_for("gpt-4o").unwrap()[1],
        ("X-Flux-Routed", "false")
    );
    assert!(d.meta().is_empty());
}

#[test]
fn model_meta_is_validated_where_it_is_written_and_changes_the_fingerprint() {
    let base = CompiledPolicy::embedded();
    let with = |meta: &str| {
        fluxroute::EMBEDDED_POLICY.replace(
            "id = \"gpt-4o\"\n",
            &format!("id = \"gpt-4o\"\nmeta = {meta}\n"),
        )
    };
    let good = CompiledPolicy::from_toml(&with("{ region = \"eu\" }"), "p.toml")
        .unwrap()
        .policy;
    assert_ne!(good.fingerprint(), base.fingerprint());
    assert_eq!(good.model_meta("gpt-4o").unwrap().get("region"), Some("eu"));
    let other = CompiledPolicy::from_toml(&with("{ region = \"us\" }"), "p.toml")
        .unwrap()
        .policy;
    assert_ne!(good.fingerprint(), other.fingerprint());
    // Routing never reads it: the same decisions.
    let body = br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let ctx = CallerContext::default();
    assert_eq!(
        good.route_body(body, &ctx).unwrap().model(),
        base.route_body(body, &ctx).unwrap().model()
    );
    for (meta, path) in [
        ("{ region = 5 }", "models"),
        ("{ \"\" = \"x\" }", "models[16].meta."),
        ("{ region = \"a\\nb\" }", "models[16].meta.region"),
    ] {
        let e = CompiledPolicy::from_toml(&with(meta), "p.toml").unwrap_err();
        let d = &e.diagnostics()[0];
        assert!(d.path.starts_with(path), "{meta}: {d}");
        assert!(d.line > 0, "{meta}: {d}");
    }
    let long = format!("{{ k = \"{}\" }}", "x".repeat(5000));
    let e = CompiledPolicy::from_toml(&with(&long), "p.toml").unwrap_err();
    assert!(
        e.diagnostics()[0].message.contains("4096"),
        "{}",
        e.diagnostics()[0]
    );
}

#[test]
fn the_api_is_never_guessed_from_the_body() {
    // A Responses body read as chat lacks `messages`; a chat body read as Anthropic lacks
    // `max_tokens`.
    let responses = br#"{"model": "flux-auto", "input": "hi"}"#;
    let e = POLICY.classify(responses).unwrap_err();
    assert_eq!(
        (e.code(), e.param()),
        (ErrorCode::InvalidRequest, Some("messages"))
    );
    let chat = br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let e = POLICY.classify_as(Api::Messages, chat).unwrap_err();
    assert_eq!(
        (e.code(), e.param()),
        (ErrorCode::InvalidRequest, Some("max_tokens"))
    );
}
