#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Lets shared test support written against the public API also build inside unit tests.
#[cfg(test)]
extern crate self as fluxroute;

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
mod scan;
mod simulate;
#[cfg(feature = "watch")]
mod watch;

pub use capability::{Capability, CapabilitySet, UnknownCapability};
pub use classify::{Complexity, PATTERN_WINDOW, RequestFeatures};
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
#[cfg(feature = "watch")]
pub use watch::Watcher;

/// The closest of `names` to `name`, when close enough to be a likely typo.
pub(crate) fn suggest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    let limit = (len / 3).clamp(1, 4);
    let bag = ByteBag::of(name);
    names
        // Cheap lower bounds first: the length difference, and how many bytes one name has
        // that the other lacks (each edit changes at most one character, of up to 4 bytes).
        .filter(|n| {
            n.chars().count().abs_diff(len) <= limit && bag.distance(&ByteBag::of(n)) <= 4 * limit
        })
        .map(|n| (strsim::osa_distance(name, n), n))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, n)| n)
}

/// How often each byte occurs in a string.
struct ByteBag([u8; 256]);

impl ByteBag {
    fn of(s: &str) -> Self {
        let mut counts = [0u8; 256];
        for &b in s.as_bytes() {
            if let Some(c) = counts.get_mut(usize::from(b)) {
                *c = c.saturating_add(1);
            }
        }
        ByteBag(counts)
    }

    /// The larger of the bytes one has beyond the other, either way round.
    fn distance(&self, other: &ByteBag) -> usize {
        let (mut more, mut less) = (0usize, 0usize);
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            more += usize::from(a.saturating_sub(*b));
            less += usize::from(b.saturating_sub(*a));
        }
        more.max(less)
    }
}
