"""Plans under real traffic, through two City processes sharing the database and Redis: a monthly budget
is never overspent by a burst, an RPM or concurrency limit holds across the processes, a stream
settles to its real cost (or to what was streamed when its client leaves), and the OpenAI SDK sees
each refusal as the exception OpenAI's own API would raise.
"""

import threading
import time
from typing import Any

import httpx
import openai

from aihub.tests.ledger_view import month_spent
from aihub.tests.live_plans import (
    MICRO_USD,
    MODEL,
    PlanCitiesTestCase,
    burst,
    chat_body,
    dollars,
    error_of,
    exact_prompt,
    price,
    record_cost,
    recorded_cost,
    sse_data,
    stop_shared_processes,
    wait_for_records,
    worst_case,
)
from city.waiting import wait_until


def tearDownModule() -> None:
    stop_shared_processes()


CALLS_PAID_FOR = 100
CALLS_SENT = 200


class BudgetBurstTests(PlanCitiesTestCase):
    """200 calls at once against a budget that pays for exactly 100 of them."""

    def burst_against_budget(self, *, stream: bool) -> None:
        body, worst = exact_prompt(max_tokens=10)
        body = chat_body(body["messages"][0]["content"], 10, stream=stream)
        self.assertEqual(worst_case(body).cost, worst.cost)  # stream_options change nothing in the estimate
        per_call = record_cost(worst)
        self.assertEqual(per_call, worst.cost * MICRO_USD, "each call costs exactly its reservation")
        budget = CALLS_PAID_FOR * worst.cost
        studio = self.planned_studio(models=[MODEL], monthly_budget=dollars(budget))
        self.sim.script.usage = (worst.input_tokens, worst.output_tokens)  # the upstream bills the worst case

        responses = burst(self.urls, studio.token, body, CALLS_SENT)

        answered = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code != 200]
        self.assertEqual(len(answered), CALLS_PAID_FOR)
        self.assertEqual({r.status_code for r in refused}, {402}, [r.text[:300] for r in refused if r.status_code != 402][:3])
        for response in refused:
            error = error_of(response)
            self.assertEqual((error["type"], error["code"]), ("insufficient_quota", "monthly_budget_exceeded"))
        if stream:
            for response in answered:
                self.assertEqual(sse_data(response.text)[-1], "[DONE]")
        self.assertEqual(len(self.sim.requests), CALLS_PAID_FOR, "a refused call never reaches the upstream")
        found = wait_for_records(studio.studio_id, CALLS_PAID_FOR)
        self.assertEqual(len(found), CALLS_PAID_FOR, "one record per answered call, none for refusals")
        self.assertEqual({r.status for r in found}, {200})
        self.assertLessEqual(recorded_cost(studio.studio_id), budget * MICRO_USD)
        self.assertEqual(recorded_cost(studio.studio_id), CALLS_PAID_FOR * per_call)
        self.assertEqual(month_spent(self.redis_url(), "studio", studio.studio_id), recorded_cost(studio.studio_id))
        # The budget is spent: one more call, on either process, is refused.
        for client in studio.clients:
            self.assertEqual(client.post("/v1/chat/completions", json=body).status_code, 402)

    def test_200_calls_at_once_against_a_budget_for_100(self) -> None:
        self.burst_against_budget(stream=False)

    def test_200_streams_at_once_against_a_budget_for_100(self) -> None:
        self.burst_against_budget(stream=True)

    def test_a_token_budget_holds_for_that_token(self) -> None:
        body, worst = exact_prompt(max_tokens=10)
        studio = self.planned_studio(on_token=True, monthly_budget=dollars(5 * worst.cost))
        self.sim.script.usage = (worst.input_tokens, worst.output_tokens)
        self.assertEqual(sorted(r.status_code for r in burst(self.urls, studio.token, body, 10)), [200] * 5 + [402] * 5)
        wait_for_records(studio.studio_id, 5)
        self.assertEqual(month_spent(self.redis_url(), "token", studio.token_id), recorded_cost(studio.studio_id))
        self.assertEqual(recorded_cost(studio.studio_id), 5 * record_cost(worst))
        # The studio's other tokens are not bound by it.
        other = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": studio.studio_id, "name": "other"}))["token"]
        self.assertEqual({r.status_code for r in burst(self.urls, other, body, 3)}, {200})


class RateLimitTests(PlanCitiesTestCase):
    def test_rpm_across_two_processes_refuses_exactly_the_excess(self) -> None:
        rpm, excess = 12, 5
        studio = self.planned_studio(rpm=rpm)
        body = chat_body("Hi", 10)

        responses = burst(self.urls, studio.token, body, rpm + excess)

        answered = [r for r in responses if r.status_code == 200]
        limited = [r for r in responses if r.status_code == 429]
        self.assertEqual((len(answered), len(limited)), (rpm, excess), [r.text[:200] for r in responses if r.status_code not in (200, 429)])
        for response in limited:
            error = error_of(response)
            self.assertEqual((error["type"], error["code"]), ("rate_limit_error", "rate_limit_exceeded"))
            self.assert_retry_after(response)
            self.assert_rate_headers(response, rpm=rpm)
            self.assertEqual(response.headers["x-ratelimit-remaining-requests"], "0")
        for response in answered:
            self.assert_rate_headers(response, rpm=rpm)
        # One counter across both processes: each answer took its own place in it.
        self.assertEqual(sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in answered), list(range(rpm)))
        self.assertEqual(len(self.sim.requests), rpm)

    def test_answers_and_429s_carry_the_requests_and_the_tokens_sets(self) -> None:
        """OpenAI sends both sets on every answer, a 429 included, whichever limit refused it."""
        rpm, tpm = 2, 1_000_000
        studio = self.planned_studio(rpm=rpm, tpm=tpm)
        responses = burst(self.urls, studio.token, chat_body("Hi", 10), rpm + 1)
        self.assertEqual(sorted(r.status_code for r in responses), [200] * rpm + [429])
        for response in responses:
            self.assert_rate_headers(response, rpm=rpm, tpm=tpm)

    def test_a_token_plan_limits_that_token_alone(self) -> None:
        studio = self.planned_studio(on_token=True, rpm=2)
        other = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": studio.studio_id, "name": "other"}))["token"]
        body = chat_body("Hi", 10)
        self.assertEqual([r.status_code for r in burst(self.urls, studio.token, body, 3)].count(429), 1)
        # The studio's other token has no plan of its own: not limited.
        self.assertEqual({r.status_code for r in burst(self.urls, other, body, 4)}, {200})


class ConcurrencyTests(PlanCitiesTestCase):
    def test_the_limit_holds_across_two_processes(self) -> None:
        limit, sent = 3, 8
        studio = self.planned_studio(max_concurrency=limit)
        self.sim.hold()
        results: list[httpx.Response] = []
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(studio.clients[i % 2].post("/v1/chat/completions", json=chat_body("Hi", 10)))
            )
            for i in range(sent)
        ]
        for thread in threads:
            thread.start()
        # The excess is refused at once, while the calls that got a slot are held upstream.
        wait_until(lambda: len(results) >= sent - limit, 20, message=f"{sent - limit} refusals")
        self.assertTrue(self.sim.wait_for_in_flight(limit, 10))
        self.assertEqual(self.sim.in_flight, limit)
        self.sim.release()
        for thread in threads:
            thread.join(REQUEST_JOIN_SECONDS)
        statuses = sorted(r.status_code for r in results)
        self.assertEqual(statuses, [200] * limit + [429] * (sent - limit))
        for response in results:
            if response.status_code == 429:
                self.assertEqual(error_of(response)["code"], "concurrency_limit_exceeded")
                self.assert_retry_after(response)
        self.assertEqual(self.sim.max_in_flight, limit)

        # Every slot came back: as many calls again, at once, all pass.
        self.assertEqual({r.status_code for r in burst(self.urls, studio.token, chat_body("Hi", 10), limit)}, {200})
        self.assertLessEqual(self.sim.max_in_flight, limit)

    def test_sequential_calls_at_concurrency_1_all_pass(self) -> None:
        studio = self.planned_studio(max_concurrency=1)
        for i in range(6):
            client = studio.clients[i % 2]
            response = client.post("/v1/chat/completions", json=chat_body("Hi", 10, stream=i % 3 == 2))
            self.assertEqual(response.status_code, 200, f"call {i}: {response.text[:300]}")
        self.assertEqual(self.sim.max_in_flight, 1)

    def test_a_client_that_leaves_gives_its_slot_back(self) -> None:
        studio = self.planned_studio(max_concurrency=1)
        self.sim.hold()
        with self.assertRaises(httpx.ReadTimeout):
            studio.clients[0].post("/v1/chat/completions", json=chat_body("Hi", 10), timeout=1)
        self.assertTrue(self.sim.wait_for_cancellation(10), "City cancels the upstream call of a client that left")
        self.sim.release()
        # The slot is free again, on the other process too (bounded: the settlement runs after the cancel).
        wait_until(
            lambda: studio.clients[1].post("/v1/chat/completions", json=chat_body("Hi", 10)).status_code == 200,
            10,
            interval=0.2,
            message="a call passes once the one whose client left is settled",
        )
        wait_for_records(studio.studio_id, 2)
        self.assertIn(499, {r.status for r in wait_for_records(studio.studio_id, 2)})


REQUEST_JOIN_SECONDS = 30


class StreamSettlementTests(PlanCitiesTestCase):
    def test_a_stream_settles_to_its_real_usage(self) -> None:
        studio = self.planned_studio(monthly_budget=1.0)
        body = chat_body("Tell me a story.", 500, stream=True)
        worst = worst_case(body)
        self.sim.script.usage = (worst.input_tokens, 42)  # far under the 500 reserved
        response = studio.clients[1].post("/v1/chat/completions", json=body)
        self.assertEqual(response.status_code, 200, response.text[:300])
        (record,) = wait_for_records(studio.studio_id, 1)
        self.assertEqual((record.prompt_tokens, record.completion_tokens, record.status), (worst.input_tokens, 42, 200))
        self.assertEqual(record.cost, record_cost(worst, 42))
        self.assertLess(record.cost, worst.cost * MICRO_USD)
        self.assertEqual(month_spent(self.redis_url(), "studio", studio.studio_id), record.cost)

    def test_a_cancelled_stream_settles_to_what_was_streamed(self) -> None:
        studio = self.planned_studio(monthly_budget=1.0, max_concurrency=1)
        body = chat_body("Count slowly.", 1000, stream=True)
        worst = worst_case(body)
        self.sim.script.text = "one two three four five six seven eight nine ten"
        self.sim.script.stream_pieces = 10
        self.sim.chunk_delay_seconds = 0.3
        with httpx.Client(base_url=self.urls[0], headers={"Authorization": f"Bearer {studio.token}"}, timeout=10) as client:
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                self.assertEqual(response.status_code, 200)
                pieces = 0
                for line in response.iter_lines():
                    if line.startswith("data: ") and '"content":"' in line.replace(" ", "") and '"content":""' not in line:
                        pieces += 1
                    if pieces >= 2:
                        break  # leave mid-stream
        self.assertTrue(self.sim.wait_for_cancellation(10))
        (record,) = wait_for_records(studio.studio_id, 1)
        self.assertEqual(record.status, 499)
        self.assertGreater(record.completion_tokens, 0, "what was streamed is billed")
        # No more than the text the upstream had to send (a token is at least a character), far under
        # the 1,000 reserved; priced at the catalog's prices.
        self.assertLessEqual(record.completion_tokens, len(self.sim.script.text))
        self.assertEqual(record.cost, price(record.prompt_tokens, record.completion_tokens))
        self.assertLess(record.cost, worst.cost * MICRO_USD)
        self.assertEqual(month_spent(self.redis_url(), "studio", studio.studio_id), record.cost)
        # Its concurrency slot came back.
        self.assertEqual(studio.clients[1].post("/v1/chat/completions", json=chat_body("Hi", 10)).status_code, 200)


class OpenAISDKPlanTests(PlanCitiesTestCase):
    def sdk(self, token: str, *, city: int = 0, max_retries: int = 0, **kwargs: Any) -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.urls[city] + "/v1", api_key=token, max_retries=max_retries, timeout=20, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_a_model_outside_the_plan_is_permission_denied_and_not_listed(self) -> None:
        studio = self.planned_studio(models=["gpt-5*", "text-embedding-*"])
        sdk = self.sdk(studio.token)
        with self.assertRaises(openai.PermissionDeniedError) as caught:
            sdk.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "Hi"}])
        self.assertEqual(caught.exception.status_code, 403)
        self.assertEqual(caught.exception.code, "model_not_allowed")
        self.assertIn("gpt-4.1", caught.exception.message)
        self.assertEqual(self.sim.requests, [])
        listed = {m.id for m in sdk.models.list()}
        self.assertEqual(listed, {"gpt-5.4", "gpt-5", "gpt-5-mini", "gpt-5-nano", "text-embedding-3-small", "text-embedding-3-large"})
        for path in ("/v1/models", "/v1/ai/models"):
            answer = self.ok(studio.clients[1].get(path))
            self.assertEqual({m["id"] for m in answer["data"]}, listed, path)
            self.assertEqual({m["id"] for m in answer["items"]}, listed, path)
        # The allowed ones work.
        self.assertEqual(
            sdk.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=5).model, "gpt-5-mini"
        )

    def test_rate_limited_then_the_sdk_retry_is_honoured(self) -> None:
        studio = self.planned_studio(max_concurrency=1)
        seen: list[tuple[float, int, dict[str, str]]] = []
        first_done = threading.Event()

        def on_response(response: httpx.Response) -> None:
            seen.append((time.monotonic(), response.status_code, dict(response.headers)))
            if response.status_code == 429:
                self.sim.release()  # the call holding the slot ends now; the retry will find it free

        # One call holds the only slot, upstream.
        self.sim.hold()

        def hold_the_slot() -> None:
            studio.clients[1].post("/v1/chat/completions", json=chat_body("Hi", 5))
            first_done.set()

        holder = threading.Thread(target=hold_the_slot)
        holder.start()
        self.assertTrue(self.sim.wait_for_in_flight(1, 10))
        # Without retries the SDK raises RateLimitError with City's message.
        with self.assertRaises(openai.RateLimitError) as caught:
            self.sdk(studio.token).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
        self.assertEqual(caught.exception.code, "concurrency_limit_exceeded")
        # With one retry, it waits as told (retry-after-ms) and then succeeds.
        http_client = httpx.Client(event_hooks={"response": [on_response]})
        self.addCleanup(http_client.close)
        sdk = self.sdk(studio.token, max_retries=1, http_client=http_client)
        reply = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
        self.assertEqual(reply.model, MODEL)
        holder.join(REQUEST_JOIN_SECONDS)
        self.assertTrue(first_done.is_set())
        self.assertEqual([status for _, status, _ in seen], [429, 200])
        (refused_at, _, headers), (answered_at, _, _) = seen
        wait_ms = int(headers["retry-after-ms"])
        self.assertGreater(wait_ms, 0)
        self.assertGreaterEqual(answered_at - refused_at, wait_ms / 1000, "the SDK waited as long as retry-after-ms said")

    def test_rpm_exhausted_is_a_rate_limit_error(self) -> None:
        studio = self.planned_studio(rpm=1)
        sdk = self.sdk(studio.token)
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
        with self.assertRaises(openai.RateLimitError) as caught:
            self.sdk(studio.token, city=1).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
        self.assertEqual((caught.exception.status_code, caught.exception.code), (429, "rate_limit_exceeded"))
        self.assertEqual(caught.exception.response.headers["x-ratelimit-limit-requests"], "1")
        self.assertEqual(caught.exception.response.headers["x-ratelimit-remaining-requests"], "0")

    def test_over_budget_and_over_the_cap_are_402_with_citys_message(self) -> None:
        body = chat_body("Hi", 1000)
        worst = worst_case(body)
        studio = self.planned_studio(monthly_budget=dollars(worst.cost - 1))
        with self.assertRaises(openai.APIStatusError) as caught:
            self.sdk(studio.token).chat.completions.create(**body)
        self.assertEqual((caught.exception.status_code, caught.exception.code), (402, "monthly_budget_exceeded"))
        self.assertEqual(caught.exception.type, "insufficient_quota")
        self.assertIn("budget", caught.exception.message)

        capped = self.planned_studio(max_cost_per_request=dollars(worst.cost - 1))
        with self.assertRaises(openai.APIStatusError) as caught:
            self.sdk(capped.token, city=1).chat.completions.create(**body)
        self.assertEqual((caught.exception.status_code, caught.exception.code), (402, "per_request_budget_exceeded"))
        self.assertIn("max_tokens", caught.exception.message)
        self.assertEqual(self.sim.requests, [])
