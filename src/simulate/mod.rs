//! Offline policy simulation: replay a JSONL request log through a policy (and optionally a
//! second one) and report the model mix, errors, cost and quality it would produce.
//!
//! The log streams through in batches: memory stays flat whatever its size; each batch is
//! routed on every core (rayon) and written back in input order.

mod tradeoff;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use tradeoff::{Point, Tradeoff};

use crate::classify::Complexity;
use crate::decision::round;
use crate::error::{ErrorCode, RouteError};
use crate::policy::{CompiledPolicy, Mode};
use crate::route::CallerContext;

/// Records routed per batch: large enough to keep every core busy, small enough to keep
/// memory flat.
const BATCH: usize = 8192;
/// A batch also ends once its lines hold this many bytes, so logs of large bodies stay flat too.
const BATCH_BYTES: usize = 64 << 20;
/// Example ids kept per changed from→to pair and for the report.
const EXAMPLES: usize = 5;
/// Error lines kept for the report.
const ERROR_LINES: usize = 20;
/// Shares of strong calls swept for the trade-off curve (deciles).
const STEPS: usize = 10;

/// How far a simulation has got, for progress reports.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Records done.
    pub records: u64,
    /// Input bytes read so far.
    pub bytes: u64,
}

/// A replay of request logs through one policy, optionally compared with a second.
///
/// ```
/// use fluxroute::{CompiledPolicy, Simulation};
/// let policy = CompiledPolicy::embedded();
/// let log = concat!(
///     r#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#, "\n",
///     r#"{"id": "r2", "request": {"model": "flux-pinned-o3", "messages": [{"role": "user", "content": "hi"}]}}"#, "\n",
///     "not json\n",
/// );
/// let mut out = Vec::new();
/// let report = Simulation::new(&policy).run(log.as_bytes(), Some(&mut out), |_| {})?;
/// assert_eq!((report.records(), report.decisions()), (3, 2));
/// let json = report.to_json();
/// assert_eq!(json["errors"]["invalid_json"], 1);
/// assert_eq!(json["models"]["o3"]["count"], 1);
/// let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
/// assert!(lines[1].starts_with(r#"{"id":"r2","decision":"#));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Simulation<'a> {
    policy: &'a CompiledPolicy,
    against: Option<&'a CompiledPolicy>,
    ctx: CallerContext<'a>,
}

/// One record's outcome under one policy.
#[derive(Debug, Clone, Copy)]
struct Served {
    model: usize,
    mode: Mode,
    class: Complexity,
    score: f32,
    cost: f64,
}

type Outcome = Result<Served, RouteError>;

/// Everything the serial merge needs from one line.
struct LineResult {
    line: u64,
    id: String,
    primary: Outcome,
    against: Option<Outcome>,
    quality: Vec<(String, f64)>,
    /// The `--out` line, serialized in the parallel stage.
    out: Option<String>,
    /// Fields present but malformed (`quality`, `usage`), ignored and counted.
    ignored: Vec<&'static str>,
}

#[derive(Deserialize)]
struct Wrapper<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(borrow, default)]
    quality: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl<'a> Simulation<'a> {
    /// A simulation of `policy` with no caller context.
    pub fn new(policy: &'a CompiledPolicy) -> Self {
        Simulation {
            policy,
            against: None,
            ctx: CallerContext::default(),
        }
    }

    /// Also routes every record under `other` and reports what changed.
    pub fn against(mut self, other: &'a CompiledPolicy) -> Self {
        self.against = Some(other);
        self
    }

    /// Routes every record with this caller context (tenant, tags, unavailable models).
    pub fn context(mut self, ctx: CallerContext<'a>) -> Self {
        self.ctx = ctx;
        self
    }

    /// Replays `input` (JSONL; gzip is the caller's to undo, see [`open_log`]), writing one
    /// `{"id", "decision"}` or `{"id", "error"}` line per record to `out` in input order.
    /// Bad lines are counted with their line number; only I/O errors stop the run.
    ///
    /// A pipeline: while the cores route one batch, this thread merges the batch before it
    /// into the report (and `out`) and reads the batch after it.
    pub fn run<R: BufRead + Send>(
        &self,
        input: R,
        out: Option<&mut (dyn Write + Send)>,
        mut progress: impl FnMut(Progress) + Send,
    ) -> io::Result<Report> {
        // A record is its body plus a little wrapping (id, quality labels, usage).
        let limit = |p: &CompiledPolicy| p.limits.max_body_bytes;
        let cap = limit(self.policy)
            .max(self.against.map_or(0, limit))
            .saturating_add(1 << 16);
        let write_out = out.is_some();
        let mut reader = LogReader {
            input,
            cap,
            line: 0,
            bytes: 0,
            blank: 0,
            done: false,
        };
        let mut sink = Sink {
            out,
            report: Report::new(self.policy, self.against),
        };
        let mut batch = reader.batch()?;
        let mut routed: Vec<LineResult> = Vec::new();
        while !(batch.is_empty() && routed.is_empty()) {
            let (next_routed, next_batch) = rayon::join(
                || {
                    batch
                        .lines
                        .par_iter()
                        .map(|(n, range)| match range {
                            None => self.too_long(*n, cap, write_out),
                            Some(r) => {
                                let text = batch.data.get(r.clone()).unwrap_or_default();
                                self.line(*n, trim_newline(text), write_out)
                            }
                        })
                        .collect::<Vec<_>>()
                },
                || -> io::Result<_> {
                    sink.merge(std::mem::take(&mut routed))?;
                    progress(Progress {
                        records: sink.report.records,
                        bytes: reader.bytes,
                    });
                    reader.batch()
                },
            );
            routed = next_routed;
            batch = next_batch?;
        }
        if let Some(w) = sink.out.as_mut() {
            w.flush()?;
        }
        let mut report = sink.report;
        report.blank_lines = reader.blank;
        report.finish();
        Ok(report)
    }

    fn too_long(&self, line: u64, cap: usize, write_out: bool) -> LineResult {
        let err = || {
            RouteError::new(
                ErrorCode::RequestTooLarge,
                format!("line {line} is longer than {cap} bytes; skipped"),
            )
        };
        let id = format!("line:{line}");
        let out = write_out.then(|| error_line(&id, line, &err()));
        LineResult {
            line,
            id,
            primary: Err(err()),
            against: self.against.map(|_| Err(err())),
            quality: Vec::new(),
            out,
            ignored: Vec::new(),
        }
    }

    fn line(&self, line: u64, text: &[u8], write_out: bool) -> LineResult {
        let mut ignored = Vec::new();
        let wrapper = serde_json::from_slice::<Wrapper<'_>>(text).ok();
        let (id, body, quality, usage) = match &wrapper {
            Some(w) if w.request.is_some() => (
                w.id.and_then(id_text)
                    .unwrap_or_else(|| format!("line:{line}")),
                w.request.map_or(text, |r| r.get().as_bytes()),
                w.quality,
                w.usage,
            ),
            // Not a wrapper: the line itself is the body (a wrapper's id still names it).
            _ => (
                wrapper
                    .as_ref()
                    .and_then(|w| w.id)
                    .and_then(id_text)
                    .unwrap_or_else(|| format!("line:{line}")),
                text,
                None,
                None,
            ),
        };
        let quality = quality.map_or_else(Vec::new, |q| {
            serde_json::from_str::<BTreeMap<String, f64>>(q.get()).map_or_else(
                |_| {
                    ignored.push("quality");
                    Vec::new()
                },
                |m| m.into_iter().collect(),
            )
        });
        let usage = usage.and_then(|u| {
            let parsed = serde_json::from_str::<Usage>(u.get()).ok();
            if parsed.is_none() {
                ignored.push("usage");
            }
            parsed
        });
        let (primary, out) = self.route(
            self.policy,
            body,
            usage.as_ref(),
            write_out.then_some((&id, line)),
        );
        let against = self
            .against
            .map(|p| self.route(p, body, usage.as_ref(), None).0);
        LineResult {
            line,
            id,
            primary,
            against,
            quality,
            out,
            ignored,
        }
    }

    /// Routes one body under `policy`; with `out` (the record's id and line), also writes its
    /// `--out` line.
    fn route(
        &self,
        policy: &CompiledPolicy,
        body: &[u8],
        usage: Option<&Usage>,
        out: Option<(&str, u64)>,
    ) -> (Outcome, Option<String>) {
        let decided = policy
            .classify(body)
            .and_then(|f| policy.route(&f, &self.ctx));
        match decided {
            Ok(d) => {
                let cost = match (usage, policy.models.get(d.choice().model)) {
                    (Some(u), Some(m)) => {
                        (u.prompt_tokens as f64 * m.input_per_mtok
                            + u.completion_tokens as f64 * m.output_per_mtok)
                            / 1e6
                    }
                    _ => d.estimated_cost_usd(),
                };
                let f = d.features();
                let served = Served {
                    model: d.choice().model,
                    mode: d.mode(),
                    class: f.complexity,
                    score: f.complexity_score,
                    cost,
                };
                let line = out.and_then(|(id, _)| {
                    serde_json::to_string(&DecisionLine { id, decision: d }).ok()
                });
                (Ok(served), line)
            }
            Err(e) => {
                let line = out.map(|(id, line)| error_line(id, line, &e));
                (Err(e), line)
            }
        }
    }
}

#[derive(Serialize)]
struct DecisionLine<'a> {
    id: &'a str,
    decision: crate::Decision<'a>,
}

/// `{"id", "error", "line"}` for `--out`.
fn error_line(id: &str, line: u64, e: &RouteError) -> String {
    json!({"id": id, "error": e.error_object(), "line": line}).to_string()
}

/// A record's id as text: a string as is, a number as written.
fn id_text(raw: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(raw.get()).ok()? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn trim_newline(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// Reads the log a batch at a time.
struct LogReader<R> {
    input: R,
    cap: usize,
    line: u64,
    bytes: u64,
    blank: u64,
    done: bool,
}

impl<R: BufRead> LogReader<R> {
    /// The next batch of non-blank lines with their numbers; empty at the end.
    fn batch(&mut self) -> io::Result<Batch> {
        let mut batch = Batch::default();
        while !self.done && batch.lines.len() < BATCH && batch.data.len() < BATCH_BYTES {
            let mut n = 0;
            let range = match read_line(&mut self.input, self.cap, &mut batch.data, &mut n)? {
                Read::End => {
                    self.done = true;
                    break;
                }
                Read::Line(range) => Some(range),
                Read::TooLong => None,
            };
            self.bytes += n as u64;
            self.line += 1;
            let blank = range.as_ref().is_some_and(|r| {
                batch
                    .data
                    .get(r.clone())
                    .unwrap_or_default()
                    .iter()
                    .all(u8::is_ascii_whitespace)
            });
            if blank {
                self.blank += 1;
                if let Some(r) = range {
                    batch.data.truncate(r.start);
                }
                continue;
            }
            batch.lines.push((self.line, range));
        }
        Ok(batch)
    }
}

/// Lines read together: one buffer, and each line's number and range in it (`None`: the line
/// was longer than the cap and skipped).
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    lines: Vec<(u64, Option<std::ops::Range<usize>>)>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Where routed records go, in input order.
struct Sink<'o> {
    out: Option<&'o mut (dyn Write + Send)>,
    report: Report,
}

impl Sink<'_> {
    fn merge(&mut self, routed: Vec<LineResult>) -> io::Result<()> {
        for r in routed {
            if let (Some(w), Some(text)) = (self.out.as_mut(), &r.out) {
                w.write_all(text.as_bytes())?;
                w.write_all(b"\n")?;
            }
            self.report.add(r);
        }
        Ok(())
    }
}

/// One line of the log, read with a cap on its length.
enum Read {
    End,
    /// The line (with its newline) is the given range of the batch's buffer.
    Line(std::ops::Range<usize>),
    /// Longer than the cap: the rest of it was skipped.
    TooLong,
}

/// Reads one line of at most `cap` bytes onto the end of `buf` (longer lines are skipped to
/// their end, so a log with no newlines cannot make the reader allocate without bound).
/// Bytes are kept as read: a line that is not UTF-8 fails classification as `invalid_json`.
fn read_line<R: BufRead>(
    input: &mut R,
    cap: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> io::Result<Read> {
    let start = buf.len();
    let mut too_long = false;
    *consumed = 0;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() - start + take > cap {
                too_long = true;
                buf.truncate(start);
            } else {
                buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
            }
        }
        input.consume(take);
        *consumed += take;
        if done {
            break;
        }
    }
    Ok(match (*consumed, too_long) {
        (0, _) => Read::End,
        (_, true) => Read::TooLong,
        _ => Read::Line(start..buf.len()),
    })
}

/// Opens a log file or `-` (stdin), undoing gzip when the data starts with its magic bytes.
/// Returns the reader and the file's size when known (for progress).
pub fn open_log(path: &std::path::Path) -> io::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let (mut reader, size): (Box<dyn BufRead + Send>, Option<u64>) =
        if path == std::path::Path::new("-") {
            (Box::new(io::BufReader::new(io::stdin())), None)
        } else {
            let file = std::fs::File::open(path)?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(io::BufReader::with_capacity(1 << 20, file)), size)
        };
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        // The size of compressed input says nothing about the records: no percentage.
        return Ok((
            Box::new(io::BufReader::with_capacity(1 << 20, decoder)),
            None,
        ));
    }
    Ok((reader, size))
}

/// Per-model totals.
#[derive(Debug, Clone, Copy, Default)]
struct ModelTally {
    count: u64,
    cost: f64,
}

/// What changed between the two policies of a `--against` run.
#[derive(Debug, Default)]
struct Diff {
    changed: u64,
    /// (from, to) → count, with examples.
    matrix: BTreeMap<(String, String), (u64, Vec<String>)>,
    examples: Vec<String>,
    cost: f64,
    models: Vec<ModelTally>,
    errors: BTreeMap<&'static str, u64>,
    quality_sum: f64,
    quality_n: u64,
    /// Quality of A and B on records labelled for both served models.
    paired: (f64, f64, u64),
}

/// The outcome of a simulation: totals, per-model mix, errors, cost, quality, and (with
/// `--against`) what changed; for two-model evaluation sets, the trade-off curve.
#[derive(Debug)]
pub struct Report {
    name: String,
    fingerprint: String,
    model_ids: Vec<String>,
    against_meta: Option<(String, String, Vec<String>)>,
    records: u64,
    blank_lines: u64,
    decisions: u64,
    errors: BTreeMap<&'static str, u64>,
    error_lines: Vec<(u64, &'static str)>,
    ignored: BTreeMap<&'static str, u64>,
    models: Vec<ModelTally>,
    modes: BTreeMap<&'static str, u64>,
    classes: BTreeMap<&'static str, u64>,
    cost: f64,
    quality_sum: f64,
    quality_n: u64,
    diff: Option<Diff>,
    /// (score, weak, strong) per record labelled for exactly the evaluation pair.
    pair: Option<(String, String)>,
    pair_set: Vec<(f64, f64, f64)>,
    pair_broken: bool,
    tradeoff: Option<Tradeoff>,
}

impl Report {
    fn new(policy: &CompiledPolicy, against: Option<&CompiledPolicy>) -> Self {
        let ids = |p: &CompiledPolicy| p.models.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        Report {
            name: policy.name.clone(),
            fingerprint: policy.fingerprint.clone(),
            model_ids: ids(policy),
            against_meta: against.map(|p| (p.name.clone(), p.fingerprint.clone(), ids(p))),
            records: 0,
            blank_lines: 0,
            decisions: 0,
            errors: BTreeMap::new(),
            error_lines: Vec::new(),
            ignored: BTreeMap::new(),
            models: vec![ModelTally::default(); policy.models.len()],
            modes: BTreeMap::new(),
            classes: BTreeMap::new(),
            cost: 0.0,
            quality_sum: 0.0,
            quality_n: 0,
            diff: against.map(|p| Diff {
                models: vec![ModelTally::default(); p.models.len()],
                ..Diff::default()
            }),
            pair: None,
            pair_set: Vec::new(),
            pair_broken: false,
            tradeoff: None,
        }
    }

    fn add(&mut self, r: LineResult) {
        self.records += 1;
        for f in &r.ignored {
            *self.ignored.entry(f).or_default() += 1;
        }
        let quality_of = |ids: &[String], model: usize| {
            let id = ids.get(model)?;
            r.quality.iter().find(|(m, _)| m == id).map(|(_, q)| *q)
        };
        let mut a_quality = None;
        match &r.primary {
            Ok(s) => {
                self.decisions += 1;
                if let Some(t) = self.models.get_mut(s.model) {
                    t.count += 1;
                    t.cost += s.cost;
                }
                self.cost += s.cost;
                *self.modes.entry(s.mode.as_str()).or_default() += 1;
                *self.classes.entry(s.class.as_str()).or_default() += 1;
                a_quality = quality_of(&self.model_ids, s.model);
                if let Some(q) = a_quality {
                    self.quality_sum += q;
                    self.quality_n += 1;
                }
            }
            Err(e) => {
                *self.errors.entry(e.code().as_str()).or_default() += 1;
                if self.error_lines.len() < ERROR_LINES {
                    self.error_lines.push((r.line, e.code().as_str()));
                }
            }
        }
        if let (Some(diff), Some(b), Some((_, _, b_ids))) =
            (&mut self.diff, &r.against, &self.against_meta)
        {
            let label = |o: &Outcome, ids: &[String]| match o {
                Ok(s) => ids.get(s.model).cloned().unwrap_or_default(),
                Err(e) => format!("error:{}", e.code().as_str()),
            };
            let (from, to) = (label(&r.primary, &self.model_ids), label(b, b_ids));
            if from != to {
                diff.changed += 1;
                if diff.examples.len() < EXAMPLES {
                    diff.examples.push(r.id.clone());
                }
                let cell = diff.matrix.entry((from, to)).or_default();
                cell.0 += 1;
                if cell.1.len() < EXAMPLES {
                    cell.1.push(r.id.clone());
                }
            }
            match b {
                Ok(s) => {
                    diff.cost += s.cost;
                    if let Some(t) = diff.models.get_mut(s.model) {
                        t.count += 1;
                        t.cost += s.cost;
                    }
                    let b_quality = quality_of(b_ids, s.model);
                    if let Some(q) = b_quality {
                        diff.quality_sum += q;
                        diff.quality_n += 1;
                    }
                    if let (Some(qa), Some(qb)) = (a_quality, b_quality) {
                        diff.paired.0 += qa;
                        diff.paired.1 += qb;
                        diff.paired.2 += 1;
                    }
                }
                Err(e) => *diff.errors.entry(e.code().as_str()).or_default() += 1,
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
            self.pair_set.push((f64::from(s.score), *q1, *q2));
        }
    }

    fn finish(&mut self) {
        if self.pair_broken {
            self.pair_set = Vec::new();
            return;
        }
        let Some((m1, m2)) = &self.pair else { return };
        // The strong model is the one with the higher mean quality over the set.
        let n = self.pair_set.len().max(1) as f64;
        let (q1, q2) = self
            .pair_set
            .iter()
            .fold((0.0, 0.0), |(a, b), r| (a + r.1, b + r.2));
        let (weak, strong, set): (&str, &str, Vec<(f64, f64, f64)>) = if q2 / n >= q1 / n {
            (m1, m2, std::mem::take(&mut self.pair_set))
        } else {
            (
                m2,
                m1,
                self.pair_set.drain(..).map(|(s, a, b)| (s, b, a)).collect(),
            )
        };
        self.tradeoff = Tradeoff::new(weak, strong, &set, STEPS);
    }

    /// Non-blank lines read.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records that got a decision.
    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    /// Estimated (or, with `usage`, actual-token) cost in USD of all decisions.
    pub fn estimated_cost_usd(&self) -> f64 {
        self.cost
    }

    /// The two-model trade-off, where the log is a two-model evaluation set.
    pub fn tradeoff(&self) -> Option<&Tradeoff> {
        self.tradeoff.as_ref()
    }

    fn models_json(ids: &[String], tallies: &[ModelTally], decisions: u64) -> Value {
        let mut order: Vec<(usize, &ModelTally)> = tallies
            .iter()
            .enumerate()
            .filter(|(_, t)| t.count > 0)
            .collect();
        order.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        let map: serde_json::Map<String, Value> = order
            .into_iter()
            .map(|(i, t)| {
                let id = ids.get(i).cloned().unwrap_or_default();
                let share = t.count as f64 / decisions.max(1) as f64;
                (id, json!({"count": t.count, "share": round(share, 6), "estimated_cost_usd": round(t.cost, 9)}))
            })
            .collect();
        Value::Object(map)
    }

    fn mean(sum: f64, n: u64) -> Option<f64> {
        (n > 0).then(|| sum / n as f64)
    }

    /// The summary as JSON: `records`, `decisions`, `errors` (count by code), `error_lines`,
    /// `models` (count, share, estimated cost), `modes`, `complexity`, `estimated_cost_usd`,
    /// `quality` (`mean`, `labelled`), `policy`, and where they apply `against` and `tradeoff`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "records": self.records,
            "decisions": self.decisions,
            "blank_lines": self.blank_lines,
            "errors": self.errors,
            "error_lines": self.error_lines.iter().map(|(l, c)| json!({"line": l, "code": c})).collect::<Vec<_>>(),
            "ignored_fields": self.ignored,
            "models": Self::models_json(&self.model_ids, &self.models, self.decisions),
            "modes": self.modes,
            "complexity": self.classes,
            "estimated_cost_usd": round(self.cost, 9),
            "quality": {"mean": Self::mean(self.quality_sum, self.quality_n), "labelled": self.quality_n},
            "policy": {"name": self.name, "fingerprint": self.fingerprint},
        });
        if let (Some(d), Some((name, fp, ids)), Some(obj)) =
            (&self.diff, &self.against_meta, v.as_object_mut())
        {
            let decisions: u64 = d.models.iter().map(|t| t.count).sum();
            let paired = (d.paired.2 > 0).then(|| (d.paired.1 - d.paired.0) / d.paired.2 as f64);
            let matrix: Vec<Value> = d
                .matrix
                .iter()
                .map(|((from, to), (n, ex))| json!({"from": from, "to": to, "count": n, "examples": ex}))
                .collect();
            obj.insert(
                "against".into(),
                json!({
                    "policy": {"name": name, "fingerprint": fp},
                    "decisions": decisions,
                    "errors": d.errors,
                    "models": Self::models_json(ids, &d.models, decisions),
                    "estimated_cost_usd": round(d.cost, 9),
                    "quality": {"mean": Self::mean(d.quality_sum, d.quality_n), "labelled": d.quality_n},
                    "changed": d.changed,
                    "changes": matrix,
                    "examples": d.examples,
                    "cost_delta_usd": round(d.cost - self.cost, 9),
                    "quality_delta": paired,
                    "quality_delta_records": d.paired.2,
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
        let mut s = format!(
            "policy {}@{}: {} records, {} decisions, {} errors\n",
            self.name,
            self.fingerprint,
            self.records,
            self.decisions,
            self.records - self.decisions
        );
        s.push_str(&format!(
            "\n{:<28} {:>9} {:>8} {:>14}\n",
            "model", "requests", "share", "est. cost USD"
        ));
        let models = Self::models_json(&self.model_ids, &self.models, self.decisions);
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
            "total", self.decisions, "", self.cost
        ));
        let join = |m: &BTreeMap<&str, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "\nmodes: {}\ncomplexity: {}\n",
            join(&self.modes),
            join(&self.classes)
        ));
        if !self.errors.is_empty() {
            let lines: Vec<String> = self
                .error_lines
                .iter()
                .map(|(l, _)| l.to_string())
                .collect();
            s.push_str(&format!(
                "errors: {} (first at lines {})\n",
                join(&self.errors),
                lines.join(", ")
            ));
        }
        if !self.ignored.is_empty() {
            s.push_str(&format!(
                "malformed fields ignored: {}\n",
                join(&self.ignored)
            ));
        }
        if let Some(q) = Self::mean(self.quality_sum, self.quality_n) {
            s.push_str(&format!(
                "quality: {q:.4} mean over {} labelled records\n",
                self.quality_n
            ));
        }
        if let (Some(d), Some((name, fp, _))) = (&self.diff, &self.against_meta) {
            s.push_str(&format!(
                "\nagainst {name}@{fp}: {} of {} records change; cost {:.6} -> {:.6} USD ({:+.6})\n",
                d.changed,
                self.records,
                self.cost,
                d.cost,
                d.cost - self.cost
            ));
            if d.paired.2 > 0 {
                let n = d.paired.2 as f64;
                s.push_str(&format!(
                    "quality on {} records labelled for both: {:.4} -> {:.4} ({:+.4})\n",
                    d.paired.2,
                    d.paired.0 / n,
                    d.paired.1 / n,
                    (d.paired.1 - d.paired.0) / n
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
