from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, to the second: how every City response writes a time."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
