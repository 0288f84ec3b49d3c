"""The web console: static files (HTML, CSS and JavaScript modules, no build step) served by
the gateway at `/` and `/console/NAME`, outside the API's authentication: the page itself
holds no data, and every call it makes to `/api/` sends the API key the user typed."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Everything comes from this origin: no CDN, no inline script, nothing framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Assets are small and change with the code: the browser revalidates them each time.
    "Cache-Control": "no-cache",
}


def assets(folder: Path = STATIC) -> dict[str, Path]:
    """The files that may be served, by name: an allow-list, so no request path can reach
    anything else."""
    return {path.name: path for path in folder.iterdir()
            if path.is_file() and path.suffix in CONTENT_TYPES}


def asset_response(path: Path) -> web.FileResponse:
    return web.FileResponse(path, headers={
        **SECURITY_HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]})


def add_console_routes(app: web.Application) -> None:
    files = assets()

    async def index(_: web.Request) -> web.FileResponse:
        return asset_response(files["index.html"])

    async def asset(request: web.Request) -> web.FileResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return asset_response(path)

    app.router.add_get("/", index)
    app.router.add_get("/console/{name}", asset)
