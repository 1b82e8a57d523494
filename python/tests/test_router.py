"""The Python package against the embedded default policy and policy files of the repository."""

import json
import pathlib
import shutil
import threading

import pytest

import fluxroute

ROOT = pathlib.Path(__file__).resolve().parents[2]
HELLO = {"model": "flux-auto", "messages": [{"role": "user", "content": "hello"}]}


def test_a_decision_names_the_model_and_why():
    router = fluxroute.Router()
    d = router.route(HELLO)
    assert d.model == "gpt-4.1-nano"
    assert (d.requested, d.mode, d.routed, d.tier, d.rule) == ("flux-auto", "auto", True, "fast", "default")
    assert d.headers["X-Flux-Model"] == d.model
    assert d.headers["X-Flux-Routed"] == "true"
    assert d.headers["X-Flux-Policy"] == f"{router.policy_name}@{router.fingerprint}"
    assert d.features["capabilities"] == []
    assert d.cost > 0
    assert len(d.fallbacks) == 3
    as_dict = d.to_dict()
    assert as_dict["model"] == d.model and as_dict["fallbacks"] == d.fallbacks
    assert "gpt-4.1-nano" in repr(d)


def test_bodies_as_bytes_str_or_dict_read_the_same():
    router = fluxroute.Router()
    text = json.dumps(HELLO)
    models = {router.route(b).model for b in (HELLO, text, text.encode(), bytearray(text.encode()))}
    assert models == {"gpt-4.1-nano"}


def test_every_api_is_read():
    router = fluxroute.Router()
    responses = {"model": "flux-auto", "input": "hello", "tools": [{"type": "web_search"}]}
    d = router.route(responses, api="responses")
    assert d.features["capabilities"] == ["web_search"]
    messages = {"model": "flux-auto", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
    assert router.route(messages, api="messages").features["max_output_tokens"] == 64
    with pytest.raises(ValueError, match="unknown API"):
        router.route(HELLO, api="gemini")


def test_rejections_carry_code_status_and_the_openai_body():
    router = fluxroute.Router()
    body = {"model": "flux-pinned-deepseek-reasoner", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    with pytest.raises(fluxroute.RouteError) as caught:
        router.route(body)
    e = caught.value
    assert (e.code, e.status, e.param) == ("capability_not_supported", 400, "tools")
    assert e.body["error"]["code"] == "capability_not_supported"
    assert e.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(fluxroute.RouteError) as caught:
        router.route(b"{not json")
    assert (caught.value.code, caught.value.status) == ("invalid_json", 400)
    with pytest.raises(fluxroute.RouteError) as caught:
        router.route({"model": "gpt-5o", "messages": [{"role": "user", "content": "x"}]})
    assert caught.value.status == 404 and "did you mean" in caught.value.message


def test_caller_context_is_honoured():
    router = fluxroute.Router()
    d = router.route(HELLO, unavailable=["gpt-4.1-nano"])
    assert d.model != "gpt-4.1-nano"
    tenants = fluxroute.Router(ROOT / "policies" / "tenants.toml")
    with pytest.raises(fluxroute.RouteError) as caught:
        tenants.route({"model": "flux-pinned-claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}, tenant="trial")
    assert (caught.value.code, caught.value.status) == ("model_not_allowed", 403)


def test_forward_replaces_only_the_model():
    router = fluxroute.Router()
    body = b'{"messages": [{"role": "user", "content": "caf\\u00e9"}], "model":  "flux-auto", "stream": true}'
    d = router.route(body)
    assert d.forward() == body.replace(b'"flux-auto"', f'"{d.model}"'.encode())
    fallback = d.fallbacks[0]
    assert json.loads(d.forward(fallback))["model"] == fallback
    assert d.headers_for(fallback)["X-Flux-Model"] == fallback
    assert d.headers_for("claude-opus-4-5") is None
    with pytest.raises(ValueError, match="neither the served model"):
        d.forward("claude-opus-4-5")


def test_models_lists_every_name():
    router = fluxroute.Router()
    listing = router.models()
    ids = [m["id"] for m in listing["data"]]
    assert listing["object"] == "list" and ids[0] == "flux-auto"
    assert "flux-pinned-gpt-4o" in ids


def test_reload_swaps_a_valid_policy_and_keeps_the_old_one_otherwise(tmp_path):
    path = tmp_path / "p.toml"
    shutil.copy(ROOT / "policies" / "default.toml", path)
    router = fluxroute.Router(path)
    before = router.fingerprint
    assert router.reload()["changed"] is False
    path.write_text(path.read_text().replace('name = "default"', 'name = "edited"'))
    out = router.reload()
    assert out["changed"] is True and router.fingerprint != before and router.policy_name == "edited"
    path.write_text("[policy\n")
    with pytest.raises(fluxroute.PolicyError) as caught:
        router.reload()
    assert caught.value.diagnostics[0]["kind"] == "syntax"
    assert caught.value.diagnostics[0]["line"] == 1
    assert router.policy_name == "edited"
    with pytest.raises(ValueError, match="embedded"):
        fluxroute.Router().reload()


def test_check_reports_located_diagnostics(tmp_path):
    assert fluxroute.check(ROOT / "policies" / "default.toml") == []
    bad = tmp_path / "bad.toml"
    bad.write_text(fluxroute.EMBEDDED_POLICY.replace('tier = "fast"', 'tier = "fastest"', 1))
    diagnostics = fluxroute.check(bad)
    assert diagnostics[0]["kind"] == "unknown_tier"
    assert diagnostics[0]["severity"] == "error" and diagnostics[0]["line"] > 0
    with pytest.raises(fluxroute.PolicyError):
        fluxroute.Router(bad)
    router = fluxroute.Router()
    assert router.check() == []
    assert router.check(bad)[0]["kind"] == "unknown_tier"


def test_threads_route_concurrently_to_the_same_answers():
    # Routing releases the interpreter; threads sharing a router see one policy.
    router = fluxroute.Router()
    body = json.dumps({"model": "flux-auto", "messages": [{"role": "user", "content": "x " * 20000}]}).encode()
    expected = router.route(body).model
    seen = []

    def work():
        for _ in range(20):
            seen.append(router.route(body).model)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [expected] * 80
