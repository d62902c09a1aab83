"""OpenAI's Responses API: POST /responses, plain and streamed, mixed into the OpenAI simulator.

In the shapes of OpenAI's API reference (platform.openai.com/docs/api-reference/responses): a
`response` object whose `output` holds a `message` item (one `output_text` part) or, when the request
offers tools and the script has a `tool_call`, a `function_call` item; `usage` with input and output
token details; streams as named events, each with its `sequence_number`, from `response.created` to
`response.completed`. Checked as the API checks it where a gateway could get it wrong: a bearer key,
`model`, `input` as a string or a list of items of known types, `store` a boolean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aihub.tests.upstream.sim import Received, Reply, sse

if TYPE_CHECKING:
    from aihub.tests.upstream.sim import Script

CREATED = 1_767_225_600
ITEM_TYPES = {"message", "function_call", "function_call_output", "reasoning", "item_reference"}


def _invalid(message: str, param: str | None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}, status=400)


def request_problem(body: dict[str, Any]) -> Reply | None:
    if not isinstance(body.get("model"), str):
        return _invalid("Missing required parameter: 'model'.", "model")
    given = body.get("input")
    if not isinstance(given, (str, list)):
        return _invalid("Invalid type for 'input': expected a string or an array of input items.", "input")
    for i, item in enumerate(given if isinstance(given, list) else ()):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind not in ITEM_TYPES:
            return _invalid(f"Invalid value for 'input[{i}].type': {kind!r}.", f"input[{i}].type")
    if "store" in body and not isinstance(body["store"], bool):
        return _invalid("Invalid type for 'store': expected a boolean.", "store")
    return None


def _echoed_tool(tool: Any) -> Any:
    """A tool as OpenAI's response lists it: a function always with `parameters` and `strict` (true
    unless the request said otherwise: the Responses API's default)."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        return tool
    return {**tool, "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}


class ResponsesRoutes:
    script: Script

    def responses_route(self, request: Received) -> Reply | None:
        if request.method != "POST" or not request.path.rstrip("/").endswith("/responses"):
            return None
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Reply.json({"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error"}}, status=401)
        body = request.json if isinstance(request.json, dict) else {}
        if (problem := request_problem(body)) is not None:
            return problem
        if body.get("stream") is True:
            return Reply.sse(self._response_events(body))
        return Reply.json(self._response(body, "completed", self._response_output(body)))

    def _response_output(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if self.script.tool_call is not None and body.get("tools"):
            name, arguments = self.script.tool_call
            call = {"type": "function_call", "id": "fc_sim1", "call_id": "call_sim_1", "name": name, "arguments": json.dumps(arguments)}
            return [{**call, "status": "completed"}]
        part = {"type": "output_text", "text": self.script.text, "annotations": [], "logprobs": []}
        return [{"type": "message", "id": "msg_sim1", "status": "completed", "role": "assistant", "content": [part]}]

    def _response_usage(self) -> dict[str, Any] | None:
        if self.script.usage is None:
            return None
        prompt, completion = self.script.usage
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": self.script.cached_tokens},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": self.script.reasoning_tokens},
            "total_tokens": prompt + completion,
        }

    def _response(self, body: dict[str, Any], status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": "resp_sim1",
            "object": "response",
            "created_at": CREATED,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": [_echoed_tool(tool) for tool in body.get("tools") or []],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._response_usage() if status == "completed" else None,
            "metadata": body.get("metadata") or {},
        }

    def _response_events(self, body: dict[str, Any]) -> Iterator[str]:
        sequence = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> str:
            return sse({"type": kind, "sequence_number": next(sequence), **fields}, event=kind)

        yield event("response.created", response=self._response(body, "in_progress", []))
        yield event("response.in_progress", response=self._response(body, "in_progress", []))
        output = self._response_output(body)
        item = output[0]
        if item["type"] == "function_call":
            yield event("response.output_item.added", output_index=0, item={**item, "arguments": "", "status": "in_progress"})
            for piece in (item["arguments"][: len(item["arguments"]) // 2], item["arguments"][len(item["arguments"]) // 2 :]):
                yield event("response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=piece)
            yield event(
                "response.function_call_arguments.done", item_id=item["id"], name=item["name"], output_index=0, arguments=item["arguments"]
            )
        else:
            ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            yield event("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "content": []})
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield event("response.content_part.added", item_id=item["id"], output_index=0, content_index=0, part=empty)
            for piece in self.script.pieces():
                yield event("response.output_text.delta", **ids, delta=piece, logprobs=[])
            yield event("response.output_text.done", **ids, text=self.script.text, logprobs=[])
            yield event("response.content_part.done", **ids, part=item["content"][0])
        yield event("response.output_item.done", output_index=0, item=item)
        yield event("response.completed", response=self._response(body, "completed", output))
