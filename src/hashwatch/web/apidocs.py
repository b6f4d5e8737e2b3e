"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, served without any CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank on a machine
without internet access — the usual case for an investigator's workstation. The JavaScript and
CSS come from the ``fastapi-offline`` package (Swagger UI, Apache 2.0; ReDoc, MIT) and are
served under ``/docs-assets``. The three documents need a key (any role) unless the server is
configured with ``public_docs``; the assets, which say nothing about this server, are public.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from hashwatch.store.service import Role
from hashwatch.web.auth import require

__all__ = ["ASSETS_URL", "install_api_docs"]

ASSETS_URL = "/docs-assets"


def _assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_api_docs(app: FastAPI, *, public: bool) -> None:
    """Add the three documents and their assets to ``app`` (built with ``openapi_url=None``,
    ``docs_url=None`` and ``redoc_url=None``)."""
    dependencies: list[Any] = [] if public else [require(Role.MATCHER)]
    app.mount(ASSETS_URL, StaticFiles(directory=_assets_dir()), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get("/openapi.json", include_in_schema=False, dependencies=dependencies)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=dependencies)
    def swagger(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
        )

    @app.get("/redoc", include_in_schema=False, dependencies=dependencies)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=f"{base}/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
