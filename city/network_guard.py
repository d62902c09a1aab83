"""The test suite reaches nothing beyond this machine: a socket connection (or datagram) to an
address off the loopback is refused before it is made, so no packet leaves. The root conftest.py
installs the guard for the whole run; processes the tests start are not covered.

Host names other than `localhost` are refused too: resolving one could already ask the network.
"""

import ipaddress
import socket
from typing import Any

INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)

# Every address refused since the guard was installed, in order: conftest.py fails the test that
# caused one, even when the code under test caught the error.
refused: list[Any] = []

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


class OutsideConnectionRefused(RuntimeError):
    """Not an OSError on purpose: code that retries or maps network failures must not take it for
    an unreachable host and carry on."""


def is_loopback(host: object) -> bool:
    if host == "localhost":
        return True
    if not isinstance(host, str):
        return False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 scope (`::1%lo`) is not part of the address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def check(sock: socket.socket, address: Any) -> None:
    if sock.family not in INET_FAMILIES:
        return  # Unix sockets, socket pairs: local by nature
    if isinstance(address, tuple) and address and is_loopback(address[0]):
        return
    refused.append(address)
    raise OutsideConnectionRefused(f"the tests may only connect to loopback addresses; refused {address!r}")


def _connect(self: socket.socket, address: Any) -> None:
    check(self, address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    check(self, address)
    return _real_connect_ex(self, address)


def _sendto(self: socket.socket, data: Any, *flags_and_address: Any) -> int:
    check(self, flags_and_address[-1])
    return _real_sendto(self, data, *flags_and_address)


def install() -> None:
    """Guard every socket of this process (sockets of the ssl and asyncio modules are socket.socket
    too). Idempotent."""
    socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = _sendto  # type: ignore[method-assign,assignment]


def installed() -> bool:
    return socket.socket.connect is _connect
