//! What routing reads: the request's features, the name it asked for and how demanding it is.
//!
//! A leaf: classification makes these, policies compile against them, routing reads them.

use std::fmt;

use serde::Deserialize;

use crate::capability::CapabilitySet;

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
