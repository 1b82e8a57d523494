//! Classification: one streaming pass over a chat body into small, copyable request features.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::capability::{Capability, CapabilitySet};
use crate::error::{ErrorCode, RouteError};
use crate::estimate::TokenEstimator;
use crate::policy::{CompiledPolicy, Target};

/// How demanding a request is; `flux-auto` maps each class to a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    /// Greetings, thanks, short factual questions.
    Simple,
    /// Explanations, summaries, short creative writing.
    Standard,
    /// Multi-part technical work, debugging, design.
    Complex,
    /// Explicit step-by-step reasoning, proofs, analysis under constraints.
    Reasoning,
}

impl Complexity {
    /// Every class, from least to most demanding.
    pub const ALL: [Complexity; 4] = [
        Complexity::Simple,
        Complexity::Standard,
        Complexity::Complex,
        Complexity::Reasoning,
    ];

    /// `"simple"`, `"standard"`, `"complex"` or `"reasoning"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Standard => "standard",
            Complexity::Complex => "complex",
            Complexity::Reasoning => "reasoning",
        }
    }
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine reads from one request: small and `Copy`, the only input of routing.
///
/// Made by [`CompiledPolicy::classify`] from a body, or by hand with
/// [`RequestFeatures::new`] for simulations and tests.
///
/// ```
/// use fluxroute::{Capability, CompiledPolicy, Complexity};
/// let policy = CompiledPolicy::embedded();
/// let f = policy.classify(br#"{"model": "flux-auto", "max_tokens": 100,
///     "messages": [{"role": "user", "content": [
///         {"type": "text", "text": "what is in this picture?"},
///         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}"#)?;
/// assert!(f.capabilities.contains(Capability::Vision));
/// assert_eq!(f.max_output_tokens, Some(100));
/// assert_eq!(f.complexity, Complexity::Simple);
/// # Ok::<(), fluxroute::RouteError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestFeatures {
    /// What the `model` field names.
    pub target: Target,
    /// Estimated prompt tokens: messages, tool definitions, response schema, media parts.
    pub prompt_tokens: u32,
    /// `max_completion_tokens`, else `max_tokens`, else `None`.
    pub max_output_tokens: Option<u32>,
    /// Capabilities the request needs.
    pub capabilities: CapabilitySet,
    /// The complexity class.
    pub complexity: Complexity,
    /// The complexity score in `[0, 1]`.
    pub complexity_score: f32,
    /// Number of messages.
    pub messages: u32,
    /// Bit `i`: pattern `i` of the policy matched the last user message.
    pub matched: u64,
    /// Stable key for sticky weighted splits: a hash of `user`, else of the first user message.
    pub key: u64,
}

impl RequestFeatures {
    /// Features of an empty, simple request for `target`; set fields to taste.
    pub fn new(target: Target) -> Self {
        RequestFeatures {
            target,
            prompt_tokens: 0,
            max_output_tokens: None,
            capabilities: CapabilitySet::EMPTY,
            complexity: Complexity::Simple,
            complexity_score: 0.0,
            messages: 1,
            matched: 0,
            key: 0,
        }
    }
}

/// FNV-1a, 64 bits: a stable hash across runs, machines and versions.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub const fn finish(self) -> u64 {
        self.0
    }
}

impl CompiledPolicy {
    /// Reads a chat body into [`RequestFeatures`].
    ///
    /// Errors: `request_too_large` (body or message count above the limits), `invalid_json`,
    /// `invalid_request`, `model_not_found` (with a "did you mean" hint).
    pub fn classify(&self, body: &[u8]) -> Result<RequestFeatures, RouteError> {
        let limit = self.limits.max_body_bytes;
        if body.len() > limit {
            return Err(RouteError::new(
                ErrorCode::RequestTooLarge,
                format!(
                    "request body is {} bytes, above the limit of {limit}",
                    body.len()
                ),
            ));
        }
        let mut acc = Acc::new(self);
        let mut de = serde_json::Deserializer::from_slice(body);
        let parsed = BodySeed { acc: &mut acc }
            .deserialize(&mut de)
            .and_then(|()| de.end());
        if let Some(err) = acc.error.take() {
            return Err(err);
        }
        if let Err(e) = parsed {
            let msg = if e.is_syntax() || e.is_eof() {
                format!("request body is not valid JSON: {e}")
            } else {
                "request body must be a JSON object".to_owned()
            };
            return Err(RouteError::new(ErrorCode::InvalidJson, msg));
        }
        acc.finish()
    }
}

/// Visitor methods that reject the named JSON kinds through the visitor's own
/// `wrong(kind)`, which records an `invalid_request` naming the parameter.
macro_rules! reject {
    ($de:lifetime; $($kind:ident),*) => { $(reject!(@ $de $kind);)* };
    (@ $de:lifetime null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.wrong("null"))
        }
    };
    (@ $de:lifetime bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(self.wrong("a boolean"))
        }
    };
    (@ $de:lifetime number) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(self.wrong("a number"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(self.wrong("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(self.wrong("a number"))
        }
    };
    (@ $de:lifetime str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(self.wrong("a string"))
        }
    };
    (@ $de:lifetime seq) => {
        fn visit_seq<A: SeqAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.wrong("an array"))
        }
    };
    (@ $de:lifetime map) => {
        fn visit_map<A: MapAccess<$de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.wrong("an object"))
        }
    };
}

/// Why a classification stopped: the error is in `Acc::error`.
fn stop<E: de::Error>(acc: &mut Acc<'_, '_>, err: RouteError) -> E {
    if acc.error.is_none() {
        acc.error = Some(err);
    }
    E::custom("stopped")
}

fn invalid(param: &str, message: String) -> RouteError {
    RouteError::new(ErrorCode::InvalidRequest, message).with_param(param)
}

const ROLES: [&str; 6] = [
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

struct Acc<'p, 'de> {
    policy: &'p CompiledPolicy,
    error: Option<RouteError>,
    model: Option<Cow<'de, str>>,
    messages: Option<u32>,
    tokens: TokenEstimator,
    capabilities: CapabilitySet,
    max_completion_tokens: Option<u32>,
    max_tokens: Option<u32>,
    user: Option<u64>,
    first_user: Option<u64>,
    /// The last user message's text, for the policy's patterns.
    last_user: String,
    last_user_tokens: TokenEstimator,
}

impl<'p> Acc<'p, '_> {
    fn new(policy: &'p CompiledPolicy) -> Self {
        Acc {
            policy,
            error: None,
            model: None,
            messages: None,
            tokens: TokenEstimator::default(),
            capabilities: CapabilitySet::EMPTY,
            max_completion_tokens: None,
            max_tokens: None,
            user: None,
            first_user: None,
            last_user: String::new(),
            last_user_tokens: TokenEstimator::default(),
        }
    }

    fn finish(self) -> Result<RequestFeatures, RouteError> {
        let policy = self.policy;
        let Some(name) = self.model else {
            return Err(invalid(
                "model",
                "you must provide a model parameter".into(),
            ));
        };
        let Some(messages) = self.messages else {
            return Err(invalid(
                "messages",
                "you must provide a messages parameter".into(),
            ));
        };
        let Some(target) = policy.resolve(&name) else {
            let mut msg = format!("the model `{name}` does not exist");
            if let Some(hint) = crate::suggest(&name, policy.names.keys().map(|k| &**k)) {
                msg.push_str(&format!("; did you mean `{hint}`"));
            }
            return Err(RouteError::new(ErrorCode::ModelNotFound, msg).with_param("model"));
        };
        let mut tokens = self.tokens;
        // Every reply is primed with a few tokens.
        tokens.add(3);
        let matched = policy.match_patterns(&self.last_user);
        let (complexity, complexity_score) = policy.score(
            self.last_user_tokens.total(),
            messages,
            self.capabilities.contains(Capability::Tools),
            matched,
        );
        Ok(RequestFeatures {
            target,
            prompt_tokens: tokens.total(),
            max_output_tokens: self.max_completion_tokens.or(self.max_tokens),
            capabilities: self.capabilities,
            complexity,
            complexity_score,
            messages,
            matched,
            key: self.user.or(self.first_user).unwrap_or(0),
        })
    }
}

impl CompiledPolicy {
    /// Runs every pattern once over `text`; bit `i` set when pattern `i` matched.
    pub(crate) fn match_patterns(&self, text: &str) -> u64 {
        let n = self.patterns.len();
        let mut hits = [false; crate::policy::MAX_PATTERNS];
        let Some(slots) = hits.get_mut(..n) else {
            return 0;
        };
        if n == 0 || !self.patterns.matches_read_at(slots, text, 0) {
            return 0;
        }
        slots
            .iter()
            .enumerate()
            .filter(|(_, hit)| **hit)
            .fold(0, |m, (i, _)| m | (1u64 << i))
    }

    /// The complexity score and class from the classifier's features and signals.
    pub(crate) fn score(
        &self,
        last_user_tokens: u32,
        messages: u32,
        tools: bool,
        matched: u64,
    ) -> (Complexity, f32) {
        let c = &self.classifier;
        let ratio = |x: u32, sat: u32| (x as f32 / sat.max(1) as f32).min(1.0);
        let mut score = c.length_weight * ratio(last_user_tokens, c.length_saturation)
            + c.depth_weight * ratio(messages.saturating_sub(1), c.depth_saturation)
            + if tools { c.tools_weight } else { 0.0 };
        let mut floor = Complexity::Simple;
        for (i, s) in c.signals.iter().enumerate() {
            if matched & (1u64 << i) != 0 {
                score += s.weight;
                if let Some(min) = s.min_class {
                    floor = floor.max(min);
                }
            }
        }
        let score = score.clamp(0.0, 1.0);
        let class = match c.thresholds {
            [_, _, r] if score >= r => Complexity::Reasoning,
            [_, x, _] if score >= x => Complexity::Complex,
            [s, _, _] if score >= s => Complexity::Standard,
            _ => Complexity::Simple,
        };
        (class.max(floor), score)
    }
}

/// A string field: borrowed from the body unless it has escapes.
struct StrOrKind<'de>(Result<Cow<'de, str>, &'static str>);

impl<'de> Deserialize<'de> for StrOrKind<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
            .map(|k| StrOrKind(k.into_str()))
    }
}

/// Any JSON value, reduced to its kind (and a string's text, an integer's value,
/// nothing of arrays and objects); nested values are skipped without allocating.
enum Kind<'de> {
    Null,
    Bool(bool),
    UInt(u64),
    Number,
    Str(Cow<'de, str>),
    Array,
    Object,
}

impl<'de> Kind<'de> {
    fn name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::UInt(_) | Kind::Number => "a number",
            Kind::Str(_) => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }

    fn into_str(self) -> Result<Cow<'de, str>, &'static str> {
        match self {
            Kind::Str(s) => Ok(s),
            other => Err(other.name()),
        }
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Kind<'de>, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind<'de>, E> {
        Ok(Kind::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind<'de>, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind<'de>, E> {
        Ok(Kind::UInt(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kind<'de>, E> {
        Ok(Kind::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind<'de>, E> {
        Ok(Kind::Number)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Kind<'de>, E> {
        Ok(Kind::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind<'de>, E> {
        Ok(Kind::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Kind::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Kind::Object)
    }
}

impl<'de> Deserialize<'de> for Kind<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

/// A map key, borrowed unless escaped.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StrOrKind::deserialize(d)?
            .0
            .map(Key)
            .map_err(|k| de::Error::custom(format_args!("expected a string key, got {k}")))
    }
}

/// Walks any JSON value, feeding its strings (keys and values) and numbers to the estimator.
/// Returns whether the value was a non-empty array or object.
struct CountText<'a, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
}

impl<'de> DeserializeSeed<'de> for CountText<'_, '_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountText<'_, '_, 'de> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        self.acc.tokens.add(1);
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        self.acc.tokens.add(1);
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        self.acc.tokens.add(1);
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        self.acc.tokens.add(2);
        Ok(false)
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        self.acc.tokens.feed(v);
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut any = false;
        while seq
            .next_element_seed(CountText {
                acc: &mut *self.acc,
            })?
            .is_some()
        {
            any = true;
        }
        Ok(any)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut any = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            self.acc.tokens.feed(&key.0);
            map.next_value_seed(CountText {
                acc: &mut *self.acc,
            })?;
            any = true;
        }
        Ok(any)
    }
}

struct BodySeed<'a, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

/// Reads an optional token count (`max_tokens` and the like): a positive integer or null.
fn token_count<'de, A: MapAccess<'de>>(
    map: &mut A,
    acc: &mut Acc<'_, 'de>,
    param: &str,
) -> Result<Option<u32>, A::Error> {
    match map.next_value::<Kind<'de>>()? {
        Kind::Null => Ok(None),
        Kind::UInt(n) if n > 0 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        Kind::UInt(_) => Err(stop(
            acc,
            invalid(param, format!("`{param}` must be at least 1")),
        )),
        other => Err(stop(
            acc,
            invalid(
                param,
                format!("`{param}` must be an integer, got {}", other.name()),
            ),
        )),
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let acc = self.acc;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "model" => match map.next_value::<StrOrKind<'de>>()?.0 {
                    Ok(name) => acc.model = Some(name),
                    Err(kind) => {
                        return Err(stop(
                            acc,
                            invalid("model", format!("`model` must be a string, got {kind}")),
                        ));
                    }
                },
                "messages" => {
                    let count = map.next_value_seed(MessagesSeed { acc: &mut *acc })?;
                    acc.messages = Some(count);
                }
                "max_completion_tokens" => {
                    acc.max_completion_tokens = token_count(&mut map, acc, "max_completion_tokens")?
                }
                "max_tokens" => acc.max_tokens = token_count(&mut map, acc, "max_tokens")?,
                name @ ("tools" | "functions") => {
                    if map.next_value_seed(ListOf {
                        acc: &mut *acc,
                        param: if name == "tools" {
                            "tools"
                        } else {
                            "functions"
                        },
                    })? {
                        acc.capabilities.insert(Capability::Tools);
                    }
                }
                "response_format" => map.next_value_seed(ResponseFormat { acc: &mut *acc })?,
                "reasoning_effort" | "reasoning" => {
                    if !matches!(map.next_value::<Kind<'de>>()?, Kind::Null) {
                        acc.capabilities.insert(Capability::Reasoning);
                    }
                }
                "logprobs" => match map.next_value::<Kind<'de>>()? {
                    Kind::Bool(true) => acc.capabilities.insert(Capability::Logprobs),
                    Kind::Bool(false) | Kind::Null => {}
                    other => {
                        return Err(stop(
                            acc,
                            invalid(
                                "logprobs",
                                format!("`logprobs` must be a boolean, got {}", other.name()),
                            ),
                        ));
                    }
                },
                "top_logprobs" => match map.next_value::<Kind<'de>>()? {
                    Kind::Null => {}
                    Kind::UInt(_) => acc.capabilities.insert(Capability::Logprobs),
                    other => {
                        return Err(stop(
                            acc,
                            invalid(
                                "top_logprobs",
                                format!("`top_logprobs` must be an integer, got {}", other.name()),
                            ),
                        ));
                    }
                },
                "user" => {
                    if let Kind::Str(user) = map.next_value::<Kind<'de>>()? {
                        let mut h = Fnv::new();
                        h.write(user.as_bytes());
                        acc.user = Some(h.finish());
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `tools` or `functions`: an array (or null) whose text counts toward the prompt.
struct ListOf<'a, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
    param: &'static str,
}

impl<'de> DeserializeSeed<'de> for ListOf<'_, '_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListOf<'_, '_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        CountText { acc: self.acc }.visit_seq(seq)
    }
    reject!('de; bool, number, str, map);
}

impl ListOf<'_, '_, '_> {
    fn wrong<E: de::Error>(self, kind: &str) -> E {
        let p = self.param;
        stop(
            self.acc,
            invalid(p, format!("`{p}` must be an array, got {kind}")),
        )
    }
}

/// `response_format`: its `type` sets json_mode/json_schema; a schema's text counts.
struct ResponseFormat<'a, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
}

impl<'de> DeserializeSeed<'de> for ResponseFormat<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResponseFormat<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let acc = self.acc;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "type" => match map.next_value::<StrOrKind<'de>>()?.0.as_deref() {
                    Ok("json_object") => acc.capabilities.insert(Capability::JsonMode),
                    Ok("json_schema") => acc.capabilities.insert(Capability::JsonSchema),
                    Ok("text") => {}
                    Ok(other) => {
                        let msg = format!(
                            "unknown `response_format.type` `{other}`; expected `text`, `json_object` or `json_schema`"
                        );
                        return Err(stop(acc, invalid("response_format.type", msg)));
                    }
                    Err(kind) => {
                        let msg = format!("`response_format.type` must be a string, got {kind}");
                        return Err(stop(acc, invalid("response_format.type", msg)));
                    }
                },
                _ => {
                    map.next_value_seed(CountText { acc: &mut *acc })?;
                }
            }
        }
        Ok(())
    }
    reject!('de; bool, number, str, seq);
}

impl ResponseFormat<'_, '_, '_> {
    fn wrong<E: de::Error>(self, kind: &str) -> E {
        let msg = format!("`response_format` must be an object, got {kind}");
        stop(self.acc, invalid("response_format", msg))
    }
}

struct MessagesSeed<'a, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
}

impl<'de> DeserializeSeed<'de> for MessagesSeed<'_, '_, 'de> {
    type Value = u32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_any(self)
    }
}

impl MessagesSeed<'_, '_, '_> {
    fn wrong<E: de::Error>(self, kind: &str) -> E {
        stop(
            self.acc,
            invalid(
                "messages",
                format!("`messages` must be an array, got {kind}"),
            ),
        )
    }
}

impl<'de> Visitor<'de> for MessagesSeed<'_, '_, 'de> {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u32, A::Error> {
        let acc = self.acc;
        let limit = acc.policy.limits.max_messages;
        let mut count: u32 = 0;
        loop {
            if count == limit {
                // One more element means one too many.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let msg = format!("more than {limit} messages, the policy's limit");
                    return Err(stop(
                        acc,
                        RouteError::new(ErrorCode::RequestTooLarge, msg).with_param("messages"),
                    ));
                }
                break;
            }
            let seed = MessageSeed {
                acc: &mut *acc,
                index: count,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            count += 1;
        }
        if count == 0 {
            return Err(stop(
                acc,
                invalid("messages", "`messages` must not be empty".into()),
            ));
        }
        Ok(count)
    }
    reject!('de; null, bool, number, str, map);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Unknown,
    User,
    Assistant,
    Tool,
    Other,
}

/// What one message's parts added up to, before its role is known.
#[derive(Default)]
struct MessageText {
    tokens: TokenEstimator,
    hash: Option<Fnv>,
}

struct MessageSeed<'a, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
    index: u32,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl MessageSeed<'_, '_, '_> {
    fn wrong<E: de::Error>(self, kind: &str) -> E {
        let p = format!("messages[{}]", self.index);
        stop(
            self.acc,
            invalid(&p, format!("`{p}` must be an object, got {kind}")),
        )
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let acc = self.acc;
        let i = self.index;
        let mut role = Role::Unknown;
        // Text is gathered per message since `role` may come after `content`.
        let start_len = acc.last_user.len();
        let mut content = Content {
            text: MessageText::default(),
            start: start_len,
        };
        let mut has_content = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "role" => {
                    role = match map.next_value::<StrOrKind<'de>>()?.0.as_deref() {
                        Ok("user") => Role::User,
                        Ok("assistant") => Role::Assistant,
                        Ok("tool" | "function") => Role::Tool,
                        Ok(r) if ROLES.contains(&r) => Role::Other,
                        Ok(r) => {
                            let p = format!("messages[{i}].role");
                            let msg = format!(
                                "unknown role `{r}` in `{p}`; expected one of {}",
                                ROLES.join(", ")
                            );
                            return Err(stop(acc, invalid(&p, msg)));
                        }
                        Err(kind) => {
                            let p = format!("messages[{i}].role");
                            return Err(stop(
                                acc,
                                invalid(&p, format!("`{p}` must be a string, got {kind}")),
                            ));
                        }
                    }
                }
                "content" => {
                    has_content = map.next_value_seed(ContentSeed {
                        acc: &mut *acc,
                        index: i,
                        out: &mut content,
                    })?;
                }
                "tool_calls" => {
                    if map.next_value_seed(CountText { acc: &mut *acc })? {
                        acc.capabilities.insert(Capability::Tools);
                    }
                }
                "function_call" => {
                    if map.next_value_seed(CountText { acc: &mut *acc })? {
                        acc.capabilities.insert(Capability::Tools);
                    }
                }
                "name" => {
                    map.next_value_seed(CountText { acc: &mut *acc })?;
                    acc.tokens.add(1);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match role {
            Role::Unknown => {
                let p = format!("messages[{i}].role");
                return Err(stop(acc, invalid(&p, format!("`{p}` is required"))));
            }
            Role::User | Role::Other | Role::Tool if !has_content => {
                let p = format!("messages[{i}].content");
                return Err(stop(
                    acc,
                    invalid(&p, format!("`{p}` is required for this role")),
                ));
            }
            _ => {}
        }
        // Per-message framing, as chat formats add it.
        acc.tokens.add(3);
        acc.tokens.add(u64::from(content.text.tokens.total()));
        if role == Role::Tool {
            acc.capabilities.insert(Capability::Tools);
        }
        if role == Role::User {
            // The user text this message appended stays; earlier users' text goes.
            acc.last_user.drain(..start_len);
            acc.last_user_tokens = content.text.tokens;
            if acc.first_user.is_none() {
                acc.first_user = content.text.hash.map(Fnv::finish);
            }
        } else {
            acc.last_user.truncate(start_len);
        }
        Ok(())
    }

    reject!('de; null, bool, number, str, seq);
}

struct Content {
    text: MessageText,
    /// Where this message's text starts in `Acc::last_user`.
    start: usize,
}

impl Content {
    /// One piece of message text: estimated, hashed, and kept for the patterns.
    fn text(&mut self, acc: &mut Acc<'_, '_>, s: &str) {
        self.text.tokens.feed(s);
        self.text
            .hash
            .get_or_insert_with(Fnv::new)
            .write(s.as_bytes());
        if acc.last_user.len() > self.start {
            acc.last_user.push('\n');
        }
        acc.last_user.push_str(s);
    }
}

/// `content`: a string, null, or an array of parts. Returns whether content was present.
struct ContentSeed<'a, 'b, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
    index: u32,
    out: &'b mut Content,
}

impl<'de> DeserializeSeed<'de> for ContentSeed<'_, '_, '_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl ContentSeed<'_, '_, '_, '_> {
    fn wrong<E: de::Error>(self, kind: &str) -> E {
        let p = format!("messages[{}].content", self.index);
        stop(
            self.acc,
            invalid(
                &p,
                format!("`{p}` must be a string or an array of parts, got {kind}"),
            ),
        )
    }
}

impl<'de> Visitor<'de> for ContentSeed<'_, '_, '_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message content")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        self.out.text(self.acc, v);
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut part = 0u32;
        while seq
            .next_element_seed(PartSeed {
                acc: &mut *self.acc,
                message: self.index,
                part,
                out: &mut *self.out,
            })?
            .is_some()
        {
            part += 1;
        }
        Ok(true)
    }
    reject!('de; bool, number, map);
}

/// One content part: `{"type": "text", "text": ...}`, `image_url`, `image`, `input_audio`,
/// `file` or `refusal`.
struct PartSeed<'a, 'b, 'p, 'de> {
    acc: &'a mut Acc<'p, 'de>,
    message: u32,
    part: u32,
    out: &'b mut Content,
}

impl<'de> DeserializeSeed<'de> for PartSeed<'_, '_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl PartSeed<'_, '_, '_, '_> {
    fn path(&self) -> String {
        format!("messages[{}].content[{}]", self.message, self.part)
    }
    fn wrong<E: de::Error>(self, kind: &str) -> E {
        let p = self.path();
        stop(
            self.acc,
            invalid(
                &p,
                format!("`{p}` must be a content part object, got {kind}"),
            ),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartType {
    Text,
    Image,
    Audio,
    File,
}

impl<'de> Visitor<'de> for PartSeed<'_, '_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a content part")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let path = self.path();
        let acc = self.acc;
        let mut kind: Option<PartType> = None;
        // Text may come before `type`; its text is kept until the type is known.
        let mut text: Option<Cow<'de, str>> = None;
        let mut has_payload = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                "type" => {
                    kind = Some(match map.next_value::<StrOrKind<'de>>()?.0.as_deref() {
                        Ok("text" | "refusal" | "input_text") => PartType::Text,
                        Ok("image_url" | "image" | "input_image") => PartType::Image,
                        Ok("input_audio") => PartType::Audio,
                        Ok("file" | "input_file") => PartType::File,
                        Ok(other) => {
                            let msg = format!(
                                "unknown content part type `{other}` in `{path}`; expected text, image_url, input_audio or file"
                            );
                            return Err(stop(acc, invalid(&format!("{path}.type"), msg)));
                        }
                        Err(k) => {
                            return Err(stop(
                                acc,
                                invalid(
                                    &format!("{path}.type"),
                                    format!("`{path}.type` must be a string, got {k}"),
                                ),
                            ));
                        }
                    });
                }
                "text" | "refusal" => match map.next_value::<StrOrKind<'de>>()?.0 {
                    Ok(t) => text = Some(t),
                    Err(k) => {
                        return Err(stop(
                            acc,
                            invalid(
                                &format!("{path}.text"),
                                format!("`{path}.text` must be a string, got {k}"),
                            ),
                        ));
                    }
                },
                "image_url" | "image" | "input_audio" | "file" => {
                    // Media payloads (URLs, base64) are not prompt text.
                    if !matches!(map.next_value::<Kind<'de>>()?, Kind::Null) {
                        has_payload = true;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let limits = acc.policy.limits;
        match kind {
            None => {
                let msg = format!("`{path}.type` is required");
                return Err(stop(acc, invalid(&format!("{path}.type"), msg)));
            }
            Some(PartType::Text) => match text {
                Some(t) => self.out.text(acc, &t),
                None => {
                    let msg = format!("`{path}.text` is required for a text part");
                    return Err(stop(acc, invalid(&format!("{path}.text"), msg)));
                }
            },
            Some(media) => {
                if !has_payload {
                    let msg = format!("`{path}` has no payload for its type");
                    return Err(stop(acc, invalid(&path, msg)));
                }
                let (cap, tokens) = match media {
                    PartType::Image => (Capability::Vision, limits.image_tokens),
                    PartType::Audio => (Capability::AudioInput, limits.audio_tokens),
                    _ => (Capability::FileInput, limits.file_tokens),
                };
                acc.capabilities.insert(cap);
                acc.tokens.add(u64::from(tokens));
            }
        }
        Ok(())
    }

    reject!('de; null, bool, number, str, seq);
}
