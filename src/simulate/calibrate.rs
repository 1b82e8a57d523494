//! Class thresholds calibrated on a log, as RouteLLM calibrates its threshold: the
//! `complex` threshold is set so that a given share of the log's requests lands in the strong
//! classes (`complex` and `reasoning`, signal floors included). The `reasoning` and `simple`
//! shares may be asked for too; otherwise `reasoning` keeps its part of the strong requests
//! and `standard` its part of the others, as the policy's thresholds split them.

use std::path::Path;

use super::reader::for_each_record;
use crate::features::{Api, Complexity};
use crate::policy::CompiledPolicy;

/// Thresholds calibrated on a log, and the share of its requests they put in the strong
/// classes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Calibration {
    /// `standard`, `complex`, `reasoning`.
    pub thresholds: [f64; 3],
    /// Requests that classified (the others are left out).
    pub records: usize,
    /// Requests a signal's `min_class` puts in a strong class whatever their score.
    pub floored: usize,
    /// The share of requests in `complex` or `reasoning` under the new thresholds.
    pub strong_share: f64,
}

/// The shares of a log's requests [`calibrate`] aims at: in the strong classes (`complex` and
/// `reasoning`), and optionally in `reasoning` and in `simple`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Share in `complex` or `reasoning`.
    pub strong: f64,
    /// Share in `reasoning` (scores only; floors come on top).
    pub reasoning: Option<f64>,
    /// Share in `simple`.
    pub simple: Option<f64>,
}

/// The class of a score under thresholds, with a floor.
fn class(score: f64, t: &[f64; 3], floor: Complexity) -> Complexity {
    let c = if score >= t[2] {
        Complexity::Reasoning
    } else if score >= t[1] {
        Complexity::Complex
    } else if score >= t[0] {
        Complexity::Standard
    } else {
        Complexity::Simple
    };
    c.max(floor)
}

/// A threshold that puts the `k` highest of `desc` (scores, highest first) above it: midway
/// between the `k`th and the next, within `[lo, hi]`. Equal scores cannot be split, so a `k`
/// inside a run of them moves to the nearer end of the run.
fn cut(desc: &[f64], k: usize, lo: f64, hi: f64) -> f64 {
    let k = k.min(desc.len());
    let at = |i: usize| desc.get(i).copied();
    let tied = |i: usize| i > 0 && i < desc.len() && at(i - 1) == at(i);
    let k = if tied(k) {
        let (mut down, mut up) = (k, k);
        while tied(down) {
            down -= 1;
        }
        while tied(up) {
            up += 1;
        }
        if k - down <= up - k { down } else { up }
    } else {
        k
    };
    let t = match (k.checked_sub(1).and_then(|i| desc.get(i)), desc.get(k)) {
        (None, Some(top)) => (top + hi) / 2.0 + f64::EPSILON,
        (None, None) => (lo + hi) / 2.0,
        (Some(last), None) => (last + lo) / 2.0,
        (Some(last), Some(next)) => (last + next) / 2.0,
    };
    t.clamp(lo, hi)
}

/// Calibrates `policy`'s thresholds on the requests of `log` (a JSONL log as `simulate`
/// reads it) so that `strong_share` of them are `complex` or `reasoning`.
pub fn calibrate(
    policy: &CompiledPolicy,
    log: &Path,
    shares: Shares,
    api: Api,
) -> Result<Calibration, String> {
    let Shares {
        strong: strong_share,
        reasoning: reasoning_share,
        simple: simple_share,
    } = shares;
    for (name, s) in [
        ("strong", Some(strong_share)),
        ("reasoning", reasoning_share),
        ("simple", simple_share),
    ] {
        if let Some(s) = s
            && !(0.0..=1.0).contains(&s)
        {
            return Err(format!("the {name} share must be between 0 and 1, got {s}"));
        }
    }
    if reasoning_share.is_some_and(|r| r > strong_share)
        || simple_share.is_some_and(|s| s > 1.0 - strong_share)
    {
        return Err("the reasoning share must be within the strong share, and the simple share within the rest".into());
    }
    let signals = &policy.classifier.signals;
    let mut rows: Vec<(f64, Complexity)> = Vec::new();
    for_each_record(log, policy.limits.max_body_bytes, |r| {
        let Some(r) = r else { return };
        let Ok(api) = r.api.map(|a| a.unwrap_or(api)) else {
            return;
        };
        if let Ok(f) = policy.classify_as(api, r.body) {
            let floor = signals
                .iter()
                .enumerate()
                .filter(|(i, _)| f.matched & 1u64.checked_shl(*i as u32).unwrap_or(0) != 0)
                .filter_map(|(_, s)| s.min_class)
                .max()
                .unwrap_or(Complexity::Simple);
            rows.push((f64::from(f.complexity_score), floor));
        }
    })?;
    if rows.is_empty() {
        return Err(format!("no request in {} classifies", log.display()));
    }
    let old = policy.classifier.thresholds.map(f64::from);
    let n = rows.len();
    let floored = rows.iter().filter(|r| r.1 >= Complexity::Complex).count();
    // Scores of requests a floor does not already make strong, highest first.
    let mut free: Vec<f64> = rows
        .iter()
        .filter(|r| r.1 < Complexity::Complex)
        .map(|r| r.0)
        .collect();
    free.sort_by(|a, b| b.total_cmp(a));
    let want = (strong_share * n as f64).round() as usize;
    if floored > want {
        return Err(format!(
            "signals' min_class floors alone put {:.1}% of the requests in the strong classes, \
             above the asked {:.1}%",
            floored as f64 * 100.0 / n as f64,
            strong_share * 100.0
        ));
    }
    let k = want.saturating_sub(floored).min(free.len());
    // Thresholds must increase strictly inside [0, 1].
    let gap = 1e-6;
    let complex = cut(&free, k, 2.0 * gap, 1.0 - gap);
    // `reasoning` keeps its share of the strong scores, `standard` its share of the others.
    let strong_old = free.iter().filter(|&&s| s >= old[1]).count();
    let reasoning_old = free.iter().filter(|&&s| s >= old[2]).count();
    let above: Vec<f64> = free.iter().copied().filter(|&s| s >= complex).collect();
    let floored_reasoning = rows.iter().filter(|r| r.1 == Complexity::Reasoning).count();
    let r = match reasoning_share {
        Some(r) => ((r * n as f64).round() as usize)
            .saturating_sub(floored_reasoning)
            .min(above.len()),
        None if strong_old == 0 => 0,
        None => reasoning_old * above.len() / strong_old,
    };
    let reasoning = cut(&above, r, complex + gap, 1.0);
    let unfloored = || {
        rows.iter()
            .filter(|r| r.1 == Complexity::Simple)
            .map(|r| r.0)
    };
    let weak_old = unfloored().filter(|&s| s < old[1]).count();
    let standard_old = unfloored().filter(|&s| s >= old[0] && s < old[1]).count();
    // Only requests without a floor can be `simple`.
    let mut below: Vec<f64> = rows
        .iter()
        .filter(|r| r.1 == Complexity::Simple && r.0 < complex)
        .map(|r| r.0)
        .collect();
    below.sort_by(|a, b| b.total_cmp(a));
    let st = match simple_share {
        Some(s) => below.len().saturating_sub((s * n as f64).round() as usize),
        None if weak_old == 0 => below.len() / 2,
        None => standard_old * below.len() / weak_old,
    };
    let standard = cut(&below, st, 0.0, complex - gap);
    let thresholds = [standard, complex, reasoning];
    let strong = rows
        .iter()
        .filter(|(s, f)| class(*s, &thresholds, *f) >= Complexity::Complex)
        .count();
    Ok(Calibration {
        thresholds,
        records: n,
        floored,
        strong_share: strong as f64 / n as f64,
    })
}

/// `policy` (TOML text) with its `[classifier]` thresholds replaced by `t`, the rest of the
/// text as it was; an error when the text has no thresholds or the result does not compile.
pub fn write_thresholds(policy: &str, origin: &str, t: [f64; 3]) -> Result<String, String> {
    let spans = crate::policy::threshold_spans(policy)
        .ok_or("the policy has no [classifier] thresholds to write")?;
    let mut out = policy.to_owned();
    // From the last to the first, so earlier spans stay where they are.
    let mut edits: Vec<_> = spans.into_iter().zip(t).collect();
    edits.sort_by_key(|(s, _)| std::cmp::Reverse(s.start));
    for (span, value) in edits {
        out.replace_range(span, &format!("{value:.6}"));
    }
    CompiledPolicy::from_toml(&out, origin).map_err(|e| e.to_string())?;
    Ok(out)
}
