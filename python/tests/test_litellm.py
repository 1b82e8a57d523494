"""fluxroute in front of a real LiteLLM Router, with mocked completions (no network)."""

import asyncio

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm package is not installed")

import fluxroute  # noqa: E402
from fluxroute.litellm import FluxLiteLLM, FluxRouteHook  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello"}]


def deployments(failing=(), error="litellm.InternalServerError"):
    """One mocked deployment per backing model of the default policy, named by its id."""
    out = []
    for model in fluxroute.Router().models()["data"]:
        backing = model["flux"].get("model")
        if model["flux"]["kind"] != "pinned" or backing in {d["model_name"] for d in out}:
            continue
        # LiteLLM's own mock errors: a 500 or a 429 from that deployment.
        reply = error if backing in failing else f"served by {backing}"
        out.append({"model_name": backing,
                    "litellm_params": {"model": f"openai/{backing}", "api_key": "sk-test", "mock_response": reply}})
    return out


def gateway(failing=(), error="litellm.InternalServerError"):
    return FluxLiteLLM(litellm.Router(model_list=deployments(failing, error), num_retries=0))


def text(response):
    return response.choices[0].message.content


def test_flux_auto_is_served_by_the_model_fluxroute_chose_with_its_headers():
    response = gateway().completion(model="flux-auto", messages=MESSAGES)
    assert text(response) == "served by gpt-4.1-nano"
    headers = response._hidden_params["additional_headers"]
    assert headers["X-Flux-Model"] == "gpt-4.1-nano"
    assert headers["X-Flux-Routed"] == "true"
    assert headers["X-Flux-Policy"].startswith("default@")
    assert response._hidden_params["fluxroute"]["mode"] == "auto"


def test_a_failing_model_fails_over_to_the_next_fallback_for_auto():
    decision = fluxroute.Router().route({"model": "flux-auto", "messages": MESSAGES})
    first, fallback = decision.model, decision.fallbacks[0]
    for error in ("litellm.InternalServerError", "litellm.RateLimitError"):
        response = gateway({first}, error).completion(model="flux-auto", messages=MESSAGES)
        assert text(response) == f"served by {fallback}"
        assert response._hidden_params["additional_headers"]["X-Flux-Model"] == fallback
    # A request error is the caller's: no other model is tried.
    with pytest.raises(litellm.ContextWindowExceededError):
        gateway({first}, "litellm.ContextWindowExceededError").completion(model="flux-auto", messages=MESSAGES)


def test_a_pinned_model_never_falls_back():
    with pytest.raises(litellm.InternalServerError):
        gateway(failing={"gpt-4o"}).completion(model="flux-pinned-gpt-4o", messages=MESSAGES)
    response = gateway().completion(model="flux-pinned-gpt-4o", messages=MESSAGES)
    assert text(response) == "served by gpt-4o"
    assert response._hidden_params["additional_headers"]["X-Flux-Routed"] == "false"


def test_capabilities_and_tenants_are_honoured():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(fluxroute.RouteError) as caught:
        gateway().completion(model="flux-pinned-deepseek-reasoner", messages=MESSAGES, tools=tools)
    assert caught.value.status == 400 and caught.value.param == "tools"
    response = gateway().completion(model="flux-auto", messages=MESSAGES, unavailable=["gpt-4.1-nano"])
    assert text(response) != "served by gpt-4.1-nano"


def test_async_completion_fails_over_too():
    decision = fluxroute.Router().route({"model": "flux-auto", "messages": MESSAGES})
    response = asyncio.run(gateway(failing={decision.model}).acompletion(model="flux-auto", messages=MESSAGES))
    assert text(response) == f"served by {decision.fallbacks[0]}"


def test_the_proxy_hook_rewrites_the_model_and_sets_the_headers():
    hook = FluxRouteHook()
    data = {"model": "flux-auto", "messages": MESSAGES, "metadata": {}}
    data = asyncio.run(hook.async_pre_call_hook(None, None, data, "acompletion"))
    assert data["model"] == "gpt-4.1-nano"
    assert data["fallbacks"] == data["metadata"]["fluxroute"]["fallbacks"]
    headers = asyncio.run(hook.async_post_call_response_headers_hook(data, None, None))
    assert headers["X-Flux-Model"] == "gpt-4.1-nano" and headers["X-Flux-Routed"] == "true"
    pinned = {"model": "flux-pinned-gpt-4o", "messages": MESSAGES}
    pinned = asyncio.run(hook.async_pre_call_hook(None, None, pinned, "completion"))
    assert (pinned["model"], pinned["fallbacks"]) == ("gpt-4o", [])
    embedding = {"model": "text-embedding-3-small", "input": "x"}
    assert asyncio.run(hook.async_pre_call_hook(None, None, dict(embedding), "aembedding")) == embedding
    with pytest.raises(Exception) as caught:
        asyncio.run(hook.async_pre_call_hook(None, None, {"model": "nope", "messages": MESSAGES}, "completion"))
    assert getattr(caught.value, "status_code", None) == 404 or getattr(caught.value, "status", None) == 404
