"""Runtime env operations: every write goes through these functions (API and Django admin alike)."""

import io
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import IntegrityError, transaction
from django.utils import timezone
from dotenv.parser import parse_stream

from city.audit import record
from city.errors import ApiError
from city.keys import decrypt_or_none, env_cipher
from city.models import EnvVar
from city.runtime_env import runtime_env

KEY_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
MAX_VALUE_CHARS = 16_384
# Read once at start-up, or guarding City itself: setting them at run time would mislead or endanger.
STARTUP_ONLY_KEYS = {
    "ADMIN_SECRET_KEY",
    "CITY_SECRET_KEY",
    "CITY_SECRET_KEY_FALLBACKS",
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
}
STARTUP_ONLY_PREFIXES = ("CITY_", "DATABASE_", "REDIS_")
# Tries to lock or insert a key's row before answering 409. Each try after the first follows a
# concurrent insert that won and a remove of that row committed in between, so a writer racing N
# removes of its key needs at most N + 1 tries: 5 was too few for 25 removes at once (seen on
# PostgreSQL in test_races when two test workers loaded the machine); a try costs two queries.
LOCK_ATTEMPTS = 64


def key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        return "keys are 1-128 characters of A-Z, 0-9 and _, starting with a letter"
    if key in STARTUP_ONLY_KEYS or key.startswith(STARTUP_ONLY_PREFIXES):
        return f"{key} is read at start-up only; set it in the process environment or .env"
    return None


def value_problem(value: Any, key: str = "") -> str | None:
    if not isinstance(value, str):
        return "values are strings"
    if len(value) > MAX_VALUE_CHARS:
        return f"values are at most {MAX_VALUE_CHARS} characters"
    if "\x00" in value:
        return "values may not contain NUL characters"
    if value and key.endswith(PLAIN_KEY_SUFFIXES):
        return url_problem(value)
    return None


def url_problem(value: str) -> str | None:
    """A `*_URL` value City will call: an absolute http(s) URL, without credentials in it (they would
    be shown as an address, and City's upstream clients do not send them; keys go in `*_API_KEY`)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return "this is not a URL City can call"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "URLs start with http:// or https:// and name a host, such as http://127.0.0.1:8000/v1"
    if parts.username is not None or parts.password is not None:
        return "put no user name or password in a URL; an API key goes in its own *_API_KEY variable"
    return None


def mask(value: str | None) -> str | None:
    """`sk-…a1b2`: enough to recognise a value, never enough to use it."""
    if value is None:
        return None
    if len(value) < 12:
        return "…"
    return f"{value[:3]}…{value[-4:]}"


# Keys whose values are addresses, not secrets: shown as they are, less any password or query in them.
PLAIN_KEY_SUFFIXES = ("_URL",)


def shown(key: str, value: str | None) -> str | None:
    """A value as lists and answers show it: URLs in full but for their credentials, the rest masked."""
    if value is None or not key.endswith(PLAIN_KEY_SUFFIXES):
        return mask(value)
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return mask(value)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "…@" + netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def _encrypt(value: str) -> str:
    return env_cipher().encrypt(value.encode()).decode()


def _decrypt(row: EnvVar) -> str | None:
    """The stored value, or None when no current or fallback key opens it (CITY_SECRET_KEY changed)."""
    return decrypt_or_none(row.ciphertext)


def check_pair(key: Any, value: Any) -> None:
    if problem := key_problem(key):
        raise ApiError(400, f"key: {problem}.", param="key", code="invalid_key")
    if problem := value_problem(value, key):
        raise ApiError(400, f"value: {problem}.", param="value", code="invalid_value")


def upsert_env(key: str, value: str, *, description: str | None, actor: Any) -> tuple[EnvVar, bool]:
    """Set `key`; returns (row, changed). An unchanged value with no new description writes nothing.

    Concurrent writers of one key are serialised on its row: each sees the value the one before it
    left, so `changed` and the audit entry say what this call did.
    """
    check_pair(key, value)
    ciphertext = _encrypt(value)
    label = _actor(actor)
    with transaction.atomic():
        row, created = _locked_row(key, ciphertext=ciphertext, description=description or "", updated_by=label)
        if not created:
            if _decrypt(row) == value and (description is None or description == row.description):
                return row, False
            row.ciphertext = ciphertext
            if description is not None:
                row.description = description
            row.updated_at, row.updated_by = timezone.now(), label
            row.save(update_fields=["ciphertext", "description", "updated_at", "updated_by"])
        record(actor, "env/upsert", target=key)
    runtime_env.invalidate()
    return row, True


def remove_env(key: str, *, actor: Any) -> None:
    if problem := key_problem(key):
        raise ApiError(400, f"key: {problem}.", param="key", code="invalid_key")
    with transaction.atomic():
        deleted, _ = EnvVar.objects.filter(key=key).delete()
        if not deleted:
            raise ApiError(
                404, f"{key} is not set in City's runtime env (a process value cannot be removed here).", param="key", code="env_not_found"
            )
        record(actor, "env/remove", target=key)
    runtime_env.invalidate()


@dataclass
class ImportReport:
    set: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"set": self.set, "unchanged": self.unchanged, "rejected": self.rejected}


def import_env(content: str, *, actor: Any) -> ImportReport:
    """Apply `.env` text all-or-nothing: any rejected line means nothing is written (ApiError 400)."""
    report = ImportReport()
    pairs: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(content)):
        line = binding.original.line
        if binding.error:
            report.rejected.append({"line": line, "key": None, "reason": "not KEY=value syntax"})
            continue
        if binding.key is None:
            continue  # blank line or comment
        value = binding.value if binding.value is not None else ""
        problem = key_problem(binding.key) or value_problem(value, binding.key)
        if binding.key in first_line:
            problem = f"{binding.key} is also set on line {first_line[binding.key]}"
        if problem:
            report.rejected.append({"line": line, "key": binding.key, "reason": problem})
            continue
        first_line[binding.key] = line
        pairs[binding.key] = value
    if report.rejected:
        first = report.rejected[0]
        raise ApiError(
            400,
            f"Nothing was imported: line {first['line']} is rejected ({first['reason']}); {len(report.rejected)} line(s) rejected in all.",
            param="content",
            code="env_import_rejected",
            details=report.as_dict(),
        )
    if not pairs:
        raise ApiError(400, "content holds no KEY=value line; nothing was imported.", param="content", code="env_import_empty")
    label = _actor(actor)
    with transaction.atomic():
        # One key at a time, in one order for every writer: two imports naming the same keys in
        # different orders wait for each other instead of deadlocking.
        for key in sorted(pairs):
            value = pairs[key]
            ciphertext = _encrypt(value)
            row, created = _locked_row(key, ciphertext=ciphertext, updated_by=label)
            if created:
                report.set.append(key)
            elif _decrypt(row) == value:
                report.unchanged.append(key)
            else:
                row.ciphertext, row.updated_at, row.updated_by = ciphertext, timezone.now(), label
                row.save(update_fields=["ciphertext", "updated_at", "updated_by"])
                report.set.append(key)
        record(actor, "env/import", target=",".join(report.set)[:200], detail={"set": report.set, "unchanged": report.unchanged})
    runtime_env.invalidate()
    return report


def _locked_row(key: str, **new_fields: Any) -> tuple[EnvVar, bool]:
    """(row, created): the row of `key`, locked until the transaction ends, or a new one inserted.

    `select_for_update` locks no row that does not exist yet, so two writers of a new key both find
    none and both insert. The second insert waits for the first writer's commit, then fails on the
    unique key; it runs in a savepoint, so this transaction goes on and locks the row that won.
    (SQLite's IMMEDIATE transactions already run one writer at a time; this never loops there.)
    Called inside a transaction.
    """
    for _ in range(LOCK_ATTEMPTS):
        row = EnvVar.objects.select_for_update().filter(key=key).first()
        if row is not None:
            return row, False
        row = EnvVar(key=key, updated_at=timezone.now(), **new_fields)
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            continue  # inserted by a concurrent writer (which has committed): lock that row
        return row, True
    # Only when the row keeps appearing and vanishing under concurrent upserts and removes.
    raise ApiError(409, f"{key} is being changed by other requests at this moment; try again.", param="key", code="env_conflict")


def _actor(actor: Any) -> str:
    from city.audit import actor_label

    return actor_label(actor)[:200]


def decrypted_rows() -> dict[str, EnvVar]:
    return {row.key: row for row in EnvVar.objects.all()}


def value_of(row: EnvVar) -> str | None:
    return _decrypt(row)
