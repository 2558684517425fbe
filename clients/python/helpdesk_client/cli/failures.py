"""Exit codes scripts can rely on, and a short message instead of a traceback for expected failures."""

from __future__ import annotations

from enum import IntEnum

from helpdesk_client.errors import (
    ApiError,
    ConflictError,
    Forbidden,
    HelpdeskError,
    NotFound,
    RuleViolation,
    TransportError,
    Unauthorized,
    ValidationError,
)


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # the server failed, or something unexpected
    USAGE = 2  # bad arguments or input the API refused as malformed
    NOT_FOUND = 3  # no such ticket
    CONFLICT = 4  # the ticket moved on (stale --expect-version) or another change won
    AUTH = 5  # not logged in, token refused, or not allowed
    RULE = 6  # a ticket rule forbids it (e.g. only the owner may resolve)
    UNREACHABLE = 7  # no answer from the server


def exit_code_for(error: HelpdeskError) -> ExitCode:
    match error:
        case NotFound():
            return ExitCode.NOT_FOUND
        case ConflictError():
            return ExitCode.CONFLICT
        case Unauthorized() | Forbidden():
            return ExitCode.AUTH
        case RuleViolation():
            return ExitCode.RULE
        case ValidationError():
            return ExitCode.USAGE
        case TransportError():
            return ExitCode.UNREACHABLE
        case _:
            return ExitCode.ERROR


def message_for(error: HelpdeskError) -> str:
    text = str(error)
    if isinstance(error, ConflictError) and error.current_version is not None:
        return f"{text} (the ticket is at version {error.current_version}; show it again and decide)"
    if isinstance(error, RuleViolation) and error.rule:
        return f"{text} [{error.rule}]"
    if isinstance(error, Unauthorized):
        return f"{text} (log in again: helpdesk login)"
    if isinstance(error, ApiError) and not text:
        return f"the server answered {error.status}"
    return text
