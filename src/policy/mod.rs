//! Policies, in four steps: TOML → [`raw`] serde types → [`validate`] (every error, warnings
//! apart, into a resolved table) → [`compile`] (patterns, price orders, hints) →
//! [`fingerprint`]. The result is an immutable [`CompiledPolicy`].

mod compile;
mod fingerprint;
mod raw;
mod table;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::diagnostic::{Diagnostic, DiagnosticKind, Severity, Source};
use crate::features::{Target, TargetKind};
use crate::patterns::Patterns;
use crate::suggest::Names;

#[cfg(feature = "watch")]
pub(crate) use raw::read_bounded;
pub use table::ModelMeta;
pub(crate) use table::{
    Action, Alias, Allowed, Classifier, Limits, Model, Rule, Signal, Tenant, Tier,
};

/// The default policy, compiled into the binary.
pub const EMBEDDED_POLICY: &str = include_str!("../../policies/default.toml");

/// A compiled, immutable routing table.
///
/// Built once from TOML ([`CompiledPolicy::from_toml`], [`CompiledPolicy::from_file`]), then read
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
    /// Whether requests from undeclared tenants, or with none, are rejected.
    pub(crate) deny_unknown_tenants: bool,
    /// Classifier signals first, then rule patterns; run once over the last user message.
    pub(crate) patterns: Patterns,
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

/// How a policy is loaded.
///
/// ```
/// use fluxroute::{CompiledPolicy, LoadOptions};
/// let mut options = LoadOptions::default();
/// options.catalog_anywhere = true;
/// let loaded = CompiledPolicy::from_toml_with(fluxroute::EMBEDDED_POLICY, "default.toml", options)?;
/// assert_eq!(loaded.policy.name(), "default");
/// # Ok::<(), fluxroute::PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Let a `catalog` include name a file outside the policy's directory (`../shared.toml`,
    /// an absolute path). Off by default, so a policy cannot make the engine read any file.
    pub catalog_anywhere: bool,
}

/// A policy that loaded, with the warnings found on the way.
#[derive(Debug)]
#[non_exhaustive]
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
        Self::from_toml_with(text, origin, LoadOptions::default())
    }

    /// [`CompiledPolicy::from_toml`] with options.
    pub fn from_toml_with(
        text: &str,
        origin: &str,
        options: LoadOptions,
    ) -> Result<Loaded, PolicyError> {
        let (policy, diagnostics) = check(Source::new(origin, text), options);
        match policy {
            Some(policy) => Ok(Loaded {
                policy,
                warnings: diagnostics,
            }),
            None => Err(PolicyError::new(diagnostics)),
        }
    }

    /// Reads and compiles a policy file: a regular file of at most 16 MiB.
    pub fn from_file(path: &Path) -> Result<Loaded, PolicyError> {
        Self::from_file_with(path, LoadOptions::default())
    }

    /// [`CompiledPolicy::from_file`] with options.
    pub fn from_file_with(path: &Path, options: LoadOptions) -> Result<Loaded, PolicyError> {
        let origin = path.display().to_string();
        let text = raw::read_bounded(path).map_err(|e| {
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
        Self::from_toml_with(&text, &origin, options)
    }

    /// Every diagnostic (errors and warnings) of a policy, without keeping the compiled table.
    pub fn validate(text: &str, origin: &str) -> Vec<Diagnostic> {
        check(Source::new(origin, text), LoadOptions::default()).1
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

    /// The metadata of the catalog model `id` (`[models.meta]`), or `None` when the catalog
    /// has no such model.
    pub fn model_meta(&self, id: &str) -> Option<&ModelMeta> {
        self.models.iter().find(|m| m.id == id).map(|m| &m.meta)
    }

    /// The provider of the catalog model `id` (`openai`, `anthropic`, ...), or `None` when the
    /// catalog has no such model.
    pub fn model_provider(&self, id: &str) -> Option<&str> {
        self.models
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.provider.as_str())
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

    /// The largest request body this policy accepts, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.limits.max_body_bytes
    }
}

/// Where the values of `[classifier] thresholds` (`standard`, `complex`, `reasoning`) lie
/// in a policy's text; `None` when it does not parse or has none.
#[cfg(feature = "simulate")]
pub(crate) fn threshold_spans(text: &str) -> Option<[std::ops::Range<usize>; 3]> {
    let raw: raw::RawPolicy = toml::from_str(text).ok()?;
    let t = raw.classifier?.thresholds;
    Some([t.standard.span(), t.complex.span(), t.reasoning.span()])
}

/// Parses, validates and compiles a policy; returns the compiled table when no diagnostic is
/// an error, and every diagnostic: errors first, then warnings, each in file order (the
/// policy's own file before an included catalog).
fn check(mut src: Source, options: LoadOptions) -> (Option<CompiledPolicy>, Vec<Diagnostic>) {
    let (raw, included) = match raw::parse_policy(&mut src, options.catalog_anywhere) {
        Ok(parsed) => parsed,
        Err(d) => return (None, vec![d]),
    };
    let mut validated = validate::validate(&src, raw);
    let mut errors = included;
    errors.extend(validated.errors);
    let mut warnings = validated.warnings;
    // The pattern set is built even when other errors keep the policy from compiling, so that
    // a set that does not compile is reported with them.
    let patterns = compile::patterns(&mut validated.table).map_err(|e| {
        let message = format!("the patterns together do not compile: {e}");
        src.diagnostic(
            Severity::Error,
            DiagnosticKind::InvalidRegex,
            None,
            "classifier.signals",
            message,
        )
    });
    let policy = match patterns {
        Ok(patterns) if errors.is_empty() => Some(compile::compile(validated.table, patterns)),
        Ok(_) => None,
        Err(d) => {
            errors.push(d);
            None
        }
    };
    let main = src.origin().to_owned();
    let order = |d: &Diagnostic| (d.origin != main, d.line, d.column);
    errors.sort_by_key(order);
    warnings.sort_by_key(order);
    errors.extend(warnings);
    (policy, errors)
}
