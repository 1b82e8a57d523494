//! Validation of what decides among models: classifier signals, rules (scope, action,
//! reachability) and tenants.

use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::Checker;
use crate::diagnostic::DiagnosticKind as K;
use crate::features::{Target, TargetKind};
use crate::patterns::{self, MAX_COUNTED, REGEX_SIZE_LIMIT};
use crate::policy::raw::{
    Name, RawClassifier, RawPolicy, RawRule, RawSaturating, ScorerFile, UnknownTenants, span_of,
};
use crate::policy::{AUTO_ALIAS, Action, Allowed, Classifier, Model, Rule, Signal, Tenant};
use crate::scorer::{Compiled, Scorer};

/// The most rules a policy may hold.
const MAX_RULES: usize = 1024;
/// The most tags, or tenants, one rule may list: each request compares them with its own.
const MAX_RULE_LIST: usize = 64;
/// The most tenants a policy may declare.
const MAX_TENANTS: usize = 100_000;

/// How far classifier weights may sum from 1.
const WEIGHT_TOLERANCE: f64 = 1e-6;

/// The policy's names, resolved: what rules and tenants refer to.
pub(super) struct Index<'a> {
    pub tiers: &'a HashMap<&'a str, usize>,
    pub models: &'a HashMap<&'a str, usize>,
    pub names: &'a HashMap<Box<str>, Target>,
}

impl Checker<'_> {
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
                    self.warn(K::SlowPattern, span_of(p), path.clone(), msg);
                }
                if patterns::is_costly(p.get_ref()) {
                    let msg = "a large bounded repetition makes this pattern's automaton build a new state \
                               for most bytes of ordinary text, which can cost hundreds of milliseconds \
                               per request; bound it by far fewer repeats, or use `+`/`*`"
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

    pub(super) fn classifier(
        &mut self,
        raw: Option<&RawClassifier>,
        file: Option<&ScorerFile>,
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
                scorer: None,
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
        let scorer = match (&c.model, file) {
            (Some(name), Some(file)) => self.scorer(name, file, &signals),
            _ => None,
        };
        Classifier {
            thresholds: thresholds.map(|x| x as f32),
            length_weight,
            length_saturation,
            depth_weight,
            depth_saturation,
            tools_weight,
            signals,
            scorer,
        }
    }

    /// The scorer model file a classifier names: every problem in it is an error located in
    /// the file; each signal it weighs must be one of the policy's.
    fn scorer(&mut self, name: &Name, file: &ScorerFile, signals: &[Signal]) -> Option<Compiled> {
        let model = match Scorer::parse(&file.text) {
            Ok(model) => model,
            Err(problems) => {
                for p in problems {
                    let span = p.span.start + file.offset..p.span.end + file.offset;
                    self.error(
                        K::InvalidScorer,
                        Some(span),
                        "classifier.model".into(),
                        p.message,
                    );
                }
                return None;
            }
        };
        let mut columns = Vec::with_capacity(model.signals.len());
        for s in &model.signals {
            match signals.iter().position(|p| &p.name == s) {
                Some(i) => columns.push(i),
                None => {
                    let msg = format!(
                        "the scorer model `{}` weighs signal `{s}`, which the policy does not define",
                        name.get_ref()
                    );
                    self.error(
                        K::InvalidScorer,
                        span_of(name),
                        "classifier.model".into(),
                        msg,
                    );
                }
            }
        }
        (columns.len() == model.signals.len()).then(|| Compiled::new(model, columns, &file.text))
    }

    pub(super) fn rules(
        &mut self,
        raw: &RawPolicy,
        index: &Index<'_>,
        models: &[Model],
        patterns: &mut Vec<String>,
    ) -> Vec<Rule> {
        let mut out: Vec<Rule> = Vec::new();
        let mut seen = HashSet::new();
        if raw.rules.len() > MAX_RULES {
            // Every rule is tried on every request: their number is its cost.
            let msg = format!("at most {MAX_RULES} rules, got {}", raw.rules.len());
            self.error(K::InvalidValue, None, "rules".into(), msg);
        }
        for (i, r) in raw.rules.iter().enumerate() {
            let path = |f: &str| format!("rules[{i}].{f}");
            for (what, n) in [("tags", r.tags.len()), ("tenants", r.tenants.len())] {
                if n > MAX_RULE_LIST {
                    let msg = format!("at most {MAX_RULE_LIST} {what} in a rule, got {n}");
                    self.error(K::InvalidValue, span_of(&r.name), path(what), msg);
                }
            }
            if !seen.insert(r.name.get_ref().as_str()) || r.name.get_ref().is_empty() {
                let msg = format!("duplicate or empty rule name `{}`", r.name.get_ref());
                self.error(K::Duplicate, span_of(&r.name), path("name"), msg);
            }
            let (applies_to_auto, applies_to_tiers) = self.rule_scope(r, index.names, i);
            let action = self.rule_action(r, index, i);
            let pattern = match &r.pattern {
                Some(p) => self.pattern(p, path("pattern"), patterns),
                None => None,
            };
            let tokens = |c: &mut Self, v: &Option<Spanned<u64>>, f: &str, default: u32| {
                v.as_ref().map_or(default, |v| c.whole(v, 0, &path(f)))
            };
            let min_prompt_tokens = tokens(self, &r.min_prompt_tokens, "min_prompt_tokens", 0);
            let max_prompt_tokens =
                tokens(self, &r.max_prompt_tokens, "max_prompt_tokens", u32::MAX);
            let score = |c: &mut Self, v: &Option<Spanned<f64>>, f: &str, default: f64| {
                v.as_ref().map_or(default, |v| c.unit(v, &path(f)))
            };
            for (j, t) in r.tenants.iter().enumerate() {
                if !raw.tenants.contains_key(t.get_ref().as_str()) {
                    let msg = format!(
                        "rule names tenant `{}`, which the policy does not declare under [tenants]",
                        t.get_ref()
                    );
                    self.error(
                        K::UnknownName,
                        span_of(t),
                        format!("rules[{i}].tenants[{j}]"),
                        msg,
                    );
                }
            }
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
                restrict: r.restrict,
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

    fn rule_action(&mut self, r: &RawRule, index: &Index<'_>, i: usize) -> Option<Action> {
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
            let found = index.tiers.get(t.get_ref().as_str()).copied();
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
                ids.extend(self.model_ref(m, index.models, p, "rule model"));
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
            if let Some(m) = self.model_ref(
                &arm.model,
                index.models,
                format!("{p}.model"),
                "split model",
            ) {
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

    /// Whether unknown tenants are denied; warns when tenants are declared and the policy
    /// leaves unknown ones allowed without saying so.
    pub(super) fn unknown_tenants(&mut self, raw: &RawPolicy) -> bool {
        match &raw.policy.unknown_tenants {
            Some(v) => *v.get_ref() == UnknownTenants::Deny,
            None => {
                if !raw.tenants.is_empty() {
                    let msg = "tenants are declared, but requests from any other tenant (or with none) \
                               may use every name and model; set `unknown_tenants = \"deny\"` to reject \
                               them, or `\"allow\"` to keep this"
                        .to_owned();
                    self.warn(
                        K::OpenTenants,
                        span_of(&raw.policy.name),
                        "policy".into(),
                        msg,
                    );
                }
                false
            }
        }
    }

    pub(super) fn tenants(
        &mut self,
        raw: &RawPolicy,
        index: &Index<'_>,
    ) -> HashMap<Box<str>, Tenant> {
        let mut out = HashMap::new();
        if raw.tenants.len() > MAX_TENANTS {
            let msg = format!("at most {MAX_TENANTS} tenants, got {}", raw.tenants.len());
            self.error(K::InvalidValue, None, "tenants".into(), msg);
        }
        for (name, t) in &raw.tenants {
            let base = format!("tenants.\"{}\"", name.get_ref());
            self.header_safe(name, &base, "tenant name");
            let models = t.models.as_ref().map(|list| {
                let mut allowed = Vec::with_capacity(list.len());
                for (j, m) in list.iter().enumerate() {
                    let p = format!("{base}.models[{j}]");
                    // An index past 16 bits only exists in a catalog rejected for its size.
                    if let Some(i) = self
                        .model_ref(m, index.models, p, "tenant model")
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
                    match index.names.get(a.get_ref().as_str()) {
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

/// Whether `pattern` can match the empty string (a pattern that does not parse cannot).
fn matches_empty(pattern: &str) -> bool {
    regex_syntax::parse(pattern).is_ok_and(|hir| hir.properties().minimum_len() == Some(0))
}
