"""The coding agents themselves, pointed at City by base URL and key only, as their users do: Claude
Code (`claude -p`, the Anthropic Messages API) and Codex CLI (`codex exec`, the Responses API), onto
every kind of upstream City serves (their loopback simulators): Anthropic and OpenAI natively, an
OpenAI-compatible provider and Gemini through translation. Each agent is asked to run a tool (Claude
Code's Bash, Codex's exec_command): the simulators call it, the agent runs it on this machine, and its
output must reach the upstream before the agent prints the answer.

Both are the official npm packages, pinned in package.json (`make test` runs `npm ci`).
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

from aihub.tests.live import AllProtocolsTestCase
from aihub.tests.tool_loop import answer_tool_results_with_text
from aihub.tests.upstream.sim import SimServer

REPOSITORY = Path(__file__).resolve().parents[2]
CLAUDE = REPOSITORY / "node_modules" / "@anthropic-ai" / "claude-code" / "cli-wrapper.cjs"
CODEX = REPOSITORY / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"
MARKER = "city-tool-ran-42"  # what the tool prints: seen upstream only if the agent ran it and sent its output back


class CodingAgentsTests(AllProtocolsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.home = self.enterContext(tempfile.TemporaryDirectory(prefix="agent-home-"))
        self.work = self.enterContext(tempfile.TemporaryDirectory(prefix="agent-work-"))
        answer_tool_results_with_text(self.sim, self.anthropic, self.gemini)

    def run_agent(self, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        base = {"PATH": os.environ["PATH"], "HOME": self.home, "NO_COLOR": "1"}
        return subprocess.run(
            command, cwd=self.work, env={**base, **env}, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL
        )

    def assert_tool_output_reached(self, sim: SimServer, model: str) -> None:
        self.assertIn(
            MARKER, json.dumps([r.json for r in sim.requests], ensure_ascii=False), f"{model}: the tool's output never reached the upstream"
        )

    def test_claude_code_runs_a_tool_on_every_kind_of_upstream(self) -> None:
        self.assertTrue(CLAUDE.is_file(), "run `make test` (it runs `npm ci`) or `npm ci`")
        for model, sim in (("claude-haiku-4-5", self.anthropic), ("deepseek-v4-flash", self.sim), ("gemini-3-flash-preview", self.gemini)):
            with self.subTest(model=model):
                sim.requests.clear()
                sim.script.tool_call = ("Bash", {"command": f"echo {MARKER}", "description": "Print a marker"})
                done = self.run_agent(
                    ["node", str(CLAUDE), "-p", "Run the marker command.", "--model", model, "--allowedTools", "Bash", "--max-turns", "4"],
                    {
                        "ANTHROPIC_BASE_URL": self.city.url,
                        "ANTHROPIC_API_KEY": self.token,
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                        "DISABLE_AUTOUPDATER": "1",
                    },
                )
                self.assertEqual(done.returncode, 0, (done.stdout + done.stderr)[-3000:])
                self.assertIn(sim.script.text, done.stdout)
                self.assert_tool_output_reached(sim, model)

    def test_codex_cli_runs_a_tool_on_every_kind_of_upstream(self) -> None:
        self.assertTrue(CODEX.is_file(), "run `make test` (it runs `npm ci`) or `npm ci`")
        codex_home = Path(self.home) / ".codex"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(
            f'model_provider = "city"\n[model_providers.city]\nname = "City"\nbase_url = "{self.city.url}/v1"\n'
            'env_key = "CITY_TOKEN"\nwire_api = "responses"\n'
        )
        models = (
            ("gpt-5", self.sim),
            ("deepseek-v4-flash", self.sim),
            ("claude-haiku-4-5", self.anthropic),
            ("gemini-3-flash-preview", self.gemini),
        )
        for model, sim in models:
            with self.subTest(model=model):
                sim.requests.clear()
                sim.script.tool_call = ("exec_command", {"cmd": f"echo {MARKER}"})
                done = self.run_agent(
                    [
                        "node",
                        str(CODEX),
                        "exec",
                        "--skip-git-repo-check",
                        "--sandbox",
                        "danger-full-access",
                        "-m",
                        model,
                        "Run the marker command.",
                    ],
                    {"CODEX_HOME": str(codex_home), "CITY_TOKEN": self.token},
                )
                self.assertEqual(done.returncode, 0, (done.stdout + done.stderr)[-3000:])
                self.assertIn(sim.script.text, done.stdout)
                self.assert_tool_output_reached(sim, model)
