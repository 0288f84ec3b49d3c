"""`python -m services.probe URL`: exit 0 when URL answers 200, else 1 with the reason. A
container healthcheck with nothing but the standard library (the image has no curl)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT = 4.0


def probe(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m services.probe URL", file=sys.stderr)
        sys.exit(2)
    sys.exit(probe(sys.argv[1]))
