"""Logging filters named in settings.LOGGING."""

import logging


class WithoutTraceback(logging.Filter):
    """Keeps the one-line message and drops the traceback: for refusals that are the client's doing
    (a Host header City does not serve), where a stack trace says nothing and scanners send many."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True
