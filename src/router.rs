//! The handle a gateway holds: the current policy behind one `ArcSwap`, swapped atomically.

use std::path::Path;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::decision::{Choice, Decision};
use crate::diagnostic::Diagnostic;
use crate::error::RouteError;
use crate::features::{Api, RequestFeatures};
use crate::policy::{CompiledPolicy, PolicyError};
use crate::route::CallerContext;

/// A router: the current [`CompiledPolicy`], replaced atomically while requests are in flight.
///
/// Readers never block and never see half a policy: each request loads the current table
/// once and uses that snapshot for classification and routing alike.
///
/// ```
/// use fluxroute::{CallerContext, CompiledPolicy, Router};
/// let router = Router::new(CompiledPolicy::embedded());
/// let body = br#"{"model": "flux-fast", "messages": [{"role": "user", "content": "thanks!"}]}"#;
/// let routed = router.route(body, &CallerContext::default())?;
/// let decision = routed.decision();
/// assert_eq!(decision.tier(), "fast");
/// // Swapping in the same policy changes nothing.
/// assert!(!router.swap(CompiledPolicy::embedded()));
/// # Ok::<(), fluxroute::RouteError>(())
/// ```
#[derive(Debug)]
pub struct Router {
    current: ArcSwap<CompiledPolicy>,
}

/// A decision together with the policy snapshot it borrows.
#[derive(Debug)]
pub struct Routed {
    policy: Guard<Arc<CompiledPolicy>>,
    features: RequestFeatures,
    choice: Choice,
}

impl Routed {
    /// The decision.
    pub fn decision(&self) -> Decision<'_> {
        Decision::new(&self.policy, self.features, self.choice)
    }
}

/// The outcome of a successful reload.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reloaded {
    /// Whether the new policy differs from the one it replaced (by fingerprint).
    pub changed: bool,
    /// The fingerprint now serving.
    pub fingerprint: String,
    /// Warnings found while loading.
    pub warnings: Vec<Diagnostic>,
}

impl Router {
    /// A router serving `policy`.
    pub fn new(policy: CompiledPolicy) -> Self {
        Router {
            current: ArcSwap::from_pointee(policy),
        }
    }

    /// The current policy snapshot; load once per request and use it throughout.
    pub fn load(&self) -> Guard<Arc<CompiledPolicy>> {
        self.current.load()
    }

    /// Classifies and routes one Chat Completions body against one snapshot of the current
    /// policy.
    pub fn route(&self, body: &[u8], ctx: &CallerContext<'_>) -> Result<Routed, RouteError> {
        self.route_as(Api::Chat, body, ctx)
    }

    /// Classifies and routes one body of the given request API against one snapshot of the
    /// current policy.
    pub fn route_as(
        &self,
        api: Api,
        body: &[u8],
        ctx: &CallerContext<'_>,
    ) -> Result<Routed, RouteError> {
        let policy = self.current.load();
        let features = policy.classify_as(api, body)?;
        let choice = policy.route(&features, ctx)?.choice();
        Ok(Routed {
            policy,
            features,
            choice,
        })
    }

    /// Replaces the policy; returns whether it differs from the one serving (by fingerprint).
    /// An identical policy is not swapped in.
    pub fn swap(&self, policy: CompiledPolicy) -> bool {
        self.swap_shared(Arc::new(policy))
    }

    /// [`Router::swap`] for a policy already shared, such as one kept compiled for a quick
    /// switch back.
    pub fn swap_shared(&self, policy: Arc<CompiledPolicy>) -> bool {
        if self.current.load().fingerprint() == policy.fingerprint() {
            return false;
        }
        self.current.store(policy);
        true
    }

    /// Reads, validates and compiles `path`, then swaps it in. On any error the old policy keeps
    /// serving and the error carries every diagnostic.
    pub fn reload(&self, path: &Path) -> Result<Reloaded, PolicyError> {
        let loaded = CompiledPolicy::from_file(path)?;
        let fingerprint = loaded.policy.fingerprint().to_owned();
        let changed = self.swap(loaded.policy);
        Ok(Reloaded {
            changed,
            fingerprint,
            warnings: loaded.warnings,
        })
    }
}
