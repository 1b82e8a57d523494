//! Offline policy simulation: replay a JSONL request log through a policy (and optionally a
//! second one) and report the model mix, errors, cost and quality it would produce.
//!
//! Three rooms: [`reader`] turns the log into records (batches, line caps, gzip),
//! [`pipeline`] routes each batch on every core (rayon) while the previous one is merged in
//! input order, and [`report`] tallies what each policy did; [`tradeoff`] is the two-model
//! quality/cost curve. Memory stays flat whatever the log's size.

mod calibrate;
mod pipeline;
pub(crate) mod reader;
mod report;
mod tradeoff;

pub use calibrate::{Calibration, Shares, calibrate, write_thresholds};
pub use reader::open_log;
pub use report::Report;
pub use tradeoff::{Point, Tradeoff};

use crate::features::Api;
use crate::policy::CompiledPolicy;
use crate::route::CallerContext;

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
    api: Api,
}

impl<'a> Simulation<'a> {
    /// A simulation of `policy` with no caller context.
    pub fn new(policy: &'a CompiledPolicy) -> Self {
        Simulation {
            policy,
            against: None,
            ctx: CallerContext::default(),
            api: Api::Chat,
        }
    }

    /// Reads bare bodies, and records without an `"api"` field, as bodies of `api` (default:
    /// Chat Completions).
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
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
}
