"""Logging: one JSON object per line (or plain text for a terminal), the same for the
app's, uvicorn's and the access log's records, each carrying the request id when it
was written while a request was being handled."""

import logging
import logging.config
from typing import Any

from app.observe import request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            rid = request_id.get()
            if rid is not None:
                record.request_id = rid
        return True


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A dictConfig for the root logger and uvicorn's, which uvicorn applies in each
    worker process (uvicorn.run(log_config=...)) and the app applies when run alone."""
    formatters: dict[str, dict[str, Any]] = {
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            # ISO 8601 in UTC under "time", as the access lines (app.accesslog) write it.
            "fmt": "{levelname}{name}{message}",
            "style": "{",
            "timestamp": "time",
            "rename_fields": {"levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    }
    handler = {
        "class": "logging.StreamHandler",
        "formatter": fmt,
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {fmt: formatters[fmt]},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        # uvicorn's own loggers propagate to root, except its access log: ours replaces
        # it. A logger with no handler anywhere up its chain is how uvicorn knows to skip
        # it (hasHandlers), even when the app, not uvicorn, applies this config: a plain
        # `uvicorn app.main:app` otherwise logged every request twice (~13% of the event
        # loop's time under load, measured).
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": False},
        },
    }


def configure(level: str, fmt: str) -> None:
    """Apply the config unless uvicorn (or a host application) already configured logging."""
    if not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(level, fmt))
