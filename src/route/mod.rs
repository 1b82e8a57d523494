//! Routing: a pure function of (compiled policy, request features, caller context).
//! No I/O, clock, randomness, locks or heap allocation on the way to a decision.
//!
//! [`context`] resolves what one call reads and holds the hard filters, [`cheapest`] searches a
//! tier by price, [`reject`] words every rejection.

mod cheapest;
mod context;
pub(crate) mod reject;

use crate::decision::{Choice, DecidedBy, Decision, Fallbacks};
use crate::error::{ErrorCode, RouteError};
use crate::features::{Api, Fnv, RequestFeatures, TargetKind};
use crate::policy::{Action, CompiledPolicy, Rule, Tenant};
use cheapest::{Cheapest, Picks, cheapest};
pub(crate) use context::{Rejection, RoutingContext};

/// What the host knows about the caller, not found in the body.
///
/// ```
/// use fluxroute::CallerContext;
/// let ctx = CallerContext { tenant: Some("acme"), tags: &["batch"], unavailable: &["gpt-4o"] };
/// assert_eq!(ctx.tenant, Some("acme"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerContext<'a> {
    /// The tenant the request belongs to; tenants not named in the policy are unrestricted.
    pub tenant: Option<&'a str>,
    /// Tags the host attached (rules may match on them).
    pub tags: &'a [&'a str],
    /// Backing model ids currently unavailable.
    pub unavailable: &'a [&'a str],
}

impl CompiledPolicy {
    /// Routes classified features to a decision.
    ///
    /// Pinned, passthrough and redirected names are served by exactly their model or rejected;
    /// `flux-auto` and tier aliases apply the hard filters, the rules, then the default
    /// complexity → tier → cheapest step.
    pub fn route<'p>(
        &'p self,
        features: &RequestFeatures,
        ctx: &CallerContext<'_>,
    ) -> Result<Decision<'p>, RouteError> {
        let Some(tenant) = self.tenant_of(ctx) else {
            return Err(reject::unknown_tenant(ctx));
        };
        if let Some(names) = tenant.and_then(|t| t.names.as_ref())
            && !names.contains(&features.target.0)
        {
            return Err(reject::not_allowed(ctx, self.target_name(features.target)));
        }
        let cx = RoutingContext::new(self, features, ctx, tenant);
        let choice = match features.target.0 {
            TargetKind::Pinned(a) => self.exact(&cx, self.pinned.get(a).map(|a| a.model))?,
            TargetKind::Passthrough(m) => self.exact(&cx, Some(m))?,
            TargetKind::Redirect(r) => self.exact(&cx, self.redirects.get(r).map(|a| a.model))?,
            TargetKind::Auto | TargetKind::Tier(_) => self.sized(&cx)?,
        };
        Ok(Decision::new(self, *features, choice))
    }

    /// The declared tenant a request belongs to: `Some(None)` for an undeclared tenant or none
    /// (an empty name is none), which is unrestricted; `None` when the policy denies such a
    /// request (the error is [`reject::unknown_tenant`], built only then). Names match
    /// exactly: no trimming, no case folding.
    #[inline]
    pub(crate) fn tenant_of(&self, ctx: &CallerContext<'_>) -> Option<Option<&Tenant>> {
        let tenant = ctx
            .tenant
            .filter(|t| !t.is_empty())
            .and_then(|t| self.tenants.get(t));
        if tenant.is_none() && self.deny_unknown_tenants {
            return None;
        }
        Some(tenant)
    }

    /// Classifies a Chat Completions body and routes it under this policy.
    pub fn route_body<'p>(
        &'p self,
        body: &[u8],
        ctx: &CallerContext<'_>,
    ) -> Result<Decision<'p>, RouteError> {
        self.route_body_as(Api::Chat, body, ctx)
    }

    /// Classifies a body of the given request API and routes it under this policy.
    pub fn route_body_as<'p>(
        &'p self,
        api: Api,
        body: &[u8],
        ctx: &CallerContext<'_>,
    ) -> Result<Decision<'p>, RouteError> {
        let features = self.classify_as(api, body)?;
        self.route(&features, ctx)
    }

    fn exact(
        &self,
        cx: &RoutingContext<'_, '_>,
        model: Option<usize>,
    ) -> Result<Choice, RouteError> {
        let Some((index, m)) = model.and_then(|i| self.models.get(i).map(|m| (i, m))) else {
            return Err(
                RouteError::new(ErrorCode::ModelNotFound, "the name resolves to no model")
                    .with_param("model"),
            );
        };
        match cx.check(index, m) {
            Ok(()) => Ok(Choice {
                model: index,
                rule: DecidedBy::Name,
                fallbacks: Fallbacks::default(),
                cost: cx.cost(m),
            }),
            Err(why) => Err(reject::model_rejected(cx, m, why)),
        }
    }

    fn sized(&self, cx: &RoutingContext<'_, '_>) -> Result<Choice, RouteError> {
        let cap = self.max_fallbacks + 1;
        for (ri, rule) in self.rules.iter().enumerate() {
            if !cx.rule_matches(rule) {
                continue;
            }
            let mut picks = Picks {
                list: Fallbacks::default(),
                cap,
            };
            self.rule_candidates(cx, rule, &mut picks);
            if rule.restrict {
                return self.restricted(cx, ri, rule, &picks);
            }
            if let Some(first) = picks.list.first() {
                self.default_chain(cx, &mut picks);
                let rule = DecidedBy::Rule(u32::try_from(ri).unwrap_or(u32::MAX));
                return Ok(self.choice(cx, first, rule, &picks));
            }
        }
        let mut picks = Picks {
            list: Fallbacks::default(),
            cap,
        };
        let worst = self.default_chain(cx, &mut picks);
        match picks.list.first() {
            Some(first) => Ok(self.choice(cx, first, DecidedBy::Default, &picks)),
            None => Err(reject::scope_rejected(cx, worst)),
        }
    }

    fn choice(
        &self,
        cx: &RoutingContext<'_, '_>,
        model: usize,
        rule: DecidedBy,
        picks: &Picks,
    ) -> Choice {
        Choice {
            model,
            rule,
            fallbacks: picks.list.without_first(),
            cost: self.models.get(model).map_or(0.0, |m| cx.cost(m)),
        }
    }

    /// The decision of a restricting rule: only its models, no default chain behind them and
    /// no later rule.
    fn restricted(
        &self,
        cx: &RoutingContext<'_, '_>,
        index: usize,
        rule: &Rule,
        picks: &Picks,
    ) -> Result<Choice, RouteError> {
        let Some(first) = picks.list.first() else {
            return Err(reject::rule_rejected(
                cx,
                rule,
                self.rule_furthest(cx, rule),
            ));
        };
        let decided = DecidedBy::Rule(u32::try_from(index).unwrap_or(u32::MAX));
        Ok(self.choice(cx, first, decided, picks))
    }

    /// The furthest filter any model of a rule's action reached (for the error of a
    /// restricting rule none of whose models can serve).
    #[cold]
    fn rule_furthest(&self, cx: &RoutingContext<'_, '_>, rule: &Rule) -> Option<Rejection> {
        let listed: &mut dyn Iterator<Item = usize> = match &rule.action {
            Action::Tier(t) => &mut self
                .tiers
                .get(*t)
                .into_iter()
                .flat_map(|t| t.models.iter().copied()),
            Action::Models(list) => &mut list.iter().copied(),
            Action::Split(arms) => &mut arms.iter().map(|a| a.0),
        };
        let mut furthest = None;
        for i in listed.filter(|&i| cx.in_target(i)) {
            if let Some(Err(why)) = self.models.get(i).map(|m| cx.check(i, m)) {
                why.keep_furthest(&mut furthest);
            }
        }
        furthest
    }

    /// Eligible models of a rule's action, in the action's preference order.
    fn rule_candidates(&self, cx: &RoutingContext<'_, '_>, rule: &Rule, picks: &mut Picks) {
        let eligible = |i: usize| {
            cx.in_target(i) && self.models.get(i).is_some_and(|m| cx.check(i, m).is_ok())
        };
        match &rule.action {
            Action::Tier(t) => {
                let mut best = Cheapest::new(picks.cap);
                cheapest(cx, *t, &mut best, |i, m| {
                    if cx.in_target(i) {
                        cx.check(i, m)
                    } else {
                        Err(Rejection::Tenant)
                    }
                });
                best.iter().for_each(|i| picks.push(i));
            }
            Action::Models(list) => list
                .iter()
                .copied()
                .filter(|&i| eligible(i))
                .for_each(|i| picks.push(i)),
            Action::Split(arms) => {
                let total: u64 = arms.iter().filter(|a| eligible(a.0)).map(|a| a.1).sum();
                if total == 0 {
                    return;
                }
                let mut h = Fnv::new();
                h.write(&cx.features.key.to_le_bytes());
                h.write(rule.name.as_bytes());
                let mut point = h.finish() % total;
                for &(i, w) in arms.iter().filter(|a| eligible(a.0)) {
                    if point < w {
                        picks.push(i);
                        break;
                    }
                    point -= w;
                }
                arms.iter()
                    .filter(|a| eligible(a.0))
                    .for_each(|a| picks.push(a.0));
            }
        }
    }

    /// Fills `picks` from the default step; returns the furthest filter any candidate reached.
    fn default_chain(&self, cx: &RoutingContext<'_, '_>, picks: &mut Picks) -> Option<Rejection> {
        let mut worst: Option<Rejection> = None;
        for t in cx.tier_order() {
            let mut best = Cheapest::new(picks.cap);
            let w = cheapest(cx, t, &mut best, |i, m| cx.check(i, m));
            if let Some(d) = w {
                d.keep_furthest(&mut worst);
            }
            best.iter().for_each(|i| picks.push(i));
            if picks.full() {
                break;
            }
        }
        worst
    }
}
