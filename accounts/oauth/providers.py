"""The OAuth providers: GitHub and Google, each with its env keys, endpoints and profile reading.

Endpoints are env keys too (GITHUB_OAUTH_BASE_URL, GITHUB_API_BASE_URL, GOOGLE_OIDC_DISCOVERY_URL),
so a proxy or a loopback simulator can stand in for the real provider.
"""

import re
import ssl
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from django.conf import settings

from city.errors import ApiError
from city.registry import EnvRequirement
from city.runtime_env import runtime_env

try:  # authlib's httpx integration runs on httpx2 where that is installed, else on httpx (its own rule)
    import httpx2 as authlib_httpx
except ImportError:  # pragma: no cover
    import httpx as authlib_httpx  # type: ignore[no-redef]  # one name for either module: mypy cannot type the alternative

CALLBACK_PATH = "/v1/accounts/oauth/callback"
# What a provider call may raise besides OAuthError: transport errors of either library, unreadable JSON.
TRANSPORT_ERRORS = (httpx.HTTPError, authlib_httpx.HTTPError, ValueError)


def callback_url() -> str:
    return f"{settings.CITY_PUBLIC_URL}{CALLBACK_PATH}"


def error_code_text(value: Any) -> str:
    """An OAuth error code as City repeats it to people and stores it: only the characters RFC 6749
    allows in one (printable ASCII but " and \\), at most 64 of them. It arrives from the browser's
    query string or the provider's answer, so it may hold anything, NUL characters included."""
    return re.sub(r"[^\x20\x21\x23-\x5b\x5d-\x7e]", "", str(value or ""))[:64]


class ProviderFailure(Exception):
    """The provider refused or failed a step; the flow fails with `code` and this message."""

    def __init__(self, code: str, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str


@dataclass(frozen=True)
class Profile:
    provider_user_id: str
    email: str  # the address the provider shows; "" when none
    email_verified: bool  # whether the provider vouches for `email`
    display_name: str


def _timeout() -> float:
    return settings.ACCOUNTS_OAUTH_HTTP_TIMEOUT_SECONDS  # a plain number: both httpx libraries take it


@cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process (certifi's CA bundle): building one takes ~0.1-0.2 s, too long per sign-in."""
    return httpx.create_ssl_context()


class Provider:
    id = ""
    name = ""
    scope = ""
    pkce = True  # both providers accept S256 PKCE; it binds the code to the flow that asked for it

    @property
    def client_id_key(self) -> str:
        return f"{self.id.upper()}_CLIENT_ID"

    @property
    def client_secret_key(self) -> str:
        return f"{self.id.upper()}_CLIENT_SECRET"

    def env(self) -> tuple[EnvRequirement, ...]:
        return (
            EnvRequirement(self.client_id_key, f"{self.name} OAuth app client id, for sign-in with {self.name}", required=False),
            EnvRequirement(self.client_secret_key, f"{self.name} OAuth app client secret", required=False),
        )

    def is_configured(self) -> bool:
        """Both keys are set: the sign-in pages offer only providers that can answer."""
        return all(runtime_env.get(key) for key in (self.client_id_key, self.client_secret_key))

    async def credentials(self) -> tuple[str, str]:
        """(client id, client secret); 503 naming the keys that are not set."""
        values = {key: await runtime_env.aget(key) for key in (self.client_id_key, self.client_secret_key)}
        missing = [key for key, value in values.items() if not value]
        if missing:
            raise ApiError(
                503,
                f"Sign-in with {self.name} is not configured: set {' and '.join(missing)} (env/upsert, or the process environment).",
                param="provider",
                code="oauth_provider_not_configured",
            )
        return values[self.client_id_key] or "", values[self.client_secret_key] or ""

    async def endpoints(self) -> Endpoints:
        raise NotImplementedError

    async def fetch_profile(self, client: AsyncOAuth2Client) -> Profile:
        raise NotImplementedError

    async def sign_in(self, code: str, code_verifier: str) -> Profile:
        """Exchange the code for an access token, then read the user's profile and email.

        Raises ProviderFailure: 400 when the provider refuses the code (used, expired, not ours),
        502 when it cannot be reached or answers something unreadable.
        """
        client_id, client_secret = await self.credentials()
        endpoints = await self.endpoints()
        extra = {"code_verifier": code_verifier} if code_verifier else {}
        async with AsyncOAuth2Client(
            client_id,
            client_secret,
            token_endpoint_auth_method="client_secret_post",
            redirect_uri=callback_url(),
            timeout=_timeout(),
            verify=tls_context(),
        ) as client:
            try:
                token = await client.fetch_token(endpoints.token, grant_type="authorization_code", code=code, **extra)
            except OAuthError as exc:
                raise ProviderFailure(
                    "code_rejected",
                    f"{self.name} refused the sign-in code ({error_code_text(exc.error)}): it was used already, has expired, or was not issued for this sign-in. Start again.",
                    status=400,
                ) from None
            except TRANSPORT_ERRORS:
                raise ProviderFailure("provider_unavailable", f"{self.name} did not complete the sign-in; try again in a moment.") from None
            if not isinstance(token, dict) or not isinstance(token.get("access_token"), str) or not token["access_token"]:
                raise ProviderFailure("provider_error", f"{self.name} answered the sign-in code without an access token; try again.")
            return await self.fetch_profile(client)

    async def _get_json(self, client: AsyncOAuth2Client, url: str, **kwargs: Any) -> Any:
        try:
            response = await client.get(url, **kwargs)
            if response.status_code != 200:
                raise ProviderFailure("provider_error", f"{self.name} did not share the profile (HTTP {response.status_code}); try again.")
            return response.json()
        except TRANSPORT_ERRORS:
            raise ProviderFailure("provider_unavailable", f"{self.name} did not share the profile; try again in a moment.") from None
        except OAuthError:  # authlib refuses to use the access token (missing, or of a type it does not know)
            raise ProviderFailure(
                "provider_error", f"{self.name}'s access token could not be used to read the profile; try again."
            ) from None


class GitHub(Provider):
    id = "github"
    name = "GitHub"
    scope = "read:user user:email"
    API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    def env(self) -> tuple[EnvRequirement, ...]:
        return (
            *super().env(),
            EnvRequirement("GITHUB_OAUTH_BASE_URL", "GitHub's sign-in site (default https://github.com)", required=False),
            EnvRequirement("GITHUB_API_BASE_URL", "GitHub's API (default https://api.github.com)", required=False),
        )

    async def endpoints(self) -> Endpoints:
        base = (await runtime_env.aget("GITHUB_OAUTH_BASE_URL", "https://github.com") or "").rstrip("/")
        return Endpoints(authorize=f"{base}/login/oauth/authorize", token=f"{base}/login/oauth/access_token")

    async def fetch_profile(self, client: AsyncOAuth2Client) -> Profile:
        api = (await runtime_env.aget("GITHUB_API_BASE_URL", "https://api.github.com") or "").rstrip("/")
        user = await self._get_json(client, f"{api}/user", headers=self.API_HEADERS)
        emails = await self._get_json(client, f"{api}/user/emails", headers=self.API_HEADERS)
        if not isinstance(user, dict) or user.get("id") is None or not isinstance(emails, list):
            raise ProviderFailure("provider_error", "GitHub's profile answer was not understood; try again.")
        emails = [e for e in emails if isinstance(e, dict) and isinstance(e.get("email"), str)]
        verified = [e for e in emails if e.get("verified") is True]
        # The primary address when GitHub verified it, else any verified one; else what GitHub shows, unverified.
        chosen = next((e for e in verified if e.get("primary")), verified[0] if verified else None)
        if chosen is None:
            shown = next((e for e in emails if e.get("primary")), emails[0] if emails else {"email": user.get("email") or ""})
            chosen = {"email": shown["email"], "verified": False}
        return Profile(
            provider_user_id=str(user["id"]),
            email=chosen["email"],
            email_verified=chosen.get("verified") is True,
            display_name=str(user.get("name") or user.get("login") or "")[:200],
        )


class Google(Provider):
    id = "google"
    name = "Google"
    scope = "openid email profile"
    DEFAULT_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"
    clock = time.monotonic
    _discovered: dict[str, tuple[float, dict[str, Any]]] = {}

    def env(self) -> tuple[EnvRequirement, ...]:
        return (
            *super().env(),
            EnvRequirement(
                "GOOGLE_OIDC_DISCOVERY_URL",
                f"Google's OpenID Connect discovery document (default {self.DEFAULT_DISCOVERY_URL})",
                required=False,
            ),
        )

    async def discovery(self) -> dict[str, Any]:
        """The discovery document, kept ACCOUNTS_OIDC_DISCOVERY_CACHE_SECONDS per process. 502 when unreadable."""
        url = await runtime_env.aget("GOOGLE_OIDC_DISCOVERY_URL", self.DEFAULT_DISCOVERY_URL) or self.DEFAULT_DISCOVERY_URL
        cached = self._discovered.get(url)
        if cached is not None and Google.clock() - cached[0] < settings.ACCOUNTS_OIDC_DISCOVERY_CACHE_SECONDS:
            return cached[1]
        try:
            async with httpx.AsyncClient(timeout=_timeout(), verify=tls_context()) as client:
                response = await client.get(url)
            document = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            document = None
        needed = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")
        if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in needed):
            raise ApiError(502, "Google's OpenID Connect configuration could not be read; try again later.", code="provider_unavailable")
        self._discovered[url] = (Google.clock(), document)
        return document

    async def endpoints(self) -> Endpoints:
        document = await self.discovery()
        return Endpoints(authorize=document["authorization_endpoint"], token=document["token_endpoint"])

    async def fetch_profile(self, client: AsyncOAuth2Client) -> Profile:
        try:
            userinfo_url = (await self.discovery())["userinfo_endpoint"]
        except ApiError:
            raise ProviderFailure("provider_unavailable", "Google's OpenID Connect configuration could not be read; try again.") from None
        info = await self._get_json(client, userinfo_url)
        if not isinstance(info, dict) or not info.get("sub"):
            raise ProviderFailure("provider_error", "Google's profile answer was not understood; try again.")
        verified = info.get("email_verified")
        return Profile(
            provider_user_id=str(info["sub"]),
            email=str(info.get("email") or ""),
            email_verified=verified is True or verified == "true",  # older endpoints send the string
            display_name=str(info.get("name") or "")[:200],
        )


PROVIDERS: dict[str, Provider] = {"github": GitHub(), "google": Google()}
