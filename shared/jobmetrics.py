"""A job's metrics, as the seed's metrics endpoint shows them, summed from what its tasks
recorded:

- `video_minutes_in`: minutes of media read by media tools, each source object once;
- `video_minutes_out`: minutes of media they wrote, each object once;
- `gb_in` / `gb_out`: gigabytes (10^9 bytes) the job fetched (`storage:get`) and stored
  (`storage:put`);
- `cus`: compute units, one per CPU minute of the tools' subprocesses (ffmpeg), measured
  from the processes' own user and system time."""

from __future__ import annotations

from typing import Any

from shared.jobs import ordered_tasks
from shared.store import Document

GB = 1e9


def job_metrics(job: Document) -> dict[str, Any]:
    media: dict[str, dict[str, float]] = {"in": {}, "out": {}}
    totals = {"bytes_in": 0.0, "bytes_out": 0.0, "cpu_seconds": 0.0}
    for task in ordered_tasks(job):
        for name, value in (task.get("metrics") or {}).items():
            direction, _, key = name.partition(":")
            if direction in ("media_in", "media_out") and key:
                media[direction.removeprefix("media_")][key] = float(value)
            elif name in totals:
                totals[name] += float(value)
    return {
        "id": job["_id"],
        "cus": round(totals["cpu_seconds"] / 60, 4),
        "video_minutes_in": round(sum(media["in"].values()) / 60, 4),
        "video_minutes_out": round(sum(media["out"].values()) / 60, 4),
        "gb_in": round(totals["bytes_in"] / GB, 9),
        "gb_out": round(totals["bytes_out"] / GB, 9),
    }
