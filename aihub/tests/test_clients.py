"""The clients that speak the newer protocols, pointed at City by base URL and key only, onto OpenAI
(whose own Responses API City passes the request on to), an OpenAI-compatible provider, Anthropic and
Gemini (their loopback simulators; the last three through translation):

- the Vercel AI SDK's default provider, `openai(id)` (the Responses API), from Node: `generateText`, and
  `streamText` with a tool the SDK runs itself (aihub/tests/node/ai_sdk.mjs; `make test` installs the
  pinned packages with `npm ci`);
- the OpenAI Agents SDK with its default model class (OpenAIResponsesModel, the Responses API) running a
  function tool, plain and streamed.

What City sends back is validated against OpenAI's published schema too (every answer and event the
AI SDK received, every event the Agents SDK streamed).
"""

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import agents
from openai import AsyncOpenAI
from openai.types.shared import Reasoning

from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.live_plans import wait_for_records
from aihub.tests.openai_schema import validate
from aihub.tests.tool_loop import answer_tool_results_with_text
from aihub.tests.upstream.anthropic_sim import signature_of
from aihub.tests.upstream.sim import SimServer

REPOSITORY = Path(__file__).resolve().parents[2]
AI_SDK_SCRIPT = Path(__file__).resolve().parent / "node" / "ai_sdk.mjs"
FORECAST = "sunny, 21 °C"  # what the tools answer, in the Node script and here
CITY = "Paris"


class NewProtocolClientsTests(AllProtocolsTestCase):
    def setUp(self) -> None:
        super().setUp()
        # City's model on each kind of upstream, and its simulator.
        self.upstreams: dict[str, SimServer] = {
            "gpt-4.1-mini": self.sim,  # OpenAI's own Responses API, which City passes the request on to
            "deepseek-v4-flash": self.sim,  # chat completions, which City translates to
            "claude-haiku-4-5": self.anthropic,
            "gemini-3-flash-preview": self.gemini,
        }
        for sim in self.upstreams.values():
            sim.script.tool_call = ("get_weather", {"city": CITY})
        answer_tool_results_with_text(*self.upstreams.values())

    def assert_tool_round_trip(self, model: str, sim: SimServer) -> None:
        """The upstream was asked twice with the tool offered: the call, then the answer to the tool's
        result, which reached it (in its own wire format)."""
        mine = [r for r in sim.requests if model in r.path or str((r.json or {}).get("model", "")).startswith(model)]
        offered = [r for r in mine if "get_weather" in json.dumps(r.json)]
        self.assertGreaterEqual(len(offered), 2, f"{model}: {[r.path for r in sim.requests]}")
        self.assertIn(FORECAST, json.dumps(offered[-1].json, ensure_ascii=False))

    def test_vercel_ai_sdk_default_provider(self) -> None:
        self.assertIsNotNone(shutil.which("node"), "Node.js is needed (the machine's; see the Makefile)")
        self.assertTrue((REPOSITORY / "node_modules" / "ai").is_dir(), "run `make test` (it runs `npm ci`) or `npm ci`")
        env = {
            "PATH": os.environ["PATH"],
            "OPENAI_BASE_URL": self.city.url + "/v1",
            "OPENAI_API_KEY": self.token,
            "CITY_MODELS": ",".join(self.upstreams),
            "CITY_THINKING_MODEL": "claude-haiku-4-5",
        }
        done = subprocess.run(["node", str(AI_SDK_SCRIPT)], cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        printed: dict[str, Any] = json.loads(done.stdout)
        results, answers = printed["results"], printed["answers"]
        # City's answers as they came over the wire: a whole response and two streams' events per model.
        self.assertEqual(len(answers["responses"]), len(self.upstreams))
        for answer in answers["responses"]:
            validate(answer, "Response")
        self.assertEqual(sum(e["type"] == "response.completed" for e in answers["events"]), 2 * len(self.upstreams) + 2)
        for event in answers["events"]:
            validate(event, "ResponseStreamEvent")
        text = self.sim.script.text
        for model, sim in self.upstreams.items():
            with self.subTest(model=model):
                generated, streamed = results[model]["generate"], results[model]["stream"]
                self.assertEqual(generated["text"], text)
                self.assertEqual(generated["finishReason"], "stop")
                self.assertEqual(generated["usage"], {"input": 11, "output": 7})
                self.assertTrue(generated["responseId"].startswith("resp_"), generated["responseId"])
                self.assertEqual(generated["modelId"], model)

                first, second = streamed["steps"][0], streamed["steps"][1]
                self.assertEqual(len(streamed["steps"]), 2, streamed["steps"])
                self.assertEqual(first["toolCalls"], [{"name": "get_weather", "input": {"city": CITY}}])
                self.assertEqual(first["toolResults"], [{"name": "get_weather", "output": {"city": CITY, "forecast": FORECAST}}])
                self.assertEqual(first["finishReason"], "tool-calls")
                self.assertEqual((second["text"], second["finishReason"]), (text, "stop"))
                self.assertEqual(streamed["text"], text)
                self.assertGreater(len(streamed["deltas"]), 1, "the answer came in one piece: not streamed")
                self.assertEqual("".join(streamed["deltas"]), text)
                self.assertIn("tool-input-delta", streamed["partTypes"])  # the call's arguments streamed too
                self.assertEqual(streamed["usage"], {"input": 22, "output": 14})  # both steps
                self.assert_tool_round_trip(model, sim)
        with self.subTest(model="claude-haiku-4-5, thinking"):
            # Claude thought before the call, and got its signed thinking back with the tool's result
            # (the SDK referred to it by item id; Anthropic, and its simulator, refuse the turn without it).
            thought = results["claude-haiku-4-5"]["thinking"]
            self.assertEqual([step["reasoning"] for step in thought["steps"]], [self.anthropic.script.reasoning] * 2)
            self.assertEqual((thought["text"], thought["steps"][0]["toolCalls"][0]["input"]), (text, {"city": CITY}))
            turns = self.anthropic.last_request.json["messages"]
            self.assertEqual([block["type"] for block in turns[-2]["content"]], ["thinking", "tool_use"])
            self.assertEqual(turns[-2]["content"][0]["signature"], signature_of(self.anthropic.script.reasoning))
        records = wait_for_records(self.studio["id"], 3 * len(self.upstreams) + 2)
        self.assertEqual({(r.model, r.route, r.status) for r in records}, {(m, "responses", 200) for m in self.upstreams})

    def test_openai_agents_sdk_default_model_runs_a_function_tool(self) -> None:
        calls: list[str] = []

        @agents.function_tool
        def get_weather(city: str) -> str:
            """Weather of a city."""
            calls.append(city)
            return f"{city}: {FORECAST}"

        client = AsyncOpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        # The SDK's default provider and model class (Responses), on City's client; no traces sent to OpenAI.
        config = agents.RunConfig(model_provider=agents.OpenAIProvider(openai_client=client), tracing_disabled=True)
        loop = asyncio.new_event_loop()  # one loop for every run: the client's connections belong to it
        self.addCleanup(loop.close)
        self.addCleanup(lambda: loop.run_until_complete(client.close()))  # cleanups run last first: before the loop closes
        question = f"What is the weather in {CITY}?"
        for model, sim in self.upstreams.items():
            with self.subTest(model=model):
                agent = agents.Agent(name="Forecaster", instructions="Answer with the weather.", model=model, tools=[get_weather])
                calls.clear()
                result = loop.run_until_complete(agents.Runner.run(agent, question, run_config=config))
                self.assertEqual(result.final_output, self.sim.script.text)
                self.assertEqual(calls, [CITY])
                self.assertEqual(
                    [type(item).__name__ for item in result.new_items], ["ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"]
                )
                self.assertEqual(sum(r.usage.input_tokens for r in result.raw_responses), 22)
                self.assert_tool_round_trip(model, sim)

                calls.clear()
                final_output, kinds = loop.run_until_complete(run_streamed(agent, question, config))
                self.assertEqual((final_output, calls), (self.sim.script.text, [CITY]))
                self.assertIn("response.function_call_arguments.delta", kinds)
                self.assertIn("response.output_text.delta", kinds)
                self.assertEqual(kinds.count("response.completed"), 2)  # the call, then the answer
        with self.subTest(model="the SDK's default"), mock.patch.dict(os.environ, {"OPENAI_DEFAULT_MODEL": "deepseek-v4-flash"}):
            # An agent given no model: the SDK's default, named by OPENAI_DEFAULT_MODEL as its docs say (its own,
            # gpt-5.6-luna, is not in City's catalog).
            agent = agents.Agent(name="Forecaster", instructions="Answer with the weather.", tools=[get_weather])
            calls.clear()
            result = loop.run_until_complete(agents.Runner.run(agent, question, run_config=config))
            self.assertEqual((result.final_output, calls), (self.sim.script.text, [CITY]))
            self.assertEqual(self.sim.requests[-1].json["model"], "deepseek-v4-flash")
        with self.subTest(model="claude-haiku-4-5, thinking, store false"):
            # Claude thinks before the call; Anthropic refuses the tool's result unless the turn that called
            # it comes back with its signed thinking (the simulator too): the reasoning item the SDK sends
            # back, with nothing stored, must carry it.
            settings = agents.ModelSettings(reasoning=Reasoning(effort="low", summary="auto"), store=False)
            agent = agents.Agent(
                name="Forecaster", instructions="Answer.", model="claude-haiku-4-5", tools=[get_weather], model_settings=settings
            )
            calls.clear()
            result = loop.run_until_complete(agents.Runner.run(agent, question, run_config=config))
            self.assertEqual((result.final_output, calls), (self.sim.script.text, [CITY]))
            self.assertIn("ReasoningItem", [type(item).__name__ for item in result.new_items])
            turns = self.anthropic.last_request.json["messages"]
            self.assertEqual([block["type"] for block in turns[-2]["content"]], ["thinking", "tool_use"])
            self.assertEqual(turns[-2]["content"][0]["signature"], signature_of(self.anthropic.script.reasoning))
        records = wait_for_records(self.studio["id"], 4 * len(self.upstreams) + 4)
        self.assertEqual({(r.model, r.route, r.status) for r in records}, {(m, "responses", 200) for m in self.upstreams})


async def run_streamed(agent: agents.Agent, question: str, config: agents.RunConfig) -> tuple[Any, list[str]]:
    """The streamed run's final output, and the kinds of the Responses events it streamed (the SDK
    parses each one with the openai SDK's types; here they are validated against OpenAI's schema too)."""
    streamed = agents.Runner.run_streamed(agent, question, run_config=config)
    kinds: list[str] = []
    async for event in streamed.stream_events():
        if isinstance(event, agents.RawResponsesStreamEvent):
            # The fields City sent (the openai SDK builds its models without adding any), against OpenAI's schema.
            validate(event.data.model_dump(mode="json", exclude_unset=True), "ResponseStreamEvent")
            kinds.append(event.data.type)
    return streamed.final_output, kinds
