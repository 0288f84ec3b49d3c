"""Media tools: probe, transcode, package (HLS or DASH) and thumbnails, with ffmpeg in a
subprocess. Each reads its inputs from the job workspace and writes its outputs there."""

from __future__ import annotations

import asyncio
import json
import posixpath
from pathlib import Path
from typing import Any

from services.worker.context import ToolContext
from shared.media import has_stream, media_seconds, probe_file, run_ffmpeg
from shared.toolspecs import MediaPackage, MediaProbe, MediaThumbnail, MediaTranscode, Rendition

ENCODERS = {"h264": "libx264", "hevc": "libx265"}
KEYFRAME_SECONDS = 2


def sibling(source: str, name: str) -> str:
    """A workspace path beside `source`."""
    folder = posixpath.dirname(source)
    return f"{folder}/{name}" if folder else name


def stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


async def read_media(context: ToolContext, source: str) -> tuple[Path, dict[str, Any]]:
    """Fetch and probe a workspace file; counts its duration as media read."""
    local = await context.fetch(source)
    info = await asyncio.to_thread(probe_file, local)
    context.media("in", context.workspace + source, media_seconds(info))
    return local, info


async def media_probe(context: ToolContext, parameters: MediaProbe) -> None:
    local, info = await read_media(context, parameters.source)
    context.result.update(info)
    report = context.scratch / f"{stem(parameters.source)}.probe.json"
    report.write_text(json.dumps(info, indent=2))
    await context.store(report, sibling(parameters.source, report.name), "application/json")
    await context.log(f"{parameters.source}: {info['container']}, "
                      f"{info['duration'] or 0:.2f} s, {len(info['streams'])} stream(s)")


def rendition_args(rendition: Rendition, audio: bool) -> list[str]:
    # A keyframe every 2 s in every rendition: segments of any multiple of 2 s line up
    # across renditions when they are packaged for adaptive streaming.
    video = ["-c:v", ENCODERS[rendition.codec], "-preset", rendition.preset,
             "-vf", f"scale=-2:{rendition.height}", "-pix_fmt", "yuv420p",
             "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})"]
    if rendition.video_bitrate:
        video += ["-b:v", rendition.video_bitrate]
    else:
        video += ["-crf", str(rendition.crf if rendition.crf is not None else 23)]
    if rendition.codec == "hevc":
        video += ["-tag:v", "hvc1"]  # plays in Apple players
    sound = ["-c:a", "aac", "-b:a", rendition.audio_bitrate] if audio else ["-an"]
    return [*video, *sound, "-movflags", "+faststart"]


async def media_transcode(context: ToolContext, parameters: MediaTranscode) -> None:
    local, info = await read_media(context, parameters.source)
    duration = media_seconds(info)
    count = len(parameters.renditions)
    for index, rendition in enumerate(parameters.renditions):
        name = f"{stem(parameters.source)}_{rendition.height}p.mp4"
        target = context.scratch / "out" / name
        target.parent.mkdir(parents=True, exist_ok=True)

        async def progress(percent: float, done: int = index) -> None:
            await context.progress((done * 100.0 + percent) / count)

        await context.log(f"encoding {name} ({rendition.codec}, {rendition.height}p)")
        run = await run_ffmpeg(
            ["-i", str(local), *rendition_args(rendition, has_stream(info, "audio")),
             str(target)], duration=duration, progress=progress)
        context.count("cpu_seconds", run.cpu_seconds)
        out_info = await asyncio.to_thread(probe_file, target)
        path = sibling(parameters.source, name)
        await context.store(target, path, "video/mp4")
        context.media("out", context.workspace + path, media_seconds(out_info))
    await context.progress(100.0, force=True)


async def media_package(context: ToolContext, parameters: MediaPackage) -> None:
    inputs: list[str] = []
    maps: list[str] = []
    variants: list[str] = []
    durations: list[float] = []
    for index, source in enumerate(parameters.sources):
        local, info = await read_media(context, source)
        durations.append(media_seconds(info))
        inputs += ["-i", str(local)]
        maps += ["-map", f"{index}:v:0"]
        variant = f"v:{index}"
        if has_stream(info, "audio"):
            maps += ["-map", f"{index}:a:0"]
            variant += f",a:{len([v for v in variants if ',a:' in v])}"
        variants.append(variant)
    out = context.scratch / "package"
    out.mkdir(parents=True, exist_ok=True)
    seconds = f"{parameters.segment_seconds:g}"
    if parameters.format == "hls":
        muxer = ["-f", "hls", "-hls_time", seconds, "-hls_playlist_type", "vod",
                 "-master_pl_name", "master.m3u8", "-var_stream_map", " ".join(variants),
                 "-hls_segment_filename", str(out / "stream_%v" / "segment_%05d.ts"),
                 str(out / "stream_%v" / "index.m3u8")]
    else:
        muxer = ["-f", "dash", "-seg_duration", seconds, "-use_template", "1",
                 "-use_timeline", "1", "-adaptation_sets", "id=0,streams=v id=1,streams=a",
                 str(out / "manifest.mpd")]

    async def progress(percent: float) -> None:
        await context.progress(0.9 * percent)

    run = await run_ffmpeg([*inputs, *maps, "-c", "copy", *muxer], duration=max(durations),
                           progress=progress)
    context.count("cpu_seconds", run.cpu_seconds)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    for file in files:
        await context.store(file, f"{parameters.destination}/{file.relative_to(out).as_posix()}")
    for index, length in enumerate(durations):  # each variant is media written again
        context.media("out", f"{context.workspace}{parameters.destination}#{index}", length)
    await context.progress(100.0, force=True)
    await context.log(f"{parameters.format.upper()} package of {len(parameters.sources)} "
                      f"variant(s), {len(files)} files, in {parameters.destination}/")


async def media_thumbnail(context: ToolContext, parameters: MediaThumbnail) -> None:
    local, info = await read_media(context, parameters.source)
    out = context.scratch / "thumbs"
    out.mkdir(parents=True, exist_ok=True)
    scale = [f"scale={parameters.width}:-2"] if parameters.width else []
    base = stem(parameters.source)
    if parameters.every_seconds is not None:
        filters = ",".join([f"fps=1/{parameters.every_seconds:g}", *scale])
        pattern = out / f"{base}_thumb_%04d.{parameters.format}"
        args = ["-i", str(local), "-vf", filters, str(pattern)]
    else:
        at = min(parameters.at_seconds or 0.0, max(0.0, media_seconds(info) - 0.1))
        image = out / f"{base}_thumb.{parameters.format}"
        args = ["-ss", f"{at:.3f}", "-i", str(local), "-frames:v", "1",
                *(["-vf", scale[0]] if scale else []), str(image)]
    run = await run_ffmpeg(args)
    context.count("cpu_seconds", run.cpu_seconds)
    images = sorted(out.iterdir())
    for image in images:
        await context.store(image, sibling(parameters.source, image.name))
    context.result["thumbnails"] = len(images)
