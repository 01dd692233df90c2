"""structlog set-up: JSON when not a TTY, context bound per message and per request, PII redacted.

Supporters' emails, names and postal addresses must never reach a log line. The ``redact_pii``
processor runs last before rendering: it masks values under personal-data keys (at any depth) and
any email address found inside any string, so a careless ``log.info("x", body=payload)`` is safe.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

PII_KEYS = frozenset(
    {
        "email",
        "email_normalised",
        "reply_to",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "supporter",
        "address",
        "address_line1",
        "address_line2",
        "address_lines",
        "town",
        "comment",
        "letter",
        "to",
        "recipient",
        "body",
        "postcode",
    }
)
# Any address, ASCII or not ("jö@bücher.example"): \w matches letters of every script.
EMAIL_RE = re.compile(r"[\w.%+\-']+@[\w\-]+(?:\.[\w\-]+)*\.\w{2,}")
REDACTED = "[redacted]"
# What a database error quotes back: PostgreSQL's DETAIL ("Failing row contains (…)", "Key (…)=(…)")
# and SQLAlchemy's "[parameters: …]" hold the values of the row, names and addresses included.
DB_DETAIL_RE = re.compile(r"DETAIL:[^\n]*")
DB_PARAMETERS_RE = re.compile(r"\[parameters: .*?\](?=\n|$|\s*\(Background)", re.S)


def redact_text(text: str) -> str:
    """Free text (an exception's message, say) with email addresses and the row values a
    database error quotes removed."""
    text = DB_DETAIL_RE.sub("DETAIL: [redacted]", text)
    text = DB_PARAMETERS_RE.sub("[parameters: [redacted]]", text)
    return EMAIL_RE.sub("[email]", text)


def error_detail(exc: BaseException, limit: int = 300) -> str:
    """What a log line may say about an exception. A database error only by its class and
    SQLSTATE: its message can quote the values it failed on (a trigger's or a cast's, not only
    the DETAIL line the redactor removes). Anything else redacted (``redact_text``)."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None or type(orig).__module__.startswith(("psycopg", "sqlalchemy")):
        return f"{type(orig).__name__} (SQLSTATE {sqlstate or 'unknown'})"
    return redact_text(str(exc))[:limit]


def frames_of(exc: BaseException, last: int = 8) -> list[str]:
    """Where an exception happened, as "path:line in function" for its innermost frames: what an
    operator needs to find a bug, without the exception's message (a database error's message
    can quote the row it failed on)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames  # our code first
    return [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in ours[-last:]]


def exceptions_without_messages(
    _logger: Any, _method: str, event_dict: dict[str, Any]
) -> dict[str, Any]:
    """structlog processor, in place of ``format_exc_info``: an exception is rendered as its
    traceback's frames and its class, never its message, whoever logs it (uvicorn's "Exception
    in ASGI application", a library's warning): a database error's message can quote the row."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[0] is None:
        return event_dict
    kind, _value, tb = exc_info
    frames = "".join(traceback.format_list(traceback.extract_tb(tb)))
    event_dict["exception"] = (
        f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__} "
        "(its message is not logged: it may quote personal data)"
    )
    return event_dict


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in PII_KEYS else _scrub(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [_scrub(v) for v in value]
    return value


def redact_pii(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask personal data by key and email addresses anywhere."""
    for key in list(event_dict):
        if key.lower() in PII_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def configure_logging(service: str, level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog (and stdlib logging, so library logs go through the same pipe)."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        exceptions_without_messages,
        redact_pii,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Route stdlib logging (pika, uvicorn, alembic) through the same processors and redaction.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # pika logs every failed reconnect attempt at ERROR; our consumer and relay already log one
    # clear warning per attempt, so only pika's critical messages are kept.
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


bind_context = structlog.contextvars.bind_contextvars
unbind_context = structlog.contextvars.unbind_contextvars
bound_context = structlog.contextvars.bound_contextvars
