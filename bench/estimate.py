"""What a call's worst-case estimate costs (aihub/estimate.py, in-process, no server).

    .venv/bin/python bench/estimate.py [--runs 2000]

The tokenizer's one-time load (time and resident memory it keeps), then worst_chat on a chat of
about 2,000 o200k tokens (README text in 20-word messages, one tool, max_tokens set) for an
OpenAI model (counted exactly) and a Claude model (× 1.25, and the adapter's max_tokens). Best of 7.
"""

import argparse
import gc
import os
import time
import timeit
from functools import partial
from pathlib import Path
from typing import Any

import in_process

ROOT = in_process.configure()

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs

    import django

    django.setup()
    from aihub import estimate
    from aihub.catalog import models_by_id

    gc.collect()
    before = resident_mb()
    started = time.perf_counter()
    estimate.encoding()
    loaded = time.perf_counter() - started
    gc.collect()
    print(f"tokenizer load: {loaded * 1000:.0f} ms, resident memory +{resident_mb() - before:.1f} MB")

    gpt, claude = models_by_id()["gpt-4.1"], models_by_id()["claude-sonnet-4-6"]
    words = (ROOT / "README.md").read_text().split()
    body: dict[str, Any] = {"messages": [{"role": "system", "content": "You are terse."}], "tools": [TOOL], "max_tokens": 500}
    while estimate.worst_chat(gpt, body).input_tokens < 2000:
        start = 20 * (len(body["messages"]) - 1)
        body["messages"].append({"role": ("user", "assistant")[len(body["messages"]) % 2], "content": " ".join(words[start : start + 20])})
    for model in (gpt, claude):
        worst = estimate.worst_chat(model, body)
        took = min(timeit.repeat(partial(estimate.worst_chat, model, body), number=runs, repeat=7)) / runs * 1000
        print(f"worst_chat {model.id:<18} {worst.input_tokens:5d} input tokens, {len(body['messages'])} messages: {took:.3f} ms")


if __name__ == "__main__":
    main()
