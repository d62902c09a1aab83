"""The simulators' count of requests in flight and their hold switch, which the plan tests measure
City's concurrency limits with: the count must be exact, or those tests prove nothing."""

import threading

import httpx
from django.test import SimpleTestCase

from aihub.tests.upstream.openai_sim import OpenAISim
from city.waiting import wait_until

CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "Hi"}]}


class InFlightTests(SimpleTestCase):
    def setUp(self) -> None:
        self.sim = OpenAISim().start()
        self.addCleanup(self.sim.stop)

    def post_in_threads(self, count: int, body: dict) -> tuple[list[threading.Thread], list[int]]:
        statuses: list[int] = []

        def post() -> None:
            statuses.append(httpx.post(self.sim.url + "/v1/chat/completions", json=body, timeout=10).status_code)

        threads = [threading.Thread(target=post) for _ in range(count)]
        for thread in threads:
            thread.start()
        return threads, statuses

    def test_held_answers_count_in_flight_until_released(self) -> None:
        self.sim.hold()
        threads, statuses = self.post_in_threads(3, CHAT)
        self.assertTrue(self.sim.wait_for_in_flight(3, timeout=5))
        self.assertEqual(statuses, [])  # held: nobody has an answer yet
        self.sim.release()
        for thread in threads:
            thread.join(10)
        self.assertEqual(statuses, [200, 200, 200])
        self.assertEqual((self.sim.in_flight, self.sim.max_in_flight), (0, 3))

    def test_streams_count_until_their_last_chunk(self) -> None:
        self.sim.hold()
        threads, statuses = self.post_in_threads(2, {**CHAT, "stream": True})
        self.assertTrue(self.sim.wait_for_in_flight(2, timeout=5))
        self.sim.release()
        for thread in threads:
            thread.join(10)
        self.assertEqual(statuses, [200, 200])
        self.assertEqual((self.sim.in_flight, self.sim.max_in_flight), (0, 2))

    def test_a_client_that_leaves_a_held_answer_is_counted_out(self) -> None:
        self.sim.hold()
        with self.assertRaises(httpx.ReadTimeout):
            httpx.post(self.sim.url + "/v1/chat/completions", json=CHAT, timeout=0.3)
        self.assertTrue(self.sim.wait_for_cancellation(5))
        wait_until(lambda: self.sim.in_flight == 0, 5, message="the request left is counted out")
        self.assertEqual(self.sim.max_in_flight, 1)

    def test_sequential_requests_never_overlap(self) -> None:
        for _ in range(5):
            self.assertEqual(httpx.post(self.sim.url + "/v1/chat/completions", json=CHAT, timeout=10).status_code, 200)
        self.assertEqual((self.sim.in_flight, self.sim.max_in_flight), (0, 1))
