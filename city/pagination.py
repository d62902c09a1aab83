"""Keyset pagination: newest first, `limit` items, `next_cursor` to ask for the following page."""

import re
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from city.errors import ApiError

# What City's ids look like after their prefix: a lower-case ULID (city/ids.py).
ULID_PATTERN = r"[0-9a-hjkmnp-tv-z]{26}"
BIGINT_MAX = 2**63 - 1


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
    limit = data.get("limit", 50)
    cursor = data.get("cursor")
    if cursor is not None:
        try:
            cursor_value = cursor_type(cursor)
        except (TypeError, ValueError):
            raise ApiError(
                400,
                "cursor is not one that City handed out; take next_cursor from the previous page.",
                param="cursor",
                code="invalid_cursor",
            ) from None
        queryset = queryset.filter(**{f"{cursor_field}__lt": cursor_value})
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "object": "list",
        "items": [render(row) for row in rows],
        "has_more": has_more,
        "next_cursor": str(getattr(rows[-1], cursor_field)) if has_more else None,
    }
