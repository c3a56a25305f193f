"""The OpenAPI document: what every route reads and every problem it can answer.

FastAPI documents a route's own parameters, body and the responses it declares. What the
middleware adds to every request is declared here, once, from the running app: the
request id header, the tenant header under its configured name (required on tenant
routes, optional where the tenant is), the problems tenant resolution answers (400, 404,
503), and the 500 any route can answer. A malformed request is a 400 problem in this
API, so FastAPI's default 422 ``HTTPValidationError`` entry is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from rustok_server.http.problems import REQUEST_ID_HEADER, add_problem_schema, problem_responses

__all__ = ["TENANT_PROBLEMS", "document_app"]

TENANT_PROBLEMS: Final = (400, 404, 503)
"""What resolving the tenant can answer: a malformed or missing identifier (400), an
unknown or disabled tenant (404), a failing tenant store (503)."""

_VALIDATION_REF: Final = "#/components/schemas/HTTPValidationError"


def _header(name: str, description: str, *, required: bool) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def document_app(
    document: dict[str, Any],
    *,
    tenant_header: str,
    exempt: Iterable[str],
    optional_prefix: str,
) -> dict[str, Any]:
    """Complete the OpenAPI ``document`` with what the middleware reads and answers (see
    the module docstring) and the ``ProblemDetails`` schema.

    The tenant header is declared where `TenantMiddleware` reads it: on every path but
    the ``exempt`` ones, optional under ``optional_prefix``.

    Args:
        document: what ``fastapi.openapi.utils.get_openapi`` made.
        tenant_header: the tenant header's name, from the settings.
        exempt: the paths the tenant middleware skips.
        optional_prefix: the path prefix where the tenant is optional (health checks).
    """
    skipped = frozenset(exempt)
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for path, operations in paths.items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            validation = responses.get("422", {}).get("content", {}).get("application/json", {})
            if validation.get("schema", {}).get("$ref") == _VALIDATION_REF:
                del responses["422"]
            statuses = [500]
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append(400)  # a malformed parameter or body
            parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
            if path not in skipped:
                optional = path.startswith(optional_prefix)
                where = " (optional here; when sent, it is resolved)." if optional else "."
                parameters.append(
                    _header(
                        tenant_header,
                        f"The tenant: its UUID or slug{where} Without it the host name, then "
                        "the default tenant, may name it.",
                        required=False,
                    )
                )
                statuses.extend(TENANT_PROBLEMS)
            parameters.append(
                _header(
                    REQUEST_ID_HEADER,
                    "Your id for this request (1-128 of A-Z a-z 0-9 . _ : -), echoed in "
                    "X-Request-ID and in every problem's trace_id; one is made if absent.",
                    required=False,
                )
            )
            for status, response in problem_responses(*sorted(set(statuses))).items():
                responses.setdefault(str(status), response)
    schemas = document.get("components", {}).get("schemas", {})
    if _VALIDATION_REF not in str(paths):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return add_problem_schema(document)
