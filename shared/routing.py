"""What every HTTP service of Conveyor does with its routes, derived from its router so that
no list of methods is kept by hand:

- each path answers with and without its trailing slash (clients type both);
- HEAD beside every GET: the GET's handler, whose body aiohttp leaves out (same status and
  headers, authentication included);
- OPTIONS on every path: 204 with `Allow`, and no credentials needed (a CORS preflight
  carries none, and the answer tells nothing but the methods);
- `Allow` on every answer of a routed path, as the seed's answers show (aiohttp puts it on a
  405 itself)."""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

# The order `Allow` lists methods in: reads first, as the seed's answers do.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def slash_twins(path: str) -> tuple[str, str]:
    """`path` and its twin: without the trailing slash if it has one, else with one."""
    bare = path.rstrip("/")
    return (path, bare) if bare != path else (path, f"{path}/")


def add_twins(app: web.Application, method: str, path: str, handler: Handler) -> None:
    for each in slash_twins(path):
        app.router.add_route(method, each, handler)


def _order(method: str) -> tuple[int, str]:
    known = method in METHOD_ORDER
    return (METHOD_ORDER.index(method) if known else len(METHOD_ORDER), method)


# `Allow` by path, once the router is complete. By path, not by resource: aiohttp makes a
# second resource for a path whose methods were not added one after another.
ALLOWED = web.AppKey("allowed_methods", dict[str, str])


def _allowed(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return request.app[ALLOWED].get(resource.canonical) if resource is not None else None


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={hdrs.ALLOW: _allowed(request) or "OPTIONS"})


async def _allow_header(request: web.Request, response: web.StreamResponse) -> None:
    # Unmatched paths (404, 405) have no resource; a 405 carries aiohttp's own `Allow`.
    allowed = _allowed(request)
    if allowed is not None:
        response.headers[hdrs.ALLOW] = allowed


def add_head_and_options(app: web.Application) -> None:
    """HEAD beside each GET and OPTIONS on each path of `app`, once every route is added.
    Resources that take any method (`*`) answer these themselves; static files have HEAD
    from aiohttp already."""
    resources = [resource for resource in app.router.resources()
                 if isinstance(resource, web.Resource)
                 and hdrs.METH_ANY not in {route.method for route in resource}]
    methods: dict[str, set[str]] = {}
    for resource in resources:
        handlers = {route.method: route.handler for route in resource}
        if hdrs.METH_GET in handlers and hdrs.METH_HEAD not in handlers:
            resource.add_route(hdrs.METH_HEAD, handlers[hdrs.METH_GET])
        if hdrs.METH_OPTIONS not in handlers:
            resource.add_route(hdrs.METH_OPTIONS, options)
        methods.setdefault(resource.canonical, set()).update(route.method for route in resource)
    app[ALLOWED] = {path: ", ".join(sorted(each, key=_order)) for path, each in methods.items()}
    app.on_response_prepare.append(_allow_header)
