//! Prometheus metrics: decisions by mode, model and tier; rejections by code; upstream latency
//! by model and status; failovers; policy reloads.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub decisions: IntCounterVec,
    pub errors: IntCounterVec,
    pub upstream: HistogramVec,
    pub failovers: IntCounterVec,
    pub reloads: IntCounterVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new("fluxroute_decisions_total", "Routing decisions"),
            &["mode", "model", "tier"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("fluxroute_errors_total", "Rejected requests by error code"),
            &["code"],
        )?;
        let upstream = HistogramVec::new(
            HistogramOpts::new(
                "fluxroute_upstream_seconds",
                "Time to the upstream's response headers",
            ),
            &["model", "status"],
        )?;
        let failovers = IntCounterVec::new(
            Opts::new(
                "fluxroute_failovers_total",
                "Upstream failures that moved a request to its next fallback",
            ),
            &["model"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "fluxroute_policy_reloads_total",
                "Policy reloads by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(upstream.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        Ok(Metrics {
            registry,
            decisions,
            errors,
            upstream,
            failovers,
            reloads,
        })
    }

    pub fn render(&self) -> prometheus::Result<String> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
