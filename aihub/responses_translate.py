"""The Responses API ⇄ OpenAI chat completions, for every upstream reached through its chat adapter.

Request (CreateResponse → a chat body):
- `instructions` → a leading system message (not carried over from a previous response, as OpenAI
  does); the conversation behind `previous_response_id` (aihub/responses_store.history), then
  `input`: a string is one user message; items become chat messages in order — message items by
  role (`developer` → system, whose meaning it has on every provider), `input_text` / `input_image` /
  `input_file` / `output_text` parts → chat text, image_url and file parts; `function_call` items →
  the assistant's `tool_calls` (consecutive ones, and the assistant text and reasoning before them,
  make one assistant message, as chat wants); `function_call_output` → `tool` messages; `reasoning`
  items → the next assistant message's `reasoning_content` and, when City made them, its signed
  `thinking_blocks` (carried in `encrypted_content`, see responses_output.THINKING_PREFIX).
- `tools`: functions → chat function tools; a `namespace`'s functions → chat functions named
  `{namespace}__{name}`, split again in the answer; `web_search` is left out (see IGNORED_TOOLS);
  any other hosted tool is a 400 naming it. `tool_choice` (`allowed_tools` narrows `tools`),
  `parallel_tool_calls`, `text.format` → `response_format`, `text.verbosity` → `verbosity`,
  `reasoning.effort` → `reasoning_effort`, `max_output_tokens`, `temperature`, `top_p`,
  `user`, `safety_identifier`, `prompt_cache_key`, `service_tier` → their chat namesakes.
- Kept on the response only: `metadata`, `store` (City keeps the response), `truncation`. Left out:
  `client_metadata`, the ids Codex CLI sends on every turn for OpenAI's own bookkeeping (no other
  provider takes it; Gemini and Anthropic refuse the request over it).
  `max_tool_calls` bounds the calls of hosted tools, which never run here, and `truncation: auto`
  only matters past the context window, where the upstream's 400 says so: both change nothing.
- A field this module does not know is a provider extension (`top_k`, `thinking` …): forwarded to
  the chat body as it is, by the same rule as the chat route.

The answer's side (a chat.completion → the `response` object) is aihub/responses_output.py.
"""

from typing import Any, NamedTuple

from aihub.responses_output import ItemIds, response_of_item, thinking_blocks_of
from city.errors import ApiError

# City's own request fields, never sent upstream.
CITY_FIELDS = frozenset({"studio_id"})
# Responses fields this module translates or answers itself; any other field goes to the chat body as sent.
RESPONSES_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "previous_response_id",
        "store",
        "stream",
        "stream_options",
        "include",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tool_calls",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "top_logprobs",
        "metadata",
        "client_metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
        "truncation",
        "background",
        "conversation",
        "prompt",
        "context_management",
    }
)
# Fields with the same name and meaning in chat completions.
SAME_IN_CHAT = ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier")

# `include` values City can honour (encrypted reasoning: see responses_output.THINKING_PREFIX) or that ask for parts of
# items City never makes (hosted tools' calls, which no upstream reached through chat runs), so that
# asking for them changes nothing. Codex CLI sends "reasoning.encrypted_content" on every request.
HONOURED_INCLUDES = frozenset(
    {
        "reasoning.encrypted_content",
        "web_search_call.results",
        "web_search_call.action.sources",
        "file_search_call.results",
        "code_interpreter_call.outputs",
        "computer_call_output.output.image_url",
        "message.input_image.image_url",
    }
)

# Hosted tools left out of the chat request rather than refused: a tool is an offer the model may
# decline, so an answer given without it is still an answer to the request. Codex CLI offers web
# search beside its functions on every turn; refusing it would make Codex unusable on every model
# City serves. Forcing one with `tool_choice` is refused (see tool_choice_for).
IGNORED_TOOLS = frozenset({"web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26"})
# Between a namespace and its function's name in the chat function name (chat names allow [A-Za-z0-9_-]).
NAMESPACE_JOIN = "__"


# Input items chat completions can say in full; any other (reasoning with its encrypted content, a
# hosted tool's call) loses tokens in translation.
CHAT_ITEMS = frozenset({"message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"})


def opaque_to_chat(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type", "message") not in CHAT_ITEMS


def invalid(param: str, message: str, code: str = "unsupported_parameter") -> ApiError:
    return ApiError(400, message, param=param, code=code)


# --- the request --------------------------------------------------------------------------------------


def chat_body(request: dict[str, Any], history: list[dict[str, Any]], input_items: list[dict[str, Any]]) -> "Translation":
    """The chat completions body for a checked Responses request, and the namespaced functions' chat
    names (for output_of); `history` is the conversation behind `previous_response_id`, `input_items`
    the request's own input (see normalized_input). Raises ApiError 400 naming the first field that
    cannot be translated."""
    refuse_untranslatable(request)
    tools, namespaced, origins = chat_tools(request.get("tools") or [])
    body: dict[str, Any] = {"model": request["model"]}
    messages: list[dict[str, Any]] = []
    if request.get("instructions"):
        messages.append({"role": "system", "content": request["instructions"]})
    messages += chat_messages(history, "previous_response_id", namespaced)
    messages += chat_messages(input_items, "input", namespaced)
    if not messages:
        raise invalid("input", "input is empty: send at least one message.", "missing_field")
    body["messages"] = messages
    choice = request.get("tool_choice")
    if choice is not None:
        tools, body["tool_choice"] = tool_choice_for(choice, tools, namespaced)
    if tools:
        body["tools"] = tools
        if request.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = request["parallel_tool_calls"]
    text = request.get("text") or {}
    if text.get("format") is not None:
        body["response_format"] = response_format(text["format"])
    if text.get("verbosity") is not None:
        body["verbosity"] = text["verbosity"]
    effort = (request.get("reasoning") or {}).get("effort")
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.get("max_output_tokens") is not None:
        body["max_completion_tokens"] = request["max_output_tokens"]
    for name in SAME_IN_CHAT:
        if request.get(name) is not None:
            body[name] = request[name]
    for name, value in request.items():  # provider extensions, forwarded as the chat route does
        if name not in RESPONSES_FIELDS and name not in CITY_FIELDS:
            body[name] = value
    summaries = any((request.get("reasoning") or {}).get(name) is not None for name in ("summary", "generate_summary"))
    return Translation(body, namespaced, [origins[chat_tool_name(tool)] for tool in tools], summaries)


class Translation(NamedTuple):
    body: dict[str, Any]  # the chat completions request
    namespaced: dict[str, tuple[str, str]]  # chat name → (namespace, name) of a namespace's tools
    tool_paths: list[str]  # where each of the chat body's tools was in the request (`tools[2]`, `tools[0].tools[1]`)
    summaries: bool  # reasoning summaries asked for (see for_upstream)


def for_upstream(body: dict[str, Any], provider: str, adapter: str, *, summaries: bool) -> dict[str, Any]:
    """The chat body as one upstream takes it: OpenAI-compatible hosts other than OpenAI know the
    output cap as `max_tokens` (OpenAI's reasoning models take only `max_completion_tokens`); Gemini
    shows its thought summaries only when asked (`includeThoughts`), which `reasoning.summary` does
    (`summaries`; Claude and DeepSeek show their thinking whenever they think)."""
    if adapter == "openai" and provider != "openai" and "max_completion_tokens" in body:
        body = {**body, "max_tokens": body["max_completion_tokens"]}
        del body["max_completion_tokens"]
    if adapter == "gemini" and summaries:
        config = body.get("generationConfig")
        config = dict(config) if isinstance(config, dict) else {}
        thinking = config.get("thinkingConfig")
        if isinstance(thinking, dict) or thinking is None:
            config["thinkingConfig"] = {"includeThoughts": True, **(thinking or {})}
            body = {**body, "generationConfig": config}
    return body


def refuse_what_city_does_not_keep(request: dict[str, Any]) -> None:
    """What needs state City does not keep, whatever the upstream: a 400 naming the field."""
    if request.get("background"):
        raise invalid("background", "City runs no background responses: remove `background` and wait for the answer (or stream it).")
    if request.get("conversation") is not None:
        raise invalid("conversation", "City keeps no conversations: chain responses with `previous_response_id` instead.")


def refuse_untranslatable(request: dict[str, Any]) -> None:
    """The Responses features no chat upstream can give, asked for: a 400 naming the field."""
    if request.get("prompt") is not None:
        raise invalid("prompt", "City keeps no prompt templates: send the prompt's text as `instructions` and `input`.")
    if request.get("context_management"):
        raise invalid("context_management", "City does not compact conversations: remove `context_management`.")
    if request.get("n") not in (None, 1):  # forwarded, chat's extra answers would be billed and never shown
        raise invalid("n", "A response has one answer: remove `n` (send one request per answer).")
    if request.get("top_logprobs"):
        raise invalid("top_logprobs", "Responses through City carry no log probabilities: remove `top_logprobs`.")
    for i, value in enumerate(request.get("include") or ()):
        if value not in HONOURED_INCLUDES:
            raise invalid(f"include[{i}]", f"include[{i}] '{value}' cannot be given through City: remove it.")
    reasoning = request.get("reasoning") or {}
    # `summary` asks for the model's reasoning in summary form: City gives what the model shows (a
    # summary on Claude and Gemini, the whole thought on DeepSeek) whatever it is set to.
    for name in ("summary", "generate_summary"):
        if reasoning.get(name) not in (None, "auto", "concise", "detailed"):
            raise invalid(f"reasoning.{name}", f"reasoning.{name} must be 'auto', 'concise' or 'detailed'.", "invalid_value")


def chat_tools(tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]], dict[str, str]]:
    """(chat tools, chat name → (namespace, name) for the tools of namespaces, chat name → where the
    tool was in the request). Function tools reach
    every provider; custom (free-form) tools become chat's custom tools, which OpenAI's models take
    (Codex CLI's apply_patch on GPT-5) and the other providers' adapters refuse by name."""
    found: list[dict[str, Any]] = []
    namespaced: dict[str, tuple[str, str]] = {}
    origins: dict[str, str] = {}
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind in ("function", "custom"):
            found.append(chat_tool(tool, f"tools[{i}]"))
            origins[chat_tool_name(found[-1])] = f"tools[{i}]"
        elif kind == "namespace":
            space = tool.get("name")
            inner = tool.get("tools")
            if not isinstance(space, str) or not space:
                raise invalid(f"tools[{i}].name", f"tools[{i}].name is required: the namespace's name.", "missing_field")
            if not isinstance(inner, list):
                raise invalid(f"tools[{i}].tools", f"tools[{i}].tools must be a list of function tools.", "invalid_type")
            for j, member in enumerate(inner):
                where = f"tools[{i}].tools[{j}]"
                if not isinstance(member, dict) or member.get("type", "function") not in ("function", "custom"):
                    raise invalid(f"{where}.type", f"{where} must be a function or custom tool, as in a namespace.")
                translated = chat_tool({"type": "function", **member}, where)
                inside = translated[translated["type"]]
                name = space + NAMESPACE_JOIN + inside["name"]
                namespaced[name] = (space, inside["name"])
                inside["name"] = name
                found.append(translated)
                origins[name] = where
        elif kind in IGNORED_TOOLS:
            continue
        else:
            shown = f"'{kind}'" if isinstance(kind, str) else "missing"
            raise invalid(
                f"tools[{i}].type",
                f"tools[{i}].type {shown} cannot be offered through City: function, custom and namespace tools can; "
                "hosted tools run on OpenAI's servers only.",
            )
    return found, namespaced, origins


def chat_tool_name(tool: dict[str, Any]) -> str:
    return str(tool[tool["type"]]["name"])


def chat_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool["type"] == "function":
        return chat_function(tool, where)
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"{where}.name", f"{where}.name is required: the tool's name.", "missing_field")
    custom: dict[str, Any] = {"name": name}
    if isinstance(tool.get("description"), str):
        custom["description"] = tool["description"]
    format_ = tool.get("format")
    if isinstance(format_, dict) and format_.get("type") == "grammar":
        custom["format"] = {"type": "grammar", "grammar": {"definition": format_.get("definition"), "syntax": format_.get("syntax")}}
    elif isinstance(format_, dict) and format_.get("type") == "text":
        custom["format"] = {"type": "text"}
    elif format_ is not None:
        raise invalid(f"{where}.format", f'{where}.format must be {{"type": "text"}} or {{"type": "grammar", …}}.', "invalid_value")
    return {"type": "custom", "custom": custom}


def chat_function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"{where}.name", f"{where}.name is required: the function's name.", "missing_field")
    function: dict[str, Any] = {"name": name}
    for key, shape in (("description", str), ("parameters", dict), ("strict", bool)):
        value = tool.get(key)
        if value is None:
            continue
        if not isinstance(value, shape):
            raise invalid(
                f"{where}.{key}", f"{where}.{key} must be {'an object' if shape is dict else 'a ' + shape.__name__}.", "invalid_type"
            )
        function[key] = value
    return {"type": "function", "function": function}


def tool_choice_for(choice: Any, tools: list[dict[str, Any]], namespaced: dict[str, tuple[str, str]]) -> tuple[list[dict[str, Any]], Any]:
    """(the tools to offer, the chat tool_choice) for a Responses `tool_choice`."""
    if choice in ("none", "auto", "required"):
        return tools, choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("tool_choice.name", "tool_choice.name is required: the function to call.", "missing_field")
        space = choice.get("namespace")
        if space is not None and not isinstance(space, str):
            raise invalid("tool_choice.namespace", "tool_choice.namespace must be a string: the function's namespace.", "invalid_type")
        if space:
            name = space + NAMESPACE_JOIN + name
        return tools, {"type": "function", "function": {"name": name}}
    if kind == "custom" and isinstance(choice.get("name"), str):
        return tools, {"type": "custom", "custom": {"name": choice["name"]}}
    if kind == "allowed_tools":
        mode, allowed = choice.get("mode"), choice.get("tools")
        if mode not in ("auto", "required") or not isinstance(allowed, list):
            raise invalid(
                "tool_choice", 'tool_choice of type allowed_tools needs "mode" ("auto" or "required") and "tools".', "invalid_value"
            )
        names = set()
        for j, tool in enumerate(allowed):
            if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom") or not isinstance(tool.get("name"), str):
                raise invalid(
                    f"tool_choice.tools[{j}]", f'tool_choice.tools[{j}] must be a function tool {{"type": "function", "name": …}}.'
                )
            names.add(tool["name"])
        return [t for t in tools if chat_tool_name(t) in names or namespaced.get(chat_tool_name(t), ("", ""))[1] in names], mode
    raise invalid(
        "tool_choice",
        'tool_choice must be "none", "auto", "required", {"type": "function", "name": …} or {"type": "allowed_tools", …}: '
        "hosted tools cannot be forced through City.",
        "invalid_value",
    )


def response_format(format_: dict[str, Any]) -> dict[str, Any]:
    kind = format_["type"]
    if kind != "json_schema":
        return {"type": kind}
    schema = {key: format_[key] for key in ("name", "description", "schema", "strict") if format_.get(key) is not None}
    return {"type": "json_schema", "json_schema": schema}


# --- input items --------------------------------------------------------------------------------------


def normalized_input(request: dict[str, Any], ids: ItemIds, referenced: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's input as Responses items with ids (what the store keeps and input_items lists):
    a string becomes a user message; an item without an id gets one; an `item_reference` is the item
    it names (`referenced`, by id: see item_references)."""
    value = request["input"]
    if isinstance(value, str):
        return [
            {"id": ids("msg"), "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": value}]}
        ]
    items = []
    for i, item in enumerate(value):
        kind = item.get("type", "message")
        if kind == "item_reference":
            found = referenced.get(item["id"])
            if found is None:
                message = f"input[{i}] refers to item '{item['id']}', which no stored response of this studio holds."
                raise invalid(f"input[{i}].id", message, "item_not_found")
            items.append(found)
            continue
        copied = {"id": item.get("id") or ids(ITEM_PREFIX.get(kind, "item")), **{k: v for k, v in item.items() if k != "id"}, "type": kind}
        if kind == "message" and isinstance(copied.get("content"), str):
            part_type = "output_text" if copied.get("role") == "assistant" else "input_text"
            copied["content"] = [{"type": part_type, "text": copied["content"]}]
        items.append(copied)
    return items


ITEM_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
    # OpenAI's hosted tools' items, which only come from (and go back to) OpenAI's own API.
    "web_search_call": "ws",
    "file_search_call": "fs",
    "computer_call": "cu",
    "code_interpreter_call": "ci",
    "image_generation_call": "ig",
    "mcp_call": "mcp",
    "local_shell_call": "lsh",
}


def item_references(request: dict[str, Any]) -> dict[str, list[str]]:
    """The `item_reference`s of the input: the stored response each names → its item ids. A 400
    naming the reference for an id City did not make (it names no response)."""
    wanted: dict[str, list[str]] = {}
    value = request["input"]
    for i, item in enumerate(value if isinstance(value, list) else ()):
        if item.get("type") == "item_reference":
            response_id = response_of_item(item["id"])
            if response_id is None:
                raise invalid(f"input[{i}].id", f"input[{i}] refers to item '{item['id']}', which City did not make.", "item_not_found")
            wanted.setdefault(response_id, []).append(item["id"])
    return wanted


def chat_messages(items: list[dict[str, Any]], where: str, namespaced: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Responses items → chat messages (see the module docstring). `where` names the field they came
    from in errors: `input` (an index is added) or `previous_response_id`."""
    messages: list[dict[str, Any]] = []
    assistant: dict[str, Any] | None = None  # the assistant message being built from consecutive items
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []

    def open_assistant() -> dict[str, Any]:
        nonlocal assistant
        if assistant is None:
            assistant = {"role": "assistant", "content": None}
            messages.append(assistant)
            if reasoning:
                assistant["reasoning_content"] = "\n\n".join(reasoning)
            if thinking:
                assistant["thinking_blocks"] = list(thinking)
            reasoning.clear()
            thinking.clear()
        return assistant

    for i, item in enumerate(items):
        param = f"{where}[{i}]" if where == "input" else where
        kind = item.get("type", "message")
        if kind == "message":
            role = item["role"]
            if role == "assistant":
                target = open_assistant()
                text = message_text(item["content"], f"{param}.content")
                if target.get("tool_calls"):  # text after a call opens a new assistant turn
                    assistant = None
                    target = open_assistant()
                target["content"] = (target["content"] or "") + text
                continue
            assistant = None
            chat_role = "system" if role in ("system", "developer") else "user"
            messages.append({"role": chat_role, "content": message_content(item["content"], f"{param}.content", chat_role)})
        elif kind == "function_call":
            target = open_assistant()
            name = item["name"]
            if item.get("namespace"):
                name = item["namespace"] + NAMESPACE_JOIN + name
            target.setdefault("tool_calls", []).append(
                {"id": item["call_id"], "type": "function", "function": {"name": name, "arguments": item["arguments"]}}
            )
        elif kind == "custom_tool_call":
            target = open_assistant()
            name = item["name"] if not item.get("namespace") else item["namespace"] + NAMESPACE_JOIN + item["name"]
            target.setdefault("tool_calls", []).append(
                {"id": item["call_id"], "type": "custom", "custom": {"name": name, "input": item["input"]}}
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            assistant = None
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": tool_output(item["output"], f"{param}.output")})
        elif kind == "reasoning":
            if assistant is not None and (assistant.get("content") or assistant.get("tool_calls")):
                assistant = None  # reasoning opens the next assistant turn
            texts = [part["text"] for part in (item.get("summary") or []) + (item.get("content") or []) if part.get("text")]
            reasoning.extend(texts)
            thinking.extend(thinking_blocks_of(item.get("encrypted_content")))
        else:
            raise invalid(f"{param}.type", f"{param}.type '{kind}' cannot be translated for this model.")
    return messages


def message_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in ("output_text", "input_text"):
            texts.append(part["text"])
        elif kind == "refusal":
            texts.append(part["refusal"])
        else:
            raise invalid(f"{param}[{j}].type", f"{param}[{j}].type '{kind}' is not an assistant's content: send output_text.")
    return "".join(texts)


def message_content(content: Any, param: str, role: str) -> Any:
    """A user or system message's content as chat content (a string stays a string)."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": part["text"]})
        elif role == "system":
            raise invalid(f"{where}.type", f"{where}.type '{kind}': instructions (system and developer messages) take text only.")
        elif kind == "input_image":
            parts.append(image_part(part, where))
        elif kind == "input_file":
            parts.append(file_part(part, where))
        else:
            raise invalid(f"{where}.type", f"{where}.type '{kind}' cannot be sent in a {role} message.")
    if role == "system":
        return "".join(part["text"] for part in parts)
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]  # a plain string: some OpenAI-compatible hosts (DeepSeek among them) take no text parts
    return parts


def image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not url:
        param = f"{where}.file_id" if part.get("file_id") else f"{where}.image_url"
        raise invalid(param, f"{where}: City keeps no files; send the image as image_url (an https or data: URL).")
    image: dict[str, Any] = {"url": url}
    if part.get("detail") in ("low", "high", "auto"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def file_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    if part.get("file_url"):
        raise invalid(f"{where}.file_url", f"{where}.file_url cannot be fetched through City: send the file as file_data.")
    file: dict[str, Any] = {}
    for key in ("file_data", "file_id", "filename"):
        if part.get(key):
            file[key] = part[key]
    if "file_data" not in file and "file_id" not in file:
        raise invalid(f"{where}.file_data", f"{where} needs file_data (a base64 data: URL).", "missing_field")
    return {"type": "file", "file": file}


def tool_output(output: Any, param: str) -> str:
    """A function call's output as a chat tool message's text: chat tool messages take text only."""
    if isinstance(output, str):
        return output
    texts = []
    for j, part in enumerate(output):
        if part.get("type") not in ("input_text", "output_text"):
            raise invalid(
                f"{param}[{j}].type", f"{param}[{j}].type '{part.get('type')}': a function's output reaches this model as text only."
            )
        texts.append(part["text"])
    return "".join(texts)
