"""No usage lost when a City process dies (kill -9) or Redis stops, with plans in force.

kill -9: calls in flight (streams stalled mid-way upstream) and calls answered moments before (their
records still in the writer's queue) are all billed once a process is back: their reservations' leases
run out and a reaper writes what the dead process could not, and the budget counters equal the sum of
the records. Redis stopped (a redis-server of the test's own, never CI's): budgeted calls fail closed
(503 budget_unavailable), calls under rate limits alone go on uncounted (limits fail open, as
documented), and every answered call still has its record.
"""

import httpx

from aihub.tests.ledger_view import month_spent
from aihub.tests.live_plans import (
    PlanCitiesTestCase,
    chat_body,
    error_of,
    recorded_cost,
    records,
    wait_for_records,
)
from city.waiting import wait_until

STREAMS, ANSWERED = 10, 10
# How long the reaper may take to bill a dead process's calls: its lease, its pass interval, and the load.
REAP_WAIT_SECONDS = 45.0


class KillTests(PlanCitiesTestCase):
    own = True  # a process of its own dies

    def test_kill_9_with_calls_in_flight_loses_no_usage(self) -> None:
        studio = self.planned_studio(monthly_budget=5.0)
        stream_body, call_body = chat_body("Tell me a long story.", 200, stream=True), chat_body("Hi", 20)
        self.kill_with_calls_in_flight(0, studio, stream_body, call_body, streams=STREAMS, answered=ANSWERED)

        self.assert_billed_after_crash(studio, stream_body, streams=STREAMS, answered=ANSWERED, timeout=REAP_WAIT_SECONDS)
        self.assertEqual(month_spent(self.redis_url(), "studio", studio.studio_id), recorded_cost(studio.studio_id))
        # The dead process's concurrency and budget holds are gone: the studio calls on as before.
        for url in self.urls:
            again = httpx.post(
                url + "/v1/chat/completions", json=call_body, headers={"Authorization": f"Bearer {studio.token}"}, timeout=30
            )
            self.assertEqual(again.status_code, 200, again.text[:300])


class RedisStoppedTests(PlanCitiesTestCase):
    own = True  # its Redis is stopped mid-test: never the run's shared one

    def test_budgets_fail_closed_limits_fail_open_and_no_record_is_lost(self) -> None:
        assert self.redis is not None
        budgeted = self.planned_studio(monthly_budget=1.0, rpm=1000)
        limited = self.planned_studio(rpm=1000, tpm=1_000_000, max_concurrency=50)
        body = chat_body("Hi", 20)
        for studio in (budgeted, limited):
            for client in studio.clients:
                self.assertEqual(client.post("/v1/chat/completions", json=body).status_code, 200)

        self.redis.stop()
        try:
            for client in budgeted.clients:
                response = client.post("/v1/chat/completions", json=body)
                self.assertEqual(response.status_code, 503, response.text[:300])
                error = error_of(response)
                self.assertEqual((error["type"], error["code"]), ("api_error", "budget_unavailable"))
                self.assertGreaterEqual(int(response.headers["retry-after"]), 1)
            served = [client.post("/v1/chat/completions", json=body) for client in limited.clients for _ in range(3)]
            self.assertEqual([r.status_code for r in served], [200] * 6, [r.text[:200] for r in served])
            streamed = limited.clients[1].post("/v1/chat/completions", json=chat_body("Hi", 20, stream=True))
            self.assertEqual(streamed.status_code, 200)
            # Every answered call is billed, though the counters were away.
            wait_for_records(limited.studio_id, 2 + 6 + 1)
            self.assertEqual(len(records(budgeted.studio_id)), 2, "a refused call reaches no upstream and leaves no record")
            self.assertEqual(len(self.sim.requests), 2 + 2 + 6 + 1)
        finally:
            self.redis.start()

        # Back: budgeted calls pass again within a bounded time.
        wait_until(
            lambda: all(c.post("/v1/chat/completions", json=body).status_code == 200 for c in budgeted.clients),
            20,
            interval=0.5,
            message="budgeted calls pass once Redis is back",
        )
        self.assertEqual(len(wait_for_records(budgeted.studio_id, 4)), 4)
