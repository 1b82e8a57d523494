//! What routing reads: the request's features, the name it asked for and how demanding it is.
//!
//! A leaf: classification makes these, policies compile against them, routing reads them.

use std::fmt;

use serde::Deserialize;

use crate::capability::{Capability, CapabilitySet};

/// The request API a body is written in, chosen by the gateway from the endpoint path (never
/// guessed from the body).
///
/// ```
/// use fluxroute::Api;
/// assert_eq!("messages".parse::<Api>(), Ok(Api::Messages));
/// assert_eq!(Api::default(), Api::Chat);
/// assert_eq!(Api::Responses.path(), "/v1/responses");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Api {
    /// OpenAI Chat Completions, `POST /v1/chat/completions`.
    #[default]
    Chat,
    /// OpenAI Responses, `POST /v1/responses`.
    Responses,
    /// Anthropic Messages, `POST /v1/messages`.
    Messages,
}

impl Api {
    /// Every API.
    pub const ALL: [Api; 3] = [Api::Chat, Api::Responses, Api::Messages];

    /// `"chat"`, `"responses"` or `"messages"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Responses => "responses",
            Api::Messages => "messages",
        }
    }

    /// The endpoint path the API is served at.
    pub const fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Responses => "/v1/responses",
            Api::Messages => "/v1/messages",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an API name other than `chat`, `responses` and `messages`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown API `{0}`; expected chat, responses or messages")]
pub struct UnknownApi(pub String);

impl std::str::FromStr for Api {
    type Err = UnknownApi;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Api::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownApi(s.to_owned()))
    }
}

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

    /// This class's bit in a rule's set of classes.
    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `model` name resolves to under one compiled policy.
///
/// Obtained from [`CompiledPolicy::resolve`](crate::CompiledPolicy::resolve); only meaningful
/// for the policy that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target(pub(crate) TargetKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TargetKind {
    Auto,
    Tier(usize),
    /// Index into `CompiledPolicy::pinned`.
    Pinned(usize),
    /// A backing model id, where passthrough is on.
    Passthrough(usize),
    /// Index into `CompiledPolicy::redirects`.
    Redirect(usize),
}

/// How a request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// `flux-auto`: sized for the request across all tiers.
    Auto,
    /// A tier alias: sized for the request within one tier.
    Tier,
    /// A `flux-pinned-*` alias: exactly one model.
    Pinned,
    /// A backing model id named directly.
    Passthrough,
    /// A retired id redirected to its successor.
    Redirect,
}

impl Mode {
    /// `"auto"`, `"tier"`, `"pinned"`, `"passthrough"` or `"redirect"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Tier => "tier",
            Mode::Pinned => "pinned",
            Mode::Passthrough => "passthrough",
            Mode::Redirect => "redirect",
        }
    }
}

impl Target {
    /// The mode a request for this name is served in.
    pub fn mode(self) -> Mode {
        match self.0 {
            TargetKind::Auto => Mode::Auto,
            TargetKind::Tier(_) => Mode::Tier,
            TargetKind::Pinned(_) => Mode::Pinned,
            TargetKind::Passthrough(_) => Mode::Passthrough,
            TargetKind::Redirect(_) => Mode::Redirect,
        }
    }

    /// Whether the model that serves this name is the one it names (pinned and passthrough).
    pub(crate) fn is_exact(self) -> bool {
        matches!(self.0, TargetKind::Pinned(_) | TargetKind::Passthrough(_))
    }
}

/// What the engine reads from one request: small and `Copy`, the only input of routing.
///
/// Made by [`CompiledPolicy::classify`](crate::CompiledPolicy::classify) from a body, or by
/// hand with [`RequestFeatures::new`] for simulations and tests.
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
    /// Completions asked for (chat's `n`, at least 1): a cost estimate charges the output
    /// once per completion.
    pub choices: u32,
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
    /// Stable key for sticky weighted splits: a hash of `user` (Anthropic:
    /// `metadata.user_id`), else of the first user message.
    pub key: u64,
    /// Which request fields asked for what, for error bodies.
    pub(crate) asked: Asked,
    /// Where the `model` value lies in the body, for [`Decision::forward`](crate::Decision::forward).
    pub(crate) source: Origin,
}

/// Where the `model` value of a classified body lies. Not a feature: two bodies that ask the
/// same compare equal however they are written, so it takes no part in equality or `Debug`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Origin(pub Option<Source>);

impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

/// Where a classified body's `model` value lies: the span of the JSON string (quotes
/// included), with the body's length and a hash of the value's bytes, so that another body is
/// told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    pub start: u32,
    pub end: u32,
    pub len: u32,
    pub hash: u32,
}

impl Source {
    /// The hash of a `model` value's bytes as written.
    pub fn hash(value: &[u8]) -> u32 {
        let mut h = Fnv::new();
        h.write(value);
        let h = h.finish();
        (h ^ h >> 32) as u32
    }
}

/// A request field that error bodies name as `param`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Field {
    /// The Chat Completions field of the thing asked for.
    #[default]
    Usual,
    Tools,
    Functions,
    Messages,
    ResponseFormat,
    ReasoningEffort,
    Reasoning,
    Logprobs,
    TopLogprobs,
    Modalities,
    Audio,
    WebSearchOptions,
    Input,
    TextFormat,
    System,
    Thinking,
    Include,
    MaxTokens,
    MaxCompletionTokens,
    MaxOutputTokens,
    OutputFormat,
}

impl Field {
    pub const fn as_str(self) -> &'static str {
        match self {
            Field::Usual => "",
            Field::Tools => "tools",
            Field::Functions => "functions",
            Field::Messages => "messages",
            Field::ResponseFormat => "response_format",
            Field::ReasoningEffort => "reasoning_effort",
            Field::Reasoning => "reasoning",
            Field::Logprobs => "logprobs",
            Field::TopLogprobs => "top_logprobs",
            Field::Modalities => "modalities",
            Field::Audio => "audio",
            Field::WebSearchOptions => "web_search_options",
            Field::Input => "input",
            Field::TextFormat => "text.format",
            Field::System => "system",
            Field::Thinking => "thinking",
            Field::Include => "include",
            Field::MaxTokens => "max_tokens",
            Field::MaxCompletionTokens => "max_completion_tokens",
            Field::MaxOutputTokens => "max_output_tokens",
            Field::OutputFormat => "output_format",
        }
    }
}

/// The first field that asked for each capability, the field the output length came from and
/// the field that holds the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    pub capabilities: [Field; Capability::COUNT],
    pub output: Field,
    pub prompt: Field,
}

impl Asked {
    /// Records that `field` asked for `cap`, unless an earlier field did.
    #[inline]
    pub fn capability(&mut self, cap: Capability, field: Field) {
        if let Some(slot) = self.capabilities.get_mut(cap.index())
            && *slot == Field::Usual
        {
            *slot = field;
        }
    }
}

impl RequestFeatures {
    /// The request field that asked for `cap` (`"tools"`, `"functions"`, `"system"`,
    /// `"input"`, ...), as error bodies name it; the usual Chat Completions field for features
    /// made by hand.
    pub fn param_for(&self, cap: Capability) -> &'static str {
        match self.asked.capabilities.get(cap.index()) {
            Some(f) if *f != Field::Usual => f.as_str(),
            _ => cap.param(),
        }
    }

    /// The request field the output length came from (`"max_tokens"` when none did).
    pub fn output_param(&self) -> &'static str {
        match self.asked.output {
            Field::Usual => "max_tokens",
            f => f.as_str(),
        }
    }

    /// The request field that holds the conversation: `"messages"`, or `"input"` for the
    /// Responses API.
    pub fn prompt_param(&self) -> &'static str {
        match self.asked.prompt {
            Field::Usual => "messages",
            f => f.as_str(),
        }
    }
}

impl RequestFeatures {
    /// Features of an empty, simple request for `target`; set fields to taste.
    pub fn new(target: Target) -> Self {
        RequestFeatures {
            target,
            prompt_tokens: 0,
            max_output_tokens: None,
            choices: 1,
            capabilities: CapabilitySet::EMPTY,
            complexity: Complexity::Simple,
            complexity_score: 0.0,
            messages: 1,
            matched: 0,
            key: 0,
            asked: Asked::default(),
            source: Origin(None),
        }
    }
}

/// FNV-1a, 64 bits: a stable hash across runs, machines and versions (sticky split keys).
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
