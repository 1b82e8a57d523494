//! Request rejections: a stable code, an HTTP status and an OpenAI-shaped body.

use std::fmt;

use serde_json::{Value, json};

/// The stable code of a rejected request (`docs/contract.md`, section 5).
///
/// ```
/// use fluxroute::ErrorCode;
/// assert_eq!(ErrorCode::ModelNotFound.as_str(), "model_not_found");
/// assert_eq!(ErrorCode::ModelNotFound.status(), 404);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not a JSON object.
    InvalidJson,
    /// Missing or ill-typed `model` or `messages`, empty messages, bad content parts.
    InvalidRequest,
    /// Body or message count above the policy's limits.
    RequestTooLarge,
    /// Unknown model name.
    ModelNotFound,
    /// The tenant may not use this name or model.
    ModelNotAllowed,
    /// A pinned or passthrough model lacks a required capability.
    CapabilityNotSupported,
    /// Prompt plus output does not fit the pinned model, or any model for auto/tier.
    ContextLengthExceeded,
    /// Requested output above the model's output limit.
    MaxTokensTooLarge,
    /// Auto/tier: no model in scope supports the required capabilities.
    NoEligibleModel,
    /// The pinned model, or every eligible model, is marked unavailable.
    ModelUnavailable,
}

impl ErrorCode {
    /// Every code, in the contract's order.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::RequestTooLarge,
        ErrorCode::ModelNotFound,
        ErrorCode::ModelNotAllowed,
        ErrorCode::CapabilityNotSupported,
        ErrorCode::ContextLengthExceeded,
        ErrorCode::MaxTokensTooLarge,
        ErrorCode::NoEligibleModel,
        ErrorCode::ModelUnavailable,
    ];

    /// The stable code string.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::ModelNotAllowed => "model_not_allowed",
            ErrorCode::CapabilityNotSupported => "capability_not_supported",
            ErrorCode::ContextLengthExceeded => "context_length_exceeded",
            ErrorCode::MaxTokensTooLarge => "max_tokens_too_large",
            ErrorCode::NoEligibleModel => "no_eligible_model",
            ErrorCode::ModelUnavailable => "model_unavailable",
        }
    }

    /// The HTTP status a gateway answers with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::RequestTooLarge => 413,
            ErrorCode::ModelNotFound => 404,
            ErrorCode::ModelNotAllowed => 403,
            ErrorCode::ModelUnavailable => 503,
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::CapabilityNotSupported
            | ErrorCode::ContextLengthExceeded
            | ErrorCode::MaxTokensTooLarge
            | ErrorCode::NoEligibleModel => 400,
        }
    }

    /// The OpenAI error `type` for this code.
    pub const fn error_type(self) -> &'static str {
        match self {
            ErrorCode::ModelNotAllowed => "permission_error",
            ErrorCode::ModelUnavailable => "service_unavailable_error",
            _ => "invalid_request_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected request: what went wrong, which parameter, and how to answer it.
///
/// ```
/// use fluxroute::{CompiledPolicy, ErrorCode};
/// let policy = CompiledPolicy::embedded();
/// let err = policy.classify(br#"{"model": "flux-autp", "messages": [{"role": "user", "content": "hi"}]}"#)
///     .unwrap_err();
/// assert_eq!(err.code(), ErrorCode::ModelNotFound);
/// assert!(err.message().contains("flux-auto"));
/// assert_eq!(err.body()["error"]["code"], "model_not_found");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RouteError {
    code: ErrorCode,
    message: String,
    param: Option<String>,
}

impl RouteError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RouteError {
            code,
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }

    pub(crate) fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request parameter at fault, if one is.
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// The OpenAI-shaped error body: `{"error": {"message", "type", "param", "code"}}`.
    pub fn body(&self) -> Value {
        json!({"error": self.error_object()})
    }

    /// The inner error object of [`body`](RouteError::body): `{"message", "type", "param", "code"}`.
    pub fn error_object(&self) -> Value {
        json!({
            "message": self.message,
            "type": self.code.error_type(),
            "param": self.param,
            "code": self.code.as_str(),
        })
    }
}
