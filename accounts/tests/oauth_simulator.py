"""GitHub and Google, simulated on 127.0.0.1 in their real wire formats, for City's OAuth tests.

One HTTP server in a background thread serves both providers under path prefixes:

    /github/login/oauth/authorize        GitHub's authorize page (redirects back with ?code or ?error)
    /github/login/oauth/access_token     GitHub's token endpoint (errors as HTTP 200 + {"error": …}, as GitHub does)
    /github-api/user, /github-api/user/emails
    /google/.well-known/openid-configuration
    /google/o/oauth2/v2/auth             Google's authorize page
    /google/token                        Google's token endpoint (errors as HTTP 400/401 + {"error": …})
    /google/v1/userinfo                  OpenID Connect userinfo

Codes are single use, bound to the client, the redirect URI and the PKCE challenge, and expire.
`sim.env()` gives the env keys that point City at it. The user who is "signed in at the provider"
and whether they consent are switches: `sim.github.user = …`, `sim.consent = False`.
With `sim.consent_page = True` the authorize URL shows a page with Authorize/Cancel buttons (for a
real browser); otherwise it redirects at once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CODE_LIFETIME_SECONDS = 600  # GitHub: 10 minutes


@dataclass
class SimUser:
    id: str  # GitHub's numeric id (as text) or Google's "sub"
    login: str
    name: str
    emails: list[tuple[str, bool, bool]]  # (address, primary, verified)


@dataclass
class Grant:
    provider: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    user: SimUser
    issued_at: float
    used: bool = False


@dataclass
class ProviderState:
    name: str
    client_id: str
    client_secret: str
    user: SimUser
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    # When set, a valid code is answered with this JSON instead of an access token (a misbehaving provider).
    token_reply: dict[str, Any] | None = None


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OAuthSimulator:
    def __init__(self) -> None:
        self.github = ProviderState(
            "github",
            "gh-client-test",
            "gh-secret-test-not-real",
            SimUser("4242", "octo-ada", "Ada Lovelace", [("ada@example.com", True, True), ("ada@old.example", False, False)]),
        )
        self.google = ProviderState(
            "google",
            "google-client-test.apps.example",
            "google-secret-test-not-real",
            SimUser("109876543210", "", "Grace Hopper", [("grace@example.com", True, True)]),
        )
        self.consent = True
        self.consent_page = False
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, tuple[str, SimUser]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="oauth-simulator", daemon=True
        )

    def start(self) -> OAuthSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env(self) -> dict[str, str]:
        """The env keys that point City at this simulator, with its test client credentials."""
        return {
            "GITHUB_CLIENT_ID": self.github.client_id,
            "GITHUB_CLIENT_SECRET": self.github.client_secret,
            "GITHUB_OAUTH_BASE_URL": f"{self.url}/github",
            "GITHUB_API_BASE_URL": f"{self.url}/github-api",
            "GOOGLE_CLIENT_ID": self.google.client_id,
            "GOOGLE_CLIENT_SECRET": self.google.client_secret,
            "GOOGLE_OIDC_DISCOVERY_URL": f"{self.url}/google/.well-known/openid-configuration",
        }

    def provider(self, name: str) -> ProviderState:
        return self.github if name == "github" else self.google

    # -- authorize ---------------------------------------------------------------------------

    def authorize(self, provider: ProviderState, query: dict[str, str], decision: str | None) -> tuple[int, dict[str, str], bytes]:
        provider.authorize_requests.append(query)
        if query.get("client_id") != provider.client_id or not query.get("redirect_uri") or query.get("response_type") != "code":
            return (
                400,
                {"Content-Type": "text/html"},
                b"<h1>The application is misconfigured (client_id, redirect_uri or response_type).</h1>",
            )
        if decision is None and self.consent_page:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, self._consent_page(provider, query)
        consent = self.consent if decision is None else decision == "allow"
        params: dict[str, str]
        if consent:
            code = secrets.token_urlsafe(16)
            with self._lock:
                self.grants[code] = Grant(
                    provider.name, query["client_id"], query["redirect_uri"], query.get("code_challenge"), provider.user, time.time()
                )
            params = {"code": code}
        else:
            params = {"error": "access_denied", "error_description": "The user has denied your application access."}
        if "state" in query:
            params["state"] = query["state"]
        return 302, {"Location": f"{query['redirect_uri']}?{urlencode(params)}"}, b""

    def _consent_page(self, provider: ProviderState, query: dict[str, str]) -> bytes:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items())
        title = "GitHub" if provider.name == "github" else "Google"
        return (
            f"<!doctype html><title>Authorize · {title} (simulated)</title>"
            f"<body style='font-family:sans-serif;margin:3rem'><h1>{title} (simulated)</h1>"
            f"<p>Signed in as <b>{html.escape(provider.user.name)}</b>. Allow this app to read your profile and email?</p>"
            f"<form method='post'>{hidden}<button name='decision' value='allow' id='authorize'>Authorize</button> "
            f"<button name='decision' value='deny' id='cancel'>Cancel</button></form></body>"
        ).encode()

    # -- token --------------------------------------------------------------------------------

    def exchange(self, provider: ProviderState, form: dict[str, str]) -> tuple[str | None, str, SimUser | None]:
        """(error, description, user): the checks a real token endpoint makes."""
        provider.token_requests.append(form)
        if form.get("client_id") != provider.client_id or form.get("client_secret") != provider.client_secret:
            return "invalid_client", "The client_id and/or client_secret passed are incorrect.", None
        if form.get("grant_type") != "authorization_code":
            return "unsupported_grant_type", "grant_type must be authorization_code.", None
        with self._lock:
            grant = self.grants.get(form.get("code", ""))
            if grant is None or grant.used or grant.provider != provider.name or time.time() - grant.issued_at > CODE_LIFETIME_SECONDS:
                return "invalid_grant", "The code passed is incorrect or expired.", None
            grant.used = True  # single use, even when a later check fails
        if form.get("redirect_uri") != grant.redirect_uri:
            return "invalid_grant", "The redirect_uri MUST match the registered callback URL for this application.", None
        if grant.code_challenge is not None and s256(form.get("code_verifier", "")) != grant.code_challenge:
            return "invalid_grant", "The code_verifier does not match the code_challenge.", None
        return None, "", grant.user

    def issue_access_token(self, provider: ProviderState, user: SimUser) -> str:
        token = ("gho_" if provider.name == "github" else "ya29.") + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens[token] = (provider.name, user)
        return token

    def bearer_user(self, provider_name: str, headers: Any) -> SimUser | None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in {"bearer", "token"}:
            return None
        found = self.access_tokens.get(token.strip())
        return found[1] if found is not None and found[0] == provider_name else None

    # -- HTTP ---------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: Any) -> None:
                self._reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8"})

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                path = parts.path
                if path == "/github/login/oauth/authorize":
                    self._reply(*_reordered(sim.authorize(sim.github, query, None)))
                elif path == "/google/o/oauth2/v2/auth":
                    self._reply(*_reordered(sim.authorize(sim.google, query, None)))
                elif path == "/github-api/user":
                    self._github_user()
                elif path == "/github-api/user/emails":
                    self._github_emails()
                elif path == "/google/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": "https://accounts.google.com",
                            "authorization_endpoint": f"{sim.url}/google/o/oauth2/v2/auth",
                            "token_endpoint": f"{sim.url}/google/token",
                            "userinfo_endpoint": f"{sim.url}/google/v1/userinfo",
                            "jwks_uri": f"{sim.url}/google/oauth2/v3/certs",
                            "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "none"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "scopes_supported": ["openid", "email", "profile"],
                            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                            "code_challenge_methods_supported": ["plain", "S256"],
                            "grant_types_supported": ["authorization_code", "refresh_token"],
                        },
                    )
                elif path == "/google/v1/userinfo":
                    self._google_userinfo()
                else:
                    self._json(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                form = self._form()
                if path == "/github/login/oauth/authorize":  # the consent page's buttons
                    decision = form.pop("decision", "deny")
                    self._reply(*_reordered(sim.authorize(sim.github, form, decision)))
                elif path == "/google/o/oauth2/v2/auth":
                    decision = form.pop("decision", "deny")
                    self._reply(*_reordered(sim.authorize(sim.google, form, decision)))
                elif path == "/github/login/oauth/access_token":
                    self._github_token(form)
                elif path == "/google/token":
                    self._google_token(form)
                else:
                    self._json(404, {"message": "Not Found"})

            def _github_token(self, form: dict[str, str]) -> None:
                error, description, user = sim.exchange(sim.github, form)
                if error is not None:
                    # GitHub answers token errors with HTTP 200 and an error object.
                    github_error = {"invalid_grant": "bad_verification_code", "invalid_client": "incorrect_client_credentials"}.get(
                        error, error
                    )
                    payload = {
                        "error": github_error,
                        "error_description": description,
                        "error_uri": "https://docs.github.com/apps/troubleshooting",
                    }
                elif sim.github.token_reply is not None:
                    payload = sim.github.token_reply
                else:
                    assert user is not None
                    payload = {
                        "access_token": sim.issue_access_token(sim.github, user),
                        "token_type": "bearer",
                        "scope": "read:user,user:email",
                    }
                if "application/json" in (self.headers.get("Accept") or ""):
                    self._json(200, payload)
                else:
                    self._reply(200, urlencode(payload).encode(), {"Content-Type": "application/x-www-form-urlencoded"})

            def _google_token(self, form: dict[str, str]) -> None:
                error, description, user = sim.exchange(sim.google, form)
                if error is not None:
                    self._json(401 if error == "invalid_client" else 400, {"error": error, "error_description": description})
                    return
                if sim.google.token_reply is not None:
                    self._json(200, sim.google.token_reply)
                    return
                assert user is not None
                self._json(
                    200,
                    {
                        "access_token": sim.issue_access_token(sim.google, user),
                        "expires_in": 3599,
                        "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
                        "token_type": "Bearer",
                        "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzaW11bGF0ZWQifQ.c2ltdWxhdGVk",  # not verified by City
                    },
                )

            def _github_user(self) -> None:
                user = sim.bearer_user("github", self.headers)
                if user is None:
                    self._json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
                    return
                public = next((e for e, primary, verified in user.emails if primary), None)
                self._json(
                    200,
                    {
                        "login": user.login,
                        "id": int(user.id),
                        "node_id": "MDQ6VXNlcjQyNDI=",
                        "type": "User",
                        "name": user.name,
                        "email": public,
                        "avatar_url": "https://avatars.example/u/4242",
                    },
                )

            def _github_emails(self) -> None:
                user = sim.bearer_user("github", self.headers)
                if user is None:
                    self._json(
                        401, {"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest", "status": "401"}
                    )
                    return
                self._json(
                    200, [{"email": e, "primary": p, "verified": v, "visibility": "private" if p else None} for e, p, v in user.emails]
                )

            def _google_userinfo(self) -> None:
                user = sim.bearer_user("google", self.headers)
                if user is None:
                    self._json(401, {"error": "invalid_request", "error_description": "Invalid Credentials"})
                    return
                email, _, verified = user.emails[0]
                self._json(
                    200,
                    {
                        "sub": user.id,
                        "name": user.name,
                        "given_name": user.name.split()[0],
                        "email": email,
                        "email_verified": verified,
                        "picture": "https://lh3.example/a/photo",
                    },
                )

        return Handler


def _reordered(result: tuple[int, dict[str, str], bytes]) -> tuple[int, bytes, dict[str, str]]:
    status, headers, body = result
    return status, body, headers
