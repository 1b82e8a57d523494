//! Validation: one pass over the raw policy that records every error and warning (apart) and
//! resolves names to indices, giving the table [`compile`](super::compile) builds on. The
//! table is only compiled when no error was found.

mod advice;
mod names;
mod rules;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::ops::Range;

use toml::Spanned;

use super::raw::{Name, RawPolicy, span_of};
use super::{
    AUTO_ALIAS, Alias, Classifier, Limits, MAX_FALLBACKS, Model, ModelMeta, PINNED_PREFIX, Rule,
    Tenant, Tier,
};
use crate::clip;
use crate::diagnostic::{Diagnostic, DiagnosticKind as K, Severity, Source};
use crate::features::Target;
use crate::patterns::MAX_PATTERNS;
use crate::suggest::Names;

/// The most models a catalog may hold: decisions keep model indices in 16 bits.
pub(crate) const MAX_MODELS: usize = u16::MAX as usize;
/// The most tiers a policy may hold: rule scopes are a `u64`.
const MAX_TIERS: usize = 64;
/// The largest `limits.max_body_bytes` a policy may set.
const MAX_BODY_BYTES: u32 = 64 << 20;
/// The longest model id, alias, tenant or policy name, in bytes.
pub(crate) const MAX_NAME: usize = 256;

/// The most entries one model's `meta` may have.
pub(crate) const MAX_META: usize = 64;

/// The longest value in a model's `meta`, in bytes.
pub(crate) const MAX_META_VALUE: usize = 4096;

/// A policy with every name resolved to an index: what compilation starts from.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: String,
    pub description: String,
    pub created: u64,
    pub passthrough: bool,
    pub max_fallbacks: usize,
    pub limits: Limits,
    pub models: Vec<Model>,
    /// Tiers with their models in catalog order (price orders are compilation's).
    pub tiers: Vec<Tier>,
    pub pinned: Vec<Alias>,
    pub redirects: Vec<Alias>,
    pub names: HashMap<Box<str>, Target>,
    pub auto_tiers: [usize; 4],
    pub classifier: Classifier,
    pub rules: Vec<Rule>,
    pub tenants: HashMap<Box<str>, Tenant>,
    /// Whether requests from undeclared tenants, or with none, are rejected.
    pub deny_unknown_tenants: bool,
    /// Classifier signals first, then rule patterns, each valid on its own.
    pub patterns: Vec<String>,
}

/// The outcome of validation: the table (meaningful only without errors), and every error and
/// every warning, in the order found.
#[derive(Debug)]
pub(crate) struct Validated {
    pub table: Table,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// Validates a parsed policy whose spans point into `src`.
pub(crate) fn validate(src: &Source, raw: RawPolicy) -> Validated {
    let mut checker = Checker {
        src,
        errors: Vec::new(),
        warnings: Vec::new(),
        model_hints: None,
        hints_left: MAX_HINTS,
    };
    let table = checker.table(&raw);
    Validated {
        table,
        errors: checker.errors,
        warnings: checker.warnings,
    }
}

/// Name → index of its first definition (later duplicates are reported, not indexed).
fn first_index<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut out = HashMap::new();
    for (i, n) in names.enumerate() {
        out.entry(n).or_insert(i);
    }
    out
}

struct Checker<'s> {
    src: &'s Source,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// The catalog's model ids for hints, prepared at the first unknown model.
    model_hints: Option<Names>,
    /// Unknown models that may still get a hint: a broken catalog of thousands of names must
    /// not cost a hint search for each of them.
    hints_left: usize,
}

/// The most unknown model names of one policy that get a "did you mean" hint.
const MAX_HINTS: usize = 64;

impl Checker<'_> {
    fn error(&mut self, kind: K, span: Option<Range<usize>>, path: String, msg: String) {
        let d = self.src.diagnostic(Severity::Error, kind, span, path, msg);
        self.errors.push(d);
    }

    fn warn(&mut self, kind: K, span: Option<Range<usize>>, path: String, msg: String) {
        let d = self
            .src
            .diagnostic(Severity::Warning, kind, span, path, msg);
        self.warnings.push(d);
    }

    /// The one range check: reports a value outside what `expected` says it must be.
    fn out_of_range<T>(&mut self, v: &Spanned<T>, path: &str, expected: &str, got: impl Display) {
        let msg = format!("must be {expected}, got {got}");
        self.error(K::InvalidValue, span_of(v), path.to_owned(), msg);
    }

    /// A whole number in `min..=u32::MAX`; `min` when it is not.
    fn whole(&mut self, v: &Spanned<u64>, min: u32, path: &str) -> u32 {
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= min => n,
            _ => {
                let expected = format!("between {min} and {}", u32::MAX);
                self.out_of_range(v, path, &expected, v.get_ref());
                min
            }
        }
    }

    /// A count: a whole number in `1..=u32::MAX`.
    /// A model's `meta`: at most [`MAX_META`] entries, keys of 1 to [`MAX_NAME`] bytes and
    /// values of at most [`MAX_META_VALUE`], neither with control characters.
    fn meta(
        &mut self,
        meta: Option<&Spanned<BTreeMap<String, Spanned<String>>>>,
        path: &str,
    ) -> ModelMeta {
        let Some(meta) = meta else {
            return ModelMeta::default();
        };
        if meta.get_ref().len() > MAX_META {
            let msg = format!(
                "`meta` has {} entries, above the limit of {MAX_META}",
                meta.get_ref().len()
            );
            self.error(K::InvalidValue, span_of(meta), path.to_owned(), msg);
        }
        let mut out = Vec::with_capacity(meta.get_ref().len().min(MAX_META));
        for (key, value) in meta.get_ref().iter().take(MAX_META) {
            let at = format!("{path}.{}", clip::name(key));
            let why = if key.is_empty() || key.len() > MAX_NAME {
                Some(format!("a key must be 1 to {MAX_NAME} bytes"))
            } else if value.get_ref().len() > MAX_META_VALUE {
                Some(format!("a value must be at most {MAX_META_VALUE} bytes"))
            } else if key
                .chars()
                .chain(value.get_ref().chars())
                .any(char::is_control)
            {
                Some("keys and values must not hold control characters".to_owned())
            } else {
                None
            };
            match why {
                Some(msg) => self.error(K::InvalidValue, span_of(value), at, msg),
                None => out.push((key.clone(), value.get_ref().clone())),
            }
        }
        ModelMeta(out)
    }

    fn count(&mut self, v: &Spanned<u64>, path: &str) -> u32 {
        self.whole(v, 1, path)
    }

    /// A number in `0..=1`; 0 when it is not.
    fn unit(&mut self, v: &Spanned<f64>, path: &str) -> f64 {
        let x = *v.get_ref();
        if (0.0..=1.0).contains(&x) {
            return x;
        }
        self.out_of_range(v, path, "between 0 and 1", x);
        0.0
    }

    /// A price per million tokens: a finite number of USD, at least 0; 0 when it is not.
    fn price(&mut self, v: &Spanned<f64>, path: &str) -> f64 {
        let x = *v.get_ref();
        if x.is_finite() && x >= 0.0 {
            return x;
        }
        self.out_of_range(v, path, "a finite number of USD >= 0", x);
        0.0
    }

    /// A name that may reach a response header (`X-Flux-Model`, `X-Flux-Policy`) or a log
    /// line: 1 to [`MAX_NAME`] bytes of visible ASCII, so no control character, line break or
    /// space can split a header. Returns whether it is one.
    fn header_safe(&mut self, name: &Name, path: &str, what: &str) -> bool {
        let n = name.get_ref();
        let why = if n.is_empty() {
            "must not be empty".to_owned()
        } else if n.len() > MAX_NAME {
            format!("is {} bytes, above the limit of {MAX_NAME}", n.len())
        } else if let Some(c) = n.chars().find(|c| !c.is_ascii_graphic()) {
            format!(
                "holds {c:?}: only visible ASCII (no spaces or control characters) may appear in a header"
            )
        } else {
            return true;
        };
        let msg = format!("{what} `{}` {why}", n.escape_debug());
        self.error(K::InvalidName, span_of(name), path.to_owned(), msg);
        false
    }

    /// Resolves the whole policy, recording every problem on the way.
    fn table(&mut self, raw: &RawPolicy) -> Table {
        let meta = &raw.policy;
        self.header_safe(&meta.name, "policy.name", "the policy name");
        let max_fallbacks = match &meta.max_fallbacks {
            None => 3,
            Some(v) if *v.get_ref() as usize <= MAX_FALLBACKS => *v.get_ref() as usize,
            Some(v) => {
                let expected = format!("at most {MAX_FALLBACKS}");
                self.out_of_range(v, "policy.max_fallbacks", &expected, v.get_ref());
                0
            }
        };
        let limits = self.limits(raw);
        let tiers = self.tiers(raw);
        let tier_index: HashMap<&str, usize> =
            first_index(raw.tiers.iter().map(|t| t.name.get_ref().as_str()));
        let (models, tiers) = self.models(raw, &tier_index, tiers);
        let model_index: HashMap<&str, usize> =
            first_index(raw.models.iter().map(|m| m.id.get_ref().as_str()));
        let pinned = self.pinned(raw, &model_index);
        let redirects = self.redirects(raw, &model_index);
        let names = self.names(raw, &tiers, &models, &model_index, &pinned, &redirects);
        let auto_tiers = self.auto(raw, &tier_index);

        let mut patterns: Vec<String> = Vec::new();
        let classifier =
            self.classifier(raw.classifier.as_ref(), raw.scorer.as_ref(), &mut patterns);
        let index = rules::Index {
            tiers: &tier_index,
            models: &model_index,
            names: &names,
        };
        let rules = self.rules(raw, &index, &models, &mut patterns);
        let tenants = self.tenants(raw, &index);
        let deny_unknown_tenants = self.unknown_tenants(raw);
        self.advise(raw, &models, &tiers);

        if models.len() > MAX_MODELS {
            let msg = format!("at most {MAX_MODELS} models, got {}", models.len());
            self.error(K::InvalidValue, None, "models".into(), msg);
        }
        if patterns.len() > MAX_PATTERNS {
            let msg = format!(
                "at most {MAX_PATTERNS} patterns (signals plus rule patterns), got {}",
                patterns.len()
            );
            self.error(K::InvalidValue, None, "classifier.signals".into(), msg);
        }
        Table {
            name: meta.name.get_ref().clone(),
            description: meta.description.clone(),
            created: meta.created,
            passthrough: meta.passthrough,
            max_fallbacks,
            limits,
            models,
            tiers,
            pinned,
            redirects,
            names,
            auto_tiers,
            classifier,
            rules,
            tenants,
            deny_unknown_tenants,
            patterns,
        }
    }

    fn limits(&mut self, raw: &RawPolicy) -> Limits {
        let l = &raw.limits;
        let mut max_body = self.count(&l.max_body_bytes, "limits.max_body_bytes");
        if max_body > MAX_BODY_BYTES {
            // A body is buffered whole (and a simulation line with it): the cap bounds memory.
            let expected = format!("at most {MAX_BODY_BYTES} (64 MiB)");
            self.out_of_range(
                &l.max_body_bytes,
                "limits.max_body_bytes",
                &expected,
                max_body,
            );
            max_body = MAX_BODY_BYTES;
        }
        let margin = self.unit(&l.context_margin, "limits.context_margin");
        Limits {
            max_body_bytes: max_body as usize,
            max_messages: self.count(&l.max_messages, "limits.max_messages"),
            output_reserve: self.count(&l.output_reserve, "limits.output_reserve"),
            expected_output_tokens: self.whole(
                &l.expected_output_tokens,
                0,
                "limits.expected_output_tokens",
            ),
            margin_bp: (margin * 10_000.0).round() as u32,
            image_tokens: self.whole(&l.image_tokens, 0, "limits.image_tokens"),
            audio_tokens: self.whole(&l.audio_tokens, 0, "limits.audio_tokens"),
            file_tokens: self.whole(&l.file_tokens, 0, "limits.file_tokens"),
            file_bytes_per_token: self
                .count(&l.file_bytes_per_token, "limits.file_bytes_per_token"),
        }
    }

    fn tiers(&mut self, raw: &RawPolicy) -> Vec<Tier> {
        if raw.tiers.is_empty() {
            self.error(
                K::EmptyTier,
                None,
                "tiers".into(),
                "a policy needs at least one tier".into(),
            );
        }
        if raw.tiers.len() > MAX_TIERS {
            let msg = format!("at most {MAX_TIERS} tiers, got {}", raw.tiers.len());
            self.error(K::InvalidValue, None, "tiers".into(), msg);
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for (i, t) in raw.tiers.iter().enumerate() {
            let name = t.name.get_ref();
            if name.is_empty() || !seen.insert(name) {
                let msg = format!("duplicate or empty tier name `{name}`");
                self.error(
                    K::Duplicate,
                    span_of(&t.name),
                    format!("tiers[{i}].name"),
                    msg,
                );
            }
            let alias = t.alias.get_ref();
            let safe = self.header_safe(&t.alias, &format!("tiers[{i}].alias"), "tier alias");
            if safe && (alias.starts_with(PINNED_PREFIX) || alias == AUTO_ALIAS) {
                let msg = format!(
                    "tier alias `{alias}` must not be `{AUTO_ALIAS}` or start with `{PINNED_PREFIX}`"
                );
                self.error(
                    K::InvalidName,
                    span_of(&t.alias),
                    format!("tiers[{i}].alias"),
                    msg,
                );
            }
            out.push(Tier {
                name: name.clone(),
                alias: alias.clone(),
                description: t.description.clone(),
                models: Vec::new(),
                by_input: Vec::new(),
                by_output: Vec::new(),
                min_output_limit: 0,
            });
        }
        out
    }

    fn models(
        &mut self,
        raw: &RawPolicy,
        tier_index: &HashMap<&str, usize>,
        mut tiers: Vec<Tier>,
    ) -> (Vec<Model>, Vec<Tier>) {
        if raw.models.is_empty() {
            let msg = "the policy has no models (inline or from its catalog)".to_owned();
            self.error(K::InvalidValue, None, "models".into(), msg);
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for (i, m) in raw.models.iter().enumerate() {
            let id = m.id.get_ref();
            let path = |f: &str| format!("models[{i}].{f}");
            if id.trim().is_empty() || !seen.insert(id) {
                let msg = format!("duplicate or empty model id `{id}`");
                self.error(K::Duplicate, span_of(&m.id), path("id"), msg);
            } else {
                self.header_safe(&m.id, &path("id"), "model id");
            }
            let tier = match tier_index.get(m.tier.get_ref().as_str()) {
                Some(&t) => t,
                None => {
                    let msg = format!("model `{id}` names unknown tier `{}`", m.tier.get_ref());
                    self.error(K::UnknownTier, span_of(&m.tier), path("tier"), msg);
                    0
                }
            };
            let context_window = self.count(&m.context_window, &path("context_window"));
            let max_output_tokens = self.count(&m.max_output_tokens, &path("max_output_tokens"));
            // A bad window is already reported; comparing against it would only repeat that.
            if *m.context_window.get_ref() > 0 && max_output_tokens > context_window {
                let msg = format!(
                    "max_output_tokens {max_output_tokens} exceeds the context window {context_window}"
                );
                self.error(
                    K::InvalidValue,
                    span_of(&m.max_output_tokens),
                    path("max_output_tokens"),
                    msg,
                );
            }
            let input_per_mtok = self.price(&m.input_per_mtok, &path("input_per_mtok"));
            let output_per_mtok = self.price(&m.output_per_mtok, &path("output_per_mtok"));
            if let Some(t) = tiers.get_mut(tier) {
                t.models.push(out.len());
            }
            let meta = self.meta(m.meta.as_ref(), &path("meta"));
            out.push(Model {
                meta,
                id: id.clone(),
                provider: m.provider.clone(),
                tier,
                context_window,
                max_output_tokens,
                capabilities: m.capabilities.iter().copied().collect(),
                input_per_mtok,
                output_per_mtok,
            });
        }
        for (i, (t, rt)) in tiers.iter().zip(&raw.tiers).enumerate() {
            if t.models.is_empty() {
                let msg = format!("tier `{}` has no models", t.name);
                self.error(K::EmptyTier, span_of(&rt.name), format!("tiers[{i}]"), msg);
            }
        }
        (out, tiers)
    }

    fn model_ref(
        &mut self,
        name: &Name,
        index: &HashMap<&str, usize>,
        path: String,
        what: &str,
    ) -> Option<usize> {
        let found = index.get(name.get_ref().as_str()).copied();
        if found.is_none() {
            let mut msg = format!("{what} `{}` is not a catalog model", name.get_ref());
            if self.hints_left > 0 {
                self.hints_left -= 1;
                let hints = self
                    .model_hints
                    .get_or_insert_with(|| Names::new(index.keys().copied()));
                if let Some(hint) = hints.closest(name.get_ref()) {
                    msg.push_str(&format!("; did you mean `{hint}`"));
                }
            }
            self.error(K::UnknownModel, span_of(name), path, msg);
        }
        found
    }

    fn auto(&mut self, raw: &RawPolicy, tier_index: &HashMap<&str, usize>) -> [usize; 4] {
        let a = &raw.auto;
        let mut out = [0; 4];
        for (slot, (class, name)) in out.iter_mut().zip([
            ("simple", &a.simple),
            ("standard", &a.standard),
            ("complex", &a.complex),
            ("reasoning", &a.reasoning),
        ]) {
            match tier_index.get(name.get_ref().as_str()) {
                Some(&t) => *slot = t,
                None => {
                    let msg = format!("class `{class}` maps to unknown tier `{}`", name.get_ref());
                    self.error(K::UnknownTier, span_of(name), format!("auto.{class}"), msg);
                }
            }
        }
        out
    }
}
