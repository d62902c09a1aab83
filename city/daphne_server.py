"""Daphne as `manage.py serve` runs it: Daphne's own command line, with an access log that writes no
query-string values.

Query strings carry secrets on some routes (`/v1/accounts/oauth/result?flow_id=…` is a sign-in's pickup
secret, worth a user token until it is picked up; the OAuth callback carries the provider's code and
state), and an access log is read by more people, and kept longer, than the credentials it would hold.
Each entry keeps the path and the parameters' names: `GET /v1/accounts/oauth/result?flow_id=***`.
"""

from collections.abc import Callable
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

REDACTED = "***"


def redact_query(uri: str) -> str:
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    names = [part.partition("=")[0] for part in query.split("&") if part]
    return f"{path}?" + "&".join(f"{name}={REDACTED}" for name in names)


class RedactedAccessLog:
    """Wraps Daphne's access logger: the same entries, with query values replaced by ***."""

    def __init__(self, log: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.log = log

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact_query(details["path"])}
        self.log(protocol, action, details)


class CityServer(Server):
    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, action_logger=RedactedAccessLog(action_logger) if action_logger else None, **kwargs)


class CityCommandLine(CommandLineInterface):
    server_class = CityServer


if __name__ == "__main__":
    CityCommandLine.entrypoint()
