"""Chat completion chunks → the Responses API's stream events, in OpenAI's order.

    response.created, response.in_progress
    per output item, in output order:
      reasoning: output_item.added, reasoning_summary_part.added, reasoning_summary_text.delta…,
                 reasoning_summary_text.done, reasoning_summary_part.done, output_item.done
      message:   output_item.added, content_part.added, output_text.delta…, output_text.done,
                 content_part.done (a refusal: its own part, with refusal.delta… and refusal.done),
                 output_item.done
      function:  output_item.added, function_call_arguments.delta…, function_call_arguments.done,
                 output_item.done
      custom:    output_item.added, custom_tool_call_input.delta…, custom_tool_call_input.done,
                 output_item.done
    response.completed (or response.incomplete), carrying the whole output and usage;
    response.failed instead when the upstream fails mid-way.

Every event carries `sequence_number` (0, 1, 2 … in the order sent); items carry the ids the
deltas name (`item_id`) and their place in `output` (`output_index`), which is how clients (the
SDKs' stream accumulators, Codex CLI) put the pieces together. Reasoning and text are single items
at a time: a new kind of delta closes the item before it; tool calls stay open until the end
(providers may interleave the arguments of parallel calls).
"""

from typing import Any

from aihub import responses_output as ro
from aihub.streaming import event_frame
from city.ids import new_id


def content_part(kind: str, text: str) -> dict[str, Any]:
    return ro.text_part(text) if kind == "output_text" else {"type": "refusal", "refusal": text}


class ResponseEvents:
    """One stream's events: feed it chat chunks (`chunk`), then `finish` or `fail`. Each returns the
    SSE frames to send. `response` is the response object, updated as the stream goes."""

    def __init__(self, response: dict[str, Any], namespaced: dict[str, tuple[str, str]], ids: ro.ItemIds) -> None:
        self.response = response
        self.ids = ids
        self.output: list[dict[str, Any]] = response["output"]
        self.namespaced = namespaced
        self.sequence = 0
        self.finish_reason: str | None = None
        self._reasoning: tuple[int, list[str], list[dict[str, Any]]] | None = None  # (output index, text, thinking blocks)
        self._message: tuple[int, list[dict[str, Any]]] | None = None  # (output index, its finished content parts)
        self._part: tuple[str, list[str]] | None = None  # the message's open part: ("output_text" | "refusal", pieces)
        self._calls: dict[int, tuple[int, list[str]]] = {}  # chat tool call index → (output index, arguments)

    def event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event_frame(kind, payload)

    def start(self) -> list[bytes]:
        return [self.event("response.created", response=self._snapshot()), self.event("response.in_progress", response=self._snapshot())]

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": [dict(item) for item in self.output]}

    # --- chunks -------------------------------------------------------------------------------------

    def chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        frames: list[bytes] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # Responses has one answer; n is never asked for
            delta = choice.get("delta") or {}
            if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
                frames += self._reasoning_text(delta["reasoning_content"])
            if delta.get("thinking_blocks"):
                frames += self._open_reasoning()
                assert self._reasoning is not None
                self._reasoning[2].extend(b for b in delta["thinking_blocks"] if isinstance(b, dict))
            if isinstance(delta.get("content"), str) and delta["content"]:
                frames += self._content("output_text", delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                frames += self._content("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or ():
                frames += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return frames

    def _open_reasoning(self) -> list[bytes]:
        if self._reasoning is not None:
            return []
        frames = self._close_message() + self._close_calls()
        index = len(self.output)
        self.output.append(ro.reasoning_item(self.ids("rs"), "", [], status="in_progress"))
        self._reasoning = (index, [], [])
        return [*frames, self.event("response.output_item.added", output_index=index, item=dict(self.output[index]))]

    def _reasoning_text(self, text: str) -> list[bytes]:
        frames = self._open_reasoning()
        assert self._reasoning is not None
        index, texts, _ = self._reasoning
        item_id = self.output[index]["id"]
        if not texts:
            part = {"type": "summary_text", "text": ""}
            frames.append(
                self.event("response.reasoning_summary_part.added", item_id=item_id, output_index=index, summary_index=0, part=part)
            )
        texts.append(text)
        frames.append(self.event("response.reasoning_summary_text.delta", item_id=item_id, output_index=index, summary_index=0, delta=text))
        return frames

    def _close_reasoning(self) -> list[bytes]:
        if self._reasoning is None:
            return []
        index, texts, blocks = self._reasoning
        self._reasoning = None
        item = self.output[index] = ro.reasoning_item(self.output[index]["id"], "".join(texts), blocks)
        frames = []
        if texts:
            text = "".join(texts)
            common = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            frames.append(self.event("response.reasoning_summary_text.done", **common, text=text))
            frames.append(self.event("response.reasoning_summary_part.done", **common, part={"type": "summary_text", "text": text}))
        return [*frames, self.event("response.output_item.done", output_index=index, item=item)]

    def _content(self, kind: str, text: str) -> list[bytes]:
        """A piece of the message's text (`output_text`) or of a refusal (`refusal`): a new kind of piece
        opens a new content part."""
        frames = []
        if self._message is None:
            frames += self._close_reasoning() + self._close_calls()
            index = len(self.output)
            self.output.append(ro.message_item(self.ids("msg"), [], status="in_progress"))
            self._message = (index, [])
            frames.append(self.event("response.output_item.added", output_index=index, item=dict(self.output[index], content=[])))
        index, parts = self._message
        item_id = self.output[index]["id"]
        if self._part is not None and self._part[0] != kind:
            frames += self._close_part()
        common = {"item_id": item_id, "output_index": index, "content_index": len(parts)}
        if self._part is None:
            self._part = (kind, [])
            frames.append(self.event("response.content_part.added", **common, part=content_part(kind, "")))
        self._part[1].append(text)
        if kind == "output_text":
            frames.append(self.event("response.output_text.delta", **common, delta=text, logprobs=[]))
        else:
            frames.append(self.event("response.refusal.delta", **common, delta=text))
        return frames

    def _close_part(self) -> list[bytes]:
        if self._message is None or self._part is None:
            return []
        index, parts = self._message
        (kind, pieces), self._part = self._part, None
        text = "".join(pieces)
        common = {"item_id": self.output[index]["id"], "output_index": index, "content_index": len(parts)}
        parts.append(content_part(kind, text))
        if kind == "output_text":
            done = self.event("response.output_text.done", **common, text=text, logprobs=[])
        else:
            done = self.event("response.refusal.done", **common, refusal=text)
        return [done, self.event("response.content_part.done", **common, part=parts[-1])]

    def _close_message(self) -> list[bytes]:
        if self._message is None:
            return []
        frames = self._close_part()
        index, parts = self._message
        self._message = None
        item = self.output[index] = ro.message_item(self.output[index]["id"], parts)
        return [*frames, self.event("response.output_item.done", output_index=index, item=item)]

    def _call(self, piece: dict[str, Any]) -> list[bytes]:
        """A piece of a tool call: a function's arguments, or a custom tool's free-form input."""
        frames = []
        chat_index = piece.get("index", 0)
        if chat_index not in self._calls:
            frames += self._close_reasoning() + self._close_message()
            index = len(self.output)
            call_id = piece.get("id") or new_id("call")
            if piece.get("type") == "custom" or "custom" in piece:
                name = (piece.get("custom") or {}).get("name") or ""
                item = ro.custom_call_item(self.ids("ctc"), call_id, name, "", self.namespaced, status="in_progress")
            else:
                name = (piece.get("function") or {}).get("name") or ""
                item = ro.function_call_item(self.ids("fc"), call_id, name, "", self.namespaced, status="in_progress")
            self.output.append(item)
            self._calls[chat_index] = (index, [])
            frames.append(self.event("response.output_item.added", output_index=index, item=dict(item)))
        index, pieces = self._calls[chat_index]
        item_id = self.output[index]["id"]
        if self.output[index]["type"] == "custom_tool_call":
            text = (piece.get("custom") or {}).get("input")
            kind = "response.custom_tool_call_input.delta"
        else:
            text = (piece.get("function") or {}).get("arguments")
            kind = "response.function_call_arguments.delta"
        if text:
            pieces.append(text)
            frames.append(self.event(kind, item_id=item_id, output_index=index, delta=text))
        return frames

    def _close_calls(self) -> list[bytes]:
        frames = []
        for index, pieces in self._calls.values():
            item = self.output[index]
            whole = "".join(pieces)
            if item["type"] == "custom_tool_call":
                item = self.output[index] = {**item, "input": whole, "status": "completed"}
                frames.append(self.event("response.custom_tool_call_input.done", item_id=item["id"], output_index=index, input=whole))
            else:
                item = self.output[index] = {**item, "arguments": whole, "status": "completed"}
                frames.append(
                    self.event(
                        "response.function_call_arguments.done", item_id=item["id"], output_index=index, name=item["name"], arguments=whole
                    )
                )
            frames.append(self.event("response.output_item.done", output_index=index, item=item))
        self._calls.clear()
        return frames

    def generated_text(self) -> str:
        """What the model made so far, for City's count when the upstream reports no usage."""
        parts = []
        for item in self.output:
            parts += [p.get("text", "") for p in item.get("summary") or ()] + [
                p.get("text") or p.get("refusal") or "" for p in item.get("content") or ()
            ]
            parts += [item.get("name", ""), item.get("arguments", ""), item.get("input", "")] if item["type"] != "message" else []
        if self._reasoning is not None:
            parts += self._reasoning[1]
        if self._message is not None:
            parts += [part.get("text") or part.get("refusal") or "" for part in self._message[1]]
        if self._part is not None:
            parts += self._part[1]
        for _, pieces in self._calls.values():
            parts += pieces
        return "".join(parts)

    # --- the end ------------------------------------------------------------------------------------

    def close_items(self) -> list[bytes]:
        return self._close_reasoning() + self._close_message() + self._close_calls()

    def finish(self, usage: dict[str, Any]) -> list[bytes]:
        """The last event (after close_items): response.completed, or response.incomplete when the
        answer was cut by its output cap or a content filter."""
        status, incomplete = ro.status_of(self.finish_reason)
        ro.finished(self.response, status, incomplete, usage)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [self.event(kind, response=self._snapshot())]

    def fail(self, code: str, message: str, usage: dict[str, Any]) -> list[bytes]:
        """response.failed, with what was made so far and City's error: the items still open hold
        what their deltas sent (the response is stored so), marked incomplete."""
        if self._reasoning is not None:
            index, texts, blocks = self._reasoning
            self.output[index] = ro.reasoning_item(self.output[index]["id"], "".join(texts), blocks, status="incomplete")
        if self._message is not None:
            index, parts = self._message
            open_part = [content_part(self._part[0], "".join(self._part[1]))] if self._part is not None else []
            self.output[index] = ro.message_item(self.output[index]["id"], [*parts, *open_part], status="incomplete")
        for index, sent in self._calls.values():
            field = "input" if self.output[index]["type"] == "custom_tool_call" else "arguments"
            self.output[index] = {**self.output[index], field: "".join(sent), "status": "incomplete"}
        self._reasoning = self._message = self._part = None
        self._calls.clear()
        self.response["status"] = "failed"
        self.response["error"] = {"code": code, "message": message}
        self.response["usage"] = usage
        return [self.event("response.failed", response=self._snapshot())]
