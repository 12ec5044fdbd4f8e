"""The one logging set-up of every peerdp process: site server, DPs, branch DPs, clients.

Each role logs what it decides and what it transfers as structlog events: a short event
name in words and fields (`package_id`, `source_version`, `dp`, `client`, bytes, reasons).
`setup()`, called once by each `serve`/`run` command, renders them on stderr, and the
standard library's records (uvicorn, httpx) the same way:

* `console` (the default): one line an administrator reads, `<time> [<level>] <event>
  key=value ...`;
* `json`: one JSON object per line, with `timestamp` (RFC 3339 UTC), `level`, `logger`,
  `event`, the event's fields, and the fields of the process itself (`role`, `peerdp`
  (its version), `pid`, and `dp` or `client`, the machine's own name, once it is known).

The format comes from `--log-format` or the `PEERDP_LOG_FORMAT` variable.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from structlog.typing import Processor

from peerdp import __version__
from peerdp.config import ConfigError

__all__ = [
    "LOG_FORMATS",
    "LOG_FORMAT_ENV",
    "bind_process",
    "checked_format",
    "get_logger",
    "setup",
]

LOG_FORMAT_ENV = "PEERDP_LOG_FORMAT"
LOG_FORMATS = ("console", "json")

# Fields of this process, added to every JSON event that does not set them itself (a
# terminal line leaves them out: they are the same on every line).
_PROCESS: dict[str, Any] = {"peerdp": __version__}
_FIRST = ("timestamp", "level", "logger", "event")


def _process_fields(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    for key, value in _PROCESS.items():
        event.setdefault(key, value)
    event.setdefault("pid", os.getpid())  # tells a site's worker processes apart
    return event


def _ordered(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """Time, level, logger and event first: a JSON line reads from the left too."""
    first = {key: event.pop(key) for key in _FIRST if key in event}
    return {**first, **event}


_SHARED: list[Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

# Events go to the standard library's logging, where setup()'s handler renders them; so
# third-party records and ours share one stream, one format and one level.
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        # "%s"-style arguments, as the standard library's logging takes them.
        structlog.stdlib.PositionalArgumentsFormatter(),
        *_SHARED,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger of one component, e.g. `peerdp.branch`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def bind_process(**fields: Any) -> None:
    """Fields every later event of this process carries (`role`, `dp`, `client`)."""
    _PROCESS.update({key: value for key, value in fields.items() if value is not None})


def checked_format(value: str | None) -> str:
    """`value`, else PEERDP_LOG_FORMAT, else `console`; ConfigError for anything else."""
    chosen = (value or os.environ.get(LOG_FORMAT_ENV) or "console").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ConfigError(
            f"log format {chosen!r} is not one of {', '.join(LOG_FORMATS)} "
            f"(--log-format or {LOG_FORMAT_ENV})"
        )
    return chosen


def setup(
    log_format: str | None = None,
    *,
    level: int = logging.INFO,
    role: str | None = None,
    stream: IO[str] | None = None,
) -> str:
    """Render every log record of this process on `stream` (stderr) in `log_format`;
    the format used. Raises ConfigError for an unknown format."""
    chosen = checked_format(log_format)
    out = stream if stream is not None else sys.stderr
    renderer: Processor
    if chosen == "json":
        renderer = structlog.processors.JSONRenderer()
        tail: list[Processor] = [
            _process_fields,
            structlog.processors.format_exc_info,
            _ordered,
        ]
    else:
        # Plain tracebacks: a log file is read with `less` and `grep`, not in a rich box.
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_terminal(out), exception_formatter=structlog.dev.plain_traceback
        )
        tail = []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request, or per schema check at start, would drown what the roles
    # decide.
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    # A server configured with uvicorn's own logging (its default log_config) gives its
    # loggers their own handlers and stops them propagating: take them back, so their
    # records are rendered here too.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        taken = logging.getLogger(name)
        taken.handlers.clear()
        taken.propagate = True
    if role is not None:
        bind_process(role=role)
    return chosen


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
