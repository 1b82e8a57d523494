//! The policy file as written: serde types that mirror the TOML, with spans for diagnostics.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::Capability;
use crate::classify::Complexity;

/// A name with the span where it was written.
pub(crate) type Name = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub policy: RawMeta,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub models: Vec<RawModel>,
    pub tiers: Vec<RawTier>,
    #[serde(default)]
    pub pinned: BTreeMap<Name, Name>,
    pub auto: RawAuto,
    #[serde(default)]
    pub redirects: BTreeMap<Name, Name>,
    #[serde(default)]
    pub classifier: Option<RawClassifier>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub tenants: BTreeMap<Name, RawTenant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeta {
    pub name: Name,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub passthrough: bool,
    #[serde(default)]
    pub max_fallbacks: Option<Spanned<u64>>,
    /// A catalog file (`[[models]]` and `[pinned]`), relative to this file's directory.
    #[serde(default)]
    pub catalog: Option<Name>,
}

/// An included catalog: models and their pinned aliases, shared by several policies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalog {
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub pinned: BTreeMap<Name, Name>,
}

/// Moves a value's span by `by` bytes (into the included file's place in the `Source`).
fn shift<T>(v: Spanned<T>, by: usize) -> Spanned<T> {
    let span = v.span();
    Spanned::new(span.start + by..span.end + by, v.into_inner())
}

impl RawCatalog {
    /// The catalog with every span moved by `by` bytes.
    pub fn shifted(self, by: usize) -> Self {
        RawCatalog {
            models: self
                .models
                .into_iter()
                .map(|m| RawModel {
                    id: shift(m.id, by),
                    provider: m.provider,
                    tier: shift(m.tier, by),
                    context_window: shift(m.context_window, by),
                    max_output_tokens: shift(m.max_output_tokens, by),
                    input_per_mtok: shift(m.input_per_mtok, by),
                    output_per_mtok: shift(m.output_per_mtok, by),
                    capabilities: m.capabilities,
                })
                .collect(),
            pinned: self
                .pinned
                .into_iter()
                .map(|(k, v)| (shift(k, by), shift(v, by)))
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    pub max_body_bytes: Spanned<u64>,
    pub max_messages: Spanned<u64>,
    pub output_reserve: Spanned<u64>,
    pub expected_output_tokens: Spanned<u64>,
    pub context_margin: Spanned<f64>,
    pub image_tokens: Spanned<u64>,
    pub audio_tokens: Spanned<u64>,
    pub file_tokens: Spanned<u64>,
}

impl Default for RawLimits {
    fn default() -> Self {
        let at = |v| Spanned::new(0..0, v);
        RawLimits {
            max_body_bytes: at(8 << 20),
            max_messages: at(2048),
            output_reserve: at(4096),
            expected_output_tokens: at(512),
            context_margin: Spanned::new(0..0, 0.05),
            image_tokens: at(765),
            audio_tokens: at(1000),
            file_tokens: at(2000),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub id: Name,
    pub provider: String,
    pub tier: Name,
    pub context_window: Spanned<u64>,
    pub max_output_tokens: Spanned<u64>,
    pub input_per_mtok: Spanned<f64>,
    pub output_per_mtok: Spanned<f64>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTier {
    pub name: Name,
    pub alias: Name,
    #[serde(default)]
    pub description: String,
}

/// `flux-auto`'s map from complexity class to tier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuto {
    pub simple: Name,
    pub standard: Name,
    pub complex: Name,
    pub reasoning: Name,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClassifier {
    pub thresholds: RawThresholds,
    pub length: RawSaturating,
    pub depth: RawSaturating,
    pub tools: RawWeight,
    #[serde(default)]
    pub signals: Vec<RawSignal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThresholds {
    pub standard: Spanned<f64>,
    pub complex: Spanned<f64>,
    pub reasoning: Spanned<f64>,
}

/// A built-in feature that grows linearly up to `saturation`, then stays at 1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSaturating {
    pub weight: Spanned<f64>,
    pub saturation: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeight {
    pub weight: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignal {
    pub name: Name,
    pub pattern: Name,
    pub weight: Spanned<f64>,
    #[serde(default)]
    pub min_class: Option<Complexity>,
    /// Count the matches: the signal adds `weight × min(matches / saturation, 1)`.
    #[serde(default)]
    pub saturation: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Name,
    #[serde(default)]
    pub aliases: Option<Vec<Name>>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub min_prompt_tokens: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_prompt_tokens: Option<Spanned<u64>>,
    #[serde(default)]
    pub complexity: Vec<Complexity>,
    #[serde(default)]
    pub min_score: Option<Spanned<f64>>,
    #[serde(default)]
    pub max_score: Option<Spanned<f64>>,
    #[serde(default)]
    pub pattern: Option<Name>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub tenants: Vec<Name>,
    #[serde(default)]
    pub tier: Option<Name>,
    #[serde(default)]
    pub models: Option<Spanned<Vec<Name>>>,
    #[serde(default)]
    pub split: Option<Spanned<Vec<RawSplit>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSplit {
    pub model: Name,
    pub weight: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    #[serde(default)]
    pub models: Option<Vec<Name>>,
    #[serde(default)]
    pub aliases: Option<Vec<Name>>,
}
