//! Classification: one streaming pass over a chat body into small, copyable
//! [`RequestFeatures`].
//!
//! The pass is [`scan`] (a JSON cursor that never builds a DOM, strings kept as [`text`]
//! spans) driven by [`body`] (what the Chat Completions fields mean), with [`estimate`]
//! counting tokens as strings go by and [`window`] choosing the text the policy's patterns
//! see.

mod body;
pub(crate) mod estimate;
mod scan;
mod text;
mod window;

use crate::error::{ErrorCode, RouteError};
use crate::features::{Api, Complexity, RequestFeatures};
use crate::patterns::Matches;
use crate::policy::CompiledPolicy;
use crate::scorer::{Inputs, Term};
use body::Classification;
use scan::{Cursor, syntax_error};

impl CompiledPolicy {
    /// How much signal `i` matched, in `[0, 1]`: 1 when it matched, a counted signal's
    /// count over its saturation; 0 when it did not match.
    pub(crate) fn signal_strength(&self, matched: &Matches, i: usize) -> f32 {
        let signals = &self.classifier.signals;
        let Some(s) = signals.get(i) else { return 0.0 };
        if matched.bits & 1u64.checked_shl(i as u32).unwrap_or(0) == 0 {
            return 0.0;
        }
        match s.saturation {
            // Counted signals take their counts in signal order.
            Some(sat) => {
                let k = signals
                    .iter()
                    .take(i)
                    .filter(|s| s.saturation.is_some())
                    .count();
                let n = matched.counts.get(k).copied().unwrap_or(0);
                (n as f32 / sat.max(1) as f32).min(1.0)
            }
            None => 1.0,
        }
    }

    /// The scorer's score of the last user message `text`, with `context` the head of the
    /// user message before it.
    pub(crate) fn model_score(
        &self,
        s: &crate::scorer::Compiled,
        text: &str,
        context: &str,
        cx: &crate::scorer::Context,
        matched: &Matches,
    ) -> f32 {
        s.model
            .score(text, context, cx, self.scorer_signals(s, matched))
    }

    /// The value of each of a scorer's signal columns: its policy signal's strength.
    pub(crate) fn scorer_signals<'m>(
        &'m self,
        s: &'m crate::scorer::Compiled,
        matched: &'m Matches,
    ) -> impl Fn(usize) -> f32 + 'm {
        |k| {
            s.columns
                .get(k)
                .map_or(0.0, |&i| self.signal_strength(matched, i))
        }
    }

    /// Reads a Chat Completions body into [`RequestFeatures`]; see [`CompiledPolicy::classify_as`].
    pub fn classify(&self, body: &[u8]) -> Result<RequestFeatures, RouteError> {
        self.classify_as(Api::Chat, body)
    }

    /// Reads a body of the given request API into [`RequestFeatures`]; the same request
    /// written for another API reads the same.
    ///
    /// One forward pass over the bytes: no DOM, no copies of message text (the last user
    /// message is decoded into one buffer only when patterns must see text that has escapes
    /// or several parts). Errors: `request_too_large` (body or message count above the
    /// limits), `invalid_json`, `invalid_request`, `model_not_found` (with a "did you mean"
    /// hint).
    pub fn classify_as(&self, api: Api, body: &[u8]) -> Result<RequestFeatures, RouteError> {
        self.read(api, body, |r| r.finish())
    }

    /// The terms of the scorer's score of a body, largest first (empty when the policy has no
    /// scorer); see [`CompiledPolicy::explain_score`](crate::CompiledPolicy::explain_score).
    pub(crate) fn score_terms(&self, api: Api, body: &[u8]) -> Result<Vec<Term>, RouteError> {
        self.read(api, body, |r| r.terms())
    }

    /// What a scorer would read of a body; see [`Inputs`].
    #[cfg_attr(not(feature = "simulate"), allow(dead_code))]
    pub(crate) fn score_inputs(&self, api: Api, body: &[u8]) -> Result<Inputs, RouteError> {
        self.read(api, body, |r| r.inputs())
    }

    /// Reads a body and hands the reading to `end`.
    fn read<R>(
        &self,
        api: Api,
        body: &[u8],
        end: impl FnOnce(Classification<'_, '_>) -> Result<R, RouteError>,
    ) -> Result<R, RouteError> {
        let limit = self.limits.max_body_bytes;
        if body.len() > limit {
            return Err(RouteError::new(
                ErrorCode::RequestTooLarge,
                format!(
                    "request body is {} bytes, above the limit of {limit}",
                    body.len()
                ),
            ));
        }
        // SIMD validation; the standard library's only to place an error.
        let valid = simdutf8::basic::from_utf8(body).or_else(|_| std::str::from_utf8(body));
        let text = valid.map_err(|e| {
            let valid = body
                .get(..e.valid_up_to())
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("");
            syntax_error(valid, valid.len(), "invalid UTF-8")
        })?;
        let mut c = Cursor::new(text);
        match c.peek() {
            Some(b'{') => {}
            Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                return Err(RouteError::new(
                    ErrorCode::InvalidJson,
                    "request body must be a JSON object",
                ));
            }
            None => return Err(c.syntax("EOF while parsing a value")),
            Some(_) => return Err(c.syntax("expected value")),
        }
        let mut reading = Classification::new(self, api);
        reading.body(&mut c)?;
        c.end()?;
        end(reading)
    }

    /// The complexity score and class from the classifier's features and signals: the
    /// weighted sum, or `model_score` when the policy's scorer gave one. Signals' `min_class`
    /// floors apply to both.
    pub(crate) fn score(
        &self,
        last_user_tokens: u32,
        messages: u32,
        tools: bool,
        matched: &Matches,
        model_score: Option<f32>,
    ) -> (Complexity, f32) {
        let c = &self.classifier;
        let ratio = |x: u32, sat: u32| (x as f32 / sat.max(1) as f32).min(1.0);
        let mut score = c.length_weight * ratio(last_user_tokens, c.length_saturation)
            + c.depth_weight * ratio(messages.saturating_sub(1), c.depth_saturation)
            + if tools { c.tools_weight } else { 0.0 };
        let mut floor = Complexity::Simple;
        for (i, s) in c.signals.iter().enumerate() {
            if matched.bits & (1u64 << i) == 0 {
                continue;
            }
            score += s.weight * self.signal_strength(matched, i);
            if let Some(min) = s.min_class {
                floor = floor.max(min);
            }
        }
        let score = model_score.unwrap_or(score).clamp(0.0, 1.0);
        let class = match c.thresholds {
            [_, _, r] if score >= r => Complexity::Reasoning,
            [_, x, _] if score >= x => Complexity::Complex,
            [s, _, _] if score >= s => Complexity::Standard,
            _ => Complexity::Simple,
        };
        (class.max(floor), score)
    }
}
