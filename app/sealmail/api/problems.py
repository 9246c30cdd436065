"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 §3.1 members; validation problems add ``errors``, scope problems ``required_scope``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None
    required_scope: str | None = None


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    # RFC 9457 §4.2.1: with "about:blank" the title is the HTTP status phrase.
    body: dict[str, Any] = {"type": "about:blank", "title": title or HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (401, "no token, or a token that is unknown or revoked"),
        (403, "the token lacks the scope this operation needs"),
        (422, "invalid input; ``errors`` names each problem"),
        (429, "too many failed authentications from this address"),
    )
}
