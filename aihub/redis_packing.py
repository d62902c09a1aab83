"""Async Redis connections that encode commands with hiredis's C packer instead of redis-py's Python one.

A ledger reserve carries some twenty arguments (keys, limits, the usage record): redis-py's asyncio
connection encodes each in Python, which cost more CPU than the rest of the round trip. Its sync
connection already packs with hiredis when it is installed (requirements.txt pins it); this does the
same for the asyncio connections, whatever the URL's scheme (redis://, rediss://, unix://).
"""

from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError


class HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py: a command name with spaces ("CONFIG GET") is several arguments.
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        args = tuple(bytes(arg) if isinstance(arg, bytearray | memoryview) else arg for arg in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:  # None, bool, or another type Redis has no encoding for: redis-py's error
            raise DataError(str(exc)) from exc


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
