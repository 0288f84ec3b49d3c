"""The demo `conveyor dev` runs at start: a sample object in S3, then the example job from
`examples/`, shown as it runs (job status, each task's status and progress, its log)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from services.client import FINAL, Api, Progress, wait_for
from shared.media import run_ffmpeg
from shared.objects import ObjectStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "hls.json"
SAMPLE_KEY = "samples/hello.txt"
SAMPLE = b"Hello from Conveyor.\n"
VIDEO_KEY = "samples/sample.mp4"
VIDEO_SECONDS = 6
# Examples name the default bucket; an instance with another bucket runs them against its own.
EXAMPLE_BUCKET = "conveyor"


def for_bucket(job: Any, bucket: str) -> Any:
    """The job with s3:// locations in the examples' bucket moved to `bucket`."""
    text = json.dumps(job).replace(f'"s3://{EXAMPLE_BUCKET}/', f'"s3://{bucket}/')
    return json.loads(text)


async def upload_sample(objects: ObjectStore) -> None:
    """The demo's inputs: a text file, and a short test video made with ffmpeg."""
    await objects.upload_bytes(SAMPLE_KEY, SAMPLE, "text/plain")
    with tempfile.TemporaryDirectory(prefix="conveyor-demo-") as folder:
        video = Path(folder) / "sample.mp4"
        await run_ffmpeg([
            "-f", "lavfi", "-i", f"testsrc=duration={VIDEO_SECONDS}:size=320x240:rate=25",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={VIDEO_SECONDS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
            "-shortest", str(video)])
        await objects.upload_file(VIDEO_KEY, video, "video/mp4")


async def run_demo(base_url: str, key: str, bucket: str) -> str:
    """Submit the example job and show it until it ends; returns its final status."""
    job = for_bucket(json.loads(EXAMPLE.read_text()), bucket)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = Api(base_url, key, session)
        submitted = await api.call("POST", "/api/jobs/", job)
        print(f"\nDemo: running {EXAMPLE.name} as job {submitted['id']}", flush=True)
        progress = Progress(sys.stdout)
        shown_logs: set[int] = set()

        def show(current: dict[str, Any]) -> None:
            progress.show(current)

        final = await wait_for(api, submitted["id"], show)
        job_now = await api.call("GET", f"/api/jobs/{submitted['id']}/")
        for task in job_now["tasks"]:
            if task["status_text"] in FINAL and task["id"] not in shown_logs:
                shown_logs.add(task["id"])
                page = await api.get_patiently(
                    f"/api/jobs/{submitted['id']}/tasks/{task['id']}/logs/", None)
                for line in page["logs"]:
                    print(f"  log task {task['id']}: {line['message']}", flush=True)
        print(f"conveyor dev: demo job {submitted['id']} {final}", flush=True)
        return final
