#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Lets shared test support written against the public API also build inside unit tests.
#[cfg(test)]
extern crate self as fluxroute;

mod capability;
mod classify;
mod clip;
mod decision;
mod diagnostic;
mod error;
mod explain;
mod features;
mod listing;
mod patterns;
mod policy;
mod route;
mod router;
mod scorer;
#[cfg(feature = "simulate")]
mod simulate;
mod suggest;
#[cfg(feature = "watch")]
mod watch;

pub use capability::{Capability, CapabilitySet, UnknownCapability};
pub use classify::estimate::estimate_tokens;
pub use decision::{Decision, ForwardError};
pub use diagnostic::{Diagnostic, DiagnosticKind, Severity};
pub use error::{ErrorCode, RouteError};
pub use features::{Api, Complexity, Mode, RequestFeatures, Target, UnknownApi};
pub use patterns::PATTERN_WINDOW;
pub use policy::{
    AUTO_ALIAS, CompiledPolicy, EMBEDDED_POLICY, LoadOptions, Loaded, MAX_FALLBACKS, ModelMeta,
    PINNED_PREFIX, PolicyError,
};
pub use route::CallerContext;
pub use router::{Reloaded, Routed, Router};
pub use scorer::Term;
#[cfg(feature = "simulate")]
pub use scorer::train::{FileReport, MIN_PAIRS, TrainOptions, Trained, train_scorer};
#[cfg(feature = "simulate")]
pub use simulate::{
    Calibration, Point, Progress, Report, Shares, Simulation, Tradeoff, calibrate, open_log,
    write_thresholds,
};
#[cfg(feature = "watch")]
pub use watch::Watcher;
