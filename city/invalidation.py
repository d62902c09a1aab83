"""Invalidations broadcast to every City process, so that a change made through one is honoured by all.

    publish("token", digest)  ─ on commit ─┬─ this process's handlers, at once
                                           └─ the channel layer's group ─→ every other process's listener
                                                                             └─ its handlers

Apps register a handler per topic (`register`, from AppConfig.ready); `city/` names no app. A handler
only drops cache entries, so a message can never make a process trust more than its database: a lost,
late or forged message costs at most a re-read.

The layer is channels_redis' pub/sub layer when CITY_CHANNEL_LAYER_URL (by default REDIS_URL) is set:
one PUBLISH per change, fanned out by Redis to the processes subscribed at that moment, and nothing kept
in Redis for a process that has gone. (The core Redis layer's groups would keep each process's channel
in a sorted set, copy every message into a list per member, dead members included, until the group
expires: delivery to a process that is briefly away, which the caches' TTL already covers.)

Nothing here may block or fail a request: publishing is fire-and-forget on the server's event loop, and a
failure is logged and ignored. A message lost while Redis is away leaves the caches' TTL
(CITY_TOKEN_CACHE_SECONDS, CITY_ENV_CACHE_SECONDS) as the bound. Without a shared layer (embedded mode:
one process, in-memory layer) publishing runs the local handlers and nothing else.
"""

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from city import background

log = logging.getLogger("city.invalidation")

GROUP = "city.invalidation"
_NONCE = uuid.uuid4().hex


def origin() -> str:
    """This process, so that its own messages are not handled twice (the pid tells forked workers apart)."""
    return f"{_NONCE}-{os.getpid()}"


PUBLISH_TIMEOUT_SECONDS = 2.0
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 0.5, 10.0

Handler = Callable[[str], None]
_handlers: dict[str, list[Handler]] = {}


def register(topic: str, handler: Handler) -> None:
    """`handler(key)` drops what `topic`'s change at `key` makes stale; it must be quick and not block."""
    if handler not in _handlers.setdefault(topic, []):
        _handlers[topic].append(handler)


def broadcasting() -> bool:
    """Whether other processes can hear this one (a shared channel layer is configured)."""
    return settings.CHANNEL_LAYERS["default"]["BACKEND"] != "channels.layers.InMemoryChannelLayer"


def publish(topic: str, key: str = "") -> None:
    """After the current transaction commits (at once outside one): handle here, then tell the others."""
    transaction.on_commit(lambda: _published(topic, key))


def _published(topic: str, key: str) -> None:
    dispatch(topic, key)
    if broadcasting():
        _send({"type": "city.invalidate", "topic": topic, "key": key, "origin": origin()})


def dispatch(topic: str, key: str) -> None:
    for handler in _handlers.get(topic, ()):
        try:
            handler(key)
        except Exception:
            log.exception("invalidation handler for %s failed", topic)


def _send(message: dict[str, Any]) -> None:
    loop = listener.loop
    if loop is not None and loop.is_running():
        # A server process: the server's loop sends it; the request does not wait for Redis.
        loop.call_soon_threadsafe(_spawn, message)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        _spawn(message)  # on some other event loop: send it from there
        return
    # No event loop here (a management command, a test process): send it now, within the timeout.
    async_to_sync(_send_logged)(message)


_pending: set[asyncio.Task[None]] = set()  # a task nobody references may be collected before it runs


def _spawn(message: dict[str, Any]) -> None:
    task = asyncio.get_running_loop().create_task(_send_logged(message))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _send_logged(message: dict[str, Any]) -> None:
    try:
        await asyncio.wait_for(get_channel_layer().group_send(GROUP, message), PUBLISH_TIMEOUT_SECONDS)
    except Exception as error:  # the TTL covers a lost message
        log.warning(
            "invalidation %s not broadcast (the caches' TTL applies instead): %s: %s", message["topic"], type(error).__name__, error
        )


class Listener:
    """Receives the other processes' invalidations on the server's event loop, for the process's life."""

    def __init__(self) -> None:
        self.started = False  # checked on every request: one attribute read
        self.loop: asyncio.AbstractEventLoop | None = None
        self.subscribed = asyncio.Event()  # set once the group is joined (the layer resubscribes by itself after)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Called on the event loop; a second call does nothing, nor does one in embedded mode."""
        if self.started:
            return
        self.started = True
        if not broadcasting():
            return
        self.loop = asyncio.get_running_loop()
        self.subscribed = asyncio.Event()
        self._task = self.loop.create_task(self._run(), name="city-invalidation-listener")

    async def stop(self) -> None:
        task, self._task, self.loop, self.started = self._task, None, None, False
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            layer = get_channel_layer()
            try:
                channel = await layer.new_channel()
                await layer.group_add(GROUP, channel)
                # Once joined, the layer resubscribes by itself if Redis drops and comes back.
                self.subscribed.set()
                delay = RETRY_FIRST_SECONDS
                while True:
                    self._handle(await layer.receive(channel))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "invalidation listener cannot subscribe (retry in %.1f s; the caches' TTL applies): %s: %s",
                    delay,
                    type(error).__name__,
                    error,
                )
            self.subscribed.clear()
            with contextlib.suppress(Exception):
                await layer.flush()  # a clean connection for the next attempt; a failure here says nothing new
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def _handle(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("origin") == origin():
            return
        topic, key = message.get("topic"), message.get("key")
        if isinstance(topic, str) and isinstance(key, str):
            dispatch(topic, key)


listener = Listener()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WithInvalidationListener:
    """ASGI wrapper: starts the listener with the ASGI lifespan (uvicorn) or on the first request (Daphne,
    which sends no lifespan events), and answers the lifespan protocol, which the app inside does not speak:
    at its shutdown (no request left), the work requests left running ends first (city/background.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if not listener.started:
            listener.start()
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                listener.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await background.drain()
                await listener.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
