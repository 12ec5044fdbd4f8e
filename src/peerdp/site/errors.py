"""Errors the site answers with: 4xx and `{"detail": "<what is wrong, in words>"}`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from peerdp.content.space import disk_full_detail, is_disk_full
from peerdp.site.limits import BodyTooLarge


class ApiError(Exception):
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Invalid(ApiError):
    status = 422


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class TooLarge(ApiError):
    status = 413


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], raw: bytes) -> M:
    """A JSON request body parsed and validated in one step by pydantic (no dict in between,
    for hot endpoints); a bad body answers 422 exactly as FastAPI's own body parameters do."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that parses its body with `parse_body`."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": schema}}


def describe_validation(errors: Sequence[Any]) -> str:
    """Pydantic's error list as one readable sentence per problem, naming the field:
    `collection_id: must be a whole number (got 'abc')`, never pydantic's own wording."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "JSON decode error")
            parts.append(f"request body is not valid JSON: {reason}")
            continue
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = _in_words(error)
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


# What pydantic's error types mean, for the administrator who sent the value.
_WORDS = {
    "missing": "is required",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "extra_forbidden": "is not a field of this request",
    "datetime_parsing": "must be a time like 2024-05-01T08:00:00Z",
    "datetime_from_date_parsing": "must be a time like 2024-05-01T08:00:00Z",
    "datetime_type": "must be a time like 2024-05-01T08:00:00Z",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")
_PHRASES = (
    ("Input should be", "must be"),
    ("Input should have", "must have"),
    ("Input should", "must"),
    ("String should", "must"),
    ("List should", "must"),
    ("Dictionary should", "must"),
    ("Value should", "must"),
)


def _in_words(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "invalid"))
    if kind in _WORDS:
        message = _WORDS[kind]
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    for said, meant in _PHRASES:
        if message.startswith(said):
            message = meant + message[len(said) :]
            break
    given = error.get("input")
    shown = kind not in ("missing", "value_error", "assertion_error")
    short = isinstance(given, str | int | float) and len(str(given)) <= 60
    if shown and short and repr(given) not in message:
        message += f" (got {given!r})"
    return message


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (\w+)\.(\w+)")
_PG_UNIQUE = re.compile(r"Key \((.+?)\)=\((.*?)\) already exists")


def _integrity_detail(exc: IntegrityError) -> str:
    raw = str(exc.orig)
    text = raw.lower()
    if found := _SQLITE_UNIQUE.search(raw):
        return f"{found[1].replace('_', ' ')}: that {found[2]} is already in use"
    if found := _PG_UNIQUE.search(raw):
        return f"{found[1]} '{found[2]}' is already in use"
    if "unique" in text or "duplicate" in text:
        return "an object with that name or key already exists"
    if "foreign key" in text:
        return "the request refers to an object that does not exist, or one still in use"
    return "the request conflicts with the site database's rules"


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        return JSONResponse(
            {"detail": describe_validation(errors), "errors": _jsonable(errors)},
            status_code=422,
        )

    async def integrity(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IntegrityError)
        return JSONResponse({"detail": _integrity_detail(exc)}, status_code=409)

    async def unstorable(_: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot hold (a number out of range, a NUL character):
        # it can name nothing and store nothing, so the request is refused unchanged.
        first_line = str(getattr(exc, "orig", exc)).splitlines()[0]
        return JSONResponse(
            {"detail": f"a value in the request cannot be stored or looked up: {first_line}"},
            status_code=422,
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, BodyTooLarge):
            # FastAPI turns any error while reading the body into a 400; this one is a 413.
            return JSONResponse({"detail": str(exc.__cause__)}, status_code=413)
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(IntegrityError, integrity)
    app.add_exception_handler(DataError, unstorable)
    app.add_exception_handler(OverflowError, unstorable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OSError, disk_full)


async def disk_full(request: Request, exc: Exception) -> JSONResponse:
    """507 naming the site's content library (where uploads are spooled and stored) when
    its disk is full; any other OS error stays a 500."""
    if not is_disk_full(exc):
        raise exc
    assert isinstance(exc, OSError)
    library: Path = request.app.state.site.library_dir
    length = request.headers.get("content-length", "")
    needed = int(length) if length.isdigit() else None
    detail = disk_full_detail("the site's content library", library, exc, needed)
    return JSONResponse({"detail": detail}, status_code=507)


def _jsonable(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ]
