"""The gateway's peer: a bare aiohttp handler that answers the posted JSON back
(`python -m bench.peers.echo PORT`)."""

from __future__ import annotations

import sys

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await request.json(), status=201)


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/jobs/", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
