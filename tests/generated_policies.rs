//! Routing under generated policies, against an oracle written from the contract alone: the
//! hard filters, the first matching rule, the complexity class's tier then up then down, the
//! cheapest eligible model by estimated cost (ties by catalog order), and the error named by
//! the furthest filter any candidate reached.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use fluxroute::{
    CallerContext, Capability, CapabilitySet, CompiledPolicy, Complexity, ErrorCode, Mode,
    RequestFeatures,
};
use proptest::prelude::*;

const CAPS: [Capability; 4] = [
    Capability::Tools,
    Capability::Vision,
    Capability::JsonSchema,
    Capability::Reasoning,
];

#[derive(Debug, Clone)]
struct Model {
    tier: usize,
    window: u32,
    max_output: u32,
    /// Bit `i`: `CAPS[i]`.
    caps: u8,
    input: u32,
    output: u32,
}

#[derive(Debug, Clone)]
struct Spec {
    tiers: usize,
    models: Vec<Model>,
    auto: [usize; 4],
    max_fallbacks: usize,
    margin_pct: u32,
    reserve: u32,
    expected: u32,
    /// A rule sending prompts of at least this many tokens to the listed models.
    rule: Option<(u32, Vec<usize>)>,
}

fn model() -> impl Strategy<Value = Model> {
    (
        0usize..4,
        prop_oneof![Just(8_000u32), Just(32_000), Just(200_000)],
        prop_oneof![Just(1_000u32), Just(4_096), Just(8_000)],
        0u8..16,
        // Few distinct prices too, so that equal costs (broken by catalog order) are common.
        prop_oneof![0u32..1_000, (0u32..3).prop_map(|x| x * 100)],
        prop_oneof![0u32..4_000, (0u32..3).prop_map(|x| x * 400)],
    )
        .prop_map(|(tier, window, max_output, caps, input, output)| Model {
            tier,
            window,
            max_output,
            caps,
            input,
            output,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1usize..=4,
        proptest::collection::vec(model(), 1..12),
        [0usize..4, 0usize..4, 0usize..4, 0usize..4],
        0usize..=8,
        0u32..20,
        prop_oneof![Just(1u32), Just(2_000), Just(16_000)],
        prop_oneof![Just(0u32), Just(300), Just(5_000)],
        proptest::option::of((0u32..50_000, proptest::collection::vec(0usize..12, 1..4))),
    )
        .prop_map(
            |(tiers, mut models, auto, max_fallbacks, margin_pct, reserve, expected, rule)| {
                for m in &mut models {
                    m.tier %= tiers;
                }
                // Every tier needs a model.
                for (t, m) in models.iter_mut().enumerate().take(tiers) {
                    m.tier = t;
                }
                while models.len() < tiers {
                    let mut m = models[0].clone();
                    m.tier = models.len();
                    models.push(m);
                }
                let n = models.len();
                Spec {
                    tiers,
                    auto: auto.map(|t| t % tiers),
                    models,
                    max_fallbacks,
                    margin_pct,
                    reserve,
                    expected,
                    rule: rule.map(|(min, list)| (min, list.into_iter().map(|i| i % n).collect())),
                }
            },
        )
}

fn toml(s: &Spec) -> String {
    let mut t = format!(
        "[policy]\nname = \"generated\"\nmax_fallbacks = {}\n[limits]\ncontext_margin = {}\noutput_reserve = {}\nexpected_output_tokens = {}\n",
        s.max_fallbacks,
        f64::from(s.margin_pct) / 100.0,
        s.reserve,
        s.expected
    );
    for i in 0..s.tiers {
        t += &format!("[[tiers]]\nname = \"t{i}\"\nalias = \"flux-t{i}\"\n");
    }
    let [a, b, c, d] = s.auto;
    t += &format!(
        "[auto]\nsimple = \"t{a}\"\nstandard = \"t{b}\"\ncomplex = \"t{c}\"\nreasoning = \"t{d}\"\n"
    );
    for (i, m) in s.models.iter().enumerate() {
        let caps: Vec<String> = CAPS
            .iter()
            .enumerate()
            .filter(|(b, _)| m.caps & (1 << b) != 0)
            .map(|(_, c)| format!("\"{}\"", c.as_str()))
            .collect();
        t += &format!(
            "[[models]]\nid = \"m{i}\"\nprovider = \"p\"\ntier = \"t{}\"\ncontext_window = {}\nmax_output_tokens = {}\ninput_per_mtok = {}\noutput_per_mtok = {}\ncapabilities = [{}]\n",
            m.tier,
            m.window,
            m.max_output,
            f64::from(m.input) / 100.0,
            f64::from(m.output) / 100.0,
            caps.join(", ")
        );
    }
    t += "[pinned]\n";
    for i in 0..s.models.len() {
        t += &format!("\"flux-pinned-m{i}\" = \"m{i}\"\n");
    }
    if let Some((min, list)) = &s.rule {
        let ids: Vec<String> = list.iter().map(|i| format!("\"m{i}\"")).collect();
        t += &format!(
            "[[rules]]\nname = \"long\"\nmin_prompt_tokens = {min}\nmodels = [{}]\n",
            ids.join(", ")
        );
    }
    t
}

#[derive(Debug, Clone)]
struct Ask {
    prompt: u32,
    max_output: Option<u32>,
    caps: u8,
    class: usize,
    unavailable: Vec<usize>,
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        prop_oneof![0u32..2_000, 0u32..250_000],
        proptest::option::of(prop_oneof![1u32..2_000, 1u32..10_000]),
        prop_oneof![Just(0u8), 0u8..16],
        0usize..4,
        proptest::collection::vec(0usize..12, 0..3),
    )
        .prop_map(|(prompt, max_output, caps, class, unavailable)| Ask {
            prompt,
            max_output,
            caps,
            class,
            unavailable,
        })
}

/// The first filter model `i` fails, by its rank (capability 1, output 2, context 3,
/// unavailable 4), or `None` when it can serve.
fn rejected(s: &Spec, a: &Ask, i: usize) -> Option<u8> {
    let m = &s.models[i];
    if a.caps & !m.caps != 0 {
        return Some(1);
    }
    if a.max_output.is_some_and(|n| n > m.max_output) {
        return Some(2);
    }
    let p = u64::from(a.prompt);
    let with_margin = p + (p * u64::from(s.margin_pct) * 100).div_ceil(10_000);
    let output = a.max_output.unwrap_or(s.reserve.min(m.max_output));
    if with_margin + u64::from(output) > u64::from(m.window) {
        return Some(3);
    }
    if a.unavailable.contains(&i) {
        return Some(4);
    }
    None
}

/// The estimated cost in millionths of a dollar, as the contract defines it: the prompt at
/// the input price plus the expected output (at most the model's limit and the request's
/// own) at the output price.
fn cost(s: &Spec, a: &Ask, i: usize) -> f64 {
    let m = &s.models[i];
    let expected = s.expected.min(m.max_output);
    let charged = a.max_output.map_or(expected, |n| n.min(expected));
    f64::from(a.prompt) * f64::from(m.input) / 100.0
        + f64::from(charged) * f64::from(m.output) / 100.0
}

/// What `flux-auto` should serve: (model, fallbacks, rule) or the error code.
fn oracle(s: &Spec, a: &Ask) -> Result<(usize, Vec<usize>, &'static str), ErrorCode> {
    let cap = s.max_fallbacks + 1;
    let eligible = |i: usize| rejected(s, a, i).is_none();
    let mut picks: Vec<usize> = Vec::new();
    let push = |picks: &mut Vec<usize>, i: usize| {
        if picks.len() < cap && !picks.contains(&i) {
            picks.push(i);
        }
    };
    let mut rule = "default";
    if let Some((min, list)) = &s.rule
        && a.prompt >= *min
        && list.iter().any(|&i| eligible(i))
    {
        rule = "long";
        for &i in list {
            if eligible(i) {
                push(&mut picks, i);
            }
        }
    }
    let start = s.auto[a.class];
    let order = (start..s.tiers).chain((0..start).rev());
    for t in order {
        let mut tier: Vec<usize> = (0..s.models.len())
            .filter(|&i| s.models[i].tier == t && eligible(i))
            .collect();
        tier.sort_by(|&x, &y| cost(s, a, x).total_cmp(&cost(s, a, y)).then(x.cmp(&y)));
        for i in tier.into_iter().take(cap) {
            push(&mut picks, i);
        }
        if picks.len() >= cap {
            break;
        }
    }
    match picks.split_first() {
        Some((&first, rest)) => Ok((first, rest.to_vec(), rule)),
        None => {
            let furthest = (0..s.models.len()).filter_map(|i| rejected(s, a, i)).max();
            Err(match furthest {
                Some(2) => ErrorCode::MaxTokensTooLarge,
                Some(3) => ErrorCode::ContextLengthExceeded,
                Some(4) => ErrorCode::ModelUnavailable,
                _ => ErrorCode::NoEligibleModel,
            })
        }
    }
}

fn features(policy: &CompiledPolicy, name: &str, a: &Ask) -> RequestFeatures {
    let mut f = RequestFeatures::new(policy.resolve(name).unwrap());
    f.prompt_tokens = a.prompt;
    f.max_output_tokens = a.max_output;
    f.complexity = Complexity::ALL[a.class];
    f.capabilities = CAPS
        .iter()
        .enumerate()
        .filter(|(b, _)| a.caps & (1 << b) != 0)
        .fold(CapabilitySet::EMPTY, |set, (_, &c)| set.with(c));
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flux_auto_serves_what_the_contract_says(s in spec(), asks in proptest::collection::vec(ask(), 1..8)) {
        let text = toml(&s);
        let policy = CompiledPolicy::from_toml(&text, "generated.toml")
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .policy;
        for a in &asks {
            let ids: Vec<String> = a.unavailable.iter().map(|i| format!("m{i}")).collect();
            let unavailable: Vec<&str> = ids.iter().map(String::as_str).collect();
            let ctx = CallerContext { unavailable: &unavailable, ..CallerContext::default() };
            let got = policy.route(&features(&policy, "flux-auto", a), &ctx);
            match (oracle(&s, a), got) {
                (Ok((model, fallbacks, rule)), Ok(d)) => {
                    prop_assert_eq!(d.model(), format!("m{model}"), "{:?}\n{}", a, text);
                    let want: Vec<String> = fallbacks.iter().map(|i| format!("m{i}")).collect();
                    prop_assert_eq!(d.fallbacks().collect::<Vec<_>>(), want, "{:?}", a);
                    prop_assert_eq!(d.rule(), Some(rule));
                    prop_assert_eq!(d.mode(), Mode::Auto);
                    prop_assert!(d.routed());
                    let usd = cost(&s, a, model) / 1e6;
                    prop_assert!((d.estimated_cost_usd() - usd).abs() <= 1e-9 * usd.max(1.0));
                }
                (Err(code), Err(e)) => prop_assert_eq!(e.code(), code, "{:?}\n{}", a, text),
                (want, got) => prop_assert!(false, "want {:?}, got {:?}\n{:?}\n{}", want, got.map(|d| d.model().to_owned()), a, text),
            }
        }
    }

    #[test]
    fn a_pinned_model_serves_exactly_when_it_passes_every_filter(s in spec(), a in ask()) {
        let text = toml(&s);
        let policy = CompiledPolicy::from_toml(&text, "generated.toml").unwrap().policy;
        let ids: Vec<String> = a.unavailable.iter().map(|i| format!("m{i}")).collect();
        let unavailable: Vec<&str> = ids.iter().map(String::as_str).collect();
        let ctx = CallerContext { unavailable: &unavailable, ..CallerContext::default() };
        for i in 0..s.models.len() {
            let got = policy.route(&features(&policy, &format!("flux-pinned-m{i}"), &a), &ctx);
            let want = match rejected(&s, &a, i) {
                None => Ok(format!("m{i}")),
                Some(1) => Err(ErrorCode::CapabilityNotSupported),
                Some(2) => Err(ErrorCode::MaxTokensTooLarge),
                Some(3) => Err(ErrorCode::ContextLengthExceeded),
                Some(_) => Err(ErrorCode::ModelUnavailable),
            };
            let got = got.map(|d| {
                assert!(!d.routed() && d.fallbacks().next().is_none() && d.rule().is_none());
                d.model().to_owned()
            });
            prop_assert_eq!(got.map_err(|e| e.code()), want);
        }
    }

    #[test]
    fn a_tier_alias_serves_only_its_own_tier(s in spec(), a in ask()) {
        let text = toml(&s);
        let policy = CompiledPolicy::from_toml(&text, "generated.toml").unwrap().policy;
        for t in 0..s.tiers {
            let f = features(&policy, &format!("flux-t{t}"), &a);
            if let Ok(d) = policy.route(&f, &CallerContext::default()) {
                prop_assert_eq!(d.tier(), format!("t{t}"));
                for id in d.fallbacks() {
                    let i: usize = id[1..].parse().unwrap();
                    prop_assert_eq!(s.models[i].tier, t);
                }
            } else {
                // Nothing in the tier can serve.
                let in_tier = (0..s.models.len()).filter(|&i| s.models[i].tier == t);
                let mut in_tier = in_tier.map(|i| rejected(&s, &Ask { unavailable: Vec::new(), ..a.clone() }, i));
                prop_assert!(in_tier.all(|r| r.is_some()));
            }
        }
    }
}
