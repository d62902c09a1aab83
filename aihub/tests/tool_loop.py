"""Simulators that answer a tool's result with text, as a real model does, for clients that run an
agent loop themselves (the Vercel AI SDK's `streamText` with `stopWhen`, the OpenAI Agents SDK).

A simulator calls `script.tool_call` whenever the request offers tools, and such a client offers them
on every step: left alone, the loop would call the tool until the client's step limit. Here a request
whose last turn carries a tool's result is answered from the script without its tool call.
"""

import dataclasses
import threading
from typing import Any

from aihub.tests.upstream.sim import Received, Reply, SimServer

_script_lock = threading.Lock()  # the script is swapped while one answer is made


def answer_tool_results_with_text(*sims: SimServer) -> None:
    """Until the simulator's reset(): a request answering a tool call gets `script.text`."""
    for sim in sims:
        sim.handler = lambda request, sim=sim: _answer(sim, request)


def _answer(sim: SimServer, request: Received) -> Reply:
    if not (isinstance(request.json, dict) and last_turn_is_a_tool_result(request.json)):
        return sim.handle(request)
    with _script_lock:
        script = sim.script
        sim.script = dataclasses.replace(script, tool_call=None)
        try:
            reply = sim.handle(request)
            if reply.chunks is not None:
                reply.chunks = list(reply.chunks)  # streams are made lazily: make them while the script is swapped
        finally:
            sim.script = script
    return reply


def last_turn_is_a_tool_result(body: dict[str, Any]) -> bool:
    """In each upstream wire format: OpenAI's chat `tool` message, its Responses `function_call_output`
    item, Anthropic's `tool_result` block in the last user turn, Gemini's `functionResponse` part."""
    if isinstance(items := body.get("input"), list) and items:
        return isinstance(items[-1], dict) and items[-1].get("type") == "function_call_output"
    if messages := body.get("messages"):
        last = messages[-1]
        if last.get("role") == "tool":
            return True
        content = last.get("content")
        return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    if contents := body.get("contents"):
        return any("functionResponse" in part for part in contents[-1].get("parts") or [])
    return False
