"""Portkey's open-source gateway (npm `@portkey-ai/gateway`) as the benchmark runs it: one Node
process, routed per request to the upstream simulator as an OpenAI-compatible custom host.

The gateway keeps no model list: each request names its provider and, for a self-hosted
OpenAI-compatible server, its base URL in headers (`x-portkey-provider`, `x-portkey-custom-host`),
and the provider's credential in `Authorization`, which it passes on. Loopback hosts are on its
default list of trusted custom hosts (TRUSTED_CUSTOM_HOSTS), so nothing needs configuring.
"""

import os
import shutil
from pathlib import Path

import httpx
from procs import LOOPBACK, Proc, free_port

UPSTREAM_KEY = "sk-bench-upstream-not-secret"


def routing_headers(upstream_url: str) -> dict[str, str]:
    """The headers that send a request through the gateway to `upstream_url` (OpenAI's API at /v1)."""
    return {
        "Authorization": f"Bearer {UPSTREAM_KEY}",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"{upstream_url}/v1",
    }


def start(server_js: Path, log_dir: Path) -> tuple[Proc, str]:
    """The gateway on a free port, ready: its process (for the caller to stop) and its URL."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    port = free_port()
    # Its own build reads `--port=N`; `--headless` leaves out the web console's static routes.
    argv = [node, str(server_js), f"--port={port}", "--headless"]
    # No proxy settings: the gateway would send the loopback upstream's requests through one.
    env = {k: v for k, v in os.environ.items() if k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
    proc = Proc("portkey", argv, env=env, log_dir=log_dir, cwd=server_js.parent)
    url = f"http://{LOOPBACK}:{port}"
    proc.wait_ready(f"{url}/")
    return proc, url


def check_routing(url: str, path: str, headers: dict[str, str], json_body: bytes, stream_body: bytes, completion_text: str) -> None:
    """A JSON and a streamed chat completion through the gateway reach the simulator: the answer is
    the simulator's, and the gateway says it used the openai provider."""
    sent = {**headers, "Content-Type": "application/json"}
    response = httpx.post(f"{url}{path}", content=json_body, headers=sent, timeout=30)
    if response.status_code != 200 or completion_text not in response.text or response.headers.get("x-portkey-provider") != "openai":
        raise RuntimeError(f"Portkey's JSON answer is not the simulator's: {response.status_code} {response.headers} {response.text[:300]}")
    with httpx.stream("POST", f"{url}{path}", content=stream_body, headers=sent, timeout=30) as streamed:
        text = streamed.read().decode()
        kind = streamed.headers.get("content-type", "")
    if streamed.status_code != 200 or "text/event-stream" not in kind or '"id":"chatcmpl-bench"' not in text or "data: [DONE]" not in text:
        raise RuntimeError(f"Portkey's stream is not the simulator's: {streamed.status_code} {kind} {text[:300]}")
