"""No usage lost when a City process dies (kill -9) or Redis stops, with plans in force.

kill -9: calls in flight (streams stalled mid-way upstream) and calls answered moments before (their
records still in the writer's queue) are all billed once a process is back: their reservations' leases
run out and a reaper writes what the dead process could not, and the budget counters equal the sum of
the records. Redis stopped (a redis-server of the test's own, never CI's): budgeted calls fail closed
(503 budget_unavailable), calls under rate limits alone go on uncounted (limits fail open, as
documented), and every answered call still has its record.
"""

import os
import signal
import threading

import httpx

from aihub.tests.ledger_view import month_spent
from aihub.tests.live_plans import (
    PlanCitiesTestCase,
    burst,
    chat_body,
    error_of,
    price,
    recorded_cost,
    records,
    wait_for_records,
    worst_case,
)
from city.livecity import LiveCity
from city.waiting import wait_until

STREAMS, ANSWERED = 10, 10
# How long the reaper may take to bill a dead process's calls: its lease, its pass interval, and the load.
REAP_WAIT_SECONDS = 45.0


class KillTests(PlanCitiesTestCase):
    own = True  # a process of its own dies

    def test_kill_9_with_calls_in_flight_loses_no_usage(self) -> None:
        studio = self.planned_studio(monthly_budget=5.0)
        victim = self.cities[0]
        stream_body = chat_body("Tell me a long story.", 200, stream=True)
        call_body = chat_body("Hi", 20)
        self.sim.script.stream_pieces = 8
        self.sim.stall_after_chunks, self.sim.stall_seconds = 3, 60.0  # streams stop mid-way, upstream

        def stream_until_cut() -> None:
            try:
                with httpx.Client(timeout=60) as client:
                    with client.stream(
                        "POST", victim.url + "/v1/chat/completions", json=stream_body, headers={"Authorization": f"Bearer {studio.token}"}
                    ) as response:
                        for _ in response.iter_lines():
                            pass
            except httpx.HTTPError:
                pass  # the process died under it

        streams = [threading.Thread(target=stream_until_cut) for _ in range(STREAMS)]
        for thread in streams:
            thread.start()
        self.assertTrue(self.sim.wait_for_in_flight(STREAMS, 20), f"{STREAMS} streams mid-way upstream")
        answered = burst([victim.url], studio.token, call_body, ANSWERED)
        os.kill(victim.process.pid, signal.SIGKILL)  # at once: their records are likely still queued
        victim.process.wait(10)
        self.assertEqual([r.status_code for r in answered], [200] * ANSWERED)
        written_before = len(records(studio.studio_id))
        self.assertLess(written_before, STREAMS + ANSWERED, "the streams in flight had no record when the process died")
        for thread in streams:
            thread.join(30)
        self.cities[0] = LiveCity(extra_env=self.env())  # a process back in its place

        reached = len(self.sim.requests)
        self.assertEqual(reached, STREAMS + ANSWERED)
        found = wait_for_records(studio.studio_id, reached, timeout=REAP_WAIT_SECONDS)
        self.assertEqual(len(found), reached, "one record per call that reached the upstream, no more")
        self.assertEqual(len({r.call_id for r in found}), reached)
        answered_records = [r for r in found if r.status == 200]
        interrupted = [r for r in found if r.error_code == "interrupted"]
        self.assertEqual((len(answered_records), len(interrupted)), (ANSWERED, STREAMS), [(r.status, r.error_code) for r in found])
        stream_worst = worst_case(stream_body)
        for record in interrupted:
            # Billed at the estimate: the model may have run to its cap.
            self.assertEqual((record.prompt_tokens, record.completion_tokens), (stream_worst.input_tokens, stream_worst.output_tokens))
            self.assertEqual(record.cost, price(stream_worst.input_tokens, stream_worst.output_tokens))
            self.assertTrue(record.usage_estimated)
        self.assertEqual(month_spent(self.redis_url(), "studio", studio.studio_id), recorded_cost(studio.studio_id))
        # The dead process's concurrency and budget holds are gone: the studio calls on as before.
        again = httpx.post(
            self.cities[0].url + "/v1/chat/completions", json=call_body, headers={"Authorization": f"Bearer {studio.token}"}, timeout=30
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
