from ulid import ULID


def new_id(prefix: str) -> str:
    """`prefix_` + a lower-case ULID: unique, and sorted by creation time (keyset pagination)."""
    return f"{prefix}_{str(ULID()).lower()}"
