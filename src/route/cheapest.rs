//! The default step's search: the cheapest eligible models of a tier, in cost order, without
//! looking at every model of a large tier.

use super::context::{Rejection, RoutingContext};
use crate::decision::Fallbacks;
use crate::policy::{MAX_FALLBACKS, Model};

/// Tiers up to this size are scanned whole rather than walked by price.
const SMALL_TIER: usize = 32;

/// The cheapest eligible models seen so far, cheapest first (ties by catalog order).
pub(super) struct Cheapest {
    items: [(f64, usize); MAX_FALLBACKS + 1],
    len: usize,
    cap: usize,
}

impl Cheapest {
    pub fn new(cap: usize) -> Self {
        Cheapest {
            items: [(0.0, 0); MAX_FALLBACKS + 1],
            len: 0,
            cap: cap.min(MAX_FALLBACKS + 1),
        }
    }

    /// Adds a model not added before; ties keep catalog order.
    #[inline]
    pub fn insert(&mut self, cost: f64, index: usize) {
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

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.items.iter().take(self.len).map(|&(_, i)| i)
    }

    /// Whether no model costing at least `bound` can still enter (full, last one cheaper).
    pub fn settled(&self, bound: f64) -> bool {
        self.len >= self.cap
            && self
                .items
                .get(self.len.wrapping_sub(1))
                .is_some_and(|&(c, _)| c < bound)
    }
}

/// The chosen model and its fallbacks, in preference order.
pub(super) struct Picks {
    pub list: Fallbacks,
    pub cap: usize,
}

impl Picks {
    #[inline]
    pub fn push(&mut self, index: usize) {
        if self.list.len() < self.cap && !self.list.contains(index) {
            self.list.push(index);
        }
    }
    pub fn full(&self) -> bool {
        self.list.len() >= self.cap
    }
}

/// The `cap` cheapest models of tier `t` that pass `check`, and the furthest filter a
/// rejected one reached.
///
/// Walks the tier by input price and by output price together (Fagin's threshold
/// algorithm): a model not yet seen in either order costs at least the current input price
/// times the prompt plus the current output price times the fewest output tokens any model
/// is charged, so the walk stops once the `cap` cheapest found cost less than that bound.
/// Typical requests look at a handful of models whatever the tier's size.
pub(super) fn cheapest(
    cx: &RoutingContext<'_, '_>,
    t: usize,
    best: &mut Cheapest,
    check: impl Fn(usize, &Model) -> Result<(), Rejection>,
) -> Option<Rejection> {
    let mut worst: Option<Rejection> = None;
    let models = &cx.policy.models;
    let Some(tier) = cx.policy.tiers.get(t) else {
        return worst;
    };
    let prompt = f64::from(cx.features.prompt_tokens);
    let fewest_output = cx.output_charged(tier.min_output_limit);
    let visit = |i: usize, best: &mut Cheapest, worst: &mut Option<Rejection>, once: bool| {
        let Some(m) = models.get(i) else {
            return;
        };
        match check(i, m) {
            // The price walk meets most models twice; they enter once.
            Ok(()) if once || !best.iter().any(|b| b == i) => best.insert(cx.cost_key(m), i),
            Ok(()) => {}
            Err(d) => d.keep_furthest(worst),
        }
    };
    // A small tier is cheaper to scan whole than to walk twice.
    if tier.models.len() <= SMALL_TIER {
        for &i in &tier.models {
            visit(i, best, &mut worst, true);
        }
        return worst;
    }
    let input = |i: usize| models.get(i).map_or(f64::INFINITY, |m| m.input_per_mtok);
    let output = |i: usize| models.get(i).map_or(f64::INFINITY, |m| m.output_per_mtok);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Capability, CapabilitySet};
    use crate::features::{RequestFeatures, Target, TargetKind};
    use crate::policy::CompiledPolicy;
    use crate::route::CallerContext;
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
            let cx = RoutingContext::new(&p, &f, &ctx, None);
            let mut best = Cheapest::new(9);
            cheapest(&cx, 0, &mut best, |i, m| cx.check(i, m));
            // The full scan: every eligible model by (cost, catalog order).
            let mut all: Vec<(f64, usize)> = p
                .models
                .iter()
                .enumerate()
                .filter(|(i, m)| cx.check(*i, m).is_ok())
                .map(|(i, m)| (cx.cost_key(m), i))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<usize> = all.iter().take(9).map(|&(_, i)| i).collect();
            prop_assert_eq!(best.iter().collect::<Vec<_>>(), want);
        }
    }
}
