"""What checking a request's input costs on the data plane, beside parsing it (in-process, no server).

    .venv/bin/python bench/input_checks.py [--runs 20000]

For a realistic chat body (system, user with an image part, assistant with a tool call, the tool's
answer, one tool): orjson's parse, the NUL and depth check every JSON body gets
(city/storable.py), and the OpenAI request shape check (aihub/openai_request.py). Best of 7.
"""

import argparse
import timeit
from typing import Any

import in_process

ROOT = in_process.configure()

CHAT_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather in Paris, and what is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21, "sky": "clear"}'},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ],
    "tool_choice": "auto",
    "temperature": 0.2,
    "max_completion_tokens": 200,
}


def best_microseconds(run, runs: int) -> float:
    return min(timeit.repeat(run, number=runs, repeat=7)) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    runs = parser.parse_args().runs

    import django

    django.setup()
    import orjson

    from aihub.openai_request import CHAT_COMPLETIONS
    from city import storable

    body = orjson.dumps(CHAT_BODY)
    data = orjson.loads(body)
    parse = best_microseconds(lambda: orjson.loads(body), runs)
    storable_check = best_microseconds(lambda: storable.check_json_body(body, data), runs)
    shape_check = best_microseconds(lambda: CHAT_COMPLETIONS.validate(data), runs)
    print(f"chat body: {len(body)} bytes, {len(data['messages'])} messages, {len(data['tools'])} tool")
    print(f"orjson.loads                 {parse:8.2f} µs")
    print(f"NUL and depth check          {storable_check:8.2f} µs  ({storable_check / parse:.1f}× the parse)")
    print(f"OpenAI request shape check   {shape_check:8.2f} µs  ({shape_check / parse:.1f}× the parse)")


if __name__ == "__main__":
    main()
