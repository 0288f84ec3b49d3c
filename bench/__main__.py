"""`python -m bench [--quick]`: every benchmark beside its peer in the same run; prints a
table and writes bench/results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import annotate, dispatch, gatejob, gateway, logs, publish, transfer
from bench.common import bench_settings, remove_queues
from shared.logging import configure_logging
from shared.settings import Settings

MB = 1024 * 1024

RESULTS = Path(__file__).with_name("results.json")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def run(quick: bool) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    prefixes: list[str] = []
    async with bench_settings() as settings:
        def fresh() -> Settings:  # each benchmark on queues and a database of its own
            tag = uuid.uuid4().hex[:8]
            prefixes.append(f"bench-{tag}.")
            return settings.model_copy(update={"amqp_prefix": prefixes[-1],
                                               "mongo_db": f"bench_{tag}"})

        steps: list[tuple[str, Callable[[], Awaitable[list[dict[str, Any]]]]]] = [
            ("publish", lambda: publish.run(fresh(), 3000 if quick else 20000)),
            ("dispatch", lambda: dispatch.run(fresh(), 500 if quick else 3000,
                                              rate=10 if quick else 20,
                                              seconds=5 if quick else 15)),
            ("gateway", lambda: gateway.run(fresh(), 300 if quick else 3000)),
            ("logs", lambda: logs.run(fresh(), 10000 if quick else 60000)),
            ("storage", lambda: transfer.storage(fresh(), (128 if quick else 1024) * MB)),
            ("transcode", lambda: transfer.transcode(fresh(), 12 if quick else 30)),
            ("annotate", lambda: asyncio.to_thread(annotate.run, quick)),  # CPU only
            ("gate_job", lambda: gatejob.run(fresh(), 500 if quick else 3000)),
        ]
        for name, step in steps:
            print(f"bench: {name}...", flush=True)
            try:
                results += await step()
            except Exception as exc:  # report and go on: a bench reports, it does not fail
                print(f"bench: {name} failed: {type(exc).__name__}: {exc}", flush=True)
        await remove_queues(settings, *prefixes)
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
