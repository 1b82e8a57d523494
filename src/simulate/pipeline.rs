//! The replay pipeline: while the cores route one batch of records under each policy, this
//! thread merges the batch before it into the report (and the `--out` lines, in input order)
//! and reads the batch after it.

use std::io::{self, BufRead, Write};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::reader::{LogReader, Record, Usage, line_cap, trim_newline};
use super::report::{LineResult, Outcome, Report, Served};
use super::{Progress, Simulation};
use crate::decision::Decision;
use crate::error::{ErrorCode, RouteError};
use crate::features::Api;
use crate::policy::CompiledPolicy;

impl Simulation<'_> {
    /// Replays `input` (JSONL; gzip is the caller's to undo, see [`open_log`](crate::open_log)), writing one
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
        let limit = |p: &CompiledPolicy| p.limits.max_body_bytes;
        let cap = line_cap(limit(self.policy).max(self.against.map_or(0, limit)));
        let write_out = out.is_some();
        let mut reader = LogReader::new(input, cap);
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
                        records: sink.report.records(),
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
        let record = Record::parse(line, text);
        let id = record.id;
        let usage = record.usage.as_ref();
        let api = record.api.map(|a| a.unwrap_or(self.api));
        let (primary, out) = self.route(
            self.policy,
            (api.as_ref(), record.body),
            usage,
            write_out.then_some((&id, line)),
        );
        let against = self
            .against
            .map(|p| self.route(p, (api.as_ref(), record.body), usage, None).0);
        LineResult {
            line,
            id,
            primary,
            against,
            quality: record.quality,
            out,
            ignored: record.ignored,
        }
    }

    /// Routes one body of its API (or the record's API value that names none) under
    /// `policy`; with `out` (the record's id and line), also writes its `--out` line.
    fn route(
        &self,
        policy: &CompiledPolicy,
        (api, body): (Result<&Api, &String>, &[u8]),
        usage: Option<&Usage>,
        out: Option<(&str, u64)>,
    ) -> (Outcome, Option<String>) {
        let decided = match api {
            Ok(&api) => policy.classify_as(api, body),
            Err(name) => Err(RouteError::new(
                ErrorCode::InvalidRequest,
                format!("unknown `api` {name}; expected \"chat\", \"responses\" or \"messages\""),
            )
            .with_param("api")),
        };
        let decided = decided.and_then(|f| policy.route(&f, &self.ctx));
        match decided {
            Ok(d) => {
                let cost = match (usage, policy.models.get(d.choice().model)) {
                    (Some(u), Some(m)) => {
                        m.cost_usd(u.prompt_tokens as f64, u.completion_tokens as f64)
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
    decision: Decision<'a>,
}

/// `{"id", "error", "line"}` for `--out`.
fn error_line(id: &str, line: u64, e: &RouteError) -> String {
    json!({"id": id, "error": e.error_object(), "line": line}).to_string()
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
