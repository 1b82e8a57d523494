//! The decision: which model serves a request and why, with its headers and JSON form.

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::capability::CapabilitySet;
use crate::features::{Mode, RequestFeatures, Source};
use crate::policy::{CompiledPolicy, MAX_FALLBACKS, Model, ModelMeta};

/// Why [`Decision::forward`] could not write a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The features were made by hand, not read from a body.
    #[error("the decision was not made from a request body")]
    NoBody,
    /// The body given is not the one the decision was made from.
    #[error("the body is not the one the decision was made from")]
    OtherBody,
    /// The model named is neither the served model nor one of the fallbacks.
    #[error("`{0}` is neither the served model nor a fallback of this decision")]
    NotACandidate(String),
}

/// What decided which model serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecidedBy {
    /// The name itself (pinned, passthrough, redirect): no rule is consulted.
    Name,
    /// The default complexity → tier → cheapest step.
    Default,
    /// Rule `i` of the policy.
    Rule(u32),
}

/// Up to [`MAX_FALLBACKS`] + 1 model indices, without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fallbacks {
    ids: [u16; MAX_FALLBACKS + 1],
    len: u8,
}

impl Fallbacks {
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    #[inline]
    pub fn push(&mut self, index: usize) {
        let len = self.len();
        if let (Some(slot), Ok(id)) = (self.ids.get_mut(len), u16::try_from(index)) {
            *slot = id;
            self.len += 1;
        }
    }

    #[inline]
    pub fn contains(&self, index: usize) -> bool {
        self.iter().any(|i| i == index)
    }

    pub fn first(&self) -> Option<usize> {
        self.iter().next()
    }

    pub fn without_first(&self) -> Fallbacks {
        let mut out = Fallbacks::default();
        self.iter().skip(1).for_each(|i| out.push(i));
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.ids.iter().take(self.len()).map(|&i| usize::from(i))
    }
}

/// What routing chose, as indices into the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Choice {
    pub model: usize,
    pub rule: DecidedBy,
    pub fallbacks: Fallbacks,
    pub cost: f64,
}

/// A routing decision: the served model, why, and what it is expected to cost.
///
/// Borrows the policy that made it; [`Decision::to_json`] gives the contract's decision object
/// (`docs/contract.md`, section 4).
///
/// ```
/// use fluxroute::{CallerContext, CompiledPolicy, Mode};
/// let policy = CompiledPolicy::embedded();
/// let body = br#"{"model": "flux-pinned-gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
/// let d = policy.route_body(body, &CallerContext::default())?;
/// assert_eq!((d.mode(), d.model(), d.routed()), (Mode::Pinned, "gpt-4o", false));
/// assert_eq!(d.headers()[1], ("X-Flux-Routed", "false"));
/// # Ok::<(), fluxroute::RouteError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Decision<'p> {
    policy: &'p CompiledPolicy,
    features: RequestFeatures,
    choice: Choice,
}

impl<'p> Decision<'p> {
    pub(crate) fn new(
        policy: &'p CompiledPolicy,
        features: RequestFeatures,
        choice: Choice,
    ) -> Self {
        Decision {
            policy,
            features,
            choice,
        }
    }

    /// The name the caller asked for.
    pub fn requested(&self) -> &'p str {
        self.policy.target_name(self.features.target)
    }

    /// How the request was served.
    pub fn mode(&self) -> Mode {
        self.features.target.mode()
    }

    /// The backing model that serves the request.
    pub fn model(&self) -> &'p str {
        self.policy
            .models
            .get(self.choice.model)
            .map_or("", |m| m.id.as_str())
    }

    /// Whether the served model is not the one the caller named.
    pub fn routed(&self) -> bool {
        !self.features.target.is_exact()
    }

    /// The served model's tier.
    pub fn tier(&self) -> &'p str {
        let tier = self
            .policy
            .models
            .get(self.choice.model)
            .map_or(usize::MAX, |m| m.tier);
        self.policy.tiers.get(tier).map_or("", |t| t.name.as_str())
    }

    /// The rule that decided: its name, `"default"`, or `None` for pinned, passthrough and
    /// redirected names, which no rule touches.
    pub fn rule(&self) -> Option<&'p str> {
        match self.choice.rule {
            DecidedBy::Name => None,
            DecidedBy::Default => Some("default"),
            DecidedBy::Rule(i) => self.policy.rules.get(i as usize).map(|r| r.name.as_str()),
        }
    }

    /// The features routing read.
    pub fn features(&self) -> &RequestFeatures {
        &self.features
    }

    /// Estimated cost of this request on the served model, in USD.
    pub fn estimated_cost_usd(&self) -> f64 {
        self.choice.cost
    }

    /// Eligible fallbacks in order (auto and tier only).
    pub fn fallbacks(&self) -> impl Iterator<Item = &'p str> + '_ {
        let models = &self.policy.models;
        self.choice
            .fallbacks
            .iter()
            .filter_map(|i| models.get(i).map(|m| m.id.as_str()))
    }

    /// The policy that decided.
    pub fn policy(&self) -> &'p CompiledPolicy {
        self.policy
    }

    /// The response headers: `X-Flux-Model`, `X-Flux-Routed`, `X-Flux-Policy`.
    pub fn headers(&self) -> [(&'static str, &'p str); 3] {
        [
            ("X-Flux-Model", self.model()),
            (
                "X-Flux-Routed",
                if self.routed() { "true" } else { "false" },
            ),
            ("X-Flux-Policy", self.policy.header.as_str()),
        ]
    }

    /// The served model, then the fallbacks: the order a gateway tries them in.
    pub fn candidates(&self) -> impl Iterator<Item = &'p str> + '_ {
        std::iter::once(self.model()).chain(self.fallbacks())
    }

    /// The catalog entry of `model` when it is the served model or a fallback.
    fn candidate(&self, model: &str) -> Option<&'p Model> {
        let models = &self.policy.models;
        std::iter::once(self.choice.model)
            .chain(self.choice.fallbacks.iter())
            .filter_map(|i| models.get(i))
            .find(|m| m.id == model)
    }

    /// The headers for a response served by `model` (the served model or a fallback, after a
    /// failover): `X-Flux-Model` names it, `X-Flux-Routed` says whether it is not the one the
    /// caller named. `None` for any other model.
    ///
    /// ```
    /// use fluxroute::{CallerContext, CompiledPolicy};
    /// let policy = CompiledPolicy::embedded();
    /// let body = br#"{"model": "flux-auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    /// let d = policy.route_body(body, &CallerContext::default())?;
    /// let next = d.fallbacks().next().unwrap();
    /// assert_eq!(d.headers_for(next).unwrap()[0], ("X-Flux-Model", next));
    /// assert_eq!(d.headers_for("no-such-model"), None);
    /// # Ok::<(), fluxroute::RouteError>(())
    /// ```
    pub fn headers_for(&self, model: &str) -> Option<[(&'static str, &'p str); 3]> {
        let m = self.candidate(model)?;
        let routed = self.routed() || m.id != self.model();
        Some([
            ("X-Flux-Model", m.id.as_str()),
            ("X-Flux-Routed", if routed { "true" } else { "false" }),
            ("X-Flux-Policy", self.policy.header.as_str()),
        ])
    }

    /// The served model's metadata from the policy (`[models.meta]`: endpoint, deployment,
    /// region, ...); empty when it has none.
    pub fn meta(&self) -> &'p ModelMeta {
        self.policy
            .models
            .get(self.choice.model)
            .map_or(ModelMeta::EMPTY, |m| &m.meta)
    }

    /// The metadata of `model` when it is the served model or a fallback.
    pub fn meta_for(&self, model: &str) -> Option<&'p ModelMeta> {
        self.candidate(model).map(|m| &m.meta)
    }

    /// Writes into `out` the body the decision was made from with only its `model` value
    /// replaced by the served model's id: every other byte is the caller's, nothing is
    /// re-serialized. `out` is cleared first and grows at most once.
    ///
    /// ```
    /// use fluxroute::{CallerContext, CompiledPolicy};
    /// let policy = CompiledPolicy::embedded();
    /// let body = br#"{"messages": [{"role": "user", "content": "hi"}], "model": "flux-auto", "stream": true}"#;
    /// let d = policy.route_body(body, &CallerContext::default())?;
    /// let mut out = Vec::new();
    /// d.forward(body, &mut out).unwrap();
    /// let expected = format!(
    ///     r#"{{"messages": [{{"role": "user", "content": "hi"}}], "model": "{}", "stream": true}}"#,
    ///     d.model()
    /// );
    /// assert_eq!(String::from_utf8(out).unwrap(), expected);
    /// # Ok::<(), fluxroute::RouteError>(())
    /// ```
    pub fn forward(&self, body: &[u8], out: &mut Vec<u8>) -> Result<(), ForwardError> {
        self.forward_to(self.model(), body, out)
    }

    /// [`Decision::forward`] for `model`, the served model or one of the fallbacks (after a
    /// failover).
    pub fn forward_to(
        &self,
        model: &str,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ForwardError> {
        let Some(m) = self.candidate(model) else {
            return Err(ForwardError::NotACandidate(model.to_owned()));
        };
        let Some(at) = self.features.source.0 else {
            return Err(ForwardError::NoBody);
        };
        let (start, end) = (at.start as usize, at.end as usize);
        let (Some(head), Some(tail)) = (body.get(..start), body.get(end..)) else {
            return Err(ForwardError::OtherBody);
        };
        let value = body.get(start..end).unwrap_or_default();
        if body.len() != at.len as usize || Source::hash(value) != at.hash {
            return Err(ForwardError::OtherBody);
        }
        out.clear();
        // Model ids are visible ASCII (the policy checks): escaped, at most twice as long.
        out.reserve(head.len() + tail.len() + 2 * m.id.len() + 2);
        out.extend_from_slice(head);
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &m.id);
        out.extend_from_slice(tail);
        Ok(())
    }

    /// The decision as the contract's JSON object (see [`Serialize`] for writing it directly).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The contract's decision object, serialized straight from the decision (no intermediate tree).
impl Serialize for Decision<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = &self.features;
        View {
            requested: self.requested(),
            mode: self.mode().as_str(),
            model: self.model(),
            routed: self.routed(),
            tier: self.tier(),
            rule: self.rule(),
            headers: HeadersView {
                model: self.model(),
                routed: if self.routed() { "true" } else { "false" },
                policy: &self.policy.header,
            },
            features: FeaturesView {
                prompt_tokens: f.prompt_tokens,
                max_output_tokens: f.max_output_tokens,
                capabilities: f.capabilities,
                complexity: f.complexity.as_str(),
                complexity_score: round(f64::from(f.complexity_score), 4),
            },
            estimated_cost_usd: round(self.choice.cost, 9),
            fallbacks: FallbacksView(self),
            meta: MetaView(self),
            policy: PolicyView {
                name: &self.policy.name,
                fingerprint: &self.policy.fingerprint,
            },
        }
        .serialize(serializer)
    }
}

#[derive(Serialize)]
struct View<'a> {
    requested: &'a str,
    mode: &'static str,
    model: &'a str,
    routed: bool,
    tier: &'a str,
    rule: Option<&'a str>,
    headers: HeadersView<'a>,
    features: FeaturesView,
    estimated_cost_usd: f64,
    fallbacks: FallbacksView<'a>,
    #[serde(skip_serializing_if = "MetaView::is_empty")]
    meta: MetaView<'a>,
    policy: PolicyView<'a>,
}

/// The metadata of the served model and the fallbacks that have any, by model id.
struct MetaView<'a>(&'a Decision<'a>);

impl MetaView<'_> {
    fn entries(&self) -> impl Iterator<Item = (&str, &ModelMeta)> {
        let d = self.0;
        d.candidates()
            .filter_map(move |id| d.meta_for(id).map(|m| (id, m)))
            .filter(|(_, m)| !m.is_empty())
    }

    fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }
}

impl Serialize for MetaView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries())
    }
}

#[derive(Serialize)]
struct HeadersView<'a> {
    #[serde(rename = "X-Flux-Model")]
    model: &'a str,
    #[serde(rename = "X-Flux-Routed")]
    routed: &'static str,
    #[serde(rename = "X-Flux-Policy")]
    policy: &'a str,
}

#[derive(Serialize)]
struct FeaturesView {
    prompt_tokens: u32,
    max_output_tokens: Option<u32>,
    capabilities: CapabilitySet,
    complexity: &'static str,
    complexity_score: f64,
}

struct FallbacksView<'a>(&'a Decision<'a>);

impl Serialize for FallbacksView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.fallbacks())
    }
}

#[derive(Serialize)]
struct PolicyView<'a> {
    name: &'a str,
    fingerprint: &'a str,
}

/// Rounds for display; decisions keep full precision.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

impl Decision<'_> {
    pub(crate) fn choice(&self) -> Choice {
        self.choice
    }
}
