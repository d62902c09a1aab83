"""Fetching a URL a user gave, without letting it reach City's own network (SSRF).

`fetch(url, max_bytes=…)` answers the body of an http or https URL, or raises:
- FetchRefused: the URL may not be fetched (scheme, host, an address after resolution, too many
  redirects); FetchTooLarge, a FetchRefused, when the body is over `max_bytes`;
- FetchFailed: it could not be fetched (no such host, connection refused, a non-2xx answer, the
  time limit).
Their messages can be shown to the user as they are: they name the URL's problem, never a resolved
address, a header or an exception of City's.

How it holds:
1. The host is resolved once (getaddrinfo, on threads of its own; a numeric host such as 2130706433, 0x7f000001
   or 017700000001 is read as the IPv4 address the C library would make of it, without a lookup),
   and the fetch is refused if ANY address is private, loopback, link-local, multicast, reserved,
   unspecified, shared (100.64.0.0/10) or IPv6 site-local (fec0::/10), directly or as the IPv4
   address inside an IPv4-mapped, 6to4, Teredo or NAT64 (64:ff9b::/96) IPv6 address;
   settings.CITY_FETCH_ALLOWED_NETWORKS names networks allowed all the same.
2. The connection goes to the checked address itself (the URL's host replaced by it), so a second
   resolution cannot answer something else (DNS rebinding). The Host header carries the name, and
   for https the TLS handshake sends it as SNI and verifies the certificate against it.
3. Redirects are followed by hand, at most CITY_FETCH_MAX_REDIRECTS, each new URL checked as in 1.
4. The body is counted as it streams: over `max_bytes` the fetch stops there, whatever
   Content-Length said (or did not say). It is asked for as sent (`Accept-Encoding: identity`): a
   compressed answer would be the compressed bytes, not the file, so one is refused.
5. The whole exchange, resolution and redirects included, has CITY_FETCH_TIMEOUT_SECONDS.
"""

import asyncio
import functools
import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REDIRECTS = (301, 302, 303, 307, 308)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known NAT64 prefix (RFC 6052)
# What inet_aton reads as an IPv4 address: 1 to 4 parts, each decimal, octal (0…) or hex (0x…).
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
# The lookups of names users give run on threads of their own: a name whose DNS never answers holds
# its thread until the C resolver gives up, well past the fetch's time limit, and must not hold the
# loop's default executor, through which City's own upstream connections resolve their hosts.
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="safe-fetch-dns")


class FetchRefused(Exception):
    """The URL may not be fetched; the message says why, for the user."""


class FetchTooLarge(FetchRefused):
    """The body is over the size limit."""


class FetchFailed(Exception):
    """The URL could not be fetched; the message says why, for the user."""


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str  # the answer's media type, without parameters ("" when it sent none)
    url: str  # the URL the body came from, after redirects


async def fetch(url: str, *, max_bytes: int, timeout_seconds: float | None = None, max_redirects: int | None = None) -> Fetched:
    """The body at `url`; see the module docstring for what is refused and raised."""
    timeout = settings.CITY_FETCH_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
    redirects = settings.CITY_FETCH_MAX_REDIRECTS if max_redirects is None else max_redirects
    try:
        async with asyncio.timeout(timeout):
            return await _follow(url, max_bytes, redirects, timeout)
    except TimeoutError:
        raise FetchFailed(f"The URL did not answer in full within {timeout:g} seconds.") from None


async def _follow(url: str, max_bytes: int, redirects: int, timeout: float) -> Fetched:
    # No proxy from the environment (it would resolve the name itself) and no redirects of httpx's own;
    # each step's timeout is the whole fetch's (asyncio.timeout bounds them together).
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(timeout)) as client:
        for _hop in range(redirects + 1):
            target = await checked(url)
            request = client.build_request(
                "GET", target.pinned_url, headers={**target.headers, "Accept-Encoding": "identity"}, extensions=target.extensions
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchFailed(f"Could not connect to {target.host} ({_reason(exc)}).") from None
            try:
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    continue
                if not 200 <= response.status_code < 300:
                    raise FetchFailed(f"The URL answered with status {response.status_code}.")
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise FetchFailed(f"The URL answered with a compressed body ({encoding[:40]}); City needs the file as it is.")
                data = await _body(response, max_bytes)
            finally:
                await response.aclose()
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return Fetched(data, content_type, url)
    raise FetchRefused(f"The URL redirects more than {redirects} times.")


async def _body(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchTooLarge(f"The file at the URL is over the limit of {max_bytes:,} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_raw():  # as sent: a compressed body cannot grow past the limit unseen
            size += len(chunk)
            if size > max_bytes:
                raise FetchTooLarge(f"The file at the URL is over the limit of {max_bytes:,} bytes.")
            chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"The URL's answer broke off ({_reason(exc)}).") from None
    return b"".join(chunks)


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return "the connection failed"


@dataclass(frozen=True)
class Target:
    host: str  # the URL's host name, as given
    pinned_url: str  # the URL with its host replaced by the checked address
    headers: dict[str, str]
    extensions: dict[str, str]


async def checked(url: str) -> Target:
    """The URL's target, its host resolved and every address checked; FetchRefused or FetchFailed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("The URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise FetchRefused("The URL must start with http:// or https://.")
    host = parts.hostname
    if not host:
        raise FetchRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("The URL may not carry a user name or password.")
    # A name in Unicode goes on the wire (Host, SNI) as its ASCII form, the one DNS resolves.
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchRefused("The URL's host is not a valid host name.") from None
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(name, port)
    for address in addresses:
        if not allowed(address):
            raise FetchRefused(f"The URL's host {host} is a private, loopback, link-local or reserved address, which City does not fetch.")
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    default_port = port == (443 if parts.scheme == "https" else 80)
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    host_header = name if default_port else f"{name}:{port}"
    if ":" in name:
        host_header = f"[{name}]" if default_port else f"[{name}]:{port}"
    extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
    return Target(host, pinned, {"Host": host_header}, extensions)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` stands for: a literal or numeric host as itself, a name through DNS."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        infos = await asyncio.get_running_loop().run_in_executor(_LOOKUPS, lookup)
    except (socket.gaierror, UnicodeError):
        raise FetchFailed(f"The URL's host {host} could not be resolved.") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise FetchFailed(f"The URL's host {host} could not be resolved.")
    return found


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise FetchRefused("The URL's host is not a valid address.") from None
    return None


def allowed(address: IPAddress) -> bool:
    """Whether City may connect to `address`: a public address, or one in CITY_FETCH_ALLOWED_NETWORKS."""
    networks = [ipaddress.ip_network(n, strict=False) for n in settings.CITY_FETCH_ALLOWED_NETWORKS]
    if any(address.version == n.version and address in n for n in networks):
        return True
    return all(_public(a) for a in _embedded(address))


def _embedded(address: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address carried inside it."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _public(address: IPAddress) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        # fec0::/10: deprecated, yet still routed inside some networks.
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or (address.version == 4 and address in SHARED)
        or not address.is_global
    )
