"""A TCP proxy on 127.0.0.1 in front of a real Redis, that makes it slow in chosen ways: every reply late
by `reply_delay` seconds, and the commands that carry `held` (a script's SHA, say) read `hold` seconds
late, each connection's bytes kept in their order. For the tests of what City does while Redis has not
yet answered, or has not yet read, a command.

A command is matched within one read of its connection (City writes a command in one piece).
"""

import asyncio
import threading
import time
from urllib.parse import urlparse

from city.livecity import free_port


class SlowRedisProxy:
    def __init__(self, redis_url: str, *, reply_delay: float = 0.0, held: bytes = b"", hold: float = 0.0) -> None:
        target = urlparse(redis_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.database = target.path.strip("/") or "0"
        self.reply_delay, self.held, self.hold = reply_delay, held, hold
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/{self.database}"
        self.held_commands = 0  # how many commands carrying `held` went through
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-redis-proxy", daemon=True)

    def start(self) -> "SlowRedisProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Redis proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            redis_reader, redis_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pump(client_reader, redis_writer, self._command_delay),
            self._pump(redis_reader, client_writer, lambda _data: self.reply_delay),
            return_exceptions=True,
        )

    def _command_delay(self, data: bytes) -> float:
        if self.held and self.held in data:
            self.held_commands += 1
            return self.hold
        return 0.0

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_of) -> None:
        """Copy `reader` to `writer`, each read sent `delay_of(data)` seconds after it came (never before the one before it)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        last_due = 0.0
        try:
            while data := await reader.read(65536):
                last_due = max(last_due, time.monotonic() + delay_of(data))
                queue.put_nowait((last_due, data))
        finally:
            queue.put_nowait((last_due, b""))
            await sender
