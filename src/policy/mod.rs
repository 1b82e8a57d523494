//! Policies: TOML → raw serde types → validation (every diagnostic at once) → [`CompiledPolicy`].

mod check;
mod raw;
mod union;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use std::cell::RefCell;

use regex_automata::meta::Regex;
use regex_automata::{Input, PatternSet};

use crate::capability::CapabilitySet;
use crate::classify::Complexity;
use crate::diagnostic::{Diagnostic, DiagnosticKind, Severity, Source};
use crate::suggest::Names;

pub(crate) use check::{MAX_PATTERNS, check};
pub(crate) use union::Union;

/// The default policy, compiled into the binary.
pub const EMBEDDED_POLICY: &str = include_str!("../../policies/default.toml");

/// What a `model` name resolves to under one compiled policy.
///
/// Obtained from [`CompiledPolicy::resolve`]; only meaningful for the policy that made it.
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
}

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
    pub file_tokens: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Signal {
    pub name: String,
    pub weight: f32,
    pub min_class: Option<Complexity>,
    /// For a counted signal, its matches at which it adds its whole weight.
    pub saturation: Option<u32>,
}

/// The compiled classifier; signal `i` is pattern `i` of the policy's `RegexSet`.
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
    /// Index into the policy's `RegexSet`.
    pub pattern: Option<usize>,
    pub tags: Vec<String>,
    pub tenants: Vec<String>,
    pub action: Action,
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

/// A compiled, immutable routing table.
///
/// Built once from TOML ([`CompiledPolicy::from_toml`], [`CompiledPolicy::load`]), then read
/// by every request: [`classify`](CompiledPolicy::classify) turns a body into
/// [`RequestFeatures`](crate::RequestFeatures), [`route`](CompiledPolicy::route) turns those
/// into a [`Decision`](crate::Decision).
///
/// ```
/// use fluxroute::{CallerContext, CompiledPolicy};
/// let policy = CompiledPolicy::embedded();
/// let body = br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}"#;
/// let features = policy.classify(body)?;
/// let decision = policy.route(&features, &CallerContext::default())?;
/// assert!(decision.routed());
/// assert_eq!(decision.headers()[0].0, "X-Flux-Model");
/// # Ok::<(), fluxroute::RouteError>(())
/// ```
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) created: u64,
    pub(crate) fingerprint: String,
    /// `name@fingerprint`, the `X-Flux-Policy` header.
    pub(crate) header: String,
    pub(crate) passthrough: bool,
    pub(crate) max_fallbacks: usize,
    pub(crate) limits: Limits,
    pub(crate) models: Vec<Model>,
    pub(crate) tiers: Vec<Tier>,
    pub(crate) pinned: Vec<Alias>,
    pub(crate) redirects: Vec<Alias>,
    /// Every resolvable name.
    pub(crate) names: HashMap<Box<str>, Target>,
    /// The same names, prepared for "did you mean" hints on unknown models.
    pub(crate) hints: Names,
    /// Tier for `simple`, `standard`, `complex`, `reasoning`.
    pub(crate) auto_tiers: [usize; 4],
    pub(crate) classifier: Classifier,
    pub(crate) rules: Vec<Rule>,
    pub(crate) tenants: HashMap<Box<str>, Tenant>,
    /// Classifier signals first, then rule patterns; run once over the last user message.
    pub(crate) patterns: Patterns,
}

/// The policy's patterns, compiled together so one pass finds every one that matches.
#[derive(Debug)]
pub(crate) struct Patterns {
    pub sources: Vec<String>,
    /// `None` when there are no patterns.
    pub regex: Option<Regex>,
    /// The same patterns as one lazy DFA walked in a tight loop: the fast way to the same
    /// answer, `None` where it cannot be built.
    pub union: Option<Union>,
    /// The counted signals, in signal order (at most [`MAX_COUNTED`]).
    pub counted: Vec<Counter>,
}

/// The most counted signals a policy may hold.
pub(crate) const MAX_COUNTED: usize = 8;

/// A counted signal: its pattern on its own, to count matches with.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    /// Its index among the patterns (and the signals).
    pub pattern: usize,
    pub saturation: u32,
    pub regex: Regex,
}

/// What the patterns found in a text: bit `i` when pattern `i` matched, and the matches of
/// each counted signal (in the order of [`Patterns::counted`], up to its saturation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Matches {
    pub bits: u64,
    pub counts: [u32; MAX_COUNTED],
}

thread_local! {
    /// Reused by every match on this thread, so matching allocates nothing.
    static MATCHED: RefCell<PatternSet> = RefCell::new(PatternSet::new(MAX_PATTERNS));
}

impl Patterns {
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Every pattern once over `text`, then the counted signals that matched, each up to its
    /// saturation.
    pub fn find(&self, text: &str) -> Matches {
        let bits = self.matches(text);
        let mut counts = [0; MAX_COUNTED];
        for (n, c) in counts.iter_mut().zip(&self.counted) {
            if bits & (1u64 << (c.pattern % 64)) != 0 {
                let limit = usize::try_from(c.saturation).unwrap_or(usize::MAX);
                let found = c.regex.find_iter(Input::new(text)).take(limit).count();
                *n = u32::try_from(found).unwrap_or(u32::MAX);
            }
        }
        Matches { bits, counts }
    }

    /// Bit `i` set when pattern `i` matches somewhere in `text`.
    pub fn matches(&self, text: &str) -> u64 {
        let Some(re) = &self.regex else {
            return 0;
        };
        if let Some(bits) = self.union.as_ref().and_then(|u| u.matches(text.as_bytes())) {
            return bits;
        }
        let bits = |set: &PatternSet| {
            set.iter()
                .fold(0u64, |m, p| m | 1u64 << (p.as_usize() % 64))
        };
        let input = Input::new(text);
        MATCHED
            .try_with(|cell| {
                let mut set = cell.try_borrow_mut().ok()?;
                set.clear();
                re.which_overlapping_matches(&input, &mut set);
                Some(bits(&set))
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let mut set = PatternSet::new(re.pattern_len());
                re.which_overlapping_matches(&input, &mut set);
                bits(&set)
            })
    }
}

/// The most fallbacks a decision lists.
pub const MAX_FALLBACKS: usize = 8;

/// The name `flux-auto`.
pub const AUTO_ALIAS: &str = "flux-auto";

/// The prefix every pinned alias has.
pub const PINNED_PREFIX: &str = "flux-pinned-";

/// A policy that failed to load: every diagnostic found, errors and warnings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    diagnostics: Vec<Diagnostic>,
}

impl PolicyError {
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        PolicyError { diagnostics }
    }

    /// Every diagnostic, in file order within each pass.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        write!(f, "invalid policy ({errors} error(s))")?;
        for d in &self.diagnostics {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// A policy that loaded, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled table.
    pub policy: CompiledPolicy,
    /// Warnings (never errors).
    pub warnings: Vec<Diagnostic>,
}

impl CompiledPolicy {
    /// Parses, validates and compiles a policy from TOML text; `origin` names it in diagnostics
    /// and is the path a `catalog` include is resolved against (its directory), the one time
    /// this reads a file.
    ///
    /// ```
    /// let loaded = fluxroute::CompiledPolicy::from_toml(fluxroute::EMBEDDED_POLICY, "default.toml")?;
    /// assert_eq!(loaded.policy.name(), "default");
    /// # Ok::<(), fluxroute::PolicyError>(())
    /// ```
    pub fn from_toml(text: &str, origin: &str) -> Result<Loaded, PolicyError> {
        let (policy, diagnostics) = check(Source::new(origin, text));
        match policy {
            Some(policy) => Ok(Loaded {
                policy,
                warnings: diagnostics,
            }),
            None => Err(PolicyError::new(diagnostics)),
        }
    }

    /// Reads and compiles a policy file.
    pub fn load(path: &Path) -> Result<Loaded, PolicyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::new(vec![Diagnostic {
                severity: Severity::Error,
                kind: DiagnosticKind::Io,
                message: format!("cannot read policy: {e}"),
                origin: origin.clone(),
                line: 0,
                column: 0,
                path: String::new(),
            }])
        })?;
        Self::from_toml(&text, &origin)
    }

    /// Every diagnostic (errors and warnings) of a policy, without keeping the compiled table.
    pub fn validate(text: &str, origin: &str) -> Vec<Diagnostic> {
        check(Source::new(origin, text)).1
    }

    /// The embedded default policy (`policies/default.toml`).
    pub fn embedded() -> CompiledPolicy {
        match Self::from_toml(EMBEDDED_POLICY, "<embedded>") {
            Ok(loaded) => loaded.policy,
            // PANIC SAFETY: the embedded policy is checked by the test suite
            // (`embedded_policy_is_valid`), so this arm is unreachable in a tested build.
            #[allow(clippy::panic)]
            Err(e) => panic!("embedded policy is invalid: {e}"),
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// A stable hash of the policy's canonical form (16 hex digits): formatting, comments and
    /// key order do not change it; any change of meaning does.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Resolves a `model` name to what it means under this policy.
    pub fn resolve(&self, name: &str) -> Option<Target> {
        self.names.get(name).copied()
    }

    /// Every routable name, in `/v1/models` order.
    pub fn names(&self) -> Vec<&str> {
        let mut out = vec![AUTO_ALIAS];
        out.extend(self.tiers.iter().map(|t| t.alias.as_str()));
        out.extend(self.pinned.iter().map(|a| a.name.as_str()));
        if self.passthrough {
            out.extend(self.models.iter().map(|m| m.id.as_str()));
        }
        out
    }

    /// The backing model ids, in catalog order.
    pub fn model_ids(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(|m| m.id.as_str())
    }

    /// The requested name a target was resolved from.
    pub(crate) fn target_name(&self, target: Target) -> &str {
        match target.0 {
            TargetKind::Auto => AUTO_ALIAS,
            TargetKind::Tier(t) => self.tiers.get(t).map_or("", |t| t.alias.as_str()),
            TargetKind::Pinned(a) => self.pinned.get(a).map_or("", |a| a.name.as_str()),
            TargetKind::Passthrough(m) => self.models.get(m).map_or("", |m| m.id.as_str()),
            TargetKind::Redirect(r) => self.redirects.get(r).map_or("", |a| a.name.as_str()),
        }
    }
}

impl CompiledPolicy {
    /// The largest request body this policy accepts, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.limits.max_body_bytes
    }
}
