"""The interactive API documentation, served offline: ``/docs`` (Swagger UI) and
``/redoc`` (ReDoc).

The pages are FastAPI's own, pointed at scripts, a style sheet and an icon the server
serves itself under ``/docs/assets/`` (the files the ``fastapi-offline`` package ships),
so they work on a network that reaches no CDN. Each page carries
`docs_content_security_policy`: it may load nothing from another origin, and its one
inline script is allowed by its hash. ``RUSTOK_API_DOCS=false`` leaves all of it out
(404); ``/openapi.json`` is served either way.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from rustok_server.http.security_headers import (
    CONTENT_SECURITY_POLICY,
    docs_content_security_policy,
)

__all__ = ["ASSETS_PATH", "DOCS_PATH", "REDOC_PATH", "install_api_docs"]

DOCS_PATH: Final = "/docs"
"""Where the interactive API documentation (Swagger UI) is served."""
REDOC_PATH: Final = "/redoc"
"""Where the API reference (ReDoc) is served."""
ASSETS_PATH: Final = "/docs/assets"
"""Where the pages' scripts, style sheet and icon are served."""

# The package that ships Swagger UI's and ReDoc's files, and their folder in it.
_ASSETS_PACKAGE: Final = ("fastapi_offline", "static")
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install_api_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve ``/docs``, ``/redoc`` and their assets on ``app`` (made with ``docs_url=None``
    and ``redoc_url=None``); none of them is in the OpenAPI document.

    Raises:
        RuntimeError: the assets' package is not installed.
    """
    app.mount(ASSETS_PATH, StaticFiles(packages=[_ASSETS_PACKAGE]), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            # No badge fetched from the public validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
        return _with_policy(page)

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
        return _with_policy(page)


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    """``page`` with the documentation's policy, allowing its inline scripts by hash."""
    digests = [
        "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    ]
    page.headers[CONTENT_SECURITY_POLICY] = docs_content_security_policy(digests)
    return page
