"""structlog JSON logs on stderr only: on stdio, stdout is the protocol."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import structlog


class _Stderr:
    """Writes to whatever `sys.stderr` is now; a closed stream never fails the caller."""

    def write(self, text: str) -> int:
        try:
            return sys.stderr.write(text)
        except (ValueError, OSError):
            return 0

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()


def configure_logging(level: str | None = None, *, server: str = "") -> None:
    """Send structlog and stdlib logging to stderr as JSON lines."""
    level_name = (level or os.environ.get("CADRE_LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    if server:
        structlog.contextvars.bind_contextvars(server=server)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]  # write/flush suffice
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *processors[1:3]],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


def ensure_logging() -> None:
    """Configure stderr logging unless the application already did: stdout may be a protocol."""
    if not structlog.is_configured():
        configure_logging()
