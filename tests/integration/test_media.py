"""Media and file tools with a real ffmpeg, on real servers: HLS and DASH packages that
decode, thumbnails, checksums, metrics, corrupt inputs, hostile archives, progress, stop."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import av
import psutil
import pytest

from services.gateway.app import create_app
from shared.media import probe_file, run_ffmpeg
from shared.objects import open_objects
from shared.settings import Settings
from tests.conftest import SettingsFactory
from tests.platform import Account, Client, backend, make_account, submit, wait_job

SECONDS = 4


async def make_video(path: Path, seconds: int, size: str = "320x240") -> None:
    await run_ffmpeg([
        "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", str(path)])


@pytest.fixture
def media_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(heartbeat_seconds=0.5, task_silence_seconds=30.0,
                            archive_max_bytes=50_000, archive_max_entries=20)


@pytest.fixture
async def client(media_settings: Settings, aiohttp_client: Any) -> Client:
    gateway: Client = await aiohttp_client(create_app(media_settings))
    return gateway


@pytest.fixture
async def account(media_settings: Settings) -> Account:
    return await make_account(media_settings)


async def upload_sample(settings: Settings, name: str, data: bytes) -> str:
    async with open_objects(settings) as objects:
        await objects.upload_bytes(f"samples/{name}", data)
    return f"s3://{settings.s3_bucket}/samples/{name}"


@pytest.fixture
async def sample(media_settings: Settings, tmp_path: Path) -> tuple[str, bytes]:
    video = tmp_path / "sample.mp4"
    await make_video(video, SECONDS)
    data = video.read_bytes()
    return await upload_sample(media_settings, "sample.mp4", data), data


async def download(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, url
        return await response.read()


def outputs(job: dict[str, Any], task: int) -> dict[str, dict[str, Any]]:
    return {o["path"].rsplit("/", 1)[-1]: o for o in job["tasks"][task]["outputs"]}


def decodes(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of the video frames PyAV decodes from `path`."""
    with av.open(str(path)) as container:
        frames = [frame for frame in container.decode(video=0)]
    return len(frames), frames[0].width, frames[0].height


@pytest.mark.parametrize("fmt", ["hls", "dash"])
async def test_fetch_probe_transcode_package_store(
    media_settings: Settings, client: Client, account: Account, sample: tuple[str, bytes],
    fmt: str, tmp_path: Path,
) -> None:
    source, data = sample
    async with backend(media_settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get", "parameters": {"source": source,
                                                   "destination": "in/clip.mp4"}},
            {"tool": "media:probe", "parameters": {"source": "in/clip.mp4"}},
            {"tool": "media:transcode", "parameters": {"source": "in/clip.mp4", "renditions": [
                {"height": 240, "crf": 30}, {"height": 144, "video_bitrate": "200k"}]}},
            {"tool": "media:package", "parameters": {
                "sources": ["in/clip_240p.mp4", "in/clip_144p.mp4"], "format": fmt,
                "destination": "package", "segment_seconds": 2}},
            {"tool": "storage:put", "parameters": {"source": "package/**"}},
        ]})
        done = await wait_job(client, account, job["id"], within=120)
        metrics_response = await client.get(f"/api/jobs/{job['id']}/metrics/",
                                             headers=account.headers)
        metrics = await metrics_response.json()
    assert done["status_text"] == "Completed", done
    probe = done["tasks"][1]["result"]
    assert abs(probe["duration"] - SECONDS) < 0.1
    video = next(s for s in probe["streams"] if s["type"] == "video")
    assert (video["codec"], video["width"], video["height"]) == ("h264", 320, 240)
    assert abs(video["frame_rate"] - 25) < 0.01
    assert any(s["type"] == "audio" and s["channels"] == 1 for s in probe["streams"])
    assert "clip.probe.json" in outputs(done, 1)

    renditions = outputs(done, 2)
    assert set(renditions) == {"clip_240p.mp4", "clip_144p.mp4"}
    for name, (width, height) in {"clip_240p.mp4": (320, 240),
                                  "clip_144p.mp4": (192, 144)}.items():
        local = tmp_path / name
        local.write_bytes(await download(renditions[name]["url"]))
        frames, got_width, got_height = decodes(local)
        assert (got_width, got_height) == (width, height)  # aspect ratio kept
        assert frames >= SECONDS * 25 - 2
        assert b"moov" in local.read_bytes()[:4096]  # faststart: the index comes first

    stored = {o["path"].split(f"outputs/{job['id']}/package/", 1)[1]: o
              for o in done["tasks"][4]["outputs"]}
    for path, output in stored.items():  # every output decodes
        local = tmp_path / "pkg" / path
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(await download(output["url"]))
    if fmt == "hls":
        master = (tmp_path / "pkg" / "master.m3u8").read_text()
        assert master.count("#EXT-X-STREAM-INF") == 2
        segments = [p for p in stored if p.endswith(".ts")]
        assert len(segments) >= 4
        for segment in segments:
            assert probe_file(tmp_path / "pkg" / segment)["streams"]
    else:
        manifest = (tmp_path / "pkg" / "manifest.mpd").read_text()
        assert manifest.count('mimeType="video/mp4"') + manifest.count(
            'contentType="video"') >= 1
        assert manifest.count("<Representation") >= 3  # two video, one audio at least
        assert any(p.endswith(".m4s") for p in stored)

    assert metrics_response.status == 200, metrics
    # Read: the clip and its two renditions (each once); written: two renditions, twice
    # (transcoded, then packaged).
    assert metrics["video_minutes_in"] == pytest.approx(3 * SECONDS / 60, rel=0.02)
    assert metrics["video_minutes_out"] == pytest.approx(4 * SECONDS / 60, rel=0.02)
    assert metrics["gb_in"] == pytest.approx(len(data) / 1e9, rel=0.02)
    assert metrics["gb_out"] == pytest.approx(
        sum(o["size"] for o in stored.values()) / 1e9, rel=0.02)
    assert metrics["cus"] > 0


async def test_thumbnails_checksums_and_metrics_timing(
    media_settings: Settings, client: Client, account: Account, sample: tuple[str, bytes],
    tmp_path: Path,
) -> None:
    source, data = sample
    async with backend(media_settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get", "parameters": {"source": source}},
            {"tool": "media:thumbnail", "parameters": {"source": "sample.mp4", "at_seconds": 1,
                                                       "width": 160, "format": "png"}},
            {"tool": "media:thumbnail", "parameters": {"source": "sample.mp4",
                                                       "every_seconds": 1}},
            {"tool": "file:checksum", "parameters": {"source": "sample.mp4"}},
            {"tool": "file:checksum", "parameters": {"source": "sample.mp4",
                                                     "algorithm": "md5"}},
        ]})
        early = await client.get(f"/api/jobs/{job['id']}/metrics/", headers=account.headers)
        assert early.status == 409
        done = await wait_job(client, account, job["id"], within=60)
    assert done["status_text"] == "Completed", done
    single = outputs(done, 1)["sample_thumb.png"]
    (tmp_path / "one.png").write_bytes(await download(single["url"]))
    with av.open(str(tmp_path / "one.png")) as image:
        frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (160, 120)
    series = outputs(done, 2)
    assert len(series) == SECONDS
    for name, output in series.items():
        (tmp_path / name).write_bytes(await download(output["url"]))
        assert decodes(tmp_path / name)[1:] == (320, 240)
    assert done["tasks"][3]["result"]["checksum"] == hashlib.sha256(data).hexdigest()
    assert done["tasks"][4]["result"]["checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324


async def test_corrupt_input_fails_at_once_with_a_clear_error(
    media_settings: Settings, client: Client, account: Account
) -> None:
    source = await upload_sample(media_settings, "broken.mp4", b"\x00\x00 not a video " * 500)
    async with backend(media_settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get", "parameters": {"source": source}},
            {"tool": "media:transcode", "parameters": {"source": "broken.mp4",
                                                       "renditions": [{"height": 144}]}}]})
        done = await wait_job(client, account, job["id"], within=60)
    task = done["tasks"][1]
    assert (done["status_text"], task["attempts"]) == ("Failed", 1)
    assert task["error"]["class"] == "MediaError"
    assert "broken.mp4 is not media that can be read" in task["error"]["message"]


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tar_bytes(mode: str, files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, content in files.items():
            add_file(archive, name, content)
        for name, target in (links or {}).items():
            add_link(archive, name, target)
    return buffer.getvalue()


def add_file(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    archive.addfile(info, io.BytesIO(content))


def add_link(archive: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    archive.addfile(info)


async def test_archives_good_and_hostile(
    media_settings: Settings, client: Client, account: Account
) -> None:
    archives = {
        "good.tar.gz": tar_bytes("w:gz", {"media/a.mp4": b"A" * 100, "media/notes.txt": b"n"}),
        "good.zip": zip_bytes({"x/one.txt": b"1", "x/two.bin": b"2"}),
        "good.tar.xz": tar_bytes("w:xz", {"deep/er/file.txt": b"x"}),
        "slip.zip": zip_bytes({"ok.txt": b"fine", "../../evil.txt": b"gotcha"}),
        "link.tar.bz2": tar_bytes("w:bz2", {}, {"passwd": "/etc/passwd"}),
        "bomb.zip": zip_bytes({"big.bin": b"\0" * 60_000}),
        "many.tar": tar_bytes("w", {f"f{i}.txt": b"x" for i in range(25)}),
        "notes.txt": b"not an archive",
    }
    sources = {name: await upload_sample(media_settings, name, data)
               for name, data in archives.items()}
    async with backend(media_settings, logger=False):
        jobs = {}
        for name, source in sources.items():
            extract: dict[str, Any] = {"source": name, "destination": "out"}
            if name == "good.tar.gz":
                extract["extensions"] = ["mp4"]
            jobs[name] = await submit(client, account, {"tasks": [
                {"tool": "storage:get", "parameters": {"source": source}},
                {"tool": "archive:extract", "parameters": extract}]})
        done = {name: await wait_job(client, account, job["id"], within=60)
                for name, job in jobs.items()}

    def extracted(name: str) -> list[str]:
        return sorted(o["path"].split("/out/", 1)[1] for o in done[name]["tasks"][1]["outputs"])

    def error(name: str) -> str:
        assert done[name]["status_text"] == "Failed", done[name]
        assert done[name]["tasks"][1]["attempts"] == 1
        return str(done[name]["tasks"][1]["error"]["message"])

    assert extracted("good.tar.gz") == ["media/a.mp4"]
    assert extracted("good.zip") == ["x/one.txt", "x/two.bin"]
    assert extracted("good.tar.xz") == ["deep/er/file.txt"]
    assert "'../../evil.txt': it leaves the destination" in error("slip.zip")
    assert "'passwd': links are not extracted" in error("link.tar.bz2")
    assert "more than the limit of 50000" in error("bomb.zip")
    assert "25 entries, more than the limit of 20" in error("many.tar")
    assert "neither a ZIP nor a TAR" in error("notes.txt")


async def long_transcode(settings: Settings, client: Client, account: Account,
                         tmp_path: Path) -> dict[str, Any]:
    video = tmp_path / "long.mp4"
    await make_video(video, 40, size="640x360")
    source = await upload_sample(settings, "long.mp4", video.read_bytes())
    job = await submit(client, account, {"tasks": [
        {"tool": "storage:get", "parameters": {"source": source}},
        {"tool": "media:transcode", "parameters": {"source": "long.mp4", "renditions": [
            {"height": 360, "preset": "slow", "crf": 20}]}}]})
    return await wait_job(client, account, job["id"], statuses={1}, within=30)


async def test_transcode_progress_rises_while_it_runs(
    media_settings: Settings, client: Client, account: Account, tmp_path: Path
) -> None:
    async with backend(media_settings, logger=False):
        job = await long_transcode(media_settings, client, account, tmp_path)
        seen: list[float] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            current = await (await client.get(f"/api/jobs/{job['id']}/",
                                              headers=account.headers)).json()
            task = current["tasks"][1]
            if task["status_text"] == "Running" and (not seen or task["progress"] != seen[-1]):
                seen.append(task["progress"])
            if current["status_text"] != "Running" or len(seen) >= 3:
                break
            await asyncio.sleep(0.5)
        await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
    assert len(seen) >= 3, seen
    assert seen == sorted(seen)
    assert 0 < seen[-1] < 100


def ffmpeg_processes(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info.get("cmdline") or [])
        if "ffmpeg" in cmdline and marker in cmdline:
            found.append(process)
    return found


async def test_stopping_a_transcode_kills_ffmpeg(
    media_settings: Settings, client: Client, account: Account, tmp_path: Path
) -> None:
    async with backend(media_settings, logger=False):
        job = await long_transcode(media_settings, client, account, tmp_path)
        deadline = time.monotonic() + 30
        while not ffmpeg_processes(f"-{job['id']}-2-"):
            assert time.monotonic() < deadline, "ffmpeg never started"
            await asyncio.sleep(0.1)
        response = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
        assert response.status == 200
        stopped_at = time.monotonic()
        while ffmpeg_processes(f"-{job['id']}-2-"):
            assert time.monotonic() - stopped_at < 2.0, "ffmpeg still running after 2 s"
            await asyncio.sleep(0.05)
        gone_after = time.monotonic() - stopped_at
        final = await wait_job(client, account, job["id"])
    assert final["status_text"] == "Cancelled"
    assert gone_after < 2.0
