"""fluxroute: the routing-policy engine of an LLM gateway.

`Router` classifies a request body (OpenAI Chat Completions, OpenAI Responses or Anthropic
Messages) and decides which backing model serves it; the `Decision` carries the model, why,
the transparency headers and the body to forward. Rejections raise `RouteError` with a stable
code, an HTTP status and the OpenAI-shaped error body.
"""

from ._fluxroute import (
    EMBEDDED_POLICY,
    Decision,
    PolicyError,
    RouteError,
    Router,
    check,
)

__all__ = ["EMBEDDED_POLICY", "Decision", "PolicyError", "RouteError", "Router", "check"]
