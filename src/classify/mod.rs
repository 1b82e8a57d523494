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
use body::Classification;
use scan::{Cursor, syntax_error};

impl CompiledPolicy {
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
        reading.finish()
    }

    /// The complexity score and class from the classifier's features and signals.
    pub(crate) fn score(
        &self,
        last_user_tokens: u32,
        messages: u32,
        tools: bool,
        matched: &Matches,
    ) -> (Complexity, f32) {
        let c = &self.classifier;
        let ratio = |x: u32, sat: u32| (x as f32 / sat.max(1) as f32).min(1.0);
        let mut score = c.length_weight * ratio(last_user_tokens, c.length_saturation)
            + c.depth_weight * ratio(messages.saturating_sub(1), c.depth_saturation)
            + if tools { c.tools_weight } else { 0.0 };
        let mut floor = Complexity::Simple;
        // Counted signals take their counts in signal order.
        let mut counts = matched.counts.iter();
        for (i, s) in c.signals.iter().enumerate() {
            let count = s
                .saturation
                .map(|sat| (counts.next().copied().unwrap_or(0), sat));
            if matched.bits & (1u64 << i) == 0 {
                continue;
            }
            score += match count {
                Some((n, sat)) => s.weight * ratio(n, sat),
                None => s.weight,
            };
            if let Some(min) = s.min_class {
                floor = floor.max(min);
            }
        }
        let score = score.clamp(0.0, 1.0);
        let class = match c.thresholds {
            [_, _, r] if score >= r => Complexity::Reasoning,
            [_, x, _] if score >= x => Complexity::Complex,
            [s, _, _] if score >= s => Complexity::Standard,
            _ => Complexity::Simple,
        };
        (class.max(floor), score)
    }
}
