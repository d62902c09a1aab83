"""The AI-call pipeline's order and answers, through a live City: whitelist (403) → per-request cap
(402) → rate limits (429) → budget (402), on every AI route, and the settlement of each way a call
can end."""

import re
from typing import Any

import httpx

from aihub.catalog import models_by_id
from aihub.models import UsageRecord
from aihub.tests.live import AiLiveTestCase
from city.waiting import wait_until

CHAT = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 20}
# One body per AI route, all on the same model, each with a small output cap.
ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": CHAT,
    "/v1/ai/chat/completions": CHAT,
    "/v1/completions": {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20},
    "/v1/ai/text": {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20},
    "/v1/ai/stream": {"model": "deepseek-v4-flash", "prompt": "Say hi.", "max_tokens": 20},
}


class PipelineTests(AiLiveTestCase):
    plans_made = 0

    def plan(self, **fields: Any) -> dict[str, Any]:
        PipelineTests.plans_made += 1
        fields.setdefault("name", f"plan {self.plans_made} {self.studio['id']}")
        return self.ok(self.admin.post("/v1/studios/plans/create", json=fields))

    def assign(self, plan: dict[str, Any] | None, **target: str) -> None:
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"] if plan else None, **target}))

    def error(self, response: httpx.Response, status: int) -> dict[str, Any]:
        self.assertEqual(response.status_code, status, response.text[:500])
        return response.json()["error"]

    def records(self, count: int) -> list[UsageRecord]:
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.studio["id"]).count() >= count, timeout=5)
        return list(UsageRecord.objects.filter(studio_id=self.studio["id"]).order_by("id"))

    # --- whitelist ------------------------------------------------------------------------------------

    def test_a_model_outside_the_plan_is_403_on_every_route_and_not_listed(self) -> None:
        self.assign(self.plan(models=["gpt-*"]), studio_id=self.studio["id"])
        for route, body in ROUTES.items():
            with self.subTest(route=route):
                error = self.error(self.user.post(route, json=body), 403)
                self.assertEqual((error["type"], error["code"], error["param"]), ("permission_error", "model_not_allowed", "model"))
                self.assertIn("deepseek-v4-flash", error["message"])
        embedding = self.user.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hi"})
        self.assertEqual(self.error(embedding, 403)["code"], "model_not_allowed")  # gpt-* does not cover it
        for base in ("/v1", "/v1/ai"):
            listed = {m["id"] for m in self.ok(self.user.get(base + "/models"))["data"]}
            self.assertTrue(listed, "the plan allows the callable gpt-* models")
            self.assertTrue(all(m.startswith("gpt-") for m in listed), listed)
            self.assertEqual(self.user.get(base + "/models/deepseek-v4-flash").status_code, 404)
        self.assertEqual(UsageRecord.objects.filter(studio_id=self.studio["id"], model="deepseek-v4-flash").count(), 0)

    def test_a_tokens_plan_wins_over_its_studios_for_the_whitelist(self) -> None:
        self.assign(self.plan(models=["gpt-*"]), studio_id=self.studio["id"])
        self.assign(self.plan(models=["deepseek-*"]), token_id=self.token_id)
        self.ok(self.user.post("/v1/chat/completions", json=CHAT))
        error = self.error(self.user.post("/v1/chat/completions", json={**CHAT, "model": "gpt-5-mini"}), 403)
        self.assertEqual(error["code"], "model_not_allowed")
        self.assign(None, token_id=self.token_id)  # the studio's plan applies again
        self.error(self.user.post("/v1/chat/completions", json=CHAT), 403)

    # --- per-request cap ------------------------------------------------------------------------------

    def test_the_cap_names_the_max_tokens_that_fits_and_that_value_passes(self) -> None:
        model = models_by_id()["deepseek-v4-flash"]
        cap_micro = 1000  # $0.001
        self.assign(self.plan(max_cost_per_request=cap_micro / 1_000_000), studio_id=self.studio["id"])
        body = {"model": model.id, "messages": [{"role": "user", "content": "Say hi."}]}  # no max_tokens: the model's max output counts
        error = self.error(self.user.post("/v1/chat/completions", json=body), 402)
        self.assertEqual((error["type"], error["code"]), ("insufficient_quota", "per_request_budget_exceeded"))
        self.assertIn("no max_tokens", error["message"])
        fits = int(re.search(r"set max_tokens to ([\d,]+) or less", error["message"]).group(1).replace(",", ""))  # type: ignore[union-attr]
        self.assertGreater(fits, 0)
        self.assertLess(fits * model.output_price, cap_micro * 1_000_000)
        self.ok(self.user.post("/v1/chat/completions", json={**body, "max_tokens": fits}))
        over = self.error(self.user.post("/v1/chat/completions", json={**body, "max_tokens": fits + 1}), 402)
        self.assertEqual(over["code"], "per_request_budget_exceeded")
        self.assertEqual(len(self.sim.requests), 1, "refused requests never reach the upstream")

    def test_checks_run_in_the_pipelines_order(self) -> None:
        # A request breaking the whitelist and the cap is a 403; breaking the cap and the rate, a 402.
        self.assign(self.plan(models=["gpt-*"], max_cost_per_request=0.000001, rpm=1), studio_id=self.studio["id"])
        self.assertEqual(self.error(self.user.post("/v1/chat/completions", json=CHAT), 403)["code"], "model_not_allowed")
        gpt = {**CHAT, "model": "gpt-5-mini", "max_tokens": 100_000}
        self.assertEqual(self.error(self.user.post("/v1/chat/completions", json=gpt), 402)["code"], "per_request_budget_exceeded")

    # --- limits and settlement --------------------------------------------------------------------------

    def test_answers_carry_rate_limit_headers_and_a_429_says_when_to_retry(self) -> None:
        self.assign(self.plan(rpm=2, tpm=1_000_000), studio_id=self.studio["id"])
        first = self.user.post("/v1/chat/completions", json=CHAT)
        self.assertEqual(first.status_code, 200, first.text)
        self.assertEqual(first.headers["x-ratelimit-limit-requests"], "2")
        self.assertEqual(first.headers["x-ratelimit-remaining-requests"], "1")
        self.assertRegex(first.headers["x-ratelimit-reset-requests"], r"^(\d+m)?\d+(\.\d+)?s$|^\d+ms$")
        self.assertEqual(first.headers["x-ratelimit-limit-tokens"], "1000000")
        streamed = self.user.post("/v1/ai/stream", json=ROUTES["/v1/ai/stream"])
        self.assertEqual((streamed.status_code, streamed.headers["x-ratelimit-remaining-requests"]), (200, "0"))
        refused = self.user.post("/v1/chat/completions", json=CHAT)
        error = self.error(refused, 429)
        self.assertEqual((error["type"], error["code"]), ("rate_limit_error", "rate_limit_exceeded"))
        self.assertGreaterEqual(int(refused.headers["retry-after"]), 1)
        self.assertGreater(int(refused.headers["retry-after-ms"]), 0)
        self.assertEqual(refused.headers["x-ratelimit-remaining-requests"], "0")
        self.assertEqual(len(self.sim.requests), 2)

    def test_a_concurrency_of_one_serves_calls_made_one_after_another(self) -> None:
        # Each call is settled before its last byte goes out, so the next one finds the slot free.
        self.assign(self.plan(max_concurrency=1), token_id=self.token_id)
        for round in range(3):
            for route, body in ROUTES.items():
                with self.subTest(route=route, round=round):
                    response = self.user.post(route, json={**body, "stream": True} if "chat" in route and round == 1 else body)
                    self.assertEqual(response.status_code, 200, response.text[:300])

    def test_a_call_that_reaches_no_upstream_costs_nothing(self) -> None:
        self.assign(self.plan(monthly_budget=1), studio_id=self.studio["id"])
        self.sim.stop()  # connection refused: the model never ran
        self.error(self.user.post("/v1/chat/completions", json=CHAT), 502)
        (record,) = self.records(1)
        self.assertEqual((record.status, record.cost, record.prompt_tokens, record.completion_tokens), (502, 0, 0, 0))

    def test_an_upstream_timeout_is_billed_at_the_worst_case(self) -> None:
        self.sim.fail(504, times=10)  # the upstream's gateway gave up while the model may have run
        self.error(self.user.post("/v1/chat/completions", json=CHAT), 504)
        (record,) = self.records(1)
        model = models_by_id()["deepseek-v4-flash"]
        self.assertEqual(record.completion_tokens, 20)  # the request's max_tokens
        self.assertTrue(record.usage_estimated)
        self.assertEqual(record.cost, record.prompt_tokens * model.input_price + 20 * model.output_price)

    # --- the admin acting for a studio ----------------------------------------------------------------

    def test_the_admin_is_held_to_the_studios_state_and_plan(self) -> None:
        self.assign(self.plan(models=["gpt-*"]), studio_id=self.studio["id"])
        as_admin = {**CHAT, "studio_id": self.studio["id"]}
        self.assertEqual(self.error(self.admin.post("/v1/chat/completions", json=as_admin), 403)["code"], "model_not_allowed")
        self.ok(self.admin.post("/v1/studios/pause", json={"studio_id": self.studio["id"]}))
        self.assertEqual(
            self.error(self.admin.post("/v1/chat/completions", json={**as_admin, "model": "gpt-5-mini"}), 403)["code"], "studio_paused"
        )
        unknown = {**as_admin, "studio_id": "studio_01NOSUCHSTUDIO0000000000000"}
        self.assertEqual(self.error(self.admin.post("/v1/chat/completions", json=unknown), 404)["code"], "studio_not_found")

    # --- what the review found ---------------------------------------------------------------------

    def test_a_counted_answer_never_bills_past_its_reservation(self) -> None:
        # 200,000 spaces are a few hundred tokens for the tokenizer but 50,000 at four characters a
        # token: an upstream that reports no usage must not be billed by the rough count.
        self.assign(self.plan(monthly_budget=100), studio_id=self.studio["id"])
        self.sim.script.usage = None
        prompt = "a" + " " * 200_000 + "b"
        self.ok(self.user.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": prompt}]}))
        (record,) = self.records(1)
        self.assertTrue(record.usage_estimated)
        self.assertLess(record.prompt_tokens, 5_000)
        self.assertLessEqual(record.completion_tokens, 20)

    def test_a_malformed_request_is_refused_before_it_is_counted(self) -> None:
        self.assign(self.plan(rpm=1), studio_id=self.studio["id"])
        two_prompts = {"model": "deepseek-v4-flash", "prompt": ["one", "two"], "max_tokens": 5}  # served through chat: one prompt only
        for _ in range(2):
            self.assertEqual(self.error(self.user.post("/v1/completions", json=two_prompts), 400)["param"], "prompt")
        self.ok(self.user.post("/v1/chat/completions", json=CHAT))  # the minute's one request is still there
        for field, value in (("max_tokens", 10_000_001), ("n", 129)):
            with self.subTest(field=field):
                self.assertEqual(self.error(self.user.post("/v1/chat/completions", json={**CHAT, field: value}), 400)["param"], field)
        self.assertEqual(len(self.records(1)), 1)

    def test_the_plan_is_checked_before_what_the_model_serves(self) -> None:
        self.assign(self.plan(models=["deepseek-*"]), studio_id=self.studio["id"])
        error = self.error(self.user.post("/v1/chat/completions", json={**CHAT, "model": "text-embedding-3-small"}), 403)
        self.assertEqual(error["code"], "model_not_allowed")
