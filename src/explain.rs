//! Why a decision came out as it did: every rule tried and every candidate kept or dropped.

use serde_json::{Value, json};

use crate::decision::round;
use crate::error::RouteError;
use crate::features::{Api, RequestFeatures, TargetKind};
use crate::policy::CompiledPolicy;
use crate::route::{CallerContext, RoutingContext, reject};
use crate::scorer::Term;

impl CompiledPolicy {
    /// What moved the complexity score of a body most, when the policy has a trained scorer
    /// (`[classifier] model`): the head the structure picked, each dense feature, signal and
    /// n-gram with its part of the sum before the logistic, largest first. Empty without a
    /// scorer. Off the hot path; allocates freely.
    ///
    /// ```
    /// use fluxroute::{Api, CompiledPolicy};
    /// let policy = CompiledPolicy::embedded();
    /// let terms = policy.explain_score(Api::Chat, br#"{"model": "flux-auto",
    ///     "messages": [{"role": "user", "content": "Prove that there are infinitely many primes."}]}"#)?;
    /// assert!(terms.iter().any(|t| t.feature.starts_with("head:")));
    /// # Ok::<(), fluxroute::RouteError>(())
    /// ```
    pub fn explain_score(&self, api: Api, body: &[u8]) -> Result<Vec<Term>, RouteError> {
        self.score_terms(api, body)
    }

    /// Explains routing `features`: each rule with whether it matched, and each candidate model
    /// with why it was kept or dropped: a dropped model's reason is the error a request pinned
    /// to it would get. Off the hot path; allocates freely.
    ///
    /// ```
    /// use fluxroute::{CallerContext, CompiledPolicy};
    /// let policy = CompiledPolicy::embedded();
    /// let f = policy.classify(br#"{"model": "flux-auto", "tools": [{"type": "function", "function": {"name": "f"}}],
    ///     "messages": [{"role": "user", "content": "call f"}]}"#)?;
    /// let why = policy.explain(&f, &CallerContext::default());
    /// let dropped = why["candidates"].as_array().unwrap().iter()
    ///     .find(|c| c["model"] == "deepseek-reasoner").unwrap();
    /// assert_eq!(dropped["kept"], false);
    /// assert_eq!(dropped["reason"], "model `deepseek-reasoner` does not support tools");
    /// # Ok::<(), fluxroute::RouteError>(())
    /// ```
    pub fn explain(&self, features: &RequestFeatures, ctx: &CallerContext<'_>) -> Value {
        // A tenant the policy denies is the reason for every candidate.
        let (tenant, denied) = match self.tenant_of(ctx) {
            Some(t) => (t, None),
            None => (None, Some(reject::unknown_tenant(ctx))),
        };
        let cx = RoutingContext::new(self, features, ctx, tenant);
        let (scope, rules): (Vec<usize>, Vec<Value>) = match features.target.0 {
            TargetKind::Pinned(a) => (
                self.pinned.get(a).map(|a| a.model).into_iter().collect(),
                Vec::new(),
            ),
            TargetKind::Redirect(r) => (
                self.redirects.get(r).map(|a| a.model).into_iter().collect(),
                Vec::new(),
            ),
            TargetKind::Passthrough(m) => (vec![m], Vec::new()),
            TargetKind::Auto | TargetKind::Tier(_) => {
                let scope = (0..self.models.len())
                    .filter(|&i| cx.in_target(i))
                    .collect();
                let rules = self
                    .rules
                    .iter()
                    .map(|r| json!({"rule": r.name, "matched": cx.rule_matches(r)}))
                    .collect();
                (scope, rules)
            }
        };
        let candidates: Vec<Value> = scope
            .iter()
            .filter_map(|&i| self.models.get(i).map(|m| (i, m)))
            .map(|(i, m)| {
                let tier = self.tiers.get(m.tier).map_or("", |t| t.name.as_str());
                let (kept, reason) = match (&denied, cx.check(i, m)) {
                    (Some(e), _) => (false, e.message().to_owned()),
                    (None, Ok(())) => (true, "eligible".to_owned()),
                    (None, Err(why)) => (
                        false,
                        reject::model_rejected(&cx, m, why).message().to_owned(),
                    ),
                };
                json!({
                    "model": m.id,
                    "tier": tier,
                    "kept": kept,
                    "reason": reason,
                    "estimated_cost_usd": round(cx.cost(m), 9),
                })
            })
            .collect();
        json!({"rules": rules, "candidates": candidates})
    }
}
