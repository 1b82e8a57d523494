"""The reference gateway end to end: the official `openai` SDK against the gateway, which
forwards to a mock OpenAI-compatible upstream on 127.0.0.1. Needs `FLUXROUTE_GATEWAY` (the
gateway binary); skipped with the reason printed when it is not set."""

import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

openai = pytest.importorskip("openai", reason="the openai package is not installed")
httpx = pytest.importorskip("httpx", reason="the httpx package is not installed")

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("FLUXROUTE_GATEWAY")
if not BINARY:
    pytest.skip("FLUXROUTE_GATEWAY is not set: build the gateway and point it there", allow_module_level=True)

MESSAGES = [{"role": "user", "content": "hello"}]


class Upstream(BaseHTTPRequestHandler):
    """An OpenAI-compatible upstream: answers with the model it was sent, streams when asked,
    and answers 503 for the models in `failing`."""

    failing: set = set()
    seen: list = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out as separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Upstream.seen.append((self.path, body))
        model = body.get("model")
        if self.path != "/v1/chat/completions":
            # The Responses and Messages endpoints: enough of an answer to name the model.
            return self.reply(200, {"id": "r1", "object": "response", "created_at": 1, "model": model,
                                    "status": "completed", "output": [], "type": "message",
                                    "role": "assistant", "content": [{"type": "text", "text": f"served by {model}"}]})
        if model in Upstream.failing:
            return self.reply(503, {"error": {"message": f"{model} is overloaded", "type": "server_error", "code": None}})
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for word in ["served", " by", f" {model}"]:
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                         "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                self.chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self.chunk(b"data: [DONE]\n\n")
            self.chunk(b"")
            return
        return self.reply(200, {
            "id": "c1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"served by {model}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
        })

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    config = tmp_path_factory.mktemp("gw") / "gateway.toml"
    config.write_text('[keys]\n"sk-trial" = "trial"\n')
    port = free_port()
    process = subprocess.Popen(
        [BINARY, "--policy", str(ROOT / "policies" / "tenants.toml"), "--config", str(config),
         "--upstream", upstream, "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the gateway did not start: " + process.stderr.read().decode())
    yield base
    process.terminate()
    assert process.wait(timeout=10) == 0, "the gateway did not shut down gracefully"


@pytest.fixture
def client(gateway):
    Upstream.failing = set()
    Upstream.seen = []
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-test", max_retries=0)


def test_chat_is_served_with_the_transparency_headers(client):
    raw = client.chat.completions.with_raw_response.create(model="flux-auto", messages=MESSAGES)
    completion = raw.parse()
    served = raw.headers["x-flux-model"]
    assert completion.choices[0].message.content == f"served by {served}"
    assert raw.headers["x-flux-routed"] == "true"
    assert raw.headers["x-flux-policy"].startswith("tenants@")
    path, body = Upstream.seen[-1]
    assert path == "/v1/chat/completions"
    assert body == {"model": served, "messages": MESSAGES}


def test_streaming_passes_through_with_the_headers(client):
    raw = client.chat.completions.with_raw_response.create(model="flux-auto", messages=MESSAGES, stream=True)
    served = raw.headers["x-flux-model"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse())
    assert text == f"served by {served}"
    assert raw.headers["content-type"].startswith("text/event-stream")


def test_models_lists_every_routable_name(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "flux-auto"
    assert any(i.startswith("flux-pinned-") for i in ids)


def test_a_pinned_request_gets_the_upstream_503_and_no_fallback(client):
    Upstream.failing = {"claude-sonnet-4-5"}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="flux-pinned-claude-sonnet-4-5", messages=MESSAGES)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-flux-model"] == "claude-sonnet-4-5"
    assert [b["model"] for _, b in Upstream.seen] == ["claude-sonnet-4-5"]


def test_flux_auto_fails_over_to_the_next_fallback(client):
    first = client.chat.completions.with_raw_response.create(model="flux-auto", messages=MESSAGES)
    model = first.headers["x-flux-model"]
    Upstream.failing = {model}
    Upstream.seen = []
    raw = client.chat.completions.with_raw_response.create(model="flux-auto", messages=MESSAGES)
    served = raw.headers["x-flux-model"]
    assert served != model
    assert raw.parse().choices[0].message.content == f"served by {served}"
    assert [b["model"] for _, b in Upstream.seen] == [model, served]


def test_a_denied_tenant_gets_403_with_the_openai_error_body(gateway):
    trial = openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-trial", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        trial.chat.completions.create(model="flux-pinned-claude-sonnet-4-5", messages=MESSAGES)
    assert caught.value.status_code == 403
    assert caught.value.body["code"] == "model_not_allowed"


def test_responses_and_messages_bodies_are_routed_and_forwarded(gateway, client):
    raw = client.responses.with_raw_response.create(model="flux-auto", input="hello", instructions="Be brief.")
    served = raw.headers["x-flux-model"]
    path, body = Upstream.seen[-1]
    assert path == "/v1/responses"
    assert body == {"model": served, "input": "hello", "instructions": "Be brief."}
    message = {"model": "flux-auto", "max_tokens": 64, "messages": MESSAGES}
    answer = httpx.post(f"{gateway}/v1/messages", json=message,
                        headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01"})
    assert answer.status_code == 200
    served = answer.headers["x-flux-model"]
    assert answer.json()["content"][0]["text"] == f"served by {served}"
    assert Upstream.seen[-1] == ("/v1/messages", {**message, "model": served})
    # Anthropic bodies need max_tokens: the engine's 400 reaches the client.
    missing = httpx.post(f"{gateway}/v1/messages", json={"model": "flux-auto", "messages": MESSAGES})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "max_tokens"


def test_metrics_count_decisions_and_errors(gateway, client):
    client.chat.completions.create(model="flux-auto", messages=MESSAGES)
    text = httpx.get(f"{gateway}/metrics").text
    assert "fluxroute_decisions_total{" in text
    assert 'fluxroute_errors_total{code="model_not_allowed"}' in text


def test_the_policy_reloads_on_sighup_and_a_bad_edit_keeps_the_old_one(upstream, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text((ROOT / "policies" / "default.toml").read_text())
    port = free_port()
    process = subprocess.Popen([BINARY, "--policy", str(policy), "--upstream", upstream,
                                "--listen", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.05)

        def policy_header():
            body = {"model": "flux-auto", "messages": MESSAGES}
            return httpx.post(f"{base}/v1/chat/completions", json=body).headers["x-flux-policy"]

        assert policy_header().startswith("default@")
        policy.write_text("[policy\n")
        process.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert policy_header().startswith("default@")
        edited = (ROOT / "policies" / "default.toml").read_text().replace('name = "default"', 'name = "edited"')
        policy.write_text(edited)
        process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if policy_header().startswith("edited@"):
                break
            time.sleep(0.05)
        assert policy_header().startswith("edited@")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_gateway_overhead_on_loopback(gateway, upstream):
    """A short, bounded load run: the same request straight to the mock and through the gateway,
    sequentially over keep-alive connections. Prints p50/p99 of both and their difference."""
    body = {"model": "flux-pinned-gpt-4o-mini", "messages": MESSAGES}
    direct_body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    n = int(os.environ.get("FLUXROUTE_LOAD_REQUESTS", "400"))

    def timings(url, payload):
        out = []
        with httpx.Client() as http:
            for _ in range(20):
                http.post(url, json=payload)
            for _ in range(n):
                start = time.perf_counter()
                assert http.post(url, json=payload).status_code == 200
                out.append(time.perf_counter() - start)
        out.sort()
        return out

    direct = timings(f"{upstream}/chat/completions", direct_body)
    through = timings(f"{gateway}/v1/chat/completions", body)
    pct = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e6  # noqa: E731
    report = {
        "requests": n,
        "direct_p50_us": round(pct(direct, 0.5)), "direct_p99_us": round(pct(direct, 0.99)),
        "gateway_p50_us": round(pct(through, 0.5)), "gateway_p99_us": round(pct(through, 0.99)),
        "overhead_p50_us": round(pct(through, 0.5) - pct(direct, 0.5)),
        "overhead_p99_us": round(pct(through, 0.99) - pct(direct, 0.99)),
        "gateway_mean_us": round(statistics.mean(through) * 1e6),
    }
    print("\ngateway overhead:", json.dumps(report))
    assert through[len(through) // 2] < 1.0
