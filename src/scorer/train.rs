//! Training a scorer from routing-eval JSONL (`{"id", "request", "quality"}`, SPEC section 9):
//! deterministic for a seed, pure Rust, with k-fold held-out APGR and CPT(50%) beside the
//! length baseline and the policy's own score.
//!
//! The target of a request is the gap between the strong model's quality and the weak
//! one's (the mean of the weak ones, when several are named), mapped from `[-1, 1]` to
//! `[0, 1]`; the model is a logistic regression with those soft labels, so its score ranks
//! requests by the quality the strong model is expected to add. Files weigh the same whatever
//! their size, and each has an intercept of its own while training (not saved), so what a
//! whole file shares does not become a head's bias. Head weights are a shared part plus a
//! per-head part; the file stores their sums. Every dense feature and signal is a cue of
//! difficulty, so its weights are kept non-negative: the training sets are small, and a cue
//! that happens to lower the gap in them (code in chat prompts, say) must not teach the
//! scorer that code makes a request easy.

use std::path::{Path, PathBuf};

use super::{DENSE, Inputs, Scorer, bucket, logistic};
use crate::features::Api;
use crate::policy::CompiledPolicy;
use crate::simulate::Tradeoff;
use crate::simulate::reader::for_each_record;

/// Settings of [`train_scorer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrainOptions {
    /// The weak model ids: the label's weak side is the mean quality of those a record has,
    /// and the held-out figures measure against the first (a record without it is left out).
    /// Empty: every record must name exactly two models, the same two, and the weaker on
    /// average is the weak one.
    pub weak: Vec<String>,
    /// The strong model id; `None` with `weak` empty.
    pub strong: Option<String>,
    /// Folds of the held-out figures (at least 2).
    pub folds: usize,
    /// The seed of the n-gram hash and of the folds.
    pub seed: u64,
    /// `2^bits` hashed buckets.
    pub bits: u32,
    /// Full-batch gradient steps.
    pub steps: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            weak: Vec::new(),
            strong: None,
            folds: 5,
            seed: 1,
            bits: 12,
            steps: 400,
        }
    }
}

/// Held-out figures of one file: APGR and CPT(50%) of the trained model's out-of-fold
/// scores, of the last user message's length, and of the policy's own score.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// Labelled pairs read.
    pub records: usize,
    /// Records left out: no quality for both sides, or a body that does not classify.
    pub skipped: usize,
    /// `(APGR, CPT(50%))` of the held-out model scores.
    pub model: (f64, Option<f64>),
    /// The same for "longer prompt → strong model".
    pub length: (f64, Option<f64>),
    /// The same for the policy's score without the model.
    pub policy: (f64, Option<f64>),
}

/// A trained model and its held-out report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Trained {
    /// The model file's text.
    pub text: String,
    /// Held-out figures per file.
    pub files: Vec<FileReport>,
}

/// The fewest labelled pairs a training set may have.
pub const MIN_PAIRS: usize = 50;

struct Example {
    file: usize,
    fold: usize,
    inputs: Inputs,
    /// The weak side of the label: the mean quality of the weak models present.
    weak: f64,
    /// The first weak model's quality, which the held-out figures measure against.
    first_weak: f64,
    strong: f64,
    weight: f32,
}

/// Reads labelled files, trains a scorer on all of them and measures it k-fold.
pub fn train_scorer(
    policy: &CompiledPolicy,
    files: &[PathBuf],
    options: &TrainOptions,
) -> Result<Trained, String> {
    if options.folds < 2 {
        return Err("--folds must be at least 2".into());
    }
    if !super::BITS.contains(&options.bits) {
        return Err(format!(
            "--bits must be between {} and {}",
            super::BITS.start,
            super::BITS.end - 1
        ));
    }
    let mut examples = Vec::new();
    let mut reports = Vec::new();
    for (f, path) in files.iter().enumerate() {
        let (mut read, skipped) = read_file(policy, path, options)?;
        let n = read.len();
        for e in &mut read {
            e.file = f;
            e.fold = fold(&e.inputs, options.seed, f, options.folds);
        }
        examples.extend(read);
        reports.push((path.display().to_string(), n, skipped));
    }
    let need = MIN_PAIRS.max(options.folds * 10);
    if examples.len() < need {
        return Err(format!(
            "only {} labelled pairs in {}; training needs at least {need}",
            examples.len(),
            files.len()
        ));
    }
    // Every file weighs the same.
    let counts: Vec<usize> = (0..files.len())
        .map(|f| examples.iter().filter(|e| e.file == f).count())
        .collect();
    let nonempty = counts.iter().filter(|&&c| c > 0).count().max(1);
    let total = examples.len();
    for e in &mut examples {
        let c = counts.get(e.file).copied().unwrap_or(1).max(1);
        e.weight = total as f32 / (nonempty * c) as f32;
    }
    let signals = policy.classifier.signals.len();
    let mut held_out = vec![0.0f32; examples.len()];
    for k in 0..options.folds {
        let train: Vec<&Example> = examples.iter().filter(|e| e.fold != k).collect();
        let model = fit(&train, signals, options);
        for (slot, e) in held_out.iter_mut().zip(&examples) {
            if e.fold == k {
                *slot = predict(&model, &e.inputs);
            }
        }
    }
    let all: Vec<&Example> = examples.iter().collect();
    let model = fit(&all, signals, options);
    let names: Vec<String> = policy
        .classifier
        .signals
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let scorer = model.into_scorer(names, options);
    let (weak, strong) = pair_names(options);
    let files_report = reports
        .into_iter()
        .enumerate()
        .map(|(f, (file, records, skipped))| {
            let pick = |score: &dyn Fn(usize, &Example) -> f64| {
                let set: Vec<(f64, f64, f64)> = examples
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.file == f)
                    .map(|(i, e)| (score(i, e), e.first_weak, e.strong))
                    .collect();
                Tradeoff::new(&weak, &strong, &set, 10)
                    .map_or((0.5, None), |t| (t.apgr(), t.cpt(0.5)))
            };
            FileReport {
                file,
                records,
                skipped,
                model: pick(&|i, _| f64::from(held_out.get(i).copied().unwrap_or(0.0))),
                length: pick(&|_, e| f64::from(e.inputs.tokens)),
                policy: pick(&|_, e| f64::from(e.inputs.policy_score)),
            }
        })
        .collect();
    let comment = format!(
        "trained by `fluxroute train` on {} labelled pairs from {} file(s); seed {}, {} folds, {} steps",
        examples.len(),
        files.len(),
        options.seed,
        options.folds,
        options.steps
    );
    Ok(Trained {
        text: scorer.to_text(&comment),
        files: files_report,
    })
}

fn pair_names(options: &TrainOptions) -> (String, String) {
    match &options.strong {
        Some(s) => (options.weak.first().cloned().unwrap_or_default(), s.clone()),
        None => ("weak".into(), "strong".into()),
    }
}

/// The fold of a request: a hash of its n-grams and length with the seed, so the folds do not
/// depend on the order of the file.
fn fold(inputs: &Inputs, seed: u64, file: usize, folds: usize) -> usize {
    let mut h = seed ^ (file as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for x in inputs.hashes.iter().chain([&u64::from(inputs.tokens)]) {
        h = (h ^ x).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
    (super::text::mix(h, super::text::Gram::Word) % folds as u64) as usize
}

/// Reads one file's labelled pairs.
fn read_file(
    policy: &CompiledPolicy,
    path: &Path,
    options: &TrainOptions,
) -> Result<(Vec<Example>, usize), String> {
    let mut rows: Vec<(Inputs, Vec<(String, f64)>)> = Vec::new();
    let mut skipped = 0;
    for_each_record(path, policy.limits.max_body_bytes, |r| {
        let Some(r) = r else {
            skipped += 1;
            return;
        };
        let inputs = match r.api {
            Ok(api) => policy.score_inputs(api.unwrap_or(Api::Chat), r.body).ok(),
            Err(_) => None,
        };
        match inputs {
            Some(i) if !r.quality.is_empty() => rows.push((i, r.quality)),
            _ => skipped += 1,
        }
    })?;
    // Which side is which.
    let (weak, strong): (Vec<String>, String) = match &options.strong {
        Some(s) => {
            if options.weak.is_empty() {
                return Err("--strong needs at least one --weak".into());
            }
            (options.weak.clone(), s.clone())
        }
        None => two_models(&rows, path)?,
    };
    let mut out = Vec::new();
    for (inputs, quality) in rows {
        let get = |id: &str| quality.iter().find(|(k, _)| k == id).map(|(_, q)| *q);
        let weak_q: Vec<f64> = weak.iter().filter_map(|w| get(w)).collect();
        let first = weak.first().and_then(|w| get(w));
        match (get(&strong), first) {
            (Some(s), Some(first_weak)) => out.push(Example {
                file: 0,
                fold: 0,
                inputs,
                weak: weak_q.iter().sum::<f64>() / weak_q.len().max(1) as f64,
                first_weak,
                strong: s,
                weight: 1.0,
            }),
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

/// The weak and the strong model of a file whose every record names the same two.
fn two_models(
    rows: &[(Inputs, Vec<(String, f64)>)],
    path: &Path,
) -> Result<(Vec<String>, String), String> {
    let mut pair: Option<(String, String)> = None;
    let mut sums = (0.0, 0.0);
    for (_, q) in rows {
        let [(a, qa), (b, qb)] = q.as_slice() else {
            return Err(format!(
                "{}: a record names {} models; name the pair with --weak and --strong",
                path.display(),
                q.len()
            ));
        };
        let (a, qa, b, qb) = if a <= b {
            (a, qa, b, qb)
        } else {
            (b, qb, a, qa)
        };
        match &pair {
            None => pair = Some((a.clone(), b.clone())),
            Some((x, y)) if x == a && y == b => {}
            Some(_) => {
                return Err(format!(
                    "{}: records name different model pairs; name the pair with --weak and --strong",
                    path.display()
                ));
            }
        }
        sums.0 += qa;
        sums.1 += qb;
    }
    let (a, b) = pair.ok_or_else(|| format!("{}: no labelled records", path.display()))?;
    Ok(if sums.0 <= sums.1 {
        (vec![a], b)
    } else {
        (vec![b], a)
    })
}

/// Weights being fitted: shared and per-head dense weights, the hashed table, and an
/// intercept per file. The file intercepts absorb how far apart the files' models are on
/// average (a dataset's trait, not a request's), so the heads learn only what differs within
/// a file; they are not saved.
struct Model {
    files: Vec<f32>,
    shared: Vec<f32>,
    heads: [Vec<f32>; 4],
    hashed: Vec<f32>,
    bits: u32,
    seed: u64,
}

impl Model {
    fn into_scorer(self, signals: Vec<String>, options: &TrainOptions) -> Scorer {
        let heads = self.heads.map(|h| {
            h.iter()
                .zip(&self.shared)
                .map(|(a, b)| round(a + b))
                .collect()
        });
        Scorer {
            seed: options.seed,
            bits: options.bits,
            signals,
            heads,
            hashed: self.hashed.into_iter().map(round).collect(),
        }
    }
}

/// Weights written with five significant digits, and tiny ones dropped: the file stays
/// small and reads back to the same model.
fn round(x: f32) -> f32 {
    if x.abs() < 1e-4 {
        return 0.0;
    }
    let digits = 4 - x.abs().log10().floor() as i32;
    let scale = 10f32.powi(digits);
    (x * scale).round() / scale
}

/// The columns of an example: the bias, the dense features, the signals.
fn columns(inputs: &Inputs) -> impl Iterator<Item = f32> + '_ {
    std::iter::once(1.0)
        .chain(inputs.dense)
        .chain(inputs.signals.iter().copied())
}

fn buckets(m: &Model, inputs: &Inputs) -> (Vec<usize>, f32) {
    let b: Vec<usize> = inputs
        .hashes
        .iter()
        .map(|&h| bucket(h, inputs.head, m.seed, m.bits))
        .collect();
    let scale = 1.0 / (b.len().max(1) as f32).sqrt();
    (b, scale)
}

fn predict(m: &Model, inputs: &Inputs) -> f32 {
    let (b, scale) = buckets(m, inputs);
    logistic(logit(m, inputs, &b, scale))
}

/// The sum before the logistic, without a file's intercept: the head's columns and the
/// example's hashed buckets (`b`, scaled by `scale`).
fn logit(m: &Model, inputs: &Inputs, b: &[usize], scale: f32) -> f32 {
    let head = m.heads.get(inputs.head).map_or(&[][..], Vec::as_slice);
    let linear: f32 = columns(inputs)
        .zip(m.shared.iter().zip(head))
        .map(|(x, (s, h))| x * (s + h))
        .sum();
    let hashed: f32 = b.iter().filter_map(|&i| m.hashed.get(i)).sum();
    linear + hashed * scale
}

/// Regularization of the shared, per-head and hashed weights, and of the heads' biases
/// (chosen by held-out APGR on the training files; see `docs/scorer.md`).
const L2_SHARED: f32 = 1e-3;
const L2_HEAD: f32 = 1e-3;
const L2_HASHED: f32 = 2e-2;
const L2_HEAD_BIAS: f32 = 5e-2;

/// Full-batch gradient descent with momentum on the weighted soft-label logistic loss.
fn fit(train: &[&Example], signals: usize, options: &TrainOptions) -> Model {
    let width = 1 + DENSE.len() + signals;
    let files = train.iter().map(|e| e.file + 1).max().unwrap_or(0);
    let mut m = Model {
        files: vec![0.0; files],
        shared: vec![0.0; width],
        heads: std::array::from_fn(|_| vec![0.0; width]),
        hashed: vec![0.0; 1 << options.bits],
        bits: options.bits,
        seed: options.seed,
    };
    let cached: Vec<(Vec<usize>, f32)> = train.iter().map(|e| buckets(&m, &e.inputs)).collect();
    let total: f32 = train.iter().map(|e| e.weight).sum::<f32>().max(1e-9);
    let (rate, momentum) = (1.0f32, 0.9f32);
    let mut v_shared = vec![0.0; width];
    let mut v_heads: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; width]);
    let mut v_hashed = vec![0.0; m.hashed.len()];
    let mut v_files = vec![0.0; files];
    for _ in 0..options.steps {
        let mut g_shared = vec![0.0f32; width];
        let mut g_heads: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; width]);
        let mut g_hashed = vec![0.0f32; m.hashed.len()];
        let mut g_files = vec![0.0f32; files];
        for (e, (b, scale)) in train.iter().zip(&cached) {
            let offset = m.files.get(e.file).copied().unwrap_or(0.0);
            let p = logistic(logit(&m, &e.inputs, b, *scale) + offset);
            let target = ((e.strong - e.weak + 1.0) / 2.0).clamp(0.0, 1.0) as f32;
            let g = e.weight * (p - target) / total;
            if let Some(gf) = g_files.get_mut(e.file) {
                *gf += g;
            }
            let gh = g_heads.get_mut(e.inputs.head);
            if let Some(gh) = gh {
                for ((x, gs), gh) in columns(&e.inputs)
                    .zip(g_shared.iter_mut())
                    .zip(gh.iter_mut())
                {
                    *gs += g * x;
                    *gh += g * x;
                }
            }
            for &i in b {
                if let Some(slot) = g_hashed.get_mut(i) {
                    *slot += g * scale;
                }
            }
        }
        // Regularization: `bias` for column 0, `l2` for the others.
        let step = |w: &mut [f32], v: &mut [f32], g: &[f32], l2: f32, bias: f32| {
            for (i, ((w, v), g)) in w.iter_mut().zip(v.iter_mut()).zip(g).enumerate() {
                let reg = if i == 0 { bias * *w } else { l2 * *w };
                *v = momentum * *v - rate * (g + reg);
                *w += *v;
            }
        };
        // The file intercepts are free and the shared bias is theirs; a head's bias is held
        // back, so what a whole file shares goes to its intercept.
        step(&mut m.files, &mut v_files, &g_files, 0.0, 0.0);
        step(&mut m.shared, &mut v_shared, &g_shared, L2_SHARED, 0.0);
        for ((w, v), g) in m.heads.iter_mut().zip(&mut v_heads).zip(&g_heads) {
            step(w, v, g, L2_HEAD, L2_HEAD_BIAS);
        }
        step(
            &mut m.hashed,
            &mut v_hashed,
            &g_hashed,
            L2_HASHED,
            L2_HASHED,
        );
        // Every dense feature and signal is a cue of difficulty: its weight may only raise
        // the score, in the shared part and in each head's.
        for w in std::iter::once(&mut m.shared).chain(m.heads.iter_mut()) {
            for x in w.iter_mut().skip(1) {
                *x = x.max(0.0);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_five_significant_digits() {
        assert_eq!(round(0.123456), 0.12346);
        assert_eq!(round(-12.34567), -12.346);
        assert_eq!(round(0.00001), 0.0);
    }
}
