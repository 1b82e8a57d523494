//! Rejections as errors: the one place their messages are worded, used by routing and by
//! `explain`.
//!
//! The builders are inlined into `route`: out of line, its register allocation changes and a
//! decision costs 15 more instructions, 18 of them stack accesses (callgrind), about a tenth
//! slower.

use super::CallerContext;
use super::context::{Rejection, RoutingContext};
use crate::clip;
use crate::error::{ErrorCode, RouteError};
use crate::policy::{Model, Rule};

/// A tenant asked for a name or model it may not use.
#[inline(always)]
pub(crate) fn not_allowed(ctx: &CallerContext<'_>, name: &str) -> RouteError {
    // The host passes the tenant's name, of any length: the message quotes a bounded part.
    let tenant = clip::name(ctx.tenant.unwrap_or_default());
    RouteError::new(
        ErrorCode::ModelNotAllowed,
        format!("tenant `{tenant}` may not use `{name}`"),
    )
    .with_param("model")
}

/// Why no model of a restricting rule can serve the request: the scope error of its furthest
/// filter, naming the rule.
#[cold]
pub(super) fn rule_rejected(
    cx: &RoutingContext<'_, '_>,
    rule: &Rule,
    furthest: Option<Rejection>,
) -> RouteError {
    let e = scope_rejected(cx, furthest);
    let message = format!(
        "rule `{}` allows only its own models for this request, and none of them can serve it: {}",
        rule.name,
        e.message()
    );
    e.with_message(message)
}

/// A tenant the policy does not declare (or no tenant), under `unknown_tenants = "deny"`.
#[cold]
pub(crate) fn unknown_tenant(ctx: &CallerContext<'_>) -> RouteError {
    let message = match ctx.tenant.filter(|t| !t.is_empty()) {
        Some(t) => format!("tenant `{}` is not declared by this policy", clip::name(t)),
        None => {
            "this policy serves only the tenants it declares, and the request names none".into()
        }
    };
    RouteError::new(ErrorCode::ModelNotAllowed, message)
}

/// Why model `m` cannot serve the request, as the error a request pinned to it gets.
#[inline(always)]
pub(crate) fn model_rejected(cx: &RoutingContext<'_, '_>, m: &Model, why: Rejection) -> RouteError {
    match why {
        Rejection::Tenant => not_allowed(cx.ctx, &m.id),
        Rejection::Capability(cap) => RouteError::new(
            ErrorCode::CapabilityNotSupported,
            format!("model `{}` does not support {cap}", m.id),
        )
        .with_param(cx.features.param_for(cap)),
        Rejection::Output => RouteError::new(
            ErrorCode::MaxTokensTooLarge,
            format!(
                "requested {} output tokens, above model `{}`'s limit of {}",
                cx.features.max_output_tokens.unwrap_or(0),
                m.id,
                m.max_output_tokens
            ),
        )
        .with_param(cx.features.output_param()),
        Rejection::Context => RouteError::new(
            ErrorCode::ContextLengthExceeded,
            format!(
                "about {} prompt tokens (with margin) plus {} output tokens do not fit model `{}`'s context window of {}",
                cx.prompt_with_margin(),
                cx.output_for(m),
                m.id,
                m.context_window
            ),
        )
        .with_param(cx.features.prompt_param()),
        Rejection::Unavailable => RouteError::new(ErrorCode::ModelUnavailable, format!("model `{}` is unavailable", m.id)),
    }
}

/// Why no model behind a `flux-auto` or tier name can serve the request, from the furthest
/// filter any candidate reached.
#[inline(always)]
pub(super) fn scope_rejected(cx: &RoutingContext<'_, '_>, worst: Option<Rejection>) -> RouteError {
    let name = cx.policy.target_name(cx.features.target);
    match worst {
        Some(Rejection::Tenant) => not_allowed(cx.ctx, name),
        None | Some(Rejection::Capability(_)) => {
            let needs = cx.features.capabilities.names().join(", ");
            RouteError::new(
                ErrorCode::NoEligibleModel,
                format!("no model behind `{name}` supports {needs}"),
            )
            .with_param(
                cx.features
                    .capabilities
                    .iter()
                    .next()
                    .map_or("model", |cap| cx.features.param_for(cap)),
            )
        }
        Some(Rejection::Output) => RouteError::new(
            ErrorCode::MaxTokensTooLarge,
            format!(
                "requested {} output tokens, above the limit of every model behind `{name}`",
                cx.features.max_output_tokens.unwrap_or(0)
            ),
        )
        .with_param(cx.features.output_param()),
        Some(Rejection::Context) => RouteError::new(
            ErrorCode::ContextLengthExceeded,
            format!(
                "about {} prompt tokens (with margin) do not fit any model behind `{name}`",
                cx.prompt_with_margin()
            ),
        )
        .with_param(cx.features.prompt_param()),
        Some(Rejection::Unavailable) => RouteError::new(
            ErrorCode::ModelUnavailable,
            format!("every model behind `{name}` that could serve this request is unavailable"),
        ),
    }
}
