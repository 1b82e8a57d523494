#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod capability;
mod classify;
mod decision;
mod diagnostic;
mod error;
mod estimate;
mod explain;
mod models;
mod policy;
mod route;
mod router;
mod simulate;

pub use capability::{Capability, CapabilitySet, UnknownCapability};
pub use classify::{Complexity, RequestFeatures};
pub use decision::Decision;
pub use diagnostic::{Diagnostic, DiagnosticKind, Severity};
pub use error::{ErrorCode, RouteError};
pub use estimate::estimate_tokens;
pub use policy::{
    AUTO_ALIAS, CompiledPolicy, EMBEDDED_POLICY, Loaded, MAX_FALLBACKS, Mode, PINNED_PREFIX,
    PolicyError, Target,
};
pub use route::CallerContext;
pub use router::{Reloaded, Routed, Router};
pub use simulate::{Point, Progress, Report, Simulation, Tradeoff, open_log};

/// The closest of `names` to `name`, when close enough to be a likely typo.
pub(crate) fn suggest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    let limit = (len / 3).clamp(1, 4);
    names
        // Names whose lengths differ by more than the limit cannot be within it.
        .filter(|n| {
            n.len().abs_diff(name.len()) <= limit * 4 && n.chars().count().abs_diff(len) <= limit
        })
        .map(|n| (strsim::osa_distance(name, n), n))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, n)| n)
}
