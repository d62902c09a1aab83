"""Plans in embedded mode: one City process and no Redis. The same limits and budgets hold, counted in
the process, and this month's spend is rebuilt from the usage records when the process starts again."""

import httpx

from aihub.tests.live_plans import (
    MICRO_USD,
    MODEL,
    EmbeddedCityTestCase,
    burst,
    chat_body,
    dollars,
    error_of,
    exact_prompt,
    record_cost,
    recorded_cost,
    wait_for_records,
)
from city.waiting import wait_until


class EmbeddedPlanTests(EmbeddedCityTestCase):
    def test_a_burst_never_overspends_the_budget(self) -> None:
        paid_for, sent = 30, 60
        body, worst = exact_prompt(max_tokens=10)
        studio = self.planned_studio(models=[MODEL], monthly_budget=dollars(paid_for * worst.cost))
        self.sim.script.usage = (worst.input_tokens, worst.output_tokens)
        responses = burst(self.urls, studio.token, body, sent)
        self.assertEqual(sorted(r.status_code for r in responses), [200] * paid_for + [402] * (sent - paid_for))
        self.assertEqual({error_of(r)["code"] for r in responses if r.status_code == 402}, {"monthly_budget_exceeded"})
        wait_for_records(studio.studio_id, paid_for)
        self.assertEqual(recorded_cost(studio.studio_id), paid_for * record_cost(worst))
        self.assertLessEqual(recorded_cost(studio.studio_id), paid_for * worst.cost * MICRO_USD)

    def test_rpm_refuses_exactly_the_excess_with_openais_headers(self) -> None:
        rpm, excess = 8, 3
        studio = self.planned_studio(rpm=rpm)
        responses = burst(self.urls, studio.token, chat_body("Hi", 10), rpm + excess)
        limited = [r for r in responses if r.status_code == 429]
        self.assertEqual(len(limited), excess)
        for response in responses:
            self.assert_rate_headers(response, rpm=rpm)
        for response in limited:
            self.assertEqual(error_of(response)["code"], "rate_limit_exceeded")
            self.assert_retry_after(response)

    def test_concurrency_is_never_exceeded(self) -> None:
        limit, sent = 2, 6
        studio = self.planned_studio(max_concurrency=limit)
        self.sim.latency_seconds = 0.3  # answers overlap
        responses = burst(self.urls, studio.token, chat_body("Hi", 10), sent)
        self.assertEqual(sorted(r.status_code for r in responses)[:limit], [200] * limit)
        self.assertEqual({error_of(r)["code"] for r in responses if r.status_code != 200}, {"concurrency_limit_exceeded"})
        self.assertEqual(self.sim.max_in_flight, limit)
        self.sim.latency_seconds = 0
        for _ in range(3):  # every slot came back
            self.assertEqual(studio.clients[0].post("/v1/chat/completions", json=chat_body("Hi", 10)).status_code, 200)

    def test_a_restart_forgets_nothing_of_this_months_spend(self) -> None:
        body, worst = exact_prompt(max_tokens=10)
        studio = self.planned_studio(monthly_budget=dollars(3 * worst.cost))
        self.sim.script.usage = (worst.input_tokens, worst.output_tokens)
        for _ in range(2):
            self.assertEqual(studio.clients[0].post("/v1/chat/completions", json=body).status_code, 200)

        url = self.restart()  # SIGTERM: the process writes its last records before it ends
        self.assertEqual(len(wait_for_records(studio.studio_id, 2)), 2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {studio.token}"}, timeout=30) as client:
            self.assertEqual(client.post("/v1/chat/completions", json=body).status_code, 200)  # the third it pays for
            refused = client.post("/v1/chat/completions", json=body)
            self.assertEqual(refused.status_code, 402, refused.text[:300])
            self.assertEqual(error_of(refused)["code"], "monthly_budget_exceeded")
        wait_until(lambda: recorded_cost(studio.studio_id) == 3 * record_cost(worst), 10, message="three calls billed")

    def test_kill_9_with_calls_in_flight_loses_no_usage(self) -> None:
        """Without Redis the ledger journals each call on local disk until its record is written; the
        next process writes what the dead one could not."""
        streams, answered = 5, 5
        studio = self.planned_studio(monthly_budget=5.0, max_concurrency=streams + answered)
        stream_body, call_body = chat_body("Tell me a long story.", 200, stream=True), chat_body("Hi", 20)
        self.kill_with_calls_in_flight(0, studio, stream_body, call_body, streams=streams, answered=answered)

        self.assert_billed_after_crash(studio, stream_body, streams=streams, answered=answered, timeout=20)
        # The dead process's concurrency slots died with it: as many calls as the limit pass at once.
        replies = burst(self.urls, studio.token, call_body, streams + answered)
        self.assertEqual([r.status_code for r in replies], [200] * (streams + answered))
