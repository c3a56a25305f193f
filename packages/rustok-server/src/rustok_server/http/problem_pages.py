"""``GET /problems/{name}``: the page of each problem type the server emits.

A browser (``Accept: text/html`` without ``application/json``) gets an HTML page; any
other client gets JSON (`ProblemTypeOut`): the type, its title and status, what it means
and what to do. No tenant is needed.
"""

from __future__ import annotations

import html
from typing import Final

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import HTMLResponse, JSONResponse, Response

from rustok_server.errors import ProblemTypeNotFoundError
from rustok_server.http.problem_types import PROBLEM_TYPES, ProblemType, type_uri
from rustok_server.http.problems import problem_responses, problem_type_base_of

__all__ = ["ProblemTypeOut", "router"]


class ProblemTypeOut(BaseModel):
    """A problem type, as ``GET /problems/{name}`` answers it in JSON."""

    type: str
    name: str
    title: str
    status: int
    meaning: str
    action: str


router: Final[APIRouter] = APIRouter(tags=["problems"])
"""``GET /problems/{name}``: a page per problem type."""


@router.get(
    "/problems/{name}",
    summary="What a problem type means",
    response_model=ProblemTypeOut,
    responses={
        200: {
            "description": "The problem type: JSON, or an HTML page for text/html.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(404),
    },
)
async def get_problem_type(name: str, request: Request) -> Response:
    """A problem type: what it means and what to do (HTML for a browser, else JSON)."""
    problem = PROBLEM_TYPES.get(name)
    if problem is None:
        raise ProblemTypeNotFoundError(name)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(_page(problem))
    data = ProblemTypeOut(
        type=type_uri(problem.name, problem_type_base_of(request)),
        name=problem.name,
        title=problem.title,
        status=problem.status,
        meaning=problem.meaning,
        action=problem.action,
    )
    return JSONResponse(data.model_dump())


def _page(problem: ProblemType) -> str:
    title, status = html.escape(problem.title), problem.status
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body><h1>{title} ({status})</h1>\n"
        f"<p>{html.escape(problem.meaning)}</p>\n"
        f"<h2>What to do</h2><p>{html.escape(problem.action)}</p>\n"
        "</body></html>\n"
    )
