"""The OpenAPI document: what every route reads and every problem it can answer.

FastAPI documents a route's own parameters, body and the responses it declares. What the
middleware adds to every request is declared here, once, from the running app: the
request id header, the tenant header under its configured name (on the tenant routes, and
on the admin's readiness check), the problems tenant resolution answers (400, 404, 503),
and the 500 any route can answer. A malformed request is a 400 problem in this
API, so FastAPI's default 422 ``HTTPValidationError`` entry is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from fastapi.routing import APIRoute

from rustok_server.http.pagination import CURSOR_MAX_LENGTH, CURSOR_PATTERN
from rustok_server.http.problems import REQUEST_ID_HEADER, add_problem_schema, problem_responses

__all__ = ["TENANT_PROBLEMS", "document_app", "operation_id"]


# Operation ids are the handlers' names, but for these (their path says more).
_OPERATION_IDS: Final = {
    "current_tenant": "get_tenant",
    "live": "health_live",
    "ready": "health_ready",
    "get_problem_type": "get_problem_type",
}
# The exact form of the headers the server reads; a value outside it is refused (400).
_HEADER_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "if-match": {
        "type": "string",
        "pattern": (
            '^(\\s*\\*\\s*|\\s*((W/)?"[0-9]{1,9}"|[0-9]{1,9})\\s*'
            '(,\\s*((W/)?"[0-9]{1,9}"|[0-9]{1,9})\\s*)*)$'
        ),
    },
    "idempotency-key": {"type": "string", "pattern": "^[!-~]{1,255}$"},
}


_UUID: Final = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_TENANT_PATTERN: Final = f"^[\\s\\x85]*({_UUID}|[A-Za-z0-9][A-Za-z0-9-]{{0,62}})[\\s\\x85]*$"
"""A UUID or a slug, with the blanks the server trims (reserved slugs are refused too)."""


def operation_id(route: APIRoute) -> str:
    """The OpenAPI ``operationId`` of a route: short and stable, such as ``create_order``
    (the handler's name), for FastAPI's ``generate_unique_id_function``.

    A generated client names its functions after these.
    """
    return _OPERATION_IDS.get(route.name, route.name)


TENANT_PROBLEMS: Final = (400, 404, 503)
"""What resolving the tenant can answer: a malformed or missing identifier (400), an
unknown or disabled tenant (404), a failing tenant store (503)."""

_VALIDATION_REF: Final = "#/components/schemas/HTTPValidationError"


def _header(
    name: str, description: str, *, required: bool, schema: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _exact_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        name = str(parameter.get("name", "")).lower()
        if parameter.get("in") == "query" and name == "cursor":
            parameter["schema"] = {
                "type": "string",
                "pattern": CURSOR_PATTERN,
                "maxLength": CURSOR_MAX_LENGTH,
                "description": "The next_cursor of the previous page.",
            }
        elif parameter.get("in") == "header" and name in _HEADER_SCHEMAS:
            parameter["schema"] = dict(_HEADER_SCHEMAS[name])


def _optional_body(operation: dict[str, Any]) -> None:
    # FastAPI writes an optional body as "one of the model or null"; a generated client
    # then has to send a value. An optional body is the model itself, not required.
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for content in body.get("content", {}).values():
        schema = content.get("schema", {})
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(options) == 1 and len(schema.get("anyOf", [])) == 2:
            content["schema"] = options[0]


def _link_created(paths: dict[str, dict[str, Any]]) -> None:
    # OpenAPI links from each creation to the operations on what it created (the new
    # entity's id fills the path parameter): generated clients and stateful tests follow
    # them from one call to the next.
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links: dict[str, Any] = {}
        for other, other_operations in paths.items():
            if not other.startswith(path + "/{"):
                continue
            parameter = other[len(path) + 2 :].split("}", 1)[0]
            for operation in other_operations.values():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: "$response.body#/id"},
                }
        if links:
            created["links"] = links


def document_app(
    document: dict[str, Any],
    *,
    tenant_header: str,
    exempt: Iterable[str],
    exempt_prefixes: tuple[str, ...] = ("/problems/",),
    admin_named: Iterable[str] = (),
) -> dict[str, Any]:
    """Complete the OpenAPI ``document`` with what the middleware reads and answers (see
    the module docstring) and the ``ProblemDetails`` schema.

    The tenant header is declared where it is read: on every path but the ``exempt``
    ones, and on the ``admin_named`` paths, where only an admin key's request reads it.

    Args:
        document: what ``fastapi.openapi.utils.get_openapi`` made.
        tenant_header: the tenant header's name, from the settings.
        exempt: the paths the tenant middleware skips.
        exempt_prefixes: the path prefixes the tenant middleware skips (problem pages, the
            admin API, health checks).
        admin_named: the paths where an admin key may name a tenant in the header (the
            readiness check).
    """
    skipped = frozenset(exempt)
    admin_paths = frozenset(admin_named)
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for path, operations in paths.items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            validation = responses.get("422", {}).get("content", {}).get("application/json", {})
            if validation.get("schema", {}).get("$ref") == _VALIDATION_REF:
                del responses["422"]
            _exact_parameters(operation)
            _optional_body(operation)
            # Any request may carry a body too large to read (413).
            statuses = [413, 500]
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append(400)  # a malformed parameter or body
            parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
            if path in admin_paths:
                parameters.append(
                    _header(
                        tenant_header,
                        "Admin keys only: a tenant's UUID or slug, to see the tenant it "
                        "resolves to (404 for an unknown or disabled one). Ignored for any "
                        "other request. Sent at most once.",
                        required=False,
                        schema={"type": "string", "pattern": _TENANT_PATTERN},
                    )
                )
                statuses.extend(TENANT_PROBLEMS)
            elif path not in skipped and not path.startswith(exempt_prefixes):
                parameters.append(
                    _header(
                        tenant_header,
                        "The tenant: its UUID or slug. The credential decides the tenant; "
                        "when sent, this must name the same one (403 otherwise). Sent at "
                        "most once.",
                        required=False,
                        schema={"type": "string", "pattern": _TENANT_PATTERN},
                    )
                )
                statuses.extend(TENANT_PROBLEMS)
            parameters.append(
                _header(
                    REQUEST_ID_HEADER,
                    "Your id for this request (1-128 of A-Z a-z 0-9 . _ : -), echoed in "
                    "X-Request-ID and in every problem's trace_id; one is made if absent "
                    "(or when it is not of that form).",
                    required=False,
                    schema={"type": "string"},
                )
            )
            for status, response in problem_responses(*sorted(set(statuses))).items():
                responses.setdefault(str(status), response)
    _link_created(paths)
    schemas = document.get("components", {}).get("schemas", {})
    if _VALIDATION_REF not in str(paths):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return add_problem_schema(document)
