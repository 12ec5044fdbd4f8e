"""507 Insufficient Storage from a DP whose store's disk is full, in words, instead of a
bare 500: the site's distribution manager shows it as the DP row's detail."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from peerdp.content.space import disk_full_detail, is_disk_full


def answer_disk_full(app: FastAPI, store_root: Path) -> None:
    """Every write of `app` that finds the disk of `store_root` full answers 507."""

    async def disk_full(request: Request, exc: Exception) -> Response:
        if not is_disk_full(exc):
            raise exc  # any other OS error stays a 500 with its traceback in the log
        assert isinstance(exc, OSError)
        detail = disk_full_detail("the DP's store", store_root, exc, content_length(request))
        return JSONResponse({"detail": detail}, status_code=507)

    app.add_exception_handler(OSError, disk_full)


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
