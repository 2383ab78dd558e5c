"""What the peer benchmarks share: the log line, the genloom rows asked for with --genloom LABEL=JSON, and the
results file, one markdown file per benchmark with one section per named run, so that a new run of one section
(a sweep, a rerun) replaces only its own."""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def results_arguments(parser: argparse.ArgumentParser, results: Path, quick: str) -> None:
    """The flags of every run: where its results go (--out, --section) and the smoke run (--quick)."""
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {quick}")
    parser.add_argument("--out", type=Path, default=results)
    parser.add_argument("--section", default="main", help="the section of --out this run writes")


def genloom_arguments(parser: argparse.ArgumentParser, peers: list[str], default_rows: str, keys: str) -> None:
    """The peers to run beside genloom (--peers) and genloom's own rows (--genloom LABEL=JSON)."""
    parser.add_argument("--peers", nargs="*", default=peers, choices=peers)
    parser.add_argument("--genloom", nargs="*", default=None, metavar="LABEL=JSON",
                        help=f"genloom rows (default: {default_rows}); JSON keys {keys}")


def genloom_rows(items: list[str] | None, default: dict[str, dict], budget: dict[str, Any]) -> dict[str, dict]:
    """The genloom rows of a run: LABEL=JSON items (or `default` without any), each with `budget`'s keys
    where its JSON does not set them."""
    rows = default if items is None else {}
    for item in items or []:
        label, _, given = item.partition("=")
        rows[label] = json.loads(given or "{}")
    return {label: {**budget, **settings} for label, settings in rows.items()}


def write_section(path: Path, section: str, title: str, body: list[str]) -> None:
    """Replace (or add) this run's section of the results file, keeping the others."""
    start, end = f"<!-- section {section} -->", f"<!-- end section {section} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# {title}\n"
    block = "\n".join([start, *body, end])
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def all_numbers(results: list[dict[str, Any]]) -> list[str]:
    """The closing lines of a results section: every number of the run, folded away."""
    return ["<details><summary>all numbers</summary>", "", "```json", json.dumps(results, indent=1, default=float),
            "```", "</details>"]


THREAD_SETTINGS = ("1 thread", "2 threads", "1 thread, busy other core")  # where a speed claim is measured


def _spin() -> None:
    """A busy core: matrix products, forever."""
    import torch

    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while True:
        a = (a @ a).tanh()


@contextmanager
def thread_setting(name: str) -> Iterator[None]:
    """One of THREAD_SETTINGS for the code inside: torch's threads, this process's cores (1 thread: core 1) and,
    busy, a process spinning on core 0."""
    import torch

    threads = 2 if name == "2 threads" else 1
    os.sched_setaffinity(0, {0, 1} if threads == 2 else {1})
    torch.set_num_threads(threads)
    neighbour = multiprocessing.Process(target=_spin, daemon=True) if "busy" in name else None
    if neighbour is not None:
        neighbour.start()
    try:
        yield
    finally:
        if neighbour is not None:
            neighbour.terminate()
            neighbour.join()


def seconds_in_each_setting(candidates: dict[str, Any], measure: Any) -> dict[tuple[str, str], float]:
    """measure(candidate) in seconds for every candidate in every THREAD_SETTINGS, logged as it goes; the candidates
    in turn within a setting, so a change in the machine's speed touches all alike."""
    seconds = {}
    for setting in THREAD_SETTINGS:
        with thread_setting(setting):
            for name, candidate in candidates.items():
                seconds[name, setting] = measure(candidate)
                log(f"{name}, {setting}: {seconds[name, setting]:.4f} s")
    return seconds
