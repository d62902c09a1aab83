"""Time every Django admin list page and search over 5,000 studios and 200,000 tokens.

    .venv/bin/python bench/admin_scale.py                      # SQLite (a scratch file under var/)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/city .venv/bin/python bench/admin_scale.py

It builds a scratch database the way the test runner does (`test_<name>`, created and dropped
here; the real database is never touched), seeds it with bulk inserts, logs a superuser in, asks
each page through Django's test client a few times and prints a table of the median and worst
times. `seed()` is also what the scale test in studios/tests/test_admin_scale.py uses.
"""

import base64
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Field, Model  # noqa: E402
from django.utils import timezone  # noqa: E402

from city.models import AuditEntry  # noqa: E402
from studios.models import Studio, UserToken  # noqa: E402

EPOCH = datetime(1970, 1, 1)
ROWS_PER_INSERT = 500  # x 10 columns: under SQLite's and PostgreSQL's limits on parameters


CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
PAIRS = [a + b for a in CROCKFORD for b in CROCKFORD]  # every 10-bit value as two characters


def _id(prefix: str, moment: datetime, rng: random.Random) -> str:
    """City's id shape (prefix_ + lower-case ULID) dated `moment` (naive UTC), so that -id is creation order.

    Encoded here, ten bits at a time: python-ulid's constructors validate each value and would
    double the seeding time.
    """
    value = (int((moment - EPOCH).total_seconds() * 1000) << 80) | rng.getrandbits(80)
    return prefix + "_" + "".join([PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])


def _sqlite_time(moment: datetime | None) -> str | None:
    return None if moment is None else str(moment)  # how Django stores a UTC time in SQLite


def _aware_time(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column, f"{name} is not a column of {model.__name__}"
    return field.column


def _insert(model: type[Model], columns: list[str], rows: list[tuple]) -> None:
    """Multi-row INSERTs of plain tuples: the ORM's per-value preparation would dominate 400,000 rows,
    and one statement per row would wait on 400,000 round trips to PostgreSQL."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(_column(model, c)) for c in columns)
    one_row = f"({', '.join(['%s'] * len(columns))})"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # COPY: PostgreSQL's bulk path, no statement per batch
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for start in range(0, len(rows), ROWS_PER_INSERT):
            batch = rows[start : start + ROWS_PER_INSERT]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([one_row] * len(batch))}", [v for row in batch for v in row])


def seed(*, studios: int = 5_000, tokens: int = 200_000, audit_entries: int = 200_000, seed: int = 7) -> dict[str, str]:
    """Insert a year of history: studios (5% paused, 2% removed) and their tokens (5% revoked,
    5% expired, 20% expiring later, half used lately), plus audit entries.

    Returns values the pages are searched for: a studio id and name, a token id, prefix and name.
    """
    rng = random.Random(seed)
    now = timezone.now().replace(tzinfo=None)  # naive UTC here; `at` makes each value what the database takes
    start = now - timedelta(days=365)
    span_seconds = 365 * 86400
    at = _sqlite_time if connection.vendor == "sqlite" else _aware_time

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Each token's foreign key checked as COPY inserts it: deferred (Django's default), the
            # 200,000 checks would wait in the transaction and run again at the end of every test.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if connection.vendor == "sqlite":
            # 256 MiB of page cache for this connection: random keys in five indexes would otherwise
            # spill the default 2 MiB to the WAL file again and again.
            cursor.execute("PRAGMA cache_size = -262144")

    studio_rows = []
    for i in range(studios):
        created = start + timedelta(seconds=i * span_seconds / max(studios, 1))
        roll = rng.random()
        status = Studio.Status.REMOVED if roll < 0.02 else Studio.Status.PAUSED if roll < 0.07 else Studio.Status.ACTIVE
        studio_rows.append((_id("studio", created, rng), f"Studio {i:05d} {rng.choice(WORDS)}", status, at(created), at(created)))
    _insert(Studio, ["id", "name", "status", "created_at", "updated_at"], studio_rows)

    studio_ids = [row[0] for row in studio_rows]
    token_rows = []
    for i in range(tokens):
        created = start + timedelta(seconds=i * span_seconds / max(tokens, 1))
        roll = rng.random()
        expires_at = revoked_at = None
        if roll < 0.05:
            revoked_at = created + timedelta(days=1)
        elif roll < 0.10:
            expires_at = created + timedelta(hours=1)  # already past
        elif roll < 0.30:
            expires_at = now + timedelta(days=rng.randint(1, 365))
        last_used_at = now - timedelta(minutes=rng.randint(1, 10_000)) if rng.random() < 0.5 else None
        token_rows.append(
            (
                _id("tok", created, rng),
                rng.choice(studio_ids),
                f"{rng.choice(WORDS)} {rng.choice(DEVICES)} {i}",
                "ub_" + base64.urlsafe_b64encode(rng.randbytes(6)).decode(),  # 8 URL-safe characters
                rng.randbytes(32).hex(),
                at(created),
                at(expires_at),
                at(last_used_at),
                at(revoked_at),
            )
        )
    _insert(UserToken, ["id", "studio", "name", "prefix", "digest", "created_at", "expires_at", "last_used_at", "revoked_at"], token_rows)

    actors = ["admin", "admin:alice", "admin:root", "admin:ops"]
    audit_rows = []
    for i in range(audit_entries):
        created = start + timedelta(seconds=i * span_seconds / max(audit_entries, 1))
        outcome = "409 token_revoked" if rng.random() < 0.03 else "ok"
        audit_rows.append(
            (rng.choice(actors), rng.choice(AUDITED), token_rows[i % len(token_rows)][0] if token_rows else "", outcome, "{}", at(created))
        )
    _insert(AuditEntry, ["actor", "action", "target", "outcome", "detail", "created_at"], audit_rows)

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    with connection.cursor() as cursor:  # the statistics autovacuum or a long-lived SQLite file would have
        cursor.execute("ANALYZE studios_studio, studios_usertoken, city_auditentry" if connection.vendor == "postgresql" else "ANALYZE")

    sample_studio = studio_rows[len(studio_rows) // 2]
    sample_token = token_rows[len(token_rows) // 2]
    return {
        "studio_id": sample_studio[0],
        "studio_name": sample_studio[1].split()[1],
        "token_id": sample_token[0],
        "token_prefix": sample_token[3][:6],
        "token_name": sample_token[2].split()[-1],  # a rare name: the search reads every row
    }


def admin_pages(sample: dict[str, str]) -> list[tuple[str, str]]:
    """(label, URL) of every admin list page, each filter and each kind of search."""
    studios, tokens, audit, env = "/admin/studios/studio/", "/admin/studios/usertoken/", "/admin/city/auditentry/", "/admin/city/envvar/"
    return [
        ("studios: list", studios),
        ("studios: page 20", studios + "?p=20"),
        ("studios: status=paused", studios + "?status__exact=paused"),
        ("studios: sort by name", studios + "?o=2"),
        ("studios: search name", studios + f"?q={sample['studio_name']}"),
        ("studios: search id", studios + f"?q={sample['studio_id']}"),
        ("studios: raw-id popup", studios + "?_to_field=id&_popup=1"),
        ("tokens: list", tokens),
        ("tokens: page 100", tokens + "?p=100"),
        ("tokens: status=active", tokens + "?status=active"),
        ("tokens: status=revoked", tokens + "?status=revoked"),
        ("tokens: status=expired", tokens + "?status=expired"),
        ("tokens: oldest first", tokens + "?o=5"),
        ("tokens: search prefix", tokens + f"?q={sample['token_prefix']}"),
        ("tokens: search name", tokens + f"?q={sample['token_name']}"),
        ("tokens: search studio id", tokens + f"?q={sample['studio_id']}"),
        ("tokens: search + revoked", tokens + f"?q={sample['studio_id']}&status=revoked"),
        ("tokens: issue form", tokens + "add/"),
        ("audit: list", audit),
        ("audit: action filter", audit + "?action=studios/tokens/revoke"),
        ("audit: failed", audit + "?outcome=failed"),
        ("audit: last 7 days", audit + "?within=7d"),
        ("audit: search actor", audit + "?q=admin:alice"),
        ("audit: search target", audit + f"?q={sample['token_id']}"),
        ("env: list", env),
    ]


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        started = time.perf_counter()
        sample = seed()
        seeded = time.perf_counter() - started
        user = get_user_model().objects.create_superuser("bench", "bench@example.invalid", "bench-password-not-secret")
        client = Client()
        client.force_login(user)
        print(f"database: {connection.vendor}; seeded 5,000 studios, 200,000 tokens, 200,000 audit entries in {seeded:.1f} s")
        print(f"{'page':32} {'median ms':>10} {'worst ms':>10}")
        for label, url in admin_pages(sample):
            client.get(url)  # warm: templates compiled, pages cached by the database
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            print(f"{label:32} {statistics.median(times):10.1f} {max(times):10.1f}")
    finally:
        teardown_databases(databases, verbosity=0)


WORDS = [
    "amber",
    "birch",
    "cobalt",
    "delta",
    "ember",
    "fjord",
    "granite",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lumen",
    "maple",
    "nimbus",
    "onyx",
    "pine",
]
DEVICES = ["laptop", "server", "ci", "phone", "staging", "worker"]
AUDITED = [
    "studios/create",
    "studios/pause",
    "studios/activate",
    "studios/tokens/apply",
    "studios/tokens/revoke",
    "studios/tokens/rotate",
    "env/upsert",
]

if __name__ == "__main__":
    main()
