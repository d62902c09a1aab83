"""What an app declares at oauth/start, checked: its loopback redirect URI, its PKCE challenge, its name.

The redirect URI is the one place an app steers a browser, so only loopback IP literals pass
(RFC 8252 §7.3), with any port: `http://127.0.0.1:PORT/path` or `http://[::1]:PORT/path`.
`localhost` is refused (RFC 8252 §8.3: it may resolve elsewhere or be captured by a firewall or
a hosts file). The URI is matched as text by one pattern rather than parsed leniently, so that no
userinfo (`127.0.0.1@evil`), suffix (`127.0.0.1.evil.example`), backslash or other host slips by.
"""

import base64
import hashlib
import hmac
import re
import secrets

# Port: 1-65535 without leading zeros. Path: RFC 3986 path characters (pchar and "/"), %XX escapes only.
LOOPBACK_REDIRECT_URI = re.compile(
    r"http://(?:127\.0\.0\.1|\[::1\])"
    r":(?P<port>[1-9][0-9]{0,4})"
    r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*)?"
)
REDIRECT_URI_MAX_CHARS = 200
# RFC 7636 §4.2: S256 is BASE64URL(SHA-256(verifier)) without padding: 43 characters.
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_\-]{43}")
# RFC 7636 §4.1: the verifier is 43-128 unreserved characters.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 8628 §6.1's alphabet: 20 consonants, no vowels (no words), none that look alike.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
# Printable text for an app's name and state: no control characters, no angle brackets.
APP_TEXT = re.compile(r"[^\x00-\x1f\x7f<>]+")


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` is not an acceptable loopback redirect URI, or None when it is."""
    if len(uri) > REDIRECT_URI_MAX_CHARS:
        return f"redirect_uri is longer than {REDIRECT_URI_MAX_CHARS} characters."
    match = LOOPBACK_REDIRECT_URI.fullmatch(uri)
    if match is None:
        if re.match(r"https?://localhost(?:[:/]|$)", uri, re.IGNORECASE):
            return "redirect_uri may not use 'localhost' (RFC 8252 §8.3); use http://127.0.0.1:PORT/… or http://[::1]:PORT/…."
        return (
            "redirect_uri must be a loopback address with a port, http://127.0.0.1:PORT/path or http://[::1]:PORT/path "
            "(RFC 8252 §7.3), without query or fragment; nothing else is accepted."
        )
    if int(match["port"]) > 65535:
        return "redirect_uri's port must be 1 to 65535."
    return None


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def verifier_matches(verifier: str, challenge: str) -> bool:
    return bool(challenge) and hmac.compare_digest(s256(verifier), challenge)


def new_user_code() -> str:
    """8 characters as XXXX-XXXX, e.g. WDJB-MJHT: about 34 bits, read aloud and compared by a person."""
    chars = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"
