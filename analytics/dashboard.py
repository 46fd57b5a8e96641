"""The /dashboard page and the read-only /api it draws from, on one Starlette app.

The page is static (no build step); plotly.js comes from the installed ``plotly`` wheel and is served from
here, so the dashboard works offline and loads nothing from a CDN. The token never reaches the HTML: the
page reads it from ``location.hash``, which browsers do not send to the server.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from analytics.api import api_routes
from analytics.service import AnalyticsService

STATIC = Path(__file__).parent / "static"

# Same origin only: the page, its script and plotly.js are ours; plotly injects inline styles.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def plotly_js() -> Path:
    """The plotly.js bundle inside the installed plotly wheel."""
    path = Path(str(files("plotly").joinpath("package_data", "plotly.min.js")))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.js not found at {path}: reinstall the 'plotly' package")
    return path


def render_page(refresh_s: int, worst_min_volume: int) -> str:
    html = (STATIC / "dashboard.html").read_text()
    return html.replace("{{refresh_s}}", str(refresh_s)).replace(
        "{{worst_min_volume}}", str(worst_min_volume)
    )


def dashboard_app(
    service: AnalyticsService, token: SecretStr | None, refresh_s: int = 10, worst_min_volume: int = 10
) -> Starlette:
    """``/dashboard`` (the page), ``/dashboard/static/*``, ``/api/*`` (bearer ``token``; None = 503)
    and ``/healthz``. The alert rules drawn as thresholds are the service's."""
    page = render_page(refresh_s, worst_min_volume)
    bundle = plotly_js()

    async def dashboard(request: Request) -> Response:
        return HTMLResponse(page, headers=_SECURITY_HEADERS)

    async def plotly(request: Request) -> Response:
        # Versioned by the installed wheel; a day of caching spares reloading 4.6 MB on every visit.
        return FileResponse(bundle, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def home(request: Request) -> Response:
        return RedirectResponse("/dashboard")  # the browser keeps the #token fragment across it

    return Starlette(
        routes=[
            Route("/", home),
            Route("/dashboard", dashboard),
            Route("/dashboard/static/plotly.min.js", plotly),
            Mount("/dashboard/static", StaticFiles(directory=STATIC), name="static"),
            Route("/healthz", healthz),
            *api_routes(service, token),
        ]
    )
