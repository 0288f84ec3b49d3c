"""`python -m bench [--quick]`: print a table and write bench/results.json.

Rows so far:
- `publish_confirmed`: messages/s published through Conveyor's `Publisher.publish_many`
  (confirms, mandatory, persistent, onto a quorum queue), against bare aio-pika awaiting each
  confirm (the usual way) and bare aio-pika with the same window of confirms (the ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

from shared.broker import Publisher, build_message
from shared.messages import JobSubmitted
from shared.settings import load_settings
from shared.topology import JOBS_EXCHANGE, Topology

RESULTS = Path(__file__).with_name("results.json")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def message(index: int) -> JobSubmitted:
    return JobSubmitted.model_validate(
        {"job_id": f"bench{index:07d}", "spec": {"tasks": [{"tool": "debug:sleep"}]}}
    )


async def publish_rates(count: int) -> dict[str, float]:
    settings = load_settings()
    topology = Topology(prefix=f"bench-{uuid.uuid4().hex[:8]}.", regions=("local",))
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        publisher = await Publisher.open(connection, topology)
        await topology.declare(publisher.channel)
        exchange = await publisher.channel.get_exchange(topology.name(JOBS_EXCHANGE))
        bodies = [message(i) for i in range(count)]
        rates: dict[str, float] = {}

        started = time.perf_counter()
        await publisher.publish_many((JOBS_EXCHANGE, "job.submitted", m) for m in bodies)
        rates["conveyor"] = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for m in bodies:
            await exchange.publish(build_message(m.encode()), "job.submitted")
        rates["aio_pika_serial"] = count / (time.perf_counter() - started)

        gate = asyncio.Semaphore(256)

        async def one(m: JobSubmitted) -> None:
            async with gate:
                await exchange.publish(build_message(m.encode()), "job.submitted")

        started = time.perf_counter()
        await asyncio.gather(*(one(m) for m in bodies))
        rates["aio_pika_windowed"] = count / (time.perf_counter() - started)

        await topology.delete(publisher.channel)
        await publisher.close()
    finally:
        await connection.close()
    return rates


def row(name: str, value: float, unit: str, peer: str, peer_value: float,
        notes: str) -> dict[str, Any]:
    return {"name": name, "value": round(value, 1), "unit": unit, "peer": peer,
            "peer_value": round(peer_value, 1), "ratio": round(value / peer_value, 2),
            "notes": notes}


async def run(quick: bool) -> list[dict[str, Any]]:
    count = 3000 if quick else 20000
    rates = await publish_rates(count)
    notes = f"{count} persistent messages, confirms, mandatory, one quorum queue"
    return [
        row("publish_confirmed", rates["conveyor"], "msg/s", "aio_pika_serial",
            rates["aio_pika_serial"], notes + "; peer awaits each confirm"),
        row("publish_confirmed", rates["conveyor"], "msg/s", "aio_pika_windowed",
            rates["aio_pika_windowed"], notes + "; peer keeps the same 256-confirm window"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    args = parser.parse_args()
    results = asyncio.run(run(args.quick))
    RESULTS.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")
    print(f"{'name':<20} {'value':>10} {'unit':<6} {'peer':<18} {'peer_value':>10} {'ratio':>6}")
    for r in results:
        print(f"{r['name']:<20} {r['value']:>10} {r['unit']:<6} {r['peer']:<18} "
              f"{r['peer_value']:>10} {r['ratio']:>6}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
