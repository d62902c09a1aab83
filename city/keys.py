"""Keys derived from CITY_SECRET_KEY, which lives outside the database.

A database dump alone yields no usable token (digests are HMACs under a derived key) and no env
value (values are Fernet-encrypted under another derived key).
"""

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"city", info=purpose).derive(secret.encode())


@cache
def token_digest_key() -> bytes:
    return _derive(settings.CITY_SECRET_KEY, b"user-token-digest")


def token_digest(raw_token: str) -> str:
    return hmac.new(token_digest_key(), raw_token.encode(), hashlib.sha256).hexdigest()


@cache
def env_cipher() -> MultiFernet:
    """Encrypts with the current key; decrypts with it or any CITY_SECRET_KEY_FALLBACKS."""
    secrets = [settings.CITY_SECRET_KEY, *settings.CITY_SECRET_KEY_FALLBACKS]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(_derive(s, b"runtime-env"))) for s in secrets])


def decrypt_or_none(ciphertext: str) -> str | None:
    """None when the value was encrypted under a key City no longer has (see CITY_SECRET_KEY_FALLBACKS)."""
    try:
        return env_cipher().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        return None
