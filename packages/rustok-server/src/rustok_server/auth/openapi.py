"""What authentication adds to the OpenAPI document: the 401, 403 and 429 problems of
every operation that declares the bearer scheme."""

from __future__ import annotations

from typing import Any

from rustok_server.http.problems import problem_responses

__all__ = ["document_security"]

_DESCRIPTIONS = {
    401: "No credential, or one that is not valid; see WWW-Authenticate",
    403: "The credential lacks the scope named, or the request names another tenant",
    429: "The tenant's rate limit is used up; see Retry-After and the RateLimit headers",
}


def document_security(document: dict[str, Any]) -> dict[str, Any]:
    """Add the authentication problems to each secured operation of ``document``."""
    responses = problem_responses(401, 403, 429)
    for status, response in responses.items():
        response["description"] = _DESCRIPTIONS[int(status)]
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not operation.get("security"):
                continue
            declared: dict[str, Any] = operation.setdefault("responses", {})
            for status, response in responses.items():
                declared.setdefault(str(status), response)
    return document
