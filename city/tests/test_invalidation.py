"""city/invalidation.py in one process: handlers after commit, the listener against a real Redis (one the
test starts, late, to show the retry), and the ASGI lifespan that starts it."""

import asyncio
import time

from django.db import connection, transaction
from django.test import SimpleTestCase, TestCase, override_settings

from city import invalidation
from city.livecity import free_port
from city.liveredis import LiveRedis
from city.runtime_env import RuntimeEnv
from city.tests.test_broadcast import subscribers


class Recorder:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, key: str) -> None:
        self.keys.append(key)


class RegisteredTopic:
    """A topic of the test's own, with a recording handler, unregistered afterwards."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.topic = f"test.{self.id()}"  # type: ignore[attr-defined]
        self.handled = Recorder()
        invalidation.register(self.topic, self.handled)
        self.addCleanup(invalidation._handlers.pop, self.topic, None)  # type: ignore[attr-defined]


class PublishTests(RegisteredTopic, TestCase):
    def test_handlers_run_once_the_transaction_commits(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            with transaction.atomic():
                invalidation.publish(self.topic, "k1")
                self.assertEqual(self.handled.keys, [], "not before the commit: the others would re-read the old row")
        self.assertEqual(self.handled.keys, ["k1"])

    def test_nothing_is_published_for_a_rolled_back_change(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            try:
                with transaction.atomic():
                    invalidation.publish(self.topic, "k1")
                    raise RuntimeError("the change fails")
            except RuntimeError:
                pass
        self.assertEqual(self.handled.keys, [])

    def test_a_failing_handler_does_not_stop_the_others(self) -> None:
        def broken(key: str) -> None:
            raise ValueError(key)

        invalidation._handlers[self.topic].insert(0, broken)
        with self.assertLogs("city.invalidation", "ERROR"):
            invalidation.dispatch(self.topic, "k2")
        self.assertEqual(self.handled.keys, ["k2"])

    def test_registering_a_handler_twice_runs_it_once(self) -> None:
        invalidation.register(self.topic, self.handled)
        invalidation.dispatch(self.topic, "k3")
        self.assertEqual(self.handled.keys, ["k3"])


class ListenerTests(RegisteredTopic, SimpleTestCase):
    def test_messages_from_other_processes_are_handled_and_its_own_and_malformed_ones_are_not(self) -> None:
        listener = invalidation.Listener()
        listener._handle({"topic": self.topic, "key": "theirs", "origin": "another-process"})
        listener._handle({"topic": self.topic, "key": "mine", "origin": invalidation.origin()})
        listener._handle({"topic": self.topic, "key": 7, "origin": "another-process"})
        listener._handle("not a message")
        self.assertEqual(self.handled.keys, ["theirs"])

    @override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
    def test_in_embedded_mode_nothing_is_started(self) -> None:
        self.assertFalse(invalidation.broadcasting())

        async def start() -> invalidation.Listener:
            listener = invalidation.Listener()
            listener.start()
            return listener

        listener = asyncio.run(start())
        self.assertTrue(listener.started)
        self.assertIsNone(listener._task)

    def test_the_listener_retries_until_redis_answers_then_receives(self) -> None:
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        layers = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [url], "prefix": "city-db0"}}}
        with override_settings(CHANNEL_LAYERS=layers), self.assertLogs("city.invalidation", "WARNING") as logs:
            asyncio.run(self.listen_before_redis_starts(port, url))
        self.assertIn("cannot subscribe", logs.output[0])

    async def listen_before_redis_starts(self, port: int, url: str) -> None:
        from channels.layers import get_channel_layer

        listener = invalidation.Listener()
        listener.start()
        try:
            await asyncio.sleep(1.0)
            self.assertFalse(listener.subscribed.is_set())
            server = await asyncio.to_thread(LiveRedis, port=port)
            self.addCleanup(server.stop)
            await asyncio.wait_for(listener.subscribed.wait(), invalidation.RETRY_MAX_SECONDS + 10)
            self.assertEqual(await asyncio.to_thread(subscribers, url), 1)
            message = {"type": "city.invalidate", "topic": self.topic, "key": "k4", "origin": "another-process"}
            await get_channel_layer().group_send(invalidation.GROUP, message)
            deadline = time.monotonic() + 10
            while not self.handled.keys and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            self.assertEqual(self.handled.keys, ["k4"])
        finally:
            await listener.stop()
            await get_channel_layer().flush()


class LifespanTests(SimpleTestCase):
    def test_the_wrapper_answers_the_lifespan_and_starts_the_listener(self) -> None:
        async def inner(scope, receive, send) -> None:
            raise AssertionError("the lifespan is not passed on: the app inside does not speak it")

        app = invalidation.WithInvalidationListener(inner)
        sent: list[dict] = []
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> dict:
            return incoming.pop(0)

        async def send(message) -> None:
            sent.append(dict(message))

        async def run() -> None:
            await app({"type": "lifespan"}, receive, send)

        self.addCleanup(setattr, invalidation.listener, "started", invalidation.listener.started)
        asyncio.run(run())
        self.assertEqual([m["type"] for m in sent], ["lifespan.startup.complete", "lifespan.shutdown.complete"])
        self.assertFalse(invalidation.listener.started, "stopped with the shutdown")


class RuntimeEnvStaleReadTests(TestCase):
    def test_a_snapshot_read_while_a_drop_arrives_is_served_but_not_kept(self) -> None:
        env = RuntimeEnv()
        env.get("CITY_TEST_KEY")
        with self.assertNumQueries(0):
            env.get("CITY_TEST_KEY")  # kept: no drop came

        def drop_during(execute, sql, params, many, context):  # another thread's drop, mid-read
            result = execute(sql, params, many, context)
            env.drop()
            return result

        env.drop()
        with connection.execute_wrapper(drop_during):
            env.get("CITY_TEST_KEY")
        with self.assertNumQueries(1):
            env.get("CITY_TEST_KEY")  # read again: what came back before the drop may be the old state
