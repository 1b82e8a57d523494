//! The report: what each policy did over the log (one [`Tally`] per policy), what changed
//! between them, and the two-model trade-off where the log is an evaluation set.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::tradeoff::Tradeoff;
use crate::decision::round;
use crate::error::RouteError;
use crate::features::{Complexity, Mode};
use crate::policy::CompiledPolicy;

/// Example ids kept per changed from→to pair and for the report.
const EXAMPLES: usize = 5;
/// Error lines kept for the report.
const ERROR_LINES: usize = 20;
/// Shares of strong calls swept for the trade-off curve (deciles).
const STEPS: usize = 10;

/// One record's outcome under one policy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Served {
    pub model: usize,
    pub mode: Mode,
    pub class: Complexity,
    pub score: f32,
    pub cost: f64,
}

pub(super) type Outcome = Result<Served, RouteError>;

/// Everything the report needs from one routed line.
pub(super) struct LineResult {
    pub line: u64,
    pub id: String,
    pub primary: Outcome,
    pub against: Option<Outcome>,
    pub quality: Vec<(String, f64)>,
    /// The `--out` line, serialized in the parallel stage.
    pub out: Option<String>,
    /// Fields present but malformed (`quality`, `usage`), ignored and counted.
    pub ignored: Vec<&'static str>,
}

/// Records of an evaluation set kept exactly up to this many (24 MiB), then by score bucket.
const EXACT_RECORDS: usize = 1 << 20;
/// Score buckets once the set is too long to keep whole: 65,536 over [0, 1] (2 MiB), so the
/// curve's error is at most the records of one bucket at each point.
const BUCKETS: usize = 1 << 16;

/// The evaluation set for the trade-off: `(score, quality of the pair's first model, of its
/// second)` per record, or once that grows past [`EXACT_RECORDS`], `(bucket score, records,
/// first's quality sum, second's quality sum)` per score bucket: memory stays flat whatever
/// the log's length.
#[derive(Debug)]
enum PairSet {
    Exact(Vec<(f64, f64, f64)>),
    Bucketed(Vec<(f64, u64, f64, f64)>),
}

impl PairSet {
    fn push(&mut self, score: f64, first: f64, second: f64) {
        if let PairSet::Exact(records) = self
            && records.len() >= EXACT_RECORDS
        {
            let mut groups: Vec<(f64, u64, f64, f64)> = (0..BUCKETS)
                .map(|b| (b as f64 / (BUCKETS - 1) as f64, 0, 0.0, 0.0))
                .collect();
            for &(s, a, b) in records.iter() {
                Self::add(&mut groups, s, a, b);
            }
            *self = PairSet::Bucketed(groups);
        }
        match self {
            PairSet::Exact(records) => records.push((score, first, second)),
            PairSet::Bucketed(groups) => Self::add(groups, score, first, second),
        }
    }

    fn add(groups: &mut [(f64, u64, f64, f64)], score: f64, first: f64, second: f64) {
        let at = (score.clamp(0.0, 1.0) * (BUCKETS - 1) as f64).round() as usize;
        if let Some(g) = groups.get_mut(at) {
            g.1 += 1;
            g.2 += first;
            g.3 += second;
        }
    }

    /// The quality sums of the pair's first and second model.
    fn sums(&self) -> (f64, f64) {
        match self {
            PairSet::Exact(r) => r.iter().fold((0.0, 0.0), |(a, b), r| (a + r.1, b + r.2)),
            PairSet::Bucketed(g) => g.iter().fold((0.0, 0.0), |(a, b), g| (a + g.2, b + g.3)),
        }
    }
}

/// Per-model totals.
#[derive(Debug, Clone, Copy, Default)]
struct ModelTally {
    count: u64,
    cost: f64,
}

/// A sum and a count, for a mean.
#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    fn add(&mut self, x: f64) {
        self.sum += x;
        self.n += 1;
    }

    fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// What one policy did over the log: decisions, errors, model mix, modes, classes, cost and
/// quality.
#[derive(Debug)]
struct Tally {
    name: String,
    fingerprint: String,
    /// The policy's model ids, by index.
    model_ids: Vec<String>,
    decisions: u64,
    errors: BTreeMap<&'static str, u64>,
    models: Vec<ModelTally>,
    modes: BTreeMap<&'static str, u64>,
    classes: BTreeMap<&'static str, u64>,
    cost: f64,
    quality: Mean,
}

impl Tally {
    fn new(p: &CompiledPolicy) -> Self {
        Tally {
            name: p.name.clone(),
            fingerprint: p.fingerprint.clone(),
            model_ids: p.models.iter().map(|m| m.id.clone()).collect(),
            decisions: 0,
            errors: BTreeMap::new(),
            models: vec![ModelTally::default(); p.models.len()],
            modes: BTreeMap::new(),
            classes: BTreeMap::new(),
            cost: 0.0,
            quality: Mean::default(),
        }
    }

    /// Counts one outcome; returns the quality label of the model that served it, if any.
    fn add(&mut self, outcome: &Outcome, quality: &[(String, f64)]) -> Option<f64> {
        let s = match outcome {
            Ok(s) => s,
            Err(e) => {
                *self.errors.entry(e.code().as_str()).or_default() += 1;
                return None;
            }
        };
        self.decisions += 1;
        if let Some(t) = self.models.get_mut(s.model) {
            t.count += 1;
            t.cost += s.cost;
        }
        self.cost += s.cost;
        *self.modes.entry(s.mode.as_str()).or_default() += 1;
        *self.classes.entry(s.class.as_str()).or_default() += 1;
        let id = self.model_ids.get(s.model)?;
        let q = quality.iter().find(|(m, _)| m == id).map(|(_, q)| *q)?;
        self.quality.add(q);
        Some(q)
    }

    /// The served model's id, or `error:<code>`.
    fn label(&self, outcome: &Outcome) -> String {
        match outcome {
            Ok(s) => self.model_ids.get(s.model).cloned().unwrap_or_default(),
            Err(e) => format!("error:{}", e.code().as_str()),
        }
    }

    /// `{id: {count, share, estimated_cost_usd}}`, most used first (ties in catalog order).
    fn models_json(&self) -> Value {
        let mut order: Vec<(usize, &ModelTally)> = self
            .models
            .iter()
            .enumerate()
            .filter(|(_, t)| t.count > 0)
            .collect();
        order.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        let map: serde_json::Map<String, Value> = order
            .into_iter()
            .map(|(i, t)| {
                let id = self.model_ids.get(i).cloned().unwrap_or_default();
                let share = t.count as f64 / self.decisions.max(1) as f64;
                (id, json!({"count": t.count, "share": round(share, 6), "estimated_cost_usd": round(t.cost, 9)}))
            })
            .collect();
        Value::Object(map)
    }

    fn quality_json(&self) -> Value {
        json!({"mean": self.quality.get(), "labelled": self.quality.n})
    }

    fn policy_json(&self) -> Value {
        json!({"name": self.name, "fingerprint": self.fingerprint})
    }
}

/// What changed between the two policies of a `--against` run.
#[derive(Debug, Default)]
struct Changes {
    changed: u64,
    /// (from, to) → count, with examples.
    matrix: BTreeMap<(String, String), (u64, Vec<String>)>,
    examples: Vec<String>,
    /// Quality under each policy, over records labelled for both served models.
    first: f64,
    second: f64,
    paired: u64,
}

impl Changes {
    fn add(&mut self, id: &str, from: String, to: String) {
        if from == to {
            return;
        }
        self.changed += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(id.to_owned());
        }
        let cell = self.matrix.entry((from, to)).or_default();
        cell.0 += 1;
        if cell.1.len() < EXAMPLES {
            cell.1.push(id.to_owned());
        }
    }

    /// The mean quality change on records labelled for both served models.
    fn quality_delta(&self) -> Option<f64> {
        (self.paired > 0).then(|| (self.second - self.first) / self.paired as f64)
    }
}

/// The outcome of a simulation: totals, per-model mix, errors, cost, quality, and (with
/// `--against`) what changed; for two-model evaluation sets, the trade-off curve.
#[derive(Debug)]
pub struct Report {
    primary: Tally,
    /// The second policy's tally and what changed, with `--against`.
    against: Option<(Tally, Changes)>,
    records: u64,
    pub(super) blank_lines: u64,
    error_lines: Vec<(u64, &'static str)>,
    ignored: BTreeMap<&'static str, u64>,
    /// The two models of an evaluation set, in the order the first record lists them.
    pair: Option<(String, String)>,
    /// The evaluation set for the trade-off, bounded in memory.
    pair_set: PairSet,
    pair_broken: bool,
    tradeoff: Option<Tradeoff>,
}

impl Report {
    pub(super) fn new(policy: &CompiledPolicy, against: Option<&CompiledPolicy>) -> Self {
        Report {
            primary: Tally::new(policy),
            against: against.map(|p| (Tally::new(p), Changes::default())),
            records: 0,
            blank_lines: 0,
            error_lines: Vec::new(),
            ignored: BTreeMap::new(),
            pair: None,
            pair_set: PairSet::Exact(Vec::new()),
            pair_broken: false,
            tradeoff: None,
        }
    }

    pub(super) fn add(&mut self, r: LineResult) {
        self.records += 1;
        for f in &r.ignored {
            *self.ignored.entry(f).or_default() += 1;
        }
        let a_quality = self.primary.add(&r.primary, &r.quality);
        if let Err(e) = &r.primary
            && self.error_lines.len() < ERROR_LINES
        {
            self.error_lines.push((r.line, e.code().as_str()));
        }
        if let (Some((tally, changes)), Some(b)) = (&mut self.against, &r.against) {
            let (from, to) = (self.primary.label(&r.primary), tally.label(b));
            changes.add(&r.id, from, to);
            let b_quality = tally.add(b, &r.quality);
            if let (Some(qa), Some(qb)) = (a_quality, b_quality) {
                changes.first += qa;
                changes.second += qb;
                changes.paired += 1;
            }
        }
        self.add_pair(&r);
    }

    /// Collects the two-model evaluation set: records labelled for exactly the same two models.
    fn add_pair(&mut self, r: &LineResult) {
        if self.pair_broken || r.quality.is_empty() {
            return;
        }
        let [(m1, q1), (m2, q2)] = r.quality.as_slice() else {
            self.pair_broken = true;
            return;
        };
        match &self.pair {
            None => self.pair = Some((m1.clone(), m2.clone())),
            Some((a, b)) if a == m1 && b == m2 => {}
            Some(_) => {
                self.pair_broken = true;
                return;
            }
        }
        // Records that fail classification or routing have no score: the router never saw them.
        if let Ok(s) = &r.primary {
            self.pair_set.push(f64::from(s.score), *q1, *q2);
        }
    }

    pub(super) fn finish(&mut self) {
        let set = std::mem::replace(&mut self.pair_set, PairSet::Exact(Vec::new()));
        if self.pair_broken {
            return;
        }
        let Some((m1, m2)) = &self.pair else { return };
        // The strong model is the one with the higher mean quality over the set.
        let (q1, q2) = set.sums();
        let swap = q2 < q1;
        let (weak, strong) = if swap { (m2, m1) } else { (m1, m2) };
        self.tradeoff = match set {
            PairSet::Exact(mut records) => {
                if swap {
                    records.iter_mut().for_each(|r| *r = (r.0, r.2, r.1));
                }
                Tradeoff::new(weak, strong, &records, STEPS)
            }
            PairSet::Bucketed(mut groups) => {
                if swap {
                    groups.iter_mut().for_each(|g| *g = (g.0, g.1, g.3, g.2));
                }
                Tradeoff::from_groups(weak, strong, &groups, STEPS)
            }
        };
    }

    /// Non-blank lines read.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records that got a decision.
    pub fn decisions(&self) -> u64 {
        self.primary.decisions
    }

    /// Estimated (or, with `usage`, actual-token) cost in USD of all decisions.
    pub fn estimated_cost_usd(&self) -> f64 {
        self.primary.cost
    }

    /// The two-model trade-off, where the log is a two-model evaluation set.
    pub fn tradeoff(&self) -> Option<&Tradeoff> {
        self.tradeoff.as_ref()
    }

    /// The summary as JSON: `records`, `decisions`, `errors` (count by code), `error_lines`,
    /// `models` (count, share, estimated cost), `modes`, `complexity`, `estimated_cost_usd`,
    /// `quality` (`mean`, `labelled`), `policy`, and where they apply `against` and `tradeoff`.
    pub fn to_json(&self) -> Value {
        let a = &self.primary;
        let mut v = json!({
            "records": self.records,
            "decisions": a.decisions,
            "blank_lines": self.blank_lines,
            "errors": a.errors,
            "error_lines": self.error_lines.iter().map(|(l, c)| json!({"line": l, "code": c})).collect::<Vec<_>>(),
            "ignored_fields": self.ignored,
            "models": a.models_json(),
            "modes": a.modes,
            "complexity": a.classes,
            "estimated_cost_usd": round(a.cost, 9),
            "quality": a.quality_json(),
            "policy": a.policy_json(),
        });
        if let (Some((b, changes)), Some(obj)) = (&self.against, v.as_object_mut()) {
            let matrix: Vec<Value> = changes
                .matrix
                .iter()
                .map(|((from, to), (n, ex))| json!({"from": from, "to": to, "count": n, "examples": ex}))
                .collect();
            obj.insert(
                "against".into(),
                json!({
                    "policy": b.policy_json(),
                    "decisions": b.decisions,
                    "errors": b.errors,
                    "models": b.models_json(),
                    "estimated_cost_usd": round(b.cost, 9),
                    "quality": b.quality_json(),
                    "changed": changes.changed,
                    "changes": matrix,
                    "examples": changes.examples,
                    "cost_delta_usd": round(b.cost - a.cost, 9),
                    "quality_delta": changes.quality_delta(),
                    "quality_delta_records": changes.paired,
                }),
            );
        }
        if let (Some(t), Some(obj)) = (&self.tradeoff, v.as_object_mut()) {
            obj.insert("tradeoff".into(), t.to_json());
        }
        v
    }

    /// The summary for people.
    pub fn to_table(&self) -> String {
        let a = &self.primary;
        let mut s = format!(
            "policy {}@{}: {} records, {} decisions, {} errors\n",
            a.name,
            a.fingerprint,
            self.records,
            a.decisions,
            self.records - a.decisions
        );
        s.push_str(&format!(
            "\n{:<28} {:>9} {:>8} {:>14}\n",
            "model", "requests", "share", "est. cost USD"
        ));
        let models = a.models_json();
        for (id, m) in models.as_object().into_iter().flatten() {
            s.push_str(&format!(
                "{:<28} {:>9} {:>7.2}% {:>14.6}\n",
                id,
                m["count"].as_u64().unwrap_or(0),
                m["share"].as_f64().unwrap_or(0.0) * 100.0,
                m["estimated_cost_usd"].as_f64().unwrap_or(0.0)
            ));
        }
        s.push_str(&format!(
            "{:<28} {:>9} {:>8} {:>14.6}\n",
            "total", a.decisions, "", a.cost
        ));
        let join = |m: &BTreeMap<&str, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "\nmodes: {}\ncomplexity: {}\n",
            join(&a.modes),
            join(&a.classes)
        ));
        if !a.errors.is_empty() {
            let lines: Vec<String> = self
                .error_lines
                .iter()
                .map(|(l, _)| l.to_string())
                .collect();
            s.push_str(&format!(
                "errors: {} (first at lines {})\n",
                join(&a.errors),
                lines.join(", ")
            ));
        }
        if !self.ignored.is_empty() {
            s.push_str(&format!(
                "malformed fields ignored: {}\n",
                join(&self.ignored)
            ));
        }
        if let Some(q) = a.quality.get() {
            s.push_str(&format!(
                "quality: {q:.4} mean over {} labelled records\n",
                a.quality.n
            ));
        }
        if let Some((b, d)) = &self.against {
            s.push_str(&format!(
                "\nagainst {}@{}: {} of {} records change; cost {:.6} -> {:.6} USD ({:+.6})\n",
                b.name,
                b.fingerprint,
                d.changed,
                self.records,
                a.cost,
                b.cost,
                b.cost - a.cost
            ));
            if let Some(delta) = d.quality_delta() {
                let n = d.paired as f64;
                s.push_str(&format!(
                    "quality on {} records labelled for both: {:.4} -> {:.4} ({delta:+.4})\n",
                    d.paired,
                    d.first / n,
                    d.second / n,
                ));
            }
            let mut cells: Vec<_> = d.matrix.iter().collect();
            cells.sort_by_key(|c| std::cmp::Reverse(c.1.0));
            for ((from, to), (n, ex)) in cells.into_iter().take(20) {
                s.push_str(&format!(
                    "  {from:>26} -> {to:<26} {n:>8}   e.g. {}\n",
                    ex.join(", ")
                ));
            }
        }
        if let Some(t) = &self.tradeoff {
            s.push('\n');
            s.push_str(&t.to_table());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the exact limit the set keeps a fixed number of buckets, and the curve stays
    /// within the stated error of the exact one.
    #[test]
    fn a_long_evaluation_set_is_bucketed_and_its_curve_stays_close() {
        let mut set = PairSet::Exact(Vec::new());
        let mut exact = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..EXACT_RECORDS + EXACT_RECORDS / 4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let score = (x % 10_007) as f64 / 10_007.0;
            // The strong model helps more often on high scores.
            let weak = f64::from(u8::from(x.is_multiple_of(3)));
            let strong = f64::from(u8::from((x >> 8) % 100 < 40 + (score * 50.0) as u64));
            set.push(score, weak, strong);
            exact.push((score, weak, strong));
        }
        let PairSet::Bucketed(groups) = &set else {
            panic!("still exact after {} records", exact.len());
        };
        assert_eq!(groups.len(), BUCKETS);
        let a = Tradeoff::new("w", "s", &exact, STEPS).unwrap();
        let b = Tradeoff::from_groups("w", "s", groups, STEPS).unwrap();
        assert_eq!(a.records, b.records);
        assert!(
            (a.apgr() - b.apgr()).abs() < 1e-3,
            "{} {}",
            a.apgr(),
            b.apgr()
        );
        assert!(a.apgr() > 0.55, "{}", a.apgr());
    }
}
