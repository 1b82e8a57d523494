"""fluxroute in front of LiteLLM.

Two ways in, both over LiteLLM's public API:

- `FluxLiteLLM` wraps a `litellm.Router` whose deployments are named by the policy's backing
  model ids (`model_name: gpt-4.1-nano`, ...). `flux-auto`, tier and pinned names are routed by
  fluxroute; the call goes to the deployment of the served model; a `flux-auto` or tier request
  whose model fails with 429, 5xx, a timeout or a connection error is retried on the decision's
  fallbacks in order (never a pinned or passthrough one); the response carries the transparency
  headers in `_hidden_params["additional_headers"]`, which the LiteLLM proxy sends as HTTP headers.
- `FluxRouteHook` is a LiteLLM proxy callback (`litellm_settings.callbacks`): its pre-call hook
  rewrites `model` to the served backing id and hands LiteLLM the decision's fallbacks, and its
  response-headers hook sets `X-Flux-Model`, `X-Flux-Routed` and `X-Flux-Policy`.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from . import RouteError, Router

#: HTTP statuses after which an auto or tier request moves on to its next fallback.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

#: The chat call types the proxy hook routes.
CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})


def _body(kwargs: dict[str, Any]) -> bytes:
    """A chat request's keyword arguments as the JSON body fluxroute reads."""
    return json.dumps(kwargs, default=str).encode()


def _retryable(error: BaseException) -> bool:
    """Whether a failed call may be retried on another model: a retryable status, a timeout,
    or no connection at all."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status in RETRYABLE_STATUSES
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"APIConnectionError", "Timeout", "APITimeoutError", "ConnectError", "ConnectionError"})


def _with_headers(response: Any, headers: dict[str, str], decision_dict: dict[str, Any]) -> Any:
    hidden = getattr(response, "_hidden_params", None)
    if hidden is None:
        hidden = {}
        try:
            response._hidden_params = hidden
        except AttributeError:
            return response
    extra = hidden.get("additional_headers") or {}
    extra.update(headers)
    hidden["additional_headers"] = extra
    hidden["fluxroute"] = decision_dict
    return response


class FluxLiteLLM:
    """A `litellm.Router` behind fluxroute decisions.

    >>> import litellm, fluxroute.litellm
    >>> deployments = [{"model_name": "gpt-4.1-nano", "litellm_params": {"model": "openai/gpt-4.1-nano"}}]
    >>> gateway = fluxroute.litellm.FluxLiteLLM(litellm.Router(model_list=deployments))  # doctest: +SKIP
    >>> gateway.completion(model="flux-auto", messages=[{"role": "user", "content": "hi"}])  # doctest: +SKIP
    """

    def __init__(self, litellm_router: Any, router: Optional[Router] = None, policy_path: Any = None):
        self.litellm = litellm_router
        self.router = router if router is not None else Router(policy_path)

    def decide(self, kwargs: dict[str, Any], tenant: Optional[str], tags: Iterable[str], unavailable: Iterable[str]):
        """The fluxroute decision for a chat request's keyword arguments (`RouteError` if rejected)."""
        return self.router.route(_body(kwargs), tenant=tenant, tags=list(tags), unavailable=list(unavailable))

    def _plan(self, kwargs: dict[str, Any], tenant, tags, unavailable):
        """The decision and the calls to try in order: the served model, then (for `flux-auto`
        and tier names only) the fallbacks. Pinned, passthrough and redirected names are served
        by exactly their model."""
        decision = self.decide(kwargs, tenant, tags, unavailable)
        models = [decision.model]
        if decision.mode in ("auto", "tier"):
            models += decision.fallbacks
        return decision, [(model, {**kwargs, "model": model}) for model in models]

    def completion(self, *, tenant: Optional[str] = None, tags: Iterable[str] = (), unavailable: Iterable[str] = (), **kwargs: Any) -> Any:
        """`litellm.Router.completion` for the model fluxroute chooses, failing over along the
        decision's fallbacks for `flux-auto` and tier names."""
        decision, calls = self._plan(kwargs, tenant, tags, unavailable)
        failures: list[BaseException] = []
        for model, call in calls:
            try:
                response = self.litellm.completion(**call)
            except Exception as error:  # noqa: BLE001 - LiteLLM raises many kinds
                _keep_retryable(error, failures)
                continue
            return _with_headers(response, decision.headers_for(model), decision.to_dict())
        raise failures[-1]

    async def acompletion(self, *, tenant: Optional[str] = None, tags: Iterable[str] = (), unavailable: Iterable[str] = (), **kwargs: Any) -> Any:
        """The async form of `completion`."""
        decision, calls = self._plan(kwargs, tenant, tags, unavailable)
        failures: list[BaseException] = []
        for model, call in calls:
            try:
                response = await self.litellm.acompletion(**call)
            except Exception as error:  # noqa: BLE001
                _keep_retryable(error, failures)
                continue
            return _with_headers(response, decision.headers_for(model), decision.to_dict())
        raise failures[-1]


def _keep_retryable(error: BaseException, failures: list) -> None:
    """Keeps a failure the next model may recover from; re-raises any other."""
    if not _retryable(error):
        raise error
    failures.append(error)


def _custom_logger_base():
    try:
        from litellm.integrations.custom_logger import CustomLogger
    except ImportError:  # LiteLLM is optional; the hook is usable without it in tests of its own.
        return object
    return CustomLogger


class FluxRouteHook(_custom_logger_base()):  # type: ignore[misc]
    """A LiteLLM proxy callback that routes `flux-auto`, tier and pinned names with fluxroute.

    In the proxy's config: `litellm_settings: {callbacks: my_module.flux_hook}` where
    `flux_hook = FluxRouteHook(policy_path="policy.toml")`; the proxy's `model_list` names its
    deployments by the policy's backing model ids.
    """

    def __init__(self, router: Optional[Router] = None, policy_path: Any = None, **kwargs: Any):
        if _custom_logger_base() is not object:
            super().__init__(**kwargs)
        self.router = router if router is not None else Router(policy_path)

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        if str(call_type) not in CHAT_CALL_TYPES and getattr(call_type, "value", None) not in CHAT_CALL_TYPES:
            return data
        metadata = data.get("metadata") or {}
        tenant = metadata.get("fluxroute_tenant") or getattr(user_api_key_dict, "team_id", None)
        body = {k: v for k, v in data.items() if k not in ("metadata", "proxy_server_request", "litellm_call_id")}
        try:
            decision = self.router.route(_body(body), tenant=tenant)
        except RouteError as error:
            raise _http_error(error) from error
        data["model"] = decision.model
        data["fallbacks"] = list(decision.fallbacks) if decision.mode in ("auto", "tier") else []
        metadata["fluxroute"] = decision.to_dict()
        data["metadata"] = metadata
        return data

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: Any,
        response: Any,
        request_headers: Optional[dict] = None,
        litellm_call_info: Optional[dict] = None,
    ) -> Optional[dict]:
        decided = (data.get("metadata") or {}).get("fluxroute")
        if not decided:
            return None
        served = _served_model(data, response, litellm_call_info) or decided["model"]
        headers = dict(decided["headers"])
        if served != decided["model"] and served in decided.get("fallbacks", []):
            headers["X-Flux-Model"] = served
            headers["X-Flux-Routed"] = "true"
        return headers


def _served_model(data: dict, response: Any, info: Optional[dict]) -> Optional[str]:
    """The model group that answered, when LiteLLM says so."""
    hidden = getattr(response, "_hidden_params", None) or {}
    for source in (info or {}, hidden):
        for key in ("model_group", "litellm_model_name"):
            value = source.get(key) if isinstance(source, dict) else None
            if isinstance(value, str):
                return value
    return data.get("model")


def _http_error(error: RouteError) -> Exception:
    """A rejection as the proxy returns it: the status and the OpenAI-shaped error."""
    try:
        from fastapi import HTTPException
    except ImportError:
        return error
    return HTTPException(status_code=error.status, detail=error.body["error"])
