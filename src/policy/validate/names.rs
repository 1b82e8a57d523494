//! Validation of the names a request can ask for: pinned aliases, redirects, and every
//! routable name, each defined once.

use std::collections::HashMap;

use super::Checker;
use crate::diagnostic::DiagnosticKind as K;
use crate::features::{Target, TargetKind};
use crate::policy::raw::{RawPolicy, span_of};
use crate::policy::{AUTO_ALIAS, Alias, Model, PINNED_PREFIX, Tier};

impl Checker<'_> {
    pub(super) fn pinned(&mut self, raw: &RawPolicy, models: &HashMap<&str, usize>) -> Vec<Alias> {
        let mut out: Vec<Alias> = Vec::new();
        for (alias, target) in &raw.pinned {
            let path = format!("pinned.\"{}\"", alias.get_ref());
            let name = alias.get_ref();
            let safe = self.header_safe(alias, &path, "pinned alias");
            if safe && (!name.starts_with(PINNED_PREFIX) || name.len() == PINNED_PREFIX.len()) {
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

    pub(super) fn redirects(
        &mut self,
        raw: &RawPolicy,
        models: &HashMap<&str, usize>,
    ) -> Vec<Alias> {
        let mut out = Vec::new();
        for (from, to) in &raw.redirects {
            let path = format!("redirects.\"{}\"", from.get_ref());
            self.header_safe(from, &path, "redirected name");
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
    pub(super) fn names(
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
}
