"""`python -m bench [--quick]`: every benchmark beside its peer in the same run; prints a
table and writes bench/results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from pathlib import Path
from typing import Any

from bench import logs, publish
from bench.common import bench_settings
from shared.logging import configure_logging

RESULTS = Path(__file__).with_name("results.json")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def run(quick: bool) -> list[dict[str, Any]]:
    async with bench_settings() as settings:
        results = await publish.run(settings, 3000 if quick else 20000)
        results += await logs.run(settings, 20000 if quick else 60000)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    args = parser.parse_args()
    configure_logging("warning", "console")
    results = asyncio.run(run(args.quick))
    RESULTS.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
    print(f"{'name':<18} {'value':>10} {'unit':<10} {'peer':<18} {'peer_value':>10} {'ratio':>6}")
    for r in results:
        print(f"{r['name']:<18} {r['value']:>10} {r['unit']:<10} {r['peer']:<18} "
              f"{r['peer_value']:>10} {r['ratio']:>6}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
