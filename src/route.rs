//! Routing: a pure function of (compiled policy, request features, caller context).
//! No I/O, clock, randomness, locks or heap allocation on the way to a decision.

use crate::capability::Capability;
use crate::classify::{Fnv, RequestFeatures};
use crate::decision::{Choice, Decision, Fallbacks, RuleRef};
use crate::error::{ErrorCode, RouteError};
use crate::policy::{Action, CompiledPolicy, MAX_FALLBACKS, Model, Rule, TargetKind, Tenant};

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

/// Why a candidate model cannot serve a request, in the order the filters run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drop {
    Tenant,
    Capability(Capability),
    Output,
    Context,
    Unavailable,
}

impl Drop {
    const fn rank(self) -> u8 {
        match self {
            Drop::Tenant => 0,
            Drop::Capability(_) => 1,
            Drop::Output => 2,
            Drop::Context => 3,
            Drop::Unavailable => 4,
        }
    }
}

/// Everything one routing call reads, resolved once.
pub(crate) struct Request<'a, 'p> {
    pub policy: &'p CompiledPolicy,
    pub features: &'a RequestFeatures,
    pub ctx: &'a CallerContext<'a>,
    pub tenant: Option<&'p Tenant>,
    /// Prompt tokens with the policy's safety margin.
    pub prompt: u64,
}

impl<'a, 'p> Request<'a, 'p> {
    #[inline]
    pub fn new(
        policy: &'p CompiledPolicy,
        features: &'a RequestFeatures,
        ctx: &'a CallerContext<'a>,
        tenant: Option<&'p Tenant>,
    ) -> Self {
        let p = u64::from(features.prompt_tokens);
        let prompt = p + (p * u64::from(policy.limits.margin_bp)).div_ceil(10_000);
        Request {
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
    pub fn check(&self, index: usize, model: &Model) -> Result<(), Drop> {
        if let Some(allowed) = self.tenant.and_then(|t| t.models.as_ref())
            && !u16::try_from(index).is_ok_and(|i| allowed.contains(&i))
        {
            return Err(Drop::Tenant);
        }
        if let Some(cap) = self.features.capabilities.missing_from(model.capabilities) {
            return Err(Drop::Capability(cap));
        }
        if self
            .features
            .max_output_tokens
            .is_some_and(|n| n > model.max_output_tokens)
        {
            return Err(Drop::Output);
        }
        let needed = self.prompt + u64::from(self.output_for(model));
        if needed > u64::from(model.context_window) {
            return Err(Drop::Context);
        }
        if self.ctx.unavailable.contains(&model.id.as_str()) {
            return Err(Drop::Unavailable);
        }
        Ok(())
    }

    /// Output tokens a cost estimate charges a model whose output limit is `limit`.
    #[inline]
    pub fn output_charged(&self, limit: u32) -> u32 {
        let expected = self.policy.limits.expected_output_tokens.min(limit);
        self.features
            .max_output_tokens
            .map_or(expected, |n| n.min(expected))
    }

    /// Estimated USD cost of serving this request with `model`.
    pub fn cost(&self, model: &Model) -> f64 {
        self.cost_key(model) / 1e6
    }

    /// The cost in millionths of a dollar: orders models as [`Request::cost`] does, without
    /// a division per candidate.
    #[inline]
    pub fn cost_key(&self, model: &Model) -> f64 {
        let output = self.output_charged(model.max_output_tokens);
        f64::from(self.features.prompt_tokens) * model.input_per_mtok
            + f64::from(output) * model.output_per_mtok
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

/// Tiers up to this size are scanned whole rather than walked by price.
const SMALL_TIER: usize = 32;

/// The cheapest eligible models seen so far, cheapest first (ties by catalog order).
struct Cheapest {
    items: [(f64, usize); MAX_FALLBACKS + 1],
    len: usize,
    cap: usize,
}

impl Cheapest {
    fn new(cap: usize) -> Self {
        Cheapest {
            items: [(0.0, 0); MAX_FALLBACKS + 1],
            len: 0,
            cap: cap.min(MAX_FALLBACKS + 1),
        }
    }

    /// Adds a model not added before; ties keep catalog order.
    #[inline]
    fn insert(&mut self, cost: f64, index: usize) {
        let len = self.len.min(self.items.len());
        let items = self.items.get(..len).unwrap_or_default();
        // Where it goes: after every cheaper model, and after equal ones earlier in the catalog.
        let at = items
            .iter()
            .position(|&(c, i)| c > cost || (c == cost && i > index))
            .unwrap_or(len);
        if at >= self.cap {
            return;
        }
        // Shift the tail one place right (dropping the last when full), then insert.
        let mut j = len.min(self.cap - 1);
        while j > at {
            if let Some(&prev) = self.items.get(j - 1)
                && let Some(slot) = self.items.get_mut(j)
            {
                *slot = prev;
            }
            j -= 1;
        }
        if let Some(slot) = self.items.get_mut(at) {
            *slot = (cost, index);
        }
        self.len = (self.len + 1).min(self.cap);
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.items.iter().take(self.len).map(|&(_, i)| i)
    }

    /// Whether no model costing at least `bound` can still enter (full, last one cheaper).
    fn settled(&self, bound: f64) -> bool {
        self.len >= self.cap
            && self
                .items
                .get(self.len.wrapping_sub(1))
                .is_some_and(|&(c, _)| c < bound)
    }
}

/// The chosen model and its fallbacks, in preference order.
struct Picks {
    list: Fallbacks,
    cap: usize,
}

impl Picks {
    #[inline]
    fn push(&mut self, index: usize) {
        if self.list.len() < self.cap && !self.list.contains(index) {
            self.list.push(index);
        }
    }
    fn full(&self) -> bool {
        self.list.len() >= self.cap
    }
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
        let tenant = ctx.tenant.and_then(|t| self.tenants.get(t));
        if let Some(names) = tenant.and_then(|t| t.names.as_ref())
            && !names.contains(&features.target.0)
        {
            return Err(not_allowed(ctx, self.target_name(features.target)));
        }
        let req = Request::new(self, features, ctx, tenant);
        let choice = match features.target.0 {
            TargetKind::Pinned(a) => self.exact(&req, self.pinned.get(a).map(|a| a.model))?,
            TargetKind::Passthrough(m) => self.exact(&req, Some(m))?,
            TargetKind::Redirect(r) => self.exact(&req, self.redirects.get(r).map(|a| a.model))?,
            TargetKind::Auto | TargetKind::Tier(_) => self.sized(&req)?,
        };
        Ok(Decision::new(self, *features, choice))
    }

    /// Classifies a body and routes it under this policy.
    pub fn route_body<'p>(
        &'p self,
        body: &[u8],
        ctx: &CallerContext<'_>,
    ) -> Result<Decision<'p>, RouteError> {
        let features = self.classify(body)?;
        self.route(&features, ctx)
    }

    fn exact(&self, req: &Request<'_, '_>, model: Option<usize>) -> Result<Choice, RouteError> {
        let Some((index, m)) = model.and_then(|i| self.models.get(i).map(|m| (i, m))) else {
            return Err(
                RouteError::new(ErrorCode::ModelNotFound, "the name resolves to no model")
                    .with_param("model"),
            );
        };
        match req.check(index, m) {
            Ok(()) => Ok(Choice {
                model: index,
                rule: RuleRef::None,
                fallbacks: Fallbacks::default(),
                cost: req.cost(m),
            }),
            Err(drop) => Err(exact_error(req, m, drop)),
        }
    }

    fn sized(&self, req: &Request<'_, '_>) -> Result<Choice, RouteError> {
        let cap = self.max_fallbacks + 1;
        for (ri, rule) in self.rules.iter().enumerate() {
            if !req.rule_matches(rule) {
                continue;
            }
            let mut picks = Picks {
                list: Fallbacks::default(),
                cap,
            };
            self.rule_candidates(req, rule, &mut picks);
            if let Some(first) = picks.list.first() {
                self.default_chain(req, &mut picks);
                let rule = RuleRef::Rule(u32::try_from(ri).unwrap_or(u32::MAX));
                return Ok(self.choice(req, first, rule, &picks));
            }
        }
        let mut picks = Picks {
            list: Fallbacks::default(),
            cap,
        };
        let worst = self.default_chain(req, &mut picks);
        match picks.list.first() {
            Some(first) => Ok(self.choice(req, first, RuleRef::Default, &picks)),
            None => Err(scope_error(req, worst)),
        }
    }

    fn choice(&self, req: &Request<'_, '_>, model: usize, rule: RuleRef, picks: &Picks) -> Choice {
        Choice {
            model,
            rule,
            fallbacks: picks.list.without_first(),
            cost: self.models.get(model).map_or(0.0, |m| req.cost(m)),
        }
    }

    /// Eligible models of a rule's action, in the action's preference order.
    fn rule_candidates(&self, req: &Request<'_, '_>, rule: &Rule, picks: &mut Picks) {
        let eligible = |i: usize| {
            req.in_target(i) && self.models.get(i).is_some_and(|m| req.check(i, m).is_ok())
        };
        match &rule.action {
            Action::Tier(t) => {
                let mut best = Cheapest::new(picks.cap);
                self.cheapest(req, *t, &mut best, |i, m| {
                    if req.in_target(i) {
                        req.check(i, m)
                    } else {
                        Err(Drop::Tenant)
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
                h.write(&req.features.key.to_le_bytes());
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
    fn default_chain(&self, req: &Request<'_, '_>, picks: &mut Picks) -> Option<Drop> {
        let mut worst: Option<Drop> = None;
        for t in req.tier_order() {
            let mut best = Cheapest::new(picks.cap);
            let w = self.cheapest(req, t, &mut best, |i, m| req.check(i, m));
            if let Some(d) = w
                && worst.is_none_or(|w| d.rank() > w.rank())
            {
                worst = Some(d);
            }
            best.iter().for_each(|i| picks.push(i));
            if picks.full() {
                break;
            }
        }
        worst
    }

    /// The `cap` cheapest models of tier `t` that pass `check`, and the furthest filter a
    /// rejected one reached.
    ///
    /// Walks the tier by input price and by output price together (Fagin's threshold
    /// algorithm): a model not yet seen in either order costs at least the current input price
    /// times the prompt plus the current output price times the fewest output tokens any model
    /// is charged, so the walk stops once the `cap` cheapest found cost less than that bound.
    /// Typical requests look at a handful of models whatever the tier's size.
    fn cheapest(
        &self,
        req: &Request<'_, '_>,
        t: usize,
        best: &mut Cheapest,
        check: impl Fn(usize, &Model) -> Result<(), Drop>,
    ) -> Option<Drop> {
        let mut worst: Option<Drop> = None;
        let Some(tier) = self.tiers.get(t) else {
            return worst;
        };
        let prompt = f64::from(req.features.prompt_tokens);
        let fewest_output = f64::from(req.output_charged(tier.min_output_limit));
        let visit = |i: usize, best: &mut Cheapest, worst: &mut Option<Drop>, once: bool| {
            let Some(m) = self.models.get(i) else {
                return;
            };
            match check(i, m) {
                // The price walk meets most models twice; they enter once.
                Ok(()) if once || !best.iter().any(|b| b == i) => best.insert(req.cost_key(m), i),
                Ok(()) => {}
                Err(d) => {
                    if worst.is_none_or(|w| d.rank() > w.rank()) {
                        *worst = Some(d);
                    }
                }
            }
        };
        // A small tier is cheaper to scan whole than to walk twice.
        if tier.models.len() <= SMALL_TIER {
            for &i in &tier.models {
                visit(i, best, &mut worst, true);
            }
            return worst;
        }
        let input = |i: usize| {
            self.models
                .get(i)
                .map_or(f64::INFINITY, |m| m.input_per_mtok)
        };
        let output = |i: usize| {
            self.models
                .get(i)
                .map_or(f64::INFINITY, |m| m.output_per_mtok)
        };
        let (by_in, by_out) = (&tier.by_input, &tier.by_output);
        let (Some(&first_in), Some(&first_out)) = (by_in.first(), by_out.first()) else {
            return worst;
        };
        visit(first_in, best, &mut worst, false);
        visit(first_out, best, &mut worst, false);
        let (mut a, mut b) = (0usize, 0usize);
        loop {
            let (cur_in, cur_out) = (
                by_in.get(a).map_or(f64::INFINITY, |&i| input(i)),
                by_out.get(b).map_or(f64::INFINITY, |&i| output(i)),
            );
            if best.settled(prompt * cur_in + fewest_output * cur_out) {
                break;
            }
            // Advance the order whose next model raises the bound more.
            let gain_in = by_in.get(a + 1).map(|&i| prompt * (input(i) - cur_in));
            let gain_out = by_out
                .get(b + 1)
                .map(|&i| fewest_output * (output(i) - cur_out));
            let next = match (gain_in, gain_out) {
                (None, None) => break,
                (Some(gi), Some(go)) if gi > go => None,
                (Some(_), None) => None,
                _ => Some(()),
            };
            if next.is_some() {
                b += 1;
                if let Some(&i) = by_out.get(b) {
                    visit(i, best, &mut worst, false);
                }
            } else {
                a += 1;
                if let Some(&i) = by_in.get(a) {
                    visit(i, best, &mut worst, false);
                }
            }
        }
        worst
    }
}

// The three error builders below are inlined into `route`: out of line, its register
// allocation changes and a decision costs 15 more instructions, 18 of them stack accesses
// (callgrind), about a tenth slower.
#[inline(always)]
fn not_allowed(ctx: &CallerContext<'_>, name: &str) -> RouteError {
    let tenant = ctx.tenant.unwrap_or_default();
    RouteError::new(
        ErrorCode::ModelNotAllowed,
        format!("tenant `{tenant}` may not use `{name}`"),
    )
    .with_param("model")
}

#[inline(always)]
fn exact_error(req: &Request<'_, '_>, m: &Model, drop: Drop) -> RouteError {
    match drop {
        Drop::Tenant => not_allowed(req.ctx, &m.id),
        Drop::Capability(cap) => RouteError::new(
            ErrorCode::CapabilityNotSupported,
            format!("model `{}` does not support {cap}", m.id),
        )
        .with_param(cap.param()),
        Drop::Output => RouteError::new(
            ErrorCode::MaxTokensTooLarge,
            format!(
                "requested {} output tokens, above model `{}`'s limit of {}",
                req.features.max_output_tokens.unwrap_or(0),
                m.id,
                m.max_output_tokens
            ),
        )
        .with_param("max_tokens"),
        Drop::Context => RouteError::new(
            ErrorCode::ContextLengthExceeded,
            format!(
                "about {} prompt tokens (with margin) plus {} output tokens do not fit model `{}`'s context window of {}",
                req.prompt_with_margin(),
                req.output_for(m),
                m.id,
                m.context_window
            ),
        )
        .with_param("messages"),
        Drop::Unavailable => RouteError::new(ErrorCode::ModelUnavailable, format!("model `{}` is unavailable", m.id)),
    }
}

#[inline(always)]
fn scope_error(req: &Request<'_, '_>, worst: Option<Drop>) -> RouteError {
    let name = req.policy.target_name(req.features.target);
    match worst {
        Some(Drop::Tenant) => not_allowed(req.ctx, name),
        None | Some(Drop::Capability(_)) => {
            let needs = req.features.capabilities.names().join(", ");
            RouteError::new(
                ErrorCode::NoEligibleModel,
                format!("no model behind `{name}` supports {needs}"),
            )
            .with_param(
                req.features
                    .capabilities
                    .iter()
                    .next()
                    .map_or("model", Capability::param),
            )
        }
        Some(Drop::Output) => RouteError::new(
            ErrorCode::MaxTokensTooLarge,
            format!(
                "requested {} output tokens, above the limit of every model behind `{name}`",
                req.features.max_output_tokens.unwrap_or(0)
            ),
        )
        .with_param("max_tokens"),
        Some(Drop::Context) => RouteError::new(
            ErrorCode::ContextLengthExceeded,
            format!(
                "about {} prompt tokens (with margin) do not fit any model behind `{name}`",
                req.prompt_with_margin()
            ),
        )
        .with_param("messages"),
        Some(Drop::Unavailable) => RouteError::new(
            ErrorCode::ModelUnavailable,
            format!("every model behind `{name}` that could serve this request is unavailable"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilitySet;
    use crate::policy::Target;
    use proptest::prelude::*;

    /// A one-tier policy over `prices` (input, output, output limit), every model with tools
    /// except those whose index is a multiple of `no_tools`.
    fn policy(prices: &[(u16, u16, u32)], no_tools: usize) -> CompiledPolicy {
        let mut s = String::from(
            "[policy]\nname = \"t\"\nmax_fallbacks = 8\n[[tiers]]\nname = \"only\"\nalias = \"flux-only\"\n[auto]\nsimple = \"only\"\nstandard = \"only\"\ncomplex = \"only\"\nreasoning = \"only\"\n",
        );
        for (i, (input, output, limit)) in prices.iter().enumerate() {
            let caps = if i % no_tools == 0 { "" } else { "\"tools\"" };
            s += &format!(
                "[[models]]\nid = \"m{i}\"\nprovider = \"p\"\ntier = \"only\"\ncontext_window = 1000000\nmax_output_tokens = {limit}\ninput_per_mtok = {}\noutput_per_mtok = {}\ncapabilities = [{caps}]\n",
                f64::from(*input) / 100.0,
                f64::from(*output) / 100.0
            );
        }
        s += "[pinned]\n";
        for i in 0..prices.len() {
            s += &format!("\"flux-pinned-m{i}\" = \"m{i}\"\n");
        }
        CompiledPolicy::from_toml(&s, "t.toml").unwrap().policy
    }

    proptest! {
        #[test]
        fn the_threshold_walk_finds_what_a_full_scan_finds(
            prices in proptest::collection::vec((0u16..500, 0u16..500, prop_oneof![Just(100u32), Just(4096), Just(65536)]), 1..40),
            no_tools in 1usize..5,
            prompt in prop_oneof![0u32..200, 0u32..200_000],
            max_output in proptest::option::of(1u32..2000),
            tools in any::<bool>(),
        ) {
            let p = policy(&prices, no_tools);
            let mut f = RequestFeatures::new(Target(TargetKind::Auto));
            f.prompt_tokens = prompt;
            f.max_output_tokens = max_output;
            if tools {
                f.capabilities = CapabilitySet::EMPTY.with(Capability::Tools);
            }
            let ctx = CallerContext::default();
            let req = Request::new(&p, &f, &ctx, None);
            let mut best = Cheapest::new(9);
            p.cheapest(&req, 0, &mut best, |i, m| req.check(i, m));
            // The full scan: every eligible model by (cost, catalog order).
            let mut all: Vec<(f64, usize)> = p
                .models
                .iter()
                .enumerate()
                .filter(|(i, m)| req.check(*i, m).is_ok())
                .map(|(i, m)| (req.cost_key(m), i))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<usize> = all.iter().take(9).map(|&(_, i)| i).collect();
            prop_assert_eq!(best.iter().collect::<Vec<_>>(), want);
        }
    }
}
