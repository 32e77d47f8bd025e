"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served from the package, with no CDN.

FastAPI's default pages load their JavaScript and CSS from jsdelivr, so a camera on a LAN without
internet shows a blank page. FastAPI documents self-hosting them ("Custom Docs UI Static Assets
(Self-Hosting)"): create the app with ``docs_url=None, redoc_url=None`` and serve
``get_swagger_ui_html`` / ``get_redoc_html`` pointing at local files. The files are the unmodified
npm builds listed in ``docs_assets/README.md`` (swagger-ui-dist, redoc), with their licences.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the vendored assets are (``swagger-ui/``, ``redoc/``).
ASSETS_DIR = Path(__file__).resolve().parent / "docs_assets"
#: URL prefix they are served under.
ASSETS_URL = "/docs-assets"
#: The project's icon (16 and 32 px PNGs in an ICO), served at ``/favicon.ico`` by both services.
FAVICON = ASSETS_DIR / "favicon.ico"
SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"


def install_offline_docs(app: FastAPI, favicon_url: str = "/favicon.ico") -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and ``/favicon.ico`` on ``app`` with local assets only.

    ``app`` must have been created with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    The pages need no authentication, like FastAPI's own; ``favicon_url`` replaces FastAPI's
    default favicon, which is also fetched from the internet. ReDoc is told not to load Google Fonts.

    Raises:
        ValueError: ``app`` still serves FastAPI's own docs pages.
    """
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the FastAPI app with docs_url=None, redoc_url=None")
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=favicon_url,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc/redoc.standalone.js?v={REDOC_VERSION}",
            redoc_favicon_url=favicon_url,
            with_google_fonts=False,
        )
