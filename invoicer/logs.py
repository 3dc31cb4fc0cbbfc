"""Structured logs: one JSON object a line (structlog), personal data masked, secrets never written.

Our own lines are events with fields (`log.info("delivery.done", tenant=..., job=..., platform=...)`);
the libraries' lines (Celery, uvicorn) go through the same processors, so every line on stderr is
JSON and every line is masked. Masking works on the names of fields (a `token`, `email`, `address`
is replaced whatever its value) and on the text of every value (an email address or a phone number
inside a message is masked where it stands).

INVOICER_LOG_FORMAT=console gives readable lines for a person at a terminal; JSON is the default.
"""
from __future__ import annotations

import logging
import os
import re
import sys

import structlog

SECRET = re.compile(r"(pass(word)?|secret|token|api[_-]?key|authori[sz]ation|cookie|signature|^sig$|credential"
                    r"|private[_-]?key)", re.I)
PERSONAL = re.compile(r"(e[_-]?mail|phone|mobile|address|street|line[12]|postal|zip|name|recipient|to)$", re.I)
EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w/=.-])\+?\d[\d ().-]{6,}\d(?![\w/-])")
BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I)
NOT_PERSONAL = {"event", "logger", "level", "timestamp", "platform", "provider", "kind", "target", "tenant",
                "job", "queue", "task", "error", "outcome", "state", "stage", "logger_name", "filename",
                "func_name", "exc_info", "exception"}


def mask_text(text: str) -> str:
    """An email keeps its first letter (`h***@example.com` style is not needed in logs: the domain is
    enough to tell a typo); a phone number keeps its last two digits; bearer tokens vanish."""
    text = BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@***", text)
    return PHONE.sub(_phone, text)


def _phone(m: re.Match) -> str:
    """Nine digits or more, not a date: a phone number, shown by its last two digits."""
    found = m.group(0)
    digits = re.sub(r"\D", "", found)
    if len(digits) < 9 or re.match(r"\d{4}-\d\d-\d\d", found):
        return found
    return "***" + digits[-2:]


def _mask_value(key: str, value):
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(key, v) for v in value]
    if key not in NOT_PERSONAL and SECRET.search(key):
        return "[redacted]"
    if key not in NOT_PERSONAL and PERSONAL.search(key) and value not in (None, ""):
        return "[masked]"
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask(_logger, _method, event_dict: dict) -> dict:
    """structlog processor: mask every field by its name and its text."""
    return {k: _mask_value(k, v) for k, v in event_dict.items()}


def _render_exception(_logger, _method, event_dict: dict) -> dict:
    """Tracebacks are kept (as text, then masked like the rest) so a failure can be diagnosed."""
    return structlog.processors.format_exc_info(_logger, _method, event_dict)


def _first(_logger, _method, event_dict: dict) -> dict:
    """Time, level and what happened first; then the fields."""
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event", "logger") if k in event_dict}
    return {**head, **event_dict}


_configured = False


def configure(level: str | int = "INFO", fmt: str | None = None) -> None:
    """Route our structlog lines and the standard library's (Celery, uvicorn, kombu) to stderr as masked
    JSON. Safe to call more than once."""
    global _configured
    fmt = (fmt or os.environ.get("INVOICER_LOG_FORMAT") or "json").lower()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _render_exception,
    ]
    renderer = structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" \
        else structlog.processors.JSONRenderer(sort_keys=False, default=str)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, mask, _first, renderer])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_invoicer", False):
            root.removeHandler(old)
    handler._invoicer = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)  # library warnings become log lines too
    for noisy in ("urllib3", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not _configured:
        structlog.configure(
            processors=[structlog.stdlib.filter_by_level, *shared,
                        structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True)
    _configured = True


def get(name: str):
    return structlog.stdlib.get_logger(name)
