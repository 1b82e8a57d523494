//! What every fuzz input must satisfy; shared by the fuzz targets and by `cargo test`, which
//! replays the checked-in seeds and regressions through the same checks.

// Each fuzz target includes this file and calls only its own check.
#![allow(dead_code)]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use fluxroute::{Api, CallerContext, Capability, CompiledPolicy, ErrorCode, Mode};
use serde_json::{Value, json};

static POLICY: LazyLock<CompiledPolicy> = LazyLock::new(CompiledPolicy::embedded);

/// Arbitrary bytes as a request body of each API: classify and route under the embedded
/// default policy, and forward what was decided.
pub fn body(data: &[u8]) {
    for api in Api::ALL {
        body_as(api, data);
    }
}

fn body_as(api: Api, data: &[u8]) {
    let policy = &*POLICY;
    // What the scanner accepts, serde_json accepts (and the other way round), except for the
    // documented leniencies: lone surrogates, numbers beyond f64, and nesting past 128; and a
    // key the engine reads given twice, which serde_json reads as its last copy.
    let parsed = serde_json::from_slice::<Value>(data).ok();
    if let Err(e) = policy.classify_as(api, data)
        && e.code() == ErrorCode::InvalidJson
        && !e.message().contains("appears more than once")
        && let Some(v) = &parsed
    {
        assert!(
            !v.is_object(),
            "{api}: scanner rejected what serde_json reads: {}",
            e.message()
        );
    }
    let features = match policy.classify_as(api, data) {
        Ok(f) => f,
        Err(e) => {
            // Classification rejects only with its own codes.
            assert!(
                matches!(
                    e.code(),
                    ErrorCode::InvalidJson
                        | ErrorCode::InvalidRequest
                        | ErrorCode::RequestTooLarge
                        | ErrorCode::ModelNotFound
                ),
                "{api}: {e}"
            );
            return;
        }
    };
    assert!((0.0..=1.0).contains(&features.complexity_score));
    let ctx = CallerContext {
        tenant: Some("free"),
        tags: &["ab-test"],
        unavailable: &["gpt-4.1-nano"],
    };
    let mut out = Vec::new();
    for ctx in [CallerContext::default(), ctx] {
        let Ok(d) = policy.route(&features, &ctx) else {
            continue;
        };
        let headers = d.headers();
        assert_eq!(headers[0].1, d.model());
        assert_eq!(headers[1].1 == "true", d.routed());
        assert!(!ctx.unavailable.contains(&d.model()));
        match d.mode() {
            Mode::Pinned | Mode::Passthrough => {
                assert!(!d.routed());
                assert_eq!(d.fallbacks().count(), 0);
            }
            Mode::Redirect => assert_eq!(d.fallbacks().count(), 0),
            _ => assert!(d.routed()),
        }
        // The forwarded body is the body with only `model` replaced, for every candidate.
        for model in d.candidates() {
            d.forward_to(model, data, &mut out)
                .unwrap_or_else(|e| panic!("{api}: cannot forward to {model}: {e}"));
            let len = data.len() + model.len() + 2;
            assert!(
                out.len() <= len,
                "{api}: forwarded body grew past {len} bytes"
            );
            if let Some(Value::Object(original)) = &parsed {
                let mut expected = original.clone();
                expected.insert("model".into(), model.into());
                let forwarded: Value = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("{api}: forwarded body is not JSON: {e}"));
                assert_eq!(forwarded, Value::Object(expected), "{api}");
            }
        }
    }
}

/// Arbitrary text as a policy: parse, validate and compile without panicking; a policy that
/// compiles serves its own listing and a trivial request.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match CompiledPolicy::from_toml(text, "fuzz.toml") {
        Ok(loaded) => {
            let p = loaded.policy;
            assert!(
                p.list_models()["data"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
            );
            // Whatever the policy names, a header it yields is visible ASCII: no line break
            // can split it.
            for name in p.names().into_iter().take(16) {
                let body = serde_json::json!({"model": name, "messages": [{"role": "user", "content": "hi"}]});
                if let Ok(d) = p.route_body(body.to_string().as_bytes(), &CallerContext::default())
                {
                    for (h, v) in d.headers() {
                        assert!(v.bytes().all(|b| b.is_ascii_graphic()), "{h}: {v:?}");
                    }
                }
            }
            // A denying policy lists nothing for a tenant it does not know.
            let listed = p.models_for(Some("\u{0}not a tenant"));
            assert!(listed["data"].as_array().is_some());
        }
        Err(e) => {
            assert!(!e.diagnostics().is_empty());
            // Diagnostics quote a bounded part of what the file holds.
            for d in e.diagnostics() {
                assert!(d.message.len() < 4096 && d.path.len() < 4096, "{d}");
            }
        }
    }
}

/// The model a structured request names.
const MODELS: [&str; 8] = [
    "flux-auto",
    "flux-fast",
    "flux-reason",
    "flux-pinned-gpt-4o",
    "flux-pinned-deepseek-reasoner",
    "gpt-4o",
    "gpt-4-turbo",
    "no-such-model",
];

#[derive(Arbitrary, Debug)]
enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Arbitrary, Debug)]
struct Text {
    unit: String,
    /// Repeats of `unit`: edge sizes up to hundreds of kilobytes.
    repeat: u16,
}

impl Text {
    fn text(&self) -> String {
        let n = usize::from(self.repeat).min(if self.unit.len() > 64 { 16 } else { 4096 });
        self.unit.repeat(n)
    }
}

#[derive(Arbitrary, Debug)]
enum Part {
    Text(Text),
    Image,
    Audio,
    File,
}

#[derive(Arbitrary, Debug)]
enum Content {
    Null,
    Text(Text),
    Parts(Vec<Part>),
}

#[derive(Arbitrary, Debug)]
struct Message {
    role: Role,
    content: Content,
    tool_calls: bool,
}

#[derive(Arbitrary, Debug)]
enum Format {
    Text,
    JsonObject,
    JsonSchema,
}

/// A well-formed chat request with every capability and edge sizes.
#[derive(Arbitrary, Debug)]
struct Request {
    model: u8,
    messages: Vec<Message>,
    tools: Option<u8>,
    response_format: Option<Format>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    logprobs: Option<bool>,
    reasoning: bool,
    user: Option<String>,
}

impl Request {
    fn json(&self) -> Value {
        let text = |t: &Text| json!({"type": "text", "text": t.text()});
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::Tool => "tool",
                };
                let content = match &m.content {
                    Content::Null => Value::Null,
                    Content::Text(t) => Value::String(t.text()),
                    Content::Parts(parts) => parts
                        .iter()
                        .map(|p| match p {
                            Part::Text(t) => text(t),
                            Part::Image => json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}}),
                            Part::Audio => json!({"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}),
                            Part::File => json!({"type": "file", "file": {"file_data": "JVBE"}}),
                        })
                        .collect(),
                };
                let mut msg = json!({"role": role, "content": content});
                if m.tool_calls {
                    msg["tool_calls"] = json!([{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
                }
                msg
            })
            .collect();
        let mut body = json!({
            "model": MODELS[usize::from(self.model) % MODELS.len()],
            "messages": messages,
        });
        if let Some(n) = self.tools {
            let tools: Vec<Value> = (0..n % 4)
                .map(|i| json!({"type": "function", "function": {"name": format!("t{i}"), "parameters": {"type": "object"}}}))
                .collect();
            body["tools"] = Value::Array(tools);
        }
        if let Some(f) = &self.response_format {
            body["response_format"] = match f {
                Format::Text => json!({"type": "text"}),
                Format::JsonObject => json!({"type": "json_object"}),
                Format::JsonSchema => {
                    json!({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}})
                }
            };
        }
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if let Some(n) = self.max_completion_tokens {
            body["max_completion_tokens"] = json!(n);
        }
        if let Some(b) = self.logprobs {
            body["logprobs"] = json!(b);
        }
        if self.reasoning {
            body["reasoning_effort"] = json!("high");
        }
        if let Some(u) = &self.user {
            body["user"] = json!(u);
        }
        body
    }

    /// Whether the request breaks a rule the classifier enforces, so must be rejected.
    fn invalid(&self) -> bool {
        self.messages.is_empty()
            || self.max_tokens == Some(0)
            || self.max_completion_tokens == Some(0)
            || self
                .messages
                .iter()
                .any(|m| !matches!(m.role, Role::Assistant) && matches!(m.content, Content::Null))
    }

    fn capabilities(&self) -> Vec<Capability> {
        let mut caps = Vec::new();
        let parts = self.messages.iter().flat_map(|m| match &m.content {
            Content::Parts(p) => p.as_slice(),
            _ => &[],
        });
        for p in parts {
            caps.push(match p {
                Part::Text(_) => continue,
                Part::Image => Capability::Vision,
                Part::Audio => Capability::AudioInput,
                Part::File => Capability::FileInput,
            });
        }
        if self.tools.is_some_and(|n| n % 4 > 0)
            || self
                .messages
                .iter()
                .any(|m| m.tool_calls || matches!(m.role, Role::Tool))
        {
            caps.push(Capability::Tools);
        }
        match self.response_format {
            Some(Format::JsonObject) => caps.push(Capability::JsonMode),
            Some(Format::JsonSchema) => caps.push(Capability::JsonSchema),
            _ => {}
        }
        if self.logprobs == Some(true) {
            caps.push(Capability::Logprobs);
        }
        if self.reasoning {
            caps.push(Capability::Reasoning);
        }
        caps
    }
}

/// Every non-ASCII character of serialized JSON as a `\uXXXX` escape (a surrogate pair
/// beyond the BMP), as clients that escape everything send it.
fn ascii_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// A structured request (built from the fuzzer's bytes): it classifies exactly as its
/// capabilities and message count say, the same whether non-ASCII text is escaped or not,
/// and every decision keeps the invariants of [`body`].
pub fn request(data: &[u8]) {
    let Ok(req) = Request::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let plain = req.json().to_string();
    body(plain.as_bytes());
    let policy = &*POLICY;
    let result = policy.classify(plain.as_bytes());
    if req.invalid() {
        let e = result.expect_err("an invalid request was accepted");
        assert!(matches!(
            e.code(),
            ErrorCode::InvalidRequest | ErrorCode::ModelNotFound
        ));
        return;
    }
    let features = match result {
        Ok(f) => f,
        Err(e) => {
            assert!(
                matches!(
                    e.code(),
                    ErrorCode::ModelNotFound | ErrorCode::RequestTooLarge
                ),
                "a valid request was rejected: {}",
                e.message()
            );
            return;
        }
    };
    assert_eq!(features.messages as usize, req.messages.len());
    for cap in req.capabilities() {
        assert!(features.capabilities.contains(cap), "{cap:?} missing");
    }
    assert_eq!(
        features.max_output_tokens,
        req.max_completion_tokens.or(req.max_tokens)
    );
    let escaped = policy
        .classify(ascii_escaped(&plain).as_bytes())
        .expect("escaped form");
    assert_eq!(
        (
            escaped.prompt_tokens,
            escaped.capabilities,
            escaped.complexity,
            escaped.matched
        ),
        (
            features.prompt_tokens,
            features.capabilities,
            features.complexity,
            features.matched
        ),
        "escaping non-ASCII changed the classification"
    );
}
