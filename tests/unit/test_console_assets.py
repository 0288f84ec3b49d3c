"""The console's files as the gateway serves them: public, from this origin only, with the
right types and headers, and nothing outside the allow-list."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from services.gateway.console import STATIC, add_console_routes, assets

# A URL to another origin in a console file: a CDN, a font service, an analytics script.
OUTSIDE_URL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.I)


def console_app() -> web.Application:
    app = web.Application()
    add_console_routes(app)
    return app


async def test_the_page_and_its_modules_are_served_with_their_types(aiohttp_client: Any) -> None:
    client = await aiohttp_client(console_app())
    page = await client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert '<script type="module" src="/console/app.js">' in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    for name, kind in [("app.js", "text/javascript"), ("console.css", "text/css")]:
        response = await client.get(f"/console/{name}")
        assert response.status == 200, name
        assert response.content_type == kind


async def test_every_module_imported_is_served(aiohttp_client: Any) -> None:
    client = await aiohttp_client(console_app())
    imported = set()
    for path in STATIC.glob("*.js"):
        imported |= set(re.findall(r'from "\./([\w.]+)"', path.read_text()))
    assert "api.js" in imported
    for name in imported:
        assert (await client.get(f"/console/{name}")).status == 200, name


async def test_nothing_outside_the_allow_list_is_served(aiohttp_client: Any) -> None:
    client = await aiohttp_client(console_app())
    for path in ["/console/__init__.py", "/console/..%2F__init__.py", "/console/",
                 "/console/missing.js", "/console/%2e%2e%2fapp.py"]:
        assert (await client.get(path)).status == 404, path
    assert "__init__.py" not in assets()


def test_no_console_file_loads_anything_from_another_origin() -> None:
    for path in STATIC.iterdir():
        found = OUTSIDE_URL.findall(path.read_text())
        assert found == [], (path.name, found)
