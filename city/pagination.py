"""Keyset pagination: newest first, `limit` items, `next_cursor` to ask for the following page."""

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from city.errors import ApiError

# What City's ids look like after their prefix: a lower-case ULID (city/ids.py).
ULID_PATTERN = r"[0-9a-hjkmnp-tv-z]{26}"
BIGINT_MAX = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def id_cursor(prefix: str) -> Callable[[str], str]:
    """A parser for cursors that are ids of one kind (`studio_…`, `tok_…`); anything else is refused."""
    pattern = re.compile(f"{re.escape(prefix)}_{ULID_PATTERN}")

    def parse(cursor: str) -> str:
        if not pattern.fullmatch(cursor):
            raise ValueError(cursor)
        return cursor

    return parse


def int_cursor(cursor: str) -> int:
    """A cursor that is a positive database id (the audit log's)."""
    if not cursor.isascii() or not cursor.isdigit() or not 0 < int(cursor) <= BIGINT_MAX:
        raise ValueError(cursor)
    return int(cursor)


def page(
    queryset: QuerySet,
    data: dict[str, Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    cursor_field: str = "id",
    cursor_type: Callable[[str], Any] = str,
) -> dict[str, Any]:
    """`queryset` must be ordered by `cursor_field` descending; the cursor is the last item's key.

    `cursor_type` turns a cursor into a key or raises ValueError (answered 400): a cursor City did
    not hand out is refused rather than answered with a quietly empty page.
    """
    cursor = _parsed(data, cursor_type)
    if cursor is not None:
        queryset = queryset.filter(**{f"{cursor_field}__lt": cursor})
    return _page(queryset, data, render, lambda last: str(getattr(last, cursor_field)))


def _parsed(data: dict[str, Any], parse: Callable[[str], Any]) -> Any:
    """The request's cursor, parsed (None without one); a cursor City did not hand out is a 400."""
    cursor = data.get("cursor")
    if cursor is None:
        return None
    try:
        return parse(cursor)
    except (TypeError, ValueError):
        raise ApiError(
            400, "cursor is not one that City handed out; take next_cursor from the previous page.", param="cursor", code="invalid_cursor"
        ) from None


def _page(
    queryset: QuerySet, data: dict[str, Any], render: Callable[[Any], dict[str, Any]], cursor_of: Callable[[Any], str]
) -> dict[str, Any]:
    """One page of `limit` rows, and the cursor of its last row when more follow."""
    limit = data.get("limit", 50)
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "object": "list",
        "items": [render(row) for row in rows],
        "has_more": has_more,
        "next_cursor": cursor_of(rows[-1]) if has_more else None,
    }


def time_page(queryset: QuerySet, data: dict[str, Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Like `page`, for rows kept newest first by (`created_at`, `id`): the cursor is both, opaque.

    `queryset` must be ordered by `-created_at, -id`. The next page's condition is `created_at <= t
    AND (created_at < t OR id < i)`: its first half bounds an index range on (…, created_at, id),
    so a deep page costs what the first one does.
    """
    cursor = _parsed(data, parse_time_cursor)
    if cursor is not None:
        moment, last_id = cursor
        queryset = queryset.filter(Q(created_at__lt=moment) | Q(id__lt=last_id), created_at__lte=moment)
    return _page(queryset, data, render, lambda last: time_cursor(last.created_at, last.id))


_TIME_CURSOR = re.compile(r"(\d{1,16})\.(\d{1,19})")


def time_cursor(moment: datetime, row_id: int) -> str:
    """(created_at, id) as an opaque token: URL-safe base64 of "<µs since 1970>.<id>"."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{row_id}".encode()).decode().rstrip("=")


def parse_time_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) of `time_cursor`; ValueError (base64's and Unicode's errors are ones) for
    anything it did not make, down to a leading zero."""
    if not isinstance(cursor, str) or not cursor.isascii() or len(cursor) > 64:
        raise ValueError(cursor)
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    match = _TIME_CURSOR.fullmatch(decoded)
    if match is None or not 0 < int(match[2]) <= BIGINT_MAX:
        raise ValueError(cursor)
    found = EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    if time_cursor(*found) != cursor:
        raise ValueError(cursor)
    return found
