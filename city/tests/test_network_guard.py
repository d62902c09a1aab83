"""The suite's network guard (city/network_guard.py, installed by the root conftest.py): nothing
but loopback is reachable from a test, and a refused connection never got as far as the kernel."""

import asyncio
import socket
import unittest

import httpx

from city import network_guard
from city.network_guard import OutsideConnectionRefused

OUTSIDE = [("192.0.2.1", 80), ("10.255.255.1", 443), ("8.8.8.8", 53), ("example.com", 80)]
OUTSIDE_V6 = [("2001:db8::1", 80, 0, 0), ("::ffff:192.0.2.1", 80, 0, 0)]


class NetworkGuardTests(unittest.TestCase):
    def setUp(self) -> None:
        self.assertTrue(network_guard.installed(), "the root conftest.py installs the guard for the whole suite")
        before = len(network_guard.refused)
        # What this test is refused on purpose must not fail it (conftest.py fails any other test that is).
        self.addCleanup(lambda: network_guard.refused.__delitem__(slice(before, None)))
        self.before = before

    def assert_never_left(self, sock: socket.socket) -> None:
        """A connect or send the kernel saw would have bound the socket to a local port."""
        self.assertEqual(sock.getsockname()[1], 0)
        with self.assertRaises(OSError):
            sock.getpeername()

    def test_a_connection_off_the_loopback_is_refused_before_it_is_made(self) -> None:
        for address in OUTSIDE:
            for connect in (socket.socket.connect, socket.socket.connect_ex):
                with self.subTest(address=address, call=connect.__name__), socket.socket() as sock:
                    sock.settimeout(5)
                    with self.assertRaisesRegex(OutsideConnectionRefused, "only connect to loopback"):
                        connect(sock, address)
                    self.assert_never_left(sock)
        self.assertEqual(network_guard.refused[self.before :], [a for a in OUTSIDE for _ in (1, 2)])

    def test_ipv6_and_ipv4_mapped_addresses_off_the_loopback_are_refused(self) -> None:
        for address in OUTSIDE_V6:
            with self.subTest(address=address), socket.socket(socket.AF_INET6) as sock:
                with self.assertRaises(OutsideConnectionRefused):
                    sock.connect(address)
                self.assert_never_left(sock)

    def test_a_datagram_off_the_loopback_is_refused(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with self.assertRaises(OutsideConnectionRefused):
                sock.sendto(b"x", ("192.0.2.1", 53))
            with self.assertRaises(OutsideConnectionRefused):
                sock.sendto(b"x", 0, ("192.0.2.1", 53))
            self.assert_never_left(sock)

    def test_http_clients_and_asyncio_are_refused_too(self) -> None:
        with self.assertRaises(OutsideConnectionRefused):
            httpx.get("http://192.0.2.1/", timeout=5)
        with self.assertRaises(OutsideConnectionRefused):
            asyncio.run(asyncio.wait_for(asyncio.open_connection("192.0.2.1", 80), 5))
        self.assertEqual(network_guard.refused[self.before :], [("192.0.2.1", 80), ("192.0.2.1", 80)])

    def test_loopback_stays_open(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            for host in ("127.0.0.1", "localhost"):
                with self.subTest(host=host), socket.create_connection((host, port), timeout=5) as client:
                    accepted, _ = server.accept()
                    with accepted:
                        client.sendall(b"ping")
                        self.assertEqual(accepted.recv(4), b"ping")
        if socket.has_ipv6:
            try:
                server6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
            except OSError:
                return  # no IPv6 loopback on this machine
            with server6, socket.create_connection(("::1", server6.getsockname()[1]), timeout=5):
                server6.accept()[0].close()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            with self.assertRaises(OSError):  # not refused by the guard: the path just does not exist
                unix.connect("/nonexistent/city-test.sock")
        self.assertEqual(network_guard.refused[self.before :], [])

    def test_loopback_and_only_loopback_is_local(self) -> None:
        for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "localhost", "::1%lo"):
            self.assertTrue(network_guard.is_loopback(host), host)
        for outside in ("192.0.2.1", "0.0.0.0", "::", "", "example.com", "localhost.example.com", None, b"127.0.0.1"):
            self.assertFalse(network_guard.is_loopback(outside), outside)
