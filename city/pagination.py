"""Keyset pagination: newest first, `limit` items, `next_cursor` to ask for the following page."""

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from city.errors import ApiError


def page(
    queryset: QuerySet,
    data: dict[str, Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    cursor_field: str = "id",
    cursor_type: type = str,
) -> dict[str, Any]:
    """`queryset` must be ordered by `cursor_field` descending; the cursor is the last item's key."""
    limit = data.get("limit", 50)
    cursor = data.get("cursor")
    if cursor:
        try:
            cursor_value = cursor_type(cursor)
        except (TypeError, ValueError):
            raise ApiError(400, "cursor is not one that City handed out; take next_cursor from the previous page.", param="cursor", code="invalid_cursor") from None
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
