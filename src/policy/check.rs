//! Validation and compilation: one pass over the raw policy that records every diagnostic and
//! builds the compiled table, which is kept only when no diagnostic is an error.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use regex_automata::meta::Regex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::raw::{Name, RawCatalog, RawClassifier, RawPolicy, RawRule, RawSaturating};
use super::{
    AUTO_ALIAS, Action, Alias, Allowed, Classifier, CompiledPolicy, Limits, MAX_COUNTED,
    MAX_FALLBACKS, Model, PINNED_PREFIX, Rule, Signal, Target, TargetKind, Tenant, Tier,
};
use crate::classify::Complexity;
use crate::diagnostic::{Diagnostic, DiagnosticKind as K, Severity, Source};
use crate::suggest::Names;

/// The most patterns (signals plus rule patterns) a policy may hold: matches are a `u64`.
pub(crate) const MAX_PATTERNS: usize = 64;

/// The most models a catalog may hold: decisions keep model indices in 16 bits.
pub(crate) const MAX_MODELS: usize = u16::MAX as usize;
/// The most tiers a policy may hold: rule scopes are a `u64`.
const MAX_TIERS: usize = 64;
const WEIGHT_TOLERANCE: f64 = 1e-6;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Checks a policy; returns the compiled table when no diagnostic is an error.
pub(crate) fn check(mut src: Source) -> (Option<CompiledPolicy>, Vec<Diagnostic>) {
    let mut raw: RawPolicy = match parse(&src, src.text(), 0) {
        Ok(raw) => raw,
        Err(d) => return (None, vec![d]),
    };
    let mut found = Vec::new();
    if let Some(name) = raw.policy.catalog.clone() {
        match include_catalog(&mut src, &mut raw, &name) {
            Ok(duplicates) => found = duplicates,
            Err(d) => return (None, vec![d]),
        }
    }
    let mut checker = Checker {
        src: &src,
        diagnostics: found,
        model_hints: None,
        hints_left: MAX_HINTS,
    };
    let policy = checker.compile(raw);
    let mut diagnostics = checker.diagnostics;
    let main = src.origin();
    diagnostics.sort_by_key(|d| {
        (
            d.severity == Severity::Warning,
            d.origin != main,
            d.line,
            d.column,
        )
    });
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    (if failed { None } else { policy }, diagnostics)
}

/// Parses TOML text whose spans start at `offset` in `src`; a failure is one `syntax` diagnostic.
fn parse<T: serde::de::DeserializeOwned>(
    src: &Source,
    text: &str,
    offset: usize,
) -> Result<T, Diagnostic> {
    toml::from_str(text).map_err(|e| {
        let span = e.span();
        let path = span
            .as_ref()
            .map(|s| key_path_at(text, s.start))
            .unwrap_or_default();
        let message = e.message().trim_end_matches(['.', '\n']).to_owned();
        let span = span.map(|s| s.start + offset..s.end + offset);
        src.diagnostic(Severity::Error, K::Syntax, span, path, message)
    })
}

/// Reads the catalog a policy names (relative to the policy's directory) and puts its models
/// before the policy's own and its pinned aliases beside them. Returns the aliases both define
/// (the policy's own is kept); an unreadable or unparsable catalog is the error.
fn include_catalog(
    src: &mut Source,
    raw: &mut RawPolicy,
    name: &Name,
) -> Result<Vec<Diagnostic>, Diagnostic> {
    let dir = std::path::Path::new(src.origin())
        .parent()
        .unwrap_or(std::path::Path::new(""));
    let path = dir.join(name.get_ref());
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let msg = format!("cannot read catalog {}: {e}", path.display());
        src.diagnostic(Severity::Error, K::Io, span_of(name), "policy.catalog", msg)
    })?;
    let offset = src.include(&path.display().to_string(), &text);
    let catalog: RawCatalog = parse(src, &text, offset)?;
    let catalog = catalog.shifted(offset);
    let own = std::mem::take(&mut raw.models);
    raw.models = catalog.models.into_iter().chain(own).collect();
    let mut duplicates = Vec::new();
    for (alias, model) in catalog.pinned {
        if let Some((existing, _)) = raw.pinned.get_key_value(&alias) {
            let msg = format!(
                "pinned alias `{}` is defined in the policy and in its catalog",
                alias.get_ref()
            );
            let path = format!("pinned.\"{}\"", alias.get_ref());
            duplicates.push(src.diagnostic(
                Severity::Error,
                K::Duplicate,
                span_of(existing),
                path,
                msg,
            ));
            continue;
        }
        raw.pinned.insert(alias, model);
    }
    Ok(duplicates)
}

/// Best-effort key path of a byte offset: the enclosing `[table]` plus the line's key.
fn key_path_at(text: &str, at: usize) -> String {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.starts_with('['))
        .unwrap_or_default();
    let header = before
        .get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned())
        .unwrap_or_default();
    match (header.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => header,
        (false, false) => format!("{header}.{key}"),
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
    diagnostics: Vec<Diagnostic>,
    /// The catalog's model ids for hints, prepared at the first unknown model.
    model_hints: Option<Names>,
    /// Unknown models that may still get a hint: a broken catalog of thousands of names must
    /// not cost a hint search for each of them.
    hints_left: usize,
}

/// The most unknown model names of one policy that get a "did you mean" hint.
const MAX_HINTS: usize = 64;

fn span_of<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    let span = s.span();
    // Defaults carry the empty span 0..0: they have no place in the file.
    (span.end > 0).then_some(span)
}

impl Checker<'_> {
    fn error(&mut self, kind: K, span: Option<Range<usize>>, path: String, msg: String) {
        let d = self.src.diagnostic(Severity::Error, kind, span, path, msg);
        self.diagnostics.push(d);
    }

    fn warn(&mut self, kind: K, span: Option<Range<usize>>, path: String, msg: String) {
        let d = self
            .src
            .diagnostic(Severity::Warning, kind, span, path, msg);
        self.diagnostics.push(d);
    }

    /// A count that must be in `1..=u32::MAX`.
    fn count(&mut self, v: &Spanned<u64>, path: &str) -> u32 {
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => n,
            _ => {
                let msg = format!("must be between 1 and {}, got {}", u32::MAX, v.get_ref());
                self.error(K::InvalidValue, span_of(v), path.to_owned(), msg);
                1
            }
        }
    }

    /// A number in `0..=1`.
    fn unit(&mut self, v: &Spanned<f64>, path: &str) -> f64 {
        let x = *v.get_ref();
        if (0.0..=1.0).contains(&x) {
            x
        } else {
            let msg = format!("must be between 0 and 1, got {x}");
            self.error(K::InvalidValue, span_of(v), path.to_owned(), msg);
            0.0
        }
    }

    fn price(&mut self, v: &Spanned<f64>, path: String) -> f64 {
        let x = *v.get_ref();
        if x.is_finite() && x >= 0.0 {
            x
        } else {
            let msg = format!("a price must be a finite number of USD >= 0, got {x}");
            self.error(K::InvalidValue, span_of(v), path, msg);
            0.0
        }
    }

    fn compile(&mut self, raw: RawPolicy) -> Option<CompiledPolicy> {
        let meta = &raw.policy;
        if meta.name.get_ref().trim().is_empty() {
            let msg = "the policy name must not be empty".to_owned();
            self.error(
                K::InvalidValue,
                span_of(&meta.name),
                "policy.name".into(),
                msg,
            );
        }
        let max_fallbacks = match &meta.max_fallbacks {
            None => 3,
            Some(v) if *v.get_ref() as usize <= MAX_FALLBACKS => *v.get_ref() as usize,
            Some(v) => {
                let msg = format!("at most {MAX_FALLBACKS} fallbacks, got {}", v.get_ref());
                self.error(
                    K::InvalidValue,
                    span_of(v),
                    "policy.max_fallbacks".into(),
                    msg,
                );
                0
            }
        };
        let limits = self.limits(&raw);
        let tiers = self.tiers(&raw);
        let tier_index: HashMap<&str, usize> =
            first_index(raw.tiers.iter().map(|t| t.name.get_ref().as_str()));
        let (models, tiers) = self.models(&raw, &tier_index, tiers);
        let model_index: HashMap<&str, usize> =
            first_index(raw.models.iter().map(|m| m.id.get_ref().as_str()));
        let pinned = self.pinned(&raw, &model_index);
        let redirects = self.redirects(&raw, &model_index);
        let names = self.names(&raw, &tiers, &models, &model_index, &pinned, &redirects);
        let auto_tiers = self.auto(&raw, &tier_index);

        let mut patterns: Vec<String> = Vec::new();
        let classifier = self.classifier(raw.classifier.as_ref(), &mut patterns);
        let rules = self.rules(
            &raw,
            &tier_index,
            &model_index,
            &names,
            &models,
            &mut patterns,
        );
        let tenants = self.tenants(&raw, &model_index, &names);

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
        let set = if patterns.is_empty() {
            Ok(None)
        } else {
            Regex::builder()
                .configure(
                    Regex::config()
                        .match_kind(regex_automata::MatchKind::All)
                        .nfa_size_limit(Some(REGEX_SIZE_LIMIT * 8)),
                )
                .build_many(&patterns)
                .map(Some)
        };
        let counted = classifier
            .signals
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.saturation?)))
            .map(|(pattern, saturation)| {
                let source = patterns.get(pattern).map_or("", String::as_str);
                let regex = Regex::builder()
                    .configure(Regex::config().nfa_size_limit(Some(REGEX_SIZE_LIMIT * 8)))
                    .build(source)
                    .map_err(|e| e.to_string())?;
                Ok(super::Counter {
                    pattern,
                    saturation,
                    regex,
                })
            })
            .collect::<Result<Vec<_>, String>>();
        let patterns = match (set.map_err(|e| e.to_string()), counted) {
            (Ok(regex), Ok(counted)) => super::Patterns {
                union: super::Union::new(&patterns, REGEX_SIZE_LIMIT * 8),
                sources: patterns,
                regex,
                counted,
            },
            (Err(e), _) | (_, Err(e)) => {
                let msg = format!("the patterns together do not compile: {e}");
                self.error(K::InvalidRegex, None, "classifier.signals".into(), msg);
                return None;
            }
        };
        let mut tiers = tiers;
        for t in &mut tiers {
            t.index(&models);
        }
        let mut policy = CompiledPolicy {
            name: meta.name.get_ref().clone(),
            description: meta.description.clone(),
            created: meta.created,
            fingerprint: String::new(),
            header: String::new(),
            passthrough: meta.passthrough,
            max_fallbacks,
            limits,
            models,
            tiers,
            pinned,
            redirects,
            hints: Names::new(names.keys().map(|k| &**k)),
            names,
            auto_tiers,
            classifier,
            rules,
            tenants,
            patterns,
        };
        policy.fingerprint = fingerprint(&policy);
        policy.header = format!("{}@{}", policy.name, policy.fingerprint);
        Some(policy)
    }

    fn limits(&mut self, raw: &RawPolicy) -> Limits {
        let l = &raw.limits;
        let max_body = self.count(&l.max_body_bytes, "limits.max_body_bytes");
        let margin = self.unit(&l.context_margin, "limits.context_margin");
        let token = |c: &mut Self, v: &Spanned<u64>, path: &str| match u32::try_from(*v.get_ref()) {
            Ok(n) => n,
            Err(_) => {
                let msg = format!("must be at most {}, got {}", u32::MAX, v.get_ref());
                c.error(K::InvalidValue, span_of(v), path.to_owned(), msg);
                0
            }
        };
        Limits {
            max_body_bytes: max_body as usize,
            max_messages: self.count(&l.max_messages, "limits.max_messages"),
            output_reserve: self.count(&l.output_reserve, "limits.output_reserve"),
            expected_output_tokens: token(
                self,
                &l.expected_output_tokens,
                "limits.expected_output_tokens",
            ),
            margin_bp: (margin * 10_000.0).round() as u32,
            image_tokens: token(self, &l.image_tokens, "limits.image_tokens"),
            audio_tokens: token(self, &l.audio_tokens, "limits.audio_tokens"),
            file_tokens: token(self, &l.file_tokens, "limits.file_tokens"),
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
            if alias.starts_with(PINNED_PREFIX) || alias == AUTO_ALIAS || alias.is_empty() {
                let msg = format!(
                    "tier alias `{alias}` must not be empty, `{AUTO_ALIAS}` or start with `{PINNED_PREFIX}`"
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
            let input_per_mtok = self.price(&m.input_per_mtok, path("input_per_mtok"));
            let output_per_mtok = self.price(&m.output_per_mtok, path("output_per_mtok"));
            if let Some(t) = tiers.get_mut(tier) {
                t.models.push(out.len());
            }
            out.push(Model {
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

    fn pinned(&mut self, raw: &RawPolicy, models: &HashMap<&str, usize>) -> Vec<Alias> {
        let mut out: Vec<Alias> = Vec::new();
        for (alias, target) in &raw.pinned {
            let path = format!("pinned.\"{}\"", alias.get_ref());
            let name = alias.get_ref();
            if !name.starts_with(PINNED_PREFIX) || name.len() == PINNED_PREFIX.len() {
                let msg = format!("pinned alias `{name}` must be `{PINNED_PREFIX}<name>`");
                self.error(K::InvalidName, span_of(alias), path.clone(), msg);
            }
            let what = format!("pinned alias `{name}` points to");
            if let Some(model) = self.model_ref(target, models, path, &what) {
                out.push(Alias {
                    name: name.clone(),
                    model,
                });
            }
        }
        // Pinned aliases are listed in catalog order, then by name.
        out.sort_by(|a, b| a.model.cmp(&b.model).then_with(|| a.name.cmp(&b.name)));
        let mut aliased = vec![false; raw.models.len()];
        for a in &out {
            if let Some(seen) = aliased.get_mut(a.model) {
                *seen = true;
            }
        }
        for ((i, m), aliased) in raw.models.iter().enumerate().zip(aliased) {
            if !aliased && models.get(m.id.get_ref().as_str()) == Some(&i) {
                let msg = format!(
                    "model `{}` has no pinned alias; add `\"{PINNED_PREFIX}{}\" = \"{}\"` under [pinned]",
                    m.id.get_ref(),
                    m.id.get_ref(),
                    m.id.get_ref()
                );
                self.error(
                    K::MissingPinnedAlias,
                    span_of(&m.id),
                    format!("models[{i}].id"),
                    msg,
                );
            }
        }
        out
    }

    fn redirects(&mut self, raw: &RawPolicy, models: &HashMap<&str, usize>) -> Vec<Alias> {
        let mut out = Vec::new();
        for (from, to) in &raw.redirects {
            let path = format!("redirects.\"{}\"", from.get_ref());
            let what = format!("redirect of `{}` points to", from.get_ref());
            if let Some(model) = self.model_ref(to, models, path, &what) {
                out.push(Alias {
                    name: from.get_ref().clone(),
                    model,
                });
            }
        }
        out
    }

    /// Every resolvable name; a name defined twice is an error.
    fn names(
        &mut self,
        raw: &RawPolicy,
        tiers: &[Tier],
        models: &[Model],
        model_index: &HashMap<&str, usize>,
        pinned: &[Alias],
        redirects: &[Alias],
    ) -> HashMap<Box<str>, Target> {
        let mut names: HashMap<Box<str>, Target> = HashMap::new();
        let mut add = |c: &mut Self, name: &str, target: TargetKind, span, path: String| {
            if names.insert(name.into(), Target(target)).is_some() {
                let msg = format!("the name `{name}` is defined more than once");
                c.error(K::Duplicate, span, path, msg);
            }
        };
        add(self, AUTO_ALIAS, TargetKind::Auto, None, String::new());
        for (i, (t, rt)) in tiers.iter().zip(&raw.tiers).enumerate() {
            add(
                self,
                &t.alias,
                TargetKind::Tier(i),
                span_of(&rt.alias),
                format!("tiers[{i}].alias"),
            );
        }
        for (i, a) in pinned.iter().enumerate() {
            let span = raw
                .pinned
                .get_key_value(a.name.as_str())
                .and_then(|(k, _)| span_of(k));
            add(
                self,
                &a.name,
                TargetKind::Pinned(i),
                span,
                format!("pinned.\"{}\"", a.name),
            );
        }
        if raw.policy.passthrough {
            for (i, (m, rm)) in models.iter().zip(&raw.models).enumerate() {
                add(
                    self,
                    &m.id,
                    TargetKind::Passthrough(i),
                    span_of(&rm.id),
                    format!("models[{i}].id"),
                );
            }
        }
        for (i, r) in redirects.iter().enumerate() {
            let span = raw
                .redirects
                .get_key_value(r.name.as_str())
                .and_then(|(k, _)| span_of(k));
            let is_model = model_index.contains_key(r.name.as_str());
            if is_model && !raw.policy.passthrough {
                let msg = format!("redirect source `{}` is a catalog model", r.name);
                self.error(
                    K::Duplicate,
                    span.clone(),
                    format!("redirects.\"{}\"", r.name),
                    msg,
                );
            }
            add(
                self,
                &r.name,
                TargetKind::Redirect(i),
                span,
                format!("redirects.\"{}\"", r.name),
            );
        }
        names
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

    fn saturating(&mut self, f: &RawSaturating, path: &str) -> (f32, u32) {
        let sat = self.count(&f.saturation, &format!("{path}.saturation"));
        (self.unit(&f.weight, &format!("{path}.weight")) as f32, sat)
    }

    fn pattern(&mut self, p: &Name, path: String, patterns: &mut Vec<String>) -> Option<usize> {
        match regex::RegexBuilder::new(p.get_ref())
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(_) => {
                // The lazy DFA gives up on Unicode word boundaries at the first non-ASCII byte
                // and the search falls back to a far slower engine, on every request.
                let unicode_boundary = regex_syntax::parse(p.get_ref())
                    .is_ok_and(|hir| hir.properties().look_set().contains_word_unicode());
                if unicode_boundary {
                    let msg = "`\\b` here is a Unicode word boundary, which makes matching many times slower on \
                               non-ASCII text; write `(?-u:\\b)` for an ASCII one"
                        .to_owned();
                    self.warn(K::SlowPattern, span_of(p), path, msg);
                }
                patterns.push(p.get_ref().clone());
                Some(patterns.len() - 1)
            }
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let msg = format!(
                    "invalid regex: {}",
                    last.trim().trim_start_matches("error: ")
                );
                self.error(K::InvalidRegex, span_of(p), path, msg);
                None
            }
        }
    }

    fn classifier(
        &mut self,
        raw: Option<&RawClassifier>,
        patterns: &mut Vec<String>,
    ) -> Classifier {
        let Some(c) = raw else {
            return Classifier {
                thresholds: [0.25, 0.5, 0.75],
                length_weight: 0.6,
                length_saturation: 2000,
                depth_weight: 0.25,
                depth_saturation: 12,
                tools_weight: 0.15,
                signals: Vec::new(),
            };
        };
        let t = &c.thresholds;
        let thresholds = [
            self.unit(&t.standard, "classifier.thresholds.standard"),
            self.unit(&t.complex, "classifier.thresholds.complex"),
            self.unit(&t.reasoning, "classifier.thresholds.reasoning"),
        ];
        if !(thresholds[0] < thresholds[1] && thresholds[1] < thresholds[2]) {
            let msg = format!(
                "thresholds must increase: standard {} < complex {} < reasoning {}",
                thresholds[0], thresholds[1], thresholds[2]
            );
            self.error(
                K::InvalidValue,
                span_of(&t.standard),
                "classifier.thresholds".into(),
                msg,
            );
        }
        let (length_weight, length_saturation) = self.saturating(&c.length, "classifier.length");
        let (depth_weight, depth_saturation) = self.saturating(&c.depth, "classifier.depth");
        let tools_weight = self.unit(&c.tools.weight, "classifier.tools.weight") as f32;
        let mut sum = f64::from(length_weight) + f64::from(depth_weight) + f64::from(tools_weight);
        let mut signals = Vec::new();
        let mut seen = HashSet::new();
        let mut counted = 0;
        for (i, s) in c.signals.iter().enumerate() {
            let path = |f: &str| format!("classifier.signals[{i}].{f}");
            if !seen.insert(s.name.get_ref().as_str()) {
                let msg = format!("duplicate signal name `{}`", s.name.get_ref());
                self.error(K::Duplicate, span_of(&s.name), path("name"), msg);
            }
            let weight = self.unit(&s.weight, &path("weight"));
            sum += weight;
            let saturation = s.saturation.as_ref().map(|v| {
                counted += 1;
                if counted == MAX_COUNTED + 1 {
                    let msg = format!("at most {MAX_COUNTED} counted signals (with `saturation`)");
                    self.error(K::InvalidValue, span_of(v), path("saturation"), msg);
                }
                self.count(v, &path("saturation"))
            });
            if self
                .pattern(&s.pattern, path("pattern"), patterns)
                .is_some()
            {
                if saturation.is_some() && matches_empty(s.pattern.get_ref()) {
                    let msg = "a counted signal's pattern must not match the empty string: \
                               its matches could not be counted"
                        .to_owned();
                    self.error(K::InvalidRegex, span_of(&s.pattern), path("pattern"), msg);
                }
                signals.push(Signal {
                    name: s.name.get_ref().clone(),
                    weight: weight as f32,
                    min_class: s.min_class,
                    saturation,
                });
            }
        }
        if (sum - 1.0).abs() > WEIGHT_TOLERANCE {
            let msg = format!(
                "classifier weights (length, depth, tools and every signal) sum to {sum}, not 1"
            );
            self.error(
                K::Weights,
                span_of(&c.length.weight),
                "classifier".into(),
                msg,
            );
        }
        Classifier {
            thresholds: thresholds.map(|x| x as f32),
            length_weight,
            length_saturation,
            depth_weight,
            depth_saturation,
            tools_weight,
            signals,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rules(
        &mut self,
        raw: &RawPolicy,
        tier_index: &HashMap<&str, usize>,
        model_index: &HashMap<&str, usize>,
        names: &HashMap<Box<str>, Target>,
        models: &[Model],
        patterns: &mut Vec<String>,
    ) -> Vec<Rule> {
        let mut out: Vec<Rule> = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in raw.rules.iter().enumerate() {
            let path = |f: &str| format!("rules[{i}].{f}");
            if !seen.insert(r.name.get_ref().as_str()) || r.name.get_ref().is_empty() {
                let msg = format!("duplicate or empty rule name `{}`", r.name.get_ref());
                self.error(K::Duplicate, span_of(&r.name), path("name"), msg);
            }
            let (applies_to_auto, applies_to_tiers) = self.rule_scope(r, names, i);
            let action = self.rule_action(r, tier_index, model_index, i);
            let pattern = match &r.pattern {
                Some(p) => self.pattern(p, path("pattern"), patterns),
                None => None,
            };
            let tokens = |c: &mut Self, v: &Option<Spanned<u64>>, f: &str, default: u32| match v {
                None => default,
                Some(v) => u32::try_from(*v.get_ref()).unwrap_or_else(|_| {
                    let msg = format!("must be at most {}", u32::MAX);
                    c.error(K::InvalidValue, span_of(v), path(f), msg);
                    default
                }),
            };
            let min_prompt_tokens = tokens(self, &r.min_prompt_tokens, "min_prompt_tokens", 0);
            let max_prompt_tokens =
                tokens(self, &r.max_prompt_tokens, "max_prompt_tokens", u32::MAX);
            let score = |c: &mut Self, v: &Option<Spanned<f64>>, f: &str, default: f64| {
                v.as_ref().map_or(default, |v| c.unit(v, &path(f)))
            };
            let min_score = score(self, &r.min_score, "min_score", 0.0) as f32;
            let max_score = score(self, &r.max_score, "max_score", 1.0) as f32;
            let rule = Rule {
                name: r.name.get_ref().clone(),
                applies_to_auto,
                applies_to_tiers,
                capabilities: r.capabilities.iter().copied().collect(),
                min_prompt_tokens,
                max_prompt_tokens,
                classes: r.complexity.iter().fold(0, |m, c| m | c.bit()),
                min_score,
                max_score,
                pattern,
                tags: r.tags.clone(),
                tenants: r.tenants.iter().map(|t| t.get_ref().clone()).collect(),
                action: action.unwrap_or(Action::Models(Vec::new())),
            };
            self.rule_reachability(r, &rule, &out, models, i);
            out.push(rule);
        }
        out
    }

    fn rule_scope(
        &mut self,
        r: &RawRule,
        names: &HashMap<Box<str>, Target>,
        i: usize,
    ) -> (bool, u64) {
        let Some(aliases) = &r.aliases else {
            return (true, 0);
        };
        let (mut auto, mut tiers) = (false, 0u64);
        for (j, a) in aliases.iter().enumerate() {
            let path = format!("rules[{i}].aliases[{j}]");
            match names.get(a.get_ref().as_str()).map(|t| t.0) {
                Some(TargetKind::Auto) => auto = true,
                Some(TargetKind::Tier(t)) => tiers |= 1u64 << t,
                Some(_) => {
                    let msg = format!(
                        "rules apply only to `{AUTO_ALIAS}` and tier aliases; `{}` is never routed",
                        a.get_ref()
                    );
                    self.error(K::InvalidName, span_of(a), path, msg);
                }
                None => {
                    let msg = format!("`{}` is not a routable name of this policy", a.get_ref());
                    self.error(K::UnknownName, span_of(a), path, msg);
                }
            }
        }
        (auto, tiers)
    }

    fn rule_action(
        &mut self,
        r: &RawRule,
        tier_index: &HashMap<&str, usize>,
        model_index: &HashMap<&str, usize>,
        i: usize,
    ) -> Option<Action> {
        let path = |f: &str| format!("rules[{i}].{f}");
        let given = usize::from(r.tier.is_some())
            + usize::from(r.models.is_some())
            + usize::from(r.split.is_some());
        if given != 1 {
            let msg = format!(
                "rule `{}` must have exactly one action (`tier`, `models` or `split`), has {given}",
                r.name.get_ref()
            );
            self.error(K::RuleAction, span_of(&r.name), path("name"), msg);
            return None;
        }
        if let Some(t) = &r.tier {
            let found = tier_index.get(t.get_ref().as_str()).copied();
            if found.is_none() {
                let msg = format!("rule names unknown tier `{}`", t.get_ref());
                self.error(K::UnknownTier, span_of(t), path("tier"), msg);
            }
            return found.map(Action::Tier);
        }
        if let Some(list) = &r.models {
            if list.get_ref().is_empty() {
                self.error(
                    K::RuleAction,
                    span_of(list),
                    path("models"),
                    "`models` is empty".into(),
                );
            }
            let mut ids = Vec::new();
            for (j, m) in list.get_ref().iter().enumerate() {
                let p = format!("rules[{i}].models[{j}]");
                ids.extend(self.model_ref(m, model_index, p, "rule model"));
            }
            return Some(Action::Models(ids));
        }
        let split = r.split.as_ref()?;
        if split.get_ref().is_empty() {
            self.error(
                K::RuleAction,
                span_of(split),
                path("split"),
                "`split` is empty".into(),
            );
        }
        let mut arms = Vec::new();
        for (j, arm) in split.get_ref().iter().enumerate() {
            let p = format!("rules[{i}].split[{j}]");
            if *arm.weight.get_ref() == 0 || *arm.weight.get_ref() > u64::from(u32::MAX) {
                let msg = format!("split weights must be between 1 and {}", u32::MAX);
                self.error(K::Weights, span_of(&arm.weight), format!("{p}.weight"), msg);
            }
            if let Some(m) =
                self.model_ref(&arm.model, model_index, format!("{p}.model"), "split model")
            {
                arms.push((m, *arm.weight.get_ref()));
            }
        }
        Some(Action::Split(arms))
    }

    /// Warnings for rules that can never match or never decide.
    fn rule_reachability(
        &mut self,
        r: &RawRule,
        rule: &Rule,
        earlier: &[Rule],
        models: &[Model],
        i: usize,
    ) {
        let span = span_of(&r.name);
        let path = format!("rules[{i}]");
        let name = &rule.name;
        let never = |c: &mut Self, why: String| {
            c.warn(
                K::UnreachableRule,
                span.clone(),
                path.clone(),
                format!("rule `{name}` can never match: {why}"),
            );
        };
        if rule.min_prompt_tokens > rule.max_prompt_tokens {
            never(
                self,
                format!(
                    "min_prompt_tokens {} > max_prompt_tokens {}",
                    rule.min_prompt_tokens, rule.max_prompt_tokens
                ),
            );
        }
        if rule.min_score > rule.max_score {
            never(
                self,
                format!(
                    "min_score {} > max_score {}",
                    rule.min_score, rule.max_score
                ),
            );
        }
        if !rule.applies_to_auto
            && rule.applies_to_tiers == 0
            && r.aliases.as_ref().is_some_and(Vec::is_empty)
        {
            never(self, "`aliases` is empty".into());
        }
        let targets: Vec<usize> = match &rule.action {
            Action::Tier(t) => models
                .iter()
                .enumerate()
                .filter(|(_, m)| m.tier == *t)
                .map(|(i, _)| i)
                .collect(),
            Action::Models(ids) => ids.clone(),
            Action::Split(arms) => arms.iter().map(|a| a.0).collect(),
        };
        let fits = targets.iter().filter_map(|&m| models.get(m)).any(|m| {
            m.capabilities.contains_all(rule.capabilities)
                && m.context_window > rule.min_prompt_tokens
        });
        if !targets.is_empty() && !fits {
            never(
                self,
                "none of its models supports its capabilities and token range".into(),
            );
        }
        if let Some(e) = earlier
            .iter()
            .find(|e| e.always_matches() && e.covers_scope_of(rule))
        {
            let msg = format!(
                "rule `{name}` is shadowed by rule `{}`, which matches every request",
                e.name
            );
            self.warn(
                K::UnreachableRule,
                span_of(&r.name),
                format!("rules[{i}]"),
                msg,
            );
        }
    }

    fn tenants(
        &mut self,
        raw: &RawPolicy,
        model_index: &HashMap<&str, usize>,
        names: &HashMap<Box<str>, Target>,
    ) -> HashMap<Box<str>, Tenant> {
        let mut out = HashMap::new();
        for (name, t) in &raw.tenants {
            let base = format!("tenants.\"{}\"", name.get_ref());
            let models = t.models.as_ref().map(|list| {
                let mut allowed = Vec::with_capacity(list.len());
                for (j, m) in list.iter().enumerate() {
                    let p = format!("{base}.models[{j}]");
                    // An index past 16 bits only exists in a catalog rejected for its size.
                    if let Some(i) = self
                        .model_ref(m, model_index, p, "tenant model")
                        .and_then(|i| u16::try_from(i).ok())
                    {
                        allowed.push(i);
                    }
                }
                Allowed::new(allowed)
            });
            let aliases = t.aliases.as_ref().map(|list| {
                let mut allowed = Vec::new();
                for (j, a) in list.iter().enumerate() {
                    match names.get(a.get_ref().as_str()) {
                        Some(target) => allowed.push(target.0),
                        None => {
                            let msg =
                                format!("`{}` is not a routable name of this policy", a.get_ref());
                            self.error(
                                K::UnknownName,
                                span_of(a),
                                format!("{base}.aliases[{j}]"),
                                msg,
                            );
                        }
                    }
                }
                Allowed::new(allowed)
            });
            out.insert(
                name.get_ref().as_str().into(),
                Tenant {
                    models,
                    names: aliases,
                },
            );
        }
        out
    }
}

impl Rule {
    fn always_matches(&self) -> bool {
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

    fn covers_scope_of(&self, other: &Rule) -> bool {
        (self.applies_to_auto || !other.applies_to_auto)
            && self.applies_to_tiers & other.applies_to_tiers == other.applies_to_tiers
    }
}

impl Complexity {
    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The canonical form: every field that changes a decision or a listing, in a fixed order.
fn canonical(p: &CompiledPolicy) -> Value {
    let models: Vec<Value> = p
        .models
        .iter()
        .map(|m| {
            json!([
                m.id,
                m.provider,
                m.tier,
                m.context_window,
                m.max_output_tokens,
                m.capabilities.names(),
                m.input_per_mtok,
                m.output_per_mtok
            ])
        })
        .collect();
    let rules: Vec<Value> = p
        .rules
        .iter()
        .map(|r| {
            let action = match &r.action {
                Action::Tier(t) => json!({"tier": t}),
                Action::Models(m) => json!({"models": m}),
                Action::Split(s) => json!({"split": s}),
            };
            json!([
                r.name,
                r.applies_to_auto,
                r.applies_to_tiers,
                r.capabilities.names(),
                r.min_prompt_tokens,
                r.max_prompt_tokens,
                r.classes,
                r.min_score,
                r.max_score,
                r.pattern.and_then(|i| p.patterns.sources.get(i)),
                r.tags,
                r.tenants,
                action
            ])
        })
        .collect();
    let mut tenants: Vec<(&str, Value)> = p
        .tenants
        .iter()
        .map(|(name, t)| {
            let names: Option<Vec<&str>> = t
                .names
                .as_ref()
                .map(|n| n.iter().map(|&t| p.target_name(Target(t))).collect());
            // The allowed models by id, in catalog order.
            let models: Option<Vec<&str>> = t.models.as_ref().map(|m| {
                m.iter()
                    .filter_map(|&i| p.models.get(usize::from(i)))
                    .map(|m| m.id.as_str())
                    .collect()
            });
            (&**name, json!([models, names]))
        })
        .collect();
    tenants.sort_by(|a, b| a.0.cmp(b.0));
    let c = &p.classifier;
    let signals: Vec<Value> = c
        .signals
        .iter()
        .zip(p.patterns.sources.iter())
        .map(|(s, pat)| {
            let mut v = json!([s.name, s.weight, s.min_class.map(Complexity::as_str), pat]);
            // Only counted signals carry a fifth field, so other fingerprints stay as they were.
            if let (Some(sat), Some(a)) = (s.saturation, v.as_array_mut()) {
                a.push(json!(sat));
            }
            v
        })
        .collect();
    let l = &p.limits;
    json!({
        "name": p.name, "description": p.description, "created": p.created,
        "passthrough": p.passthrough, "max_fallbacks": p.max_fallbacks,
        "limits": [l.max_body_bytes, l.max_messages, l.output_reserve, l.expected_output_tokens,
                   l.margin_bp, l.image_tokens, l.audio_tokens, l.file_tokens],
        "models": models,
        "tiers": p.tiers.iter().map(|t| json!([t.name, t.alias, t.description])).collect::<Vec<_>>(),
        "pinned": p.pinned.iter().map(|a| json!([a.name, a.model])).collect::<Vec<_>>(),
        "redirects": p.redirects.iter().map(|a| json!([a.name, a.model])).collect::<Vec<_>>(),
        "auto": p.auto_tiers,
        "classifier": [c.thresholds, c.length_weight, c.length_saturation, c.depth_weight,
                       c.depth_saturation, c.tools_weight, signals],
        "rules": rules,
        "tenants": tenants,
    })
}

/// Whether `pattern` can match the empty string (a pattern that does not parse cannot).
fn matches_empty(pattern: &str) -> bool {
    regex_syntax::parse(pattern).is_ok_and(|hir| hir.properties().minimum_len() == Some(0))
}

fn fingerprint(p: &CompiledPolicy) -> String {
    let digest = Sha256::digest(canonical(p).to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
