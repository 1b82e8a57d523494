//! Warnings for policies that are valid but probably not what their author meant: no
//! classifier, prices in the wrong unit, tiers priced against their order, and the same model
//! listed with and without a provider prefix.

use std::collections::HashSet;

use super::Checker;
use crate::diagnostic::DiagnosticKind as K;
use crate::policy::raw::{RawPolicy, span_of};
use crate::policy::{Model, Tier};

/// Prices below this, but above zero, look per token (or per thousand) rather than per
/// million tokens: no model costs less than a tenth of a cent per million tokens.
const PER_MILLION_FLOOR: f64 = 0.001;

impl Checker<'_> {
    pub(super) fn advise(&mut self, raw: &RawPolicy, models: &[Model], tiers: &[Tier]) {
        if raw.classifier.is_none() {
            let msg = "no [classifier]: complexity comes from the length of the last user message, \
                       conversation depth and tools alone, so nearly every request scores `simple`; \
                       add [classifier] with signals (see policies/default.toml)"
                .to_owned();
            self.warn(
                K::MissingClassifier,
                span_of(&raw.policy.name),
                "classifier".into(),
                msg,
            );
        }
        for (i, (m, rm)) in models.iter().zip(&raw.models).enumerate() {
            for (field, price, span) in [
                (
                    "input_per_mtok",
                    m.input_per_mtok,
                    span_of(&rm.input_per_mtok),
                ),
                (
                    "output_per_mtok",
                    m.output_per_mtok,
                    span_of(&rm.output_per_mtok),
                ),
            ] {
                if price > 0.0 && price < PER_MILLION_FLOOR {
                    let msg = format!(
                        "{price} USD per million tokens for `{}` looks like a per-token price \
                         (LiteLLM's `input_cost_per_token`); multiply it by 1,000,000",
                        m.id
                    );
                    self.warn(K::PriceUnit, span, format!("models[{i}].{field}"), msg);
                }
            }
        }
        self.tier_prices(raw, models, tiers);
        let ids: HashSet<&str> = models.iter().map(|m| m.id.as_str()).collect();
        for (i, (m, rm)) in models.iter().zip(&raw.models).enumerate() {
            if let Some((_, bare)) = m.id.rsplit_once('/')
                && ids.contains(bare)
            {
                let msg = format!(
                    "`{}` is `{bare}` with a provider prefix, and the catalog lists `{bare}` too: \
                     one model under two ids splits its traffic and its pinned aliases",
                    m.id
                );
                self.warn(
                    K::ProviderPrefix,
                    span_of(&rm.id),
                    format!("models[{i}].id"),
                    msg,
                );
            }
        }
    }

    /// Tiers are listed weakest first: a tier whose cheapest model costs more than the most
    /// expensive model of a stronger tier is probably out of order or mispriced. A model's cost
    /// here is its input plus its output price.
    fn tier_prices(&mut self, raw: &RawPolicy, models: &[Model], tiers: &[Tier]) {
        let cost = |m: &Model| m.input_per_mtok + m.output_per_mtok;
        let range = |t: &Tier| {
            let costs = t.models.iter().filter_map(|&i| models.get(i)).map(cost);
            costs.fold(None, |r: Option<(f64, f64)>, c| {
                Some(r.map_or((c, c), |(lo, hi)| (lo.min(c), hi.max(c))))
            })
        };
        for (i, (weak, rt)) in tiers.iter().zip(&raw.tiers).enumerate() {
            let Some((cheapest, _)) = range(weak) else {
                continue;
            };
            let dearer = tiers.iter().skip(i + 1).find_map(|strong| {
                range(strong)
                    .filter(|&(_, priciest)| cheapest > priciest)
                    .map(|(_, priciest)| (strong, priciest))
            });
            if let Some((strong, priciest)) = dearer {
                let msg = format!(
                    "the cheapest model of tier `{}` ({cheapest} USD per million input + output tokens) \
                     costs more than the dearest of the stronger tier `{}` ({priciest}); tiers are \
                     listed weakest first",
                    weak.name, strong.name
                );
                self.warn(K::TierPrices, span_of(&rt.name), format!("tiers[{i}]"), msg);
            }
        }
    }
}
