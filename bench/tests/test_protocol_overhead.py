"""bench/protocol_overhead.py's arithmetic, requests and answer checks (no server started)."""

import json
from collections import Counter

from django.test import SimpleTestCase

from bench.protocol_overhead import COMPLETION_TEXT, QUESTION, REFERENCE, added, protocols, report, round_orders


class ProtocolOverheadTests(SimpleTestCase):
    def test_added_latency_is_route_minus_chat_and_the_report_checks_the_goal(self) -> None:
        chat, route = [1.0, 2.0, 3.0], [1.2, 2.5, 3.1]
        row = added(chat, route)
        self.assertAlmostEqual(row["added_p50"], 0.5)
        self.assertAlmostEqual(row["added_paired_median"], 0.2)
        self.assertAlmostEqual(row["added_p99"], 3.088 - 2.98)
        slow = added(chat, [1.9, 2.4, 3.9]) | {"cpu_ms_per_request": 0.9, "goal": True}
        cells = {"whole": {REFERENCE: added(chat, chat) | {"cpu_ms_per_request": 0.5}, "messages": slow}}
        meta = dict.fromkeys(("commit", "city", "database", "cpus", "python", "load_before", "load_after", "requests", "warmup"), "x")
        table = report(cells, meta | {"command": "python bench/protocol_overhead.py", "errors_logged": 0})
        self.assertIn("| chat/completions | 2.00 / 2.80 / 2.98 | reference | – | – | 0.50 |", table)
        self.assertIn("| messages | 2.40 / 3.60 / 3.87 | +0.40 | +0.89 | +0.90 | 0.90 |", table)
        self.assertIn("- ✗ messages, whole: adds +0.40 ms at p50 (goal < 0.3 ms)", table)

    def test_every_protocol_asks_the_same_question_and_checks_its_own_answer(self) -> None:
        answers = {
            REFERENCE: {"choices": [{"message": {"content": COMPLETION_TEXT}}]},
            "responses, store: false": {"id": "resp_1", "output": [{"type": "message", "content": [{"text": COMPLETION_TEXT}]}]},
            "responses, stored": {"id": "resp_1", "output": [{"type": "message", "content": [{"text": COMPLETION_TEXT}]}]},
            "messages": {"content": [{"type": "text", "text": COMPLETION_TEXT}]},
        }
        last_events = {REFERENCE: b"data: [DONE]\n\n", "messages": b"event: message_stop\ndata: {}\n\n"}
        for protocol in protocols():
            with self.subTest(protocol=protocol.name):
                for stream in (False, True):
                    body = protocol.body(stream)
                    self.assertIn(QUESTION, json.dumps(body))
                    self.assertEqual(body.get("stream", False), stream)
                answer = json.dumps(answers[protocol.name]).encode()
                self.assertIsNone(protocol.check(answer, False))
                self.assertIsNotNone(protocol.check(answer.replace(b"Hello", b"Bye"), False))
                stream_end = last_events.get(protocol.name, b"event: response.completed\ndata: {}\n\n")
                self.assertIsNone(protocol.check(b'data: {"delta": "tok "}\n\n' + stream_end, True))
                self.assertIsNotNone(protocol.check(b'data: {"delta": "tok "}\n\n', True))
        self.assertEqual([p.goal for p in protocols()], [True, True, False, True])

    def test_rounds_are_shuffled_so_that_no_route_always_follows_the_stored_one(self) -> None:
        routes = protocols()
        orders = round_orders(routes, 1000)
        self.assertTrue(all(sorted(p.name for p in order) == sorted(p.name for p in routes) for order in orders))
        self.assertEqual([p.name for p in round_orders(routes, 3)[2]], [p.name for p in orders[2]])  # the same every run
        # Within a round and across rounds' ends, what comes right after the stored route.
        sequence = [p.name for order in orders for p in order]
        after = Counter(sequence[i + 1] for i, name in enumerate(sequence[:-1]) if name == "responses, stored")
        self.assertEqual(set(after), {p.name for p in routes})
        for name in (REFERENCE, "responses, store: false", "messages"):
            self.assertGreater(after[name], 200, after)  # about a third each of the rounds after it
