"""The ledger's asyncio Redis pool, leaner per command than redis-py's defaults (two commands per AI call).

- Commands are encoded by hiredis's C packer instead of redis-py's Python one: a reserve carries some
  twenty arguments (keys, limits, the usage record), whose Python encoding cost more CPU than the rest
  of the round trip. redis-py's sync connection already packs with hiredis when it is installed
  (requirements.txt pins it); this does the same for the asyncio connections of any URL scheme
  (redis://, rediss://, unix://).
- A command is written without a task of its own (redis-py bounds the write with asyncio.wait_for,
  which on Python 3.11 wraps it in a new Task: a task and two more turns of the event loop a
  command), and `written` tells a caller once its command is on the wire: the AI hub answers a call
  as soon as its settlement is written, before Redis's reply (aihub/pipeline.py).
- A connection is taken from and given back to the pool without its asyncio.Condition, its
  observability hooks and a reconnect check of a connected socket whenever no task waits for one;
  at the limit (POOL_CONNECTIONS busy) it blocks as redis-py's BlockingConnectionPool does.
"""

import asyncio
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

import hiredis
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import ConnectionError, DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Called (in the task that set it) each time a command of that task has been written to Redis's socket.
written: ContextVar[Callable[[], None] | None] = ContextVar("redis_command_written", default=None)


class HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py: a command name with spaces ("CONFIG GET") is several arguments.
        name = args[0]
        if " " in name if isinstance(name, str) else b" " in name:
            args = (*(name.encode() if isinstance(name, str) else name).split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
        # hiredis takes str, bytes, int and float: buffers are copied to bytes (as redis-py's sync packer
        # does); anything else (None, bool…) fails as redis-py's own encoder would.
        args = tuple(bytes(arg) if isinstance(arg, bytearray | memoryview) else arg for arg in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    # redis-py 8.1.0's send_packed_command (requirements.txt pins it), its errors and disconnects alike,
    # with the drain under asyncio.timeout instead of asyncio.wait_for, and `written` called.
    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        if not self.is_connected:  # type: ignore[attr-defined]
            await self.connect_check_health(check_health=False)  # type: ignore[attr-defined]
        if check_health:
            await self.check_health()  # type: ignore[attr-defined]
        try:
            if isinstance(command, str):
                command = command.encode()
            if isinstance(command, bytes):
                command = [command]
            writer = self._writer  # type: ignore[attr-defined]
            writer.writelines(command)  # sent at once when the socket takes it (drain then returns at once)
            if self.socket_timeout:  # type: ignore[attr-defined]
                async with asyncio.timeout(self.socket_timeout):  # type: ignore[attr-defined]
                    await writer.drain()
            else:
                await writer.drain()
            hook = written.get()
            if hook is not None:
                hook()
        except TimeoutError:  # before OSError, which it subclasses
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            err_no, errmsg = ("UNKNOWN", e.args[0]) if len(e.args) == 1 else (e.args[0], e.args[1])
            raise ConnectionError(f"Error {err_no} while writing to socket. {errmsg}.") from e
        except BaseException:
            # A write cut off (cancelled) may have sent part of a command: the connection cannot be reused.
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise


class HiredisConnection(HiredisPacking, Connection):
    pass


class HiredisSSLConnection(HiredisPacking, SSLConnection):
    pass


class HiredisUnixDomainSocketConnection(HiredisPacking, UnixDomainSocketConnection):
    pass


PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: HiredisConnection,
    SSLConnection: HiredisSSLConnection,
    UnixDomainSocketConnection: HiredisUnixDomainSocketConnection,
}


def packing_class(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """The hiredis-packing variant of a pool's connection class (another class is left as it is)."""
    return PACKING.get(connection_class, connection_class)


class LeanBlockingPool(BlockingConnectionPool):
    """redis-py's BlockingConnectionPool (redis==8.1.0, pinned: this relies on its attributes) with a fast
    path: while a connection is idle and no task waits, get and release are plain list operations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_class = packing_class(self.connection_class)
        # A streaming credential provider re-authenticates connections on release (an event the fast
        # path does not send): such a pool keeps redis-py's path. City's URLs never configure one.
        self._fast = self.connection_kwargs.get("credential_provider") is None

    def _waiting(self) -> bool:
        return bool(getattr(self._condition, "_waiters", None))

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if not (self._fast and self._available_connections and not self._in_maintenance and not self._waiting()):
            return await super().get_connection(*args, **kwargs)
        connection = self._available_connections.pop()
        self._in_use_connections.add(connection)
        try:
            if connection.is_connected and not connection.should_reconnect():
                # As ensure_connection: a connection with unread data (or closed) is not handed out as it is.
                if await connection.can_read():
                    await connection.disconnect()
                    await self.ensure_connection(connection)
            else:
                await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        if not (self._fast and not self._in_maintenance and not self._waiting()):
            await super().release(connection)
            return
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)
