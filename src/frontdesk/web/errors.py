"""One JSON error shape for every API failure: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from frontdesk.domain.errors import (
    FieldError,
    Forbidden,
    FrontdeskError,
    NotFound,
    PracticeNotChosen,
    Unauthorized,
    ValidationFailed,
)

log = logging.getLogger(__name__)

STATUS_OF: dict[type[FrontdeskError], int] = {
    ValidationFailed: 422,
    NotFound: 404,
    Unauthorized: 401,
    Forbidden: 403,
    PracticeNotChosen: 400,
}


def error_body(code: str, message: str, fields: list[FieldError] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = [f.as_dict() for f in fields]
    return {"error": body}


def error_response(
    status: int, code: str, message: str, fields: list[FieldError] | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, fields), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(FrontdeskError)
    async def _ours(_request: Request, exc: FrontdeskError) -> JSONResponse:
        status = next((s for t, s in STATUS_OF.items() if isinstance(exc, t)), 400)
        if isinstance(exc, ValidationFailed):
            return error_response(status, exc.code, exc.message, exc.errors)
        return error_response(status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            FieldError(
                ".".join(str(p) for p in err.get("loc", ())) or "request",
                str(err.get("msg", "invalid")).removeprefix("Value error, "),
            )
            for err in exc.errors()
        ]
        return error_response(422, "validation_error", "The request is not valid.", fields)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The message may hold patient data; log only the type and keep the trace in debug.
        log.error("unhandled %s", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
        return error_response(500, "internal_error", "Something went wrong on our side.")
