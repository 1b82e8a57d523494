//! The compiled table's parts: catalog models, tiers, aliases, limits, classifier, rules and
//! tenants, as indices and sorted lists that routing reads without allocating.

use crate::capability::CapabilitySet;
use crate::features::{Complexity, TargetKind};

/// One backing model of the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub id: String,
    pub provider: String,
    pub tier: usize,
    pub context_window: u32,
    pub max_output_tokens: u32,
    pub capabilities: CapabilitySet,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub meta: ModelMeta,
}

/// A catalog model's free-form metadata for the gateway (`[models.meta]`: endpoint,
/// deployment, region, ...): strings by key, in key order. Routing never reads it.
///
/// ```
/// use fluxroute::CompiledPolicy;
/// let policy = CompiledPolicy::from_toml(&fluxroute::EMBEDDED_POLICY.replace(
///     "id = \"gpt-4o\"\n",
///     "id = \"gpt-4o\"\nmeta = { api_base = \"https://eu.example.com/v1\", region = \"eu\" }\n",
/// ), "example.toml")?.policy;
/// let meta = policy.model_meta("gpt-4o").unwrap();
/// assert_eq!(meta.get("region"), Some("eu"));
/// assert_eq!(meta.iter().count(), 2);
/// # Ok::<(), fluxroute::PolicyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMeta(pub(crate) Vec<(String, String)>);

impl ModelMeta {
    /// No entries.
    pub const EMPTY: &'static ModelMeta = &ModelMeta(Vec::new());

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v.as_str())
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Serialized as a JSON object, in key order.
impl serde::Serialize for ModelMeta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl Model {
    /// The cost of `input` prompt and `output` completion tokens on this model, in millionths
    /// of a dollar (prices are per million tokens): the one cost formula, which orders
    /// candidates without a division each.
    #[inline]
    pub fn cost_micro_usd(&self, input: f64, output: f64) -> f64 {
        input * self.input_per_mtok + output * self.output_per_mtok
    }

    /// The same cost in USD.
    #[inline]
    pub fn cost_usd(&self, input: f64, output: f64) -> f64 {
        self.cost_micro_usd(input, output) / 1e6
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Tier {
    pub name: String,
    pub alias: String,
    pub description: String,
    /// Catalog order.
    pub models: Vec<usize>,
    /// The same models by input price, then by output price (ties in catalog order): routing
    /// walks both and stops once no unseen model can be cheaper, so its cost does not grow with
    /// the tier's size.
    pub by_input: Vec<usize>,
    pub by_output: Vec<usize>,
    /// The smallest output limit in the tier.
    pub min_output_limit: u32,
}

impl Tier {
    /// Fills the price orders from the catalog.
    pub(crate) fn index(&mut self, models: &[Model]) {
        let price = |i: &usize, f: fn(&Model) -> f64| models.get(*i).map_or(f64::INFINITY, f);
        self.by_input = self.models.clone();
        self.by_input.sort_by(|a, b| {
            price(a, |m| m.input_per_mtok)
                .total_cmp(&price(b, |m| m.input_per_mtok))
                .then(a.cmp(b))
        });
        self.by_output = self.models.clone();
        self.by_output.sort_by(|a, b| {
            price(a, |m| m.output_per_mtok)
                .total_cmp(&price(b, |m| m.output_per_mtok))
                .then(a.cmp(b))
        });
        self.min_output_limit = self
            .models
            .iter()
            .filter_map(|&i| models.get(i))
            .map(|m| m.max_output_tokens)
            .min()
            .unwrap_or(0);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Alias {
    pub name: String,
    pub model: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_body_bytes: usize,
    pub max_messages: u32,
    pub output_reserve: u32,
    pub expected_output_tokens: u32,
    /// Safety margin on the prompt estimate, in parts per ten thousand.
    pub margin_bp: u32,
    pub image_tokens: u32,
    pub audio_tokens: u32,
    /// Tokens for a file sent by id or URL.
    pub file_tokens: u32,
    /// Bytes of a file's inline data per token of its estimate.
    pub file_bytes_per_token: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Signal {
    pub name: String,
    pub weight: f32,
    pub min_class: Option<Complexity>,
    /// For a counted signal, its matches at which it adds its whole weight.
    pub saturation: Option<u32>,
}

/// The compiled classifier; signal `i` is pattern `i` of the policy's patterns.
#[derive(Debug, Clone)]
pub(crate) struct Classifier {
    /// Score thresholds for `standard`, `complex`, `reasoning`.
    pub thresholds: [f32; 3],
    pub length_weight: f32,
    pub length_saturation: u32,
    pub depth_weight: f32,
    pub depth_saturation: u32,
    pub tools_weight: f32,
    pub signals: Vec<Signal>,
    /// The trained scorer that replaces the weighted sum, when the policy names one.
    pub scorer: Option<crate::scorer::Compiled>,
}

#[derive(Debug, Clone)]
pub(crate) enum Action {
    Tier(usize),
    Models(Vec<usize>),
    Split(Vec<(usize, u64)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    pub applies_to_auto: bool,
    /// Bit `i`: the rule applies to tier `i`'s alias.
    pub applies_to_tiers: u64,
    pub capabilities: CapabilitySet,
    pub min_prompt_tokens: u32,
    pub max_prompt_tokens: u32,
    /// Bit per [`Complexity`]; 0 means any.
    pub classes: u8,
    pub min_score: f32,
    pub max_score: f32,
    /// Index into the policy's patterns.
    pub pattern: Option<usize>,
    pub tags: Vec<String>,
    pub tenants: Vec<String>,
    pub action: Action,
    /// Mandatory: when the rule matches, only its models may serve or be fallbacks, and none
    /// eligible is an error naming the rule.
    pub restrict: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    /// The models this tenant may be served by. `None`: every model.
    pub models: Option<Allowed<u16>>,
    /// Names this tenant may request, by what they resolve to. `None`: every name.
    pub names: Option<Allowed<TargetKind>>,
}

/// A set kept as a sorted list: memory in proportion to what a policy lists, not to its
/// catalog, and a membership test in logarithmic time.
#[derive(Debug, Clone)]
pub(crate) struct Allowed<T>(Box<[T]>);

impl<T: Ord> Allowed<T> {
    pub fn new(mut items: Vec<T>) -> Self {
        items.sort_unstable();
        items.dedup();
        Allowed(items.into_boxed_slice())
    }

    pub fn contains(&self, item: &T) -> bool {
        self.0.binary_search(item).is_ok()
    }

    /// In order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl Rule {
    /// Whether the rule has no condition: it matches every request in its scope.
    pub fn always_matches(&self) -> bool {
        self.capabilities.is_empty()
            && self.min_prompt_tokens == 0
            && self.max_prompt_tokens == u32::MAX
            && self.classes == 0
            && self.min_score <= 0.0
            && self.max_score >= 1.0
            && self.pattern.is_none()
            && self.tags.is_empty()
            && self.tenants.is_empty()
    }

    /// Whether every name `other` applies to is one this rule applies to.
    pub fn covers_scope_of(&self, other: &Rule) -> bool {
        (self.applies_to_auto || !other.applies_to_auto)
            && self.applies_to_tiers & other.applies_to_tiers == other.applies_to_tiers
    }
}
