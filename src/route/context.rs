//! What one routing call reads, resolved once: the caller's context, the request with its
//! safety margin, and the hard filters that reject a candidate.

use super::CallerContext;
use crate::capability::Capability;
use crate::features::{RequestFeatures, TargetKind};
use crate::policy::{CompiledPolicy, Model, Rule, Tenant};

/// Why a candidate model cannot serve a request, in the order the filters run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Tenant,
    Capability(Capability),
    Output,
    Context,
    Unavailable,
}

impl Rejection {
    /// How far along the filters this rejection came.
    const fn rank(self) -> u8 {
        match self {
            Rejection::Tenant => 0,
            Rejection::Capability(_) => 1,
            Rejection::Output => 2,
            Rejection::Context => 3,
            Rejection::Unavailable => 4,
        }
    }

    /// Keeps in `furthest` whichever of it and `self` came further along the filters: the
    /// reason an empty search reports.
    #[inline]
    pub fn keep_furthest(self, furthest: &mut Option<Rejection>) {
        if furthest.is_none_or(|w| self.rank() > w.rank()) {
            *furthest = Some(self);
        }
    }
}

/// Everything one routing call reads, resolved once.
pub(crate) struct RoutingContext<'a, 'p> {
    pub policy: &'p CompiledPolicy,
    pub features: &'a RequestFeatures,
    pub ctx: &'a CallerContext<'a>,
    pub tenant: Option<&'p Tenant>,
    /// Prompt tokens with the policy's safety margin.
    pub prompt: u64,
}

impl<'a, 'p> RoutingContext<'a, 'p> {
    #[inline]
    pub fn new(
        policy: &'p CompiledPolicy,
        features: &'a RequestFeatures,
        ctx: &'a CallerContext<'a>,
        tenant: Option<&'p Tenant>,
    ) -> Self {
        let p = u64::from(features.prompt_tokens);
        let prompt = p + (p * u64::from(policy.limits.margin_bp)).div_ceil(10_000);
        RoutingContext {
            policy,
            features,
            ctx,
            tenant,
            prompt,
        }
    }

    /// Prompt tokens with the policy's safety margin.
    pub fn prompt_with_margin(&self) -> u64 {
        self.prompt
    }

    /// Output tokens to fit in `model`'s window: the request's own, else the reserve.
    #[inline]
    pub fn output_for(&self, model: &Model) -> u32 {
        self.features.max_output_tokens.unwrap_or_else(|| {
            self.policy
                .limits
                .output_reserve
                .min(model.max_output_tokens)
        })
    }

    /// The hard filters, in order: tenant, capabilities, output limit, context, availability.
    #[inline]
    pub fn check(&self, index: usize, model: &Model) -> Result<(), Rejection> {
        if let Some(allowed) = self.tenant.and_then(|t| t.models.as_ref())
            && !u16::try_from(index).is_ok_and(|i| allowed.contains(&i))
        {
            return Err(Rejection::Tenant);
        }
        if let Some(cap) = self.features.capabilities.missing_from(model.capabilities) {
            return Err(Rejection::Capability(cap));
        }
        if self
            .features
            .max_output_tokens
            .is_some_and(|n| n > model.max_output_tokens)
        {
            return Err(Rejection::Output);
        }
        let needed = self.prompt + u64::from(self.output_for(model));
        if needed > u64::from(model.context_window) {
            return Err(Rejection::Context);
        }
        if self.ctx.unavailable.contains(&model.id.as_str()) {
            return Err(Rejection::Unavailable);
        }
        Ok(())
    }

    /// Output tokens a cost estimate charges a model whose output limit is `limit`: those of
    /// one completion, times the completions asked for.
    #[inline]
    pub fn output_charged(&self, limit: u32) -> f64 {
        let expected = self.policy.limits.expected_output_tokens.min(limit);
        let one = self
            .features
            .max_output_tokens
            .map_or(expected, |n| n.min(expected));
        f64::from(one) * f64::from(self.features.choices.max(1))
    }

    /// Estimated USD cost of serving this request with `model`.
    pub fn cost(&self, model: &Model) -> f64 {
        let output = self.output_charged(model.max_output_tokens);
        model.cost_usd(f64::from(self.features.prompt_tokens), output)
    }

    /// The cost in millionths of a dollar: orders models as [`RoutingContext::cost`] does, without
    /// a division per candidate.
    #[inline]
    pub fn cost_key(&self, model: &Model) -> f64 {
        let output = self.output_charged(model.max_output_tokens);
        model.cost_micro_usd(f64::from(self.features.prompt_tokens), output)
    }

    #[inline]
    pub fn rule_matches(&self, rule: &Rule) -> bool {
        let f = self.features;
        let in_scope = match f.target.0 {
            TargetKind::Auto => rule.applies_to_auto,
            TargetKind::Tier(t) => t < 64 && rule.applies_to_tiers & (1u64 << t) != 0,
            _ => false,
        };
        in_scope
            && f.capabilities.contains_all(rule.capabilities)
            && (rule.min_prompt_tokens..=rule.max_prompt_tokens).contains(&f.prompt_tokens)
            && (rule.classes == 0 || rule.classes & f.complexity.bit() != 0)
            && (rule.min_score..=rule.max_score).contains(&f.complexity_score)
            && rule
                .pattern
                .is_none_or(|i| i < 64 && f.matched & (1u64 << i) != 0)
            && (rule.tags.is_empty()
                || rule
                    .tags
                    .iter()
                    .any(|t| self.ctx.tags.contains(&t.as_str())))
            && (rule.tenants.is_empty()
                || self
                    .ctx
                    .tenant
                    .is_some_and(|t| rule.tenants.iter().any(|r| r == t)))
    }

    /// Whether `index` may serve a request for this target (tier aliases keep to their tier).
    #[inline]
    pub fn in_target(&self, index: usize) -> bool {
        match self.features.target.0 {
            TargetKind::Tier(t) => self.policy.models.get(index).is_some_and(|m| m.tier == t),
            _ => true,
        }
    }

    /// The tiers the default step searches: for `flux-auto` the class's tier, then up, then down.
    #[inline]
    pub fn tier_order(&self) -> impl Iterator<Item = usize> + use<> {
        let n = self.policy.tiers.len();
        let (start, only) = match self.features.target.0 {
            TargetKind::Tier(t) => (t, true),
            _ => {
                let class = self.features.complexity as usize;
                (
                    self.policy.auto_tiers.get(class).copied().unwrap_or(0),
                    false,
                )
            }
        };
        let up = start..if only { start + 1 } else { n };
        let down = (0..if only { 0 } else { start }).rev();
        up.chain(down)
    }
}
