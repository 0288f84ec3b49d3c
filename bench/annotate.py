"""`gazetteer_match`: characters/s of text through a pipeline holding one generated list of
multi-word names, against pyahocorasick doing the same whole-word, longest-leftmost,
case-insensitive matching; and `annotate_documents`: documents/s through the worker's
per-document path (`read_documents` over a ZIP, `Pipeline.annotate`, JSON rendering),
against the same ZIP read with `zipfile` and decoded, nothing else (the floor).

Everything is generated from a fixed seed, so every run measures the same text."""

from __future__ import annotations

import json
import random
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ahocorasick

from bench.common import row
from services.worker.annotation.documents import InputOptions, read_documents
from services.worker.annotation.formats import render
from services.worker.annotation.pipeline import Pipeline
from services.worker.annotation.selectors import parse_selectors, select

SEED = 1729
NAME_SHARE = 0.01  # of the words of the text, the share that are list entries
_ONSETS = "b c d f g h j k l m n p r s t v w z br ch dr gr kl sh st tr".split()
_VOWELS = "a e i o u y ai ea ou".split()


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))


class Corpus:
    """A list of `count` names ("First [Middle] Last") and filler words that are never part
    of a name, so the only matches are the names put into the text."""

    def __init__(self, count: int, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        firsts = sorted({_word(rng, rng.randint(2, 3)).title()
                         for _ in range(max(200, count // 8))})
        lasts = sorted({_word(rng, rng.randint(2, 4)).title()
                        for _ in range(max(400, count // 3))})
        names: dict[str, None] = {}
        while len(names) < count:
            middle = f"{rng.choice(firsts)} " if rng.random() < 0.3 else ""
            names[f"{rng.choice(firsts)} {middle}{rng.choice(lasts)}"] = None
        self.names = list(names)
        parts = {part.lower() for part in firsts + lasts}
        self.filler = sorted({w for w in (_word(rng, rng.randint(1, 3)) for _ in range(6000))
                              if w not in parts})

    def text(self, chars: int) -> str:
        """About `chars` characters of sentences; NAME_SHARE of the words are names."""
        rng, out, size, words = self.rng, [], 0, 0
        while size < chars:
            if rng.random() < NAME_SHARE:
                token = rng.choice(self.names)
            else:
                token = rng.choice(self.filler)
                words += 1
                if words % 14 == 0:
                    token += ".\n" if words % 70 == 0 else "."
                elif words % 5 == 0:
                    token += ","
            out.append(token)
            size += len(token) + 1
        return " ".join(out).replace("\n ", "\n")


def application(folder: Path, corpus: Corpus, *, with_rule: bool = False) -> Path:
    """An application folder with one list of the corpus's names (and a Year rule)."""
    (folder / "lists").mkdir(parents=True)
    (folder / "lists" / "names.lst").write_text(
        "".join(f"{name}\tid={index}\n" for index, name in enumerate(corpus.names)))
    spec: dict[str, Any] = {"name": "bench", "gazetteers": [
        {"list": "lists/names.lst", "type": "Person", "features": {"kind": "person"}}]}
    if with_rule:
        spec["rules"] = [{"pattern": r"\b(1[89]|20)\d\d\b", "type": "Year", "set": "Dates",
                          "features": {"value": "$0"}}]
    (folder / "pipeline.json").write_text(json.dumps(spec))
    return folder


def _is_word(ch: str) -> bool:  # what `\w` means to `re` in a str pattern
    return ch.isalnum() or ch == "_"


def aho_matches(automaton: Any, text: str) -> list[tuple[int, int]]:
    """The peer: every occurrence, kept at word boundaries, then longest-leftmost and
    non-overlapping, as the gazetteer matches."""
    lower = text.lower()
    last = len(lower) - 1
    found = []
    for end, length in automaton.iter(lower):
        start = end - length + 1
        if (start == 0 or not _is_word(lower[start - 1])) and (
                end == last or not _is_word(lower[end + 1])):
            found.append((start, end + 1))
    found.sort(key=lambda m: (m[0], -m[1]))
    chosen, reached = [], 0
    for start, end in found:
        if start >= reached:
            chosen.append((start, end))
            reached = end
    return chosen


def _best(repeats: int, work: Callable[[], int]) -> tuple[float, int]:
    """The shortest of `repeats` runs of `work`, and what it returned."""
    best, result = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def gazetteer_match(entries: int, chars: int, repeats: int) -> dict[str, Any]:
    corpus = Corpus(entries)
    text = corpus.text(chars)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as folder:
        started = time.perf_counter()
        pipeline = Pipeline.from_directory(application(Path(folder), corpus))
        load = time.perf_counter() - started
    started = time.perf_counter()
    automaton = ahocorasick.Automaton()
    for name in corpus.names:
        key = name.lower()
        automaton.add_word(key, len(key))
    automaton.make_automaton()
    build = time.perf_counter() - started
    ours, ours_found = _best(repeats, lambda: len(pipeline.annotate("text", text).annotations))
    peer, peer_found = _best(repeats, lambda: len(aho_matches(automaton, text)))
    check = (f"both found {ours_found} matches" if ours_found == peer_found else
             f"WARNING: match counts differ: ours {ours_found}, peer {peer_found}")
    return row("gazetteer_match", len(text) / ours, "chars/s", "pyahocorasick", len(text) / peer,
               f"{entries} entries (2-3 words), {len(text) / 1e6:.1f} M chars, "
               f"{NAME_SHARE:.0%} of words are entries; {check}; best of {repeats}; "
               f"loading the pipeline {load:.2f} s, building the automaton {build:.2f} s "
               "(not timed); peer: lowercase, every occurrence, filtered to word boundaries "
               "and longest-leftmost (ours also builds each annotation with its features)")


def documents_zip(path: Path, corpus: Corpus, count: int, chars: int) -> int:
    """`count` text documents of about `chars` characters each (some with years); bytes."""
    rng = corpus.rng
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            body = corpus.text(chars)
            body += f" In {rng.randint(1800, 2029)} it ended.\n"
            archive.writestr(f"docs/doc{index:05d}.txt", body)
    return path.stat().st_size


def annotate_documents(entries: int, count: int, chars: int,
                       repeats: int) -> dict[str, Any]:
    corpus = Corpus(entries)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as name:
        folder = Path(name)
        app = application(folder / "app", corpus, with_rule=True)
        with zipfile.ZipFile(folder / "app.zip", "w", zipfile.ZIP_DEFLATED) as packed:
            for file in sorted(app.rglob("*")):
                packed.write(file, file.relative_to(app).as_posix())
        pipeline = Pipeline.from_zip((folder / "app.zip").read_bytes())
        archive = folder / "documents.zip"
        size = documents_zip(archive, corpus, count, chars)
        selectors = parse_selectors(pipeline.default_selectors)

        def ours() -> int:  # as services/worker/tools/annotate.py, less the upload
            done = 0
            for source in read_documents(archive, InputOptions(type="ZIP")):
                assert source.text is not None
                document = pipeline.annotate(source.name, source.text)
                render(document, "JSON", select(document.annotations, selectors))
                done += 1
            return done

        def bare() -> int:
            done = 0
            with zipfile.ZipFile(archive) as opened:
                for info in opened.infolist():
                    opened.read(info).decode("utf-8")
                    done += 1
            return done

        ours_time, ours_done = _best(repeats, ours)
        peer_time, peer_done = _best(repeats, bare)
    return row("annotate_documents", ours_done / ours_time, "docs/s", "zipfile_decode",
               peer_done / peer_time,
               f"{count} text documents of ~{chars} chars in a {size / 1e6:.1f} MB ZIP; "
               f"pipeline: {entries} list entries and a Year rule; ours: read_documents, "
               "annotate, select the default selectors, render JSON (no upload); "
               f"peer: zipfile read and UTF-8 decode only (the floor); best of {repeats}")


def run(quick: bool) -> list[dict[str, Any]]:
    """Both rows; CPU only, no servers (a few seconds quick, about fifteen in full)."""
    if quick:
        return [gazetteer_match(10_000, 2_000_000, 2),
                annotate_documents(10_000, 1_000, 1_500, 2)]
    return [gazetteer_match(20_000, 4_000_000, 3),
            annotate_documents(20_000, 2_000, 1_500, 3)]
