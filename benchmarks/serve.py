"""`genloom serve` under load on this machine: server and clients on 127.0.0.1, the server a `genloom serve`
process, the clients threads of this script (they mostly wait on sockets).

Measures, each setting twice:
- one text stream: tokens/s through the server against `model.generate` in this process on the server's number
  of threads, five of each taken in turn (target: overhead, the median over the turns, at most 10%);
- 16 concurrent clients asking one image run for 16 samples each: samples/s with batching against the same
  server started with --no-batching, both servers up and asked in turn, five times each (target: at least
  3x);
- 8 concurrent text completions (prompts of different lengths; each joins the batch decoding when it arrives):
  aggregate tokens/s against the same 8 made one after the other, five of each in turn (target: 2x);
- those two text figures again with the server on 1 thread and on 2 threads of an idle machine, and on 1 thread
  while another process computes on one of the two cores;
- 32 clients mixing images, tables and text for 60 s after 20 s of the same load as warm-up: 5xx count (target
  0), p50/p99 latency per endpoint, and the server's RSS after the warm-up and at the end (target: growth at
  most 20%).

Usage: .venv/bin/python benchmarks/serve.py           (about 15 minutes on 2 cores)
       .venv/bin/python benchmarks/serve.py --quick   (a smoke run of the script itself)
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import torch

import genloom as gl
from genloom.serve.settings import ServeSettings, inference_threads
from genloom.train.device import available_cores

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PENGUINS, MNIST = SHARED / "tables" / "penguins.csv", SHARED / "mnist28.npz"
STREAM_TOKENS = 256
MAX_CONCURRENCY = 16
READINGS = 5  # of each side of a comparison, taken in turn
IMAGE_RUNS = ("mnist-vae", "digits-diffusion")
# the torch threads of one inference in a server started as below without --threads
DEFAULT_THREADS = inference_threads(ServeSettings(max_concurrency=MAX_CONCURRENCY), available_cores())
WARM_UP_SECONDS = 20  # of mixed load before the server's memory is first read


def train_runs(folder: Path, steps: int) -> None:
    """The served runs, at their default sizes (speed, not quality, is measured): a VAE on MNIST-size digits
    (the image default), a diffusion model on digits, the default character GPT, a table VAE."""
    quiet = {"progress": False}
    mnist = np.load(MNIST)["train_images"][:2000, ..., None]
    gl.Model("vae").fit(mnist, steps=steps, out=folder / "mnist-vae", **quiet)
    gl.Model("diffusion").fit("digits", steps=steps, out=folder / "digits-diffusion", **quiet)
    gl.Model("autoregressive").fit("shakespeare", steps=steps, out=folder / "shakespeare", **quiet)
    gl.Model("vae").fit(pd.read_csv(PENGUINS), steps=steps, out=folder / "penguins", **quiet)


class Server:
    """A `genloom serve` process on a free port."""

    def __init__(self, folder: Path, *flags: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "genloom.cli", "serve", str(folder), "--port", str(self.port),
                   "--max-concurrency", str(MAX_CONCURRENCY), "--max-loaded", "8", *flags]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                CLIENT.get(f"{self.url}/healthz", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start: {self.process.stderr.read()}")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


# one client for every request, keeping its connections as real clients (the openai package among them) do: a
# new httpx client per request spends ~25 ms making an SSL context, more than a short completion takes
CLIENT = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))


def post(url: str, body: dict, timeout: float = 300) -> httpx.Response:
    return CLIENT.post(url, json=body, timeout=timeout)


# -- the measurements -------------------------------------------------------------------------------------------
def turn_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the ratios of readings taken in the same turn: a drift of the machine's speed between turns
    then reaches both sides of each ratio."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def stream_overhead(server: Server, folder: Path, threads: int) -> dict:
    """Tokens/s of one streamed completion through the server, and of model.generate here on the server's number
    of torch threads: READINGS of each, taken in turn, and the median of each (one reading alone can land on a
    moment the machine is busy elsewhere)."""
    body = {"model": "shakespeare", "prompt": "ROMEO:", "max_tokens": STREAM_TOKENS, "stream": True, "seed": 0}
    post(f"{server.url}/v1/completions", {**body, "stream": False, "max_tokens": 8})  # load the run
    model = gl.load(folder / "shakespeare")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.generate("ROMEO:", max_tokens=8)
    served, direct = [], []
    for _ in range(READINGS):
        started = time.perf_counter()
        with CLIENT.stream("POST", f"{server.url}/v1/completions", json=body) as response:
            chunks = sum(1 for line in response.iter_lines() if line.startswith("data: {"))
        served.append(STREAM_TOKENS / (time.perf_counter() - started))
        started = time.perf_counter()
        pieces = sum(1 for _ in model.generate("ROMEO:", max_tokens=STREAM_TOKENS, seed=0, stream=True))
        direct.append(STREAM_TOKENS / (time.perf_counter() - started))
    torch.set_num_threads(before)
    return {"served_tokens_per_s": statistics.median(served), "direct_tokens_per_s": statistics.median(direct),
            "overhead": 1 - turn_ratio(served, direct), "events": chunks, "pieces": pieces,
            "served_readings": served, "direct_readings": direct}


def concurrent_images(server: Server, run: str, clients: int = 16, n: int = 16) -> dict:
    """Samples/s of `clients` clients asking for n samples each at once."""
    post(f"{server.url}/v1/runs/{run}/samples", {"n": 1})  # load the run
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda _: post(f"{server.url}/v1/runs/{run}/samples", {"n": n, "format": "zip"}),
                                range(clients)))
    seconds = time.perf_counter() - started
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers if a.status_code != 200]
    return {"samples_per_s": clients * n / seconds, "seconds": seconds}


PROMPTS = ["ROMEO:", "JULIET:\n", "KING RICHARD III:", "O", "First Citizen:\nSpeak, speak.", "MENENIUS:",
           "To be", "Nurse:\nWhat, lamb!"]  # of 1 to 28 characters: clients do not agree on a prompt's length


def concurrent_text(server: Server, clients: int = 8, tokens: int = 128) -> dict:
    """Aggregate tokens/s of `clients` completions at once, and of the same made one after the other: READINGS of
    each, taken in turn, and the median of each."""
    def complete(index: int) -> int:  # unseeded, so that completions arriving together may be decoded together
        answer = post(f"{server.url}/v1/completions", {"model": "shakespeare", "max_tokens": tokens,
                                                       "prompt": PROMPTS[index % len(PROMPTS)]})
        return answer.json()["usage"]["completion_tokens"]

    sequential, together = [], []
    for _ in range(READINGS):
        started = time.perf_counter()
        sequential.append(sum(complete(index) for index in range(clients)) / (time.perf_counter() - started))
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            together.append(sum(pool.map(complete, range(clients))) / (time.perf_counter() - started))
    return {"sequential_tokens_per_s": statistics.median(sequential),
            "concurrent_tokens_per_s": statistics.median(together),
            "gain": turn_ratio(together, sequential),
            "sequential_readings": sequential, "concurrent_readings": together}


def images_batching(folder: Path) -> dict:
    """Each image run's samples/s from a server with batching and one with --no-batching, both up at once and
    asked in turn, READINGS times each: the median of each (a drift in the machine's speed then reaches both)."""
    servers = {"batching": Server(folder), "no batching": Server(folder, "--no-batching")}
    try:
        results = {}
        for run in IMAGE_RUNS:
            readings: dict[str, list[float]] = {label: [] for label in servers}
            for _ in range(READINGS):
                for label, server in servers.items():
                    readings[label].append(concurrent_images(server, run)["samples_per_s"])
            results[run] = {label: {"samples_per_s": statistics.median(values), "readings": values}
                            for label, values in readings.items()}
            results[run]["gain"] = turn_ratio(readings["batching"], readings["no batching"])
        return results
    finally:
        for server in servers.values():
            server.stop()


MIXED = {  # endpoint name: (path, body)
    "image samples": ("/v1/runs/mnist-vae/samples", {"n": 8}),
    "diffusion samples": ("/v1/runs/digits-diffusion/samples", {"n": 4, "sampler": "ddim", "steps": 10}),
    "table samples": ("/v1/runs/penguins/samples", {"n": 50}),
    "table scores": ("/v1/runs/penguins/score", None),  # filled with real rows
    "completions": ("/v1/completions", {"model": "shakespeare", "prompt": "ROMEO:", "max_tokens": 32}),
}


def mixed_load(server: Server, seconds: float, clients: int = 32) -> dict:
    """`clients` clients, each sending requests of random kinds one after another for `seconds`."""
    rows = pd.read_csv(PENGUINS).dropna().head(20).to_dict(orient="records")
    bodies = {name: body if body is not None else {"examples": rows} for name, (_, body) in MIXED.items()}
    latencies = {name: [] for name in MIXED}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    for name, (path, _) in MIXED.items():  # every run loaded
        post(server.url + path, bodies[name])
    warm_until = time.time() + WARM_UP_SECONDS
    stop_at = warm_until + seconds
    rss_warm = None

    def client(index: int) -> None:
        nonlocal rss_warm
        chooser = random.Random(index)
        while time.time() < stop_at:
            if rss_warm is None and time.time() >= warm_until:
                rss_warm = server.rss_mb()  # the working set of this load, reached: growth from here is a leak
            name = chooser.choice(list(MIXED))
            began, started = time.time(), time.perf_counter()
            try:
                status = post(server.url + MIXED[name][0], bodies[name], timeout=120).status_code
            except httpx.TransportError:
                status = -1
            if began < warm_until:
                continue
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies[name].append(time.perf_counter() - started)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    rss_end = server.rss_mb()

    def percentile(values: list[float], share: float) -> float:
        return statistics.quantiles(values, n=100)[int(share * 100) - 1] if len(values) > 1 else float("nan")

    return {"statuses": statuses, "server_errors": sum(v for k, v in statuses.items() if k >= 500 or k < 0),
            "latency": {name: {"count": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99)}
                        for name, values in latencies.items()},
            "rss_warm_mb": rss_warm, "rss_end_mb": rss_end, "rss_growth": rss_end / rss_warm - 1}


THREAD_SETTINGS = {  # the server's torch threads, and whether another job keeps one core busy meanwhile
    "1 thread, idle": (1, False), "2 threads, idle": (2, False), "1 thread, busy machine": (1, True)}
BUSY_JOB = ("import torch\ntorch.set_num_threads(1)\nx = torch.randn(512, 512)\n"
            "while True:\n    x = torch.tanh(x @ x)")


def text_in_settings(folder: Path) -> dict:
    """The stream's overhead and the concurrent-completion gain with the server on 1 and 2 threads of an idle
    machine, and on 1 thread while another process computes on one of the two cores."""
    results = {}
    for label, (threads, busy) in THREAD_SETTINGS.items():
        job = subprocess.Popen([sys.executable, "-c", BUSY_JOB]) if busy else None
        server = Server(folder, "--threads", str(threads))
        try:
            results[label] = {"stream": stream_overhead(server, folder, threads), "text": concurrent_text(server)}
        finally:
            server.stop()
            if job is not None:
                job.kill()
                job.wait()
    return results


# -- the table --------------------------------------------------------------------------------------------------
def write_results(results: dict, path: Path) -> None:
    lines = [f"# genloom serve under load ({results['date']}, {results['machine']})", "",
             "Server (`genloom serve --max-concurrency 16`) and clients on 127.0.0.1 of this 2-core machine; "
             "`benchmarks/serve.py`. Each measurement twice (rep 1 / rep 2); in each, several readings of each side "
             "taken in turn: throughputs are their medians, ratios the median of the turns' ratios.", "",
             "| measurement | rep 1 | rep 2 | target | met |", "|---|---|---|---|---|"]
    reps = results["repetitions"]

    def row(label: str, values: list[float], fmt: str, target: str, met: bool) -> None:
        lines.append(f"| {label} | " + " | ".join(format(v, fmt) for v in values) + f" | {target} | "
                     f"{'yes' if met else 'NO'} |")

    overhead = [rep["stream"]["overhead"] for rep in reps]
    row(f"one text stream: tokens/s through the server (median of {READINGS})",
        [rep["stream"]["served_tokens_per_s"] for rep in reps],
        ".1f", "", True)
    row(f"one text stream: tokens/s of model.generate here on {DEFAULT_THREADS} thread(s), taken in turn",
        [rep["stream"]["direct_tokens_per_s"] for rep in reps],
        ".1f", "", True)
    row("server overhead on one stream", overhead, ".1%", "<= 10%", max(overhead) <= 0.10)
    for run in IMAGE_RUNS:
        on = [rep["images"][run]["batching"]["samples_per_s"] for rep in reps]
        off = [rep["images"][run]["no batching"]["samples_per_s"] for rep in reps]
        row(f"16 clients x 16 samples of {run}: samples/s, batching", on, ".1f", "", True)
        row(f"16 clients x 16 samples of {run}: samples/s, --no-batching", off, ".1f", "", True)
        gains = [rep["images"][run]["gain"] for rep in reps]
        row(f"batching gain ({run})", gains, ".2f", ">= 3x", min(gains) >= 3)
    text = [rep["text"] for rep in reps]
    row("8 completions one after another: tokens/s", [t["sequential_tokens_per_s"] for t in text], ".1f", "", True)
    row("8 completions at once: aggregate tokens/s", [t["concurrent_tokens_per_s"] for t in text], ".1f", "", True)
    row("concurrent text gain", [t["gain"] for t in text], ".2f", ">= 2x", min(t["gain"] for t in text) >= 2)
    mixed = [rep["mixed"] for rep in reps]
    for label in THREAD_SETTINGS:
        settings = [rep["settings"][label] for rep in reps]
        row(f"{label}: server overhead on one stream", [r["stream"]["overhead"] for r in settings], ".1%",
            "<= 10%", max(r["stream"]["overhead"] for r in settings) <= 0.10)
        row(f"{label}: 8 completions at once vs one after another", [r["text"]["gain"] for r in settings], ".2f",
            ">= 2x", min(r["text"]["gain"] for r in settings) >= 2)
    row("32 mixed clients: 5xx and failed connections", [m["server_errors"] for m in mixed], "d", "0",
        all(m["server_errors"] == 0 for m in mixed))
    row("server RSS after warm-up (MB)", [m["rss_warm_mb"] for m in mixed], ".0f", "", True)
    row("server RSS at the end (MB)", [m["rss_end_mb"] for m in mixed], ".0f", "", True)
    row("RSS growth", [m["rss_growth"] for m in mixed], ".1%", "<= 20%", max(m["rss_growth"] for m in mixed) <= 0.2)
    lines += ["", f"Mixed load ({results['mixed_seconds']:.0f} s, 32 clients): latency per endpoint, seconds "
              "(p50 / p99; rep 1 | rep 2), and the statuses seen:", "",
              "| endpoint | requests | p50 | p99 |", "|---|---|---|---|"]
    for name in MIXED:
        cells = [mixed[i]["latency"][name] for i in range(len(mixed))]
        lines.append(f"| {name} | " + " \\| ".join(str(c["count"]) for c in cells) + " | "
                     + " \\| ".join(f"{c['p50']:.2f}" for c in cells) + " | "
                     + " \\| ".join(f"{c['p99']:.2f}" for c in cells) + " |")
    lines += ["", "Statuses: " + " | ".join(json.dumps(m["statuses"]) for m in mixed), "", NOTES, ""]
    path.write_text("\n".join(lines))


NOTES = """Reading the table:
- Readings taken in turn: the two servers of the image comparison are both up and asked one after the other,
  five times each; the text figures alternate their two sides five times; a throughput is the median of its
  readings, a ratio the median of the ratios within each turn. This machine's speed drifts by a third within
  minutes (model.generate alone: 1,556-2,748 tokens/s across runs of this script on one day), so a comparison
  made minutes apart measured the drift, and three turns were too few to keep one slow turn out of a median.
- Pooling sample requests pays where one call's cost is mostly per step, not per sample: the diffusion model's
  denoising steps are shared by the pool, while 16 calls of 16 are bound by Python dispatch and the GIL. The
  default image family, a VAE at 28x28, costs the same per sample in any batch on this CPU (`model.sample` of
  16 images x 16 on one thread: 0.36 s, of 256 at once: 0.44-0.50 s on one thread, 0.42-0.44 s on two), so
  there is nothing for a pool to share, and its 5 ms window only adds latency.
- Completions join the batch of their run that is already decoding, at its next token (continuous batching),
  so 8 clients arriving within a few milliseconds make one batch (with the 5 ms pooling window before, /healthz
  counted about three pools for them in a check outside this script). The gain is then what one forward pass
  for 8 rows costs against 8 passes for one: on one thread a step of 8 rows takes ~3x a step of one (its matrix
  products, 8 x 128 by 128 x 640, are compute, not dispatch), which with sampling and decoding per row leaves,
  in process (`Model.text_batch` against `generate` one prompt after another, five turns, a timing outside
  this script), 2.53x on one thread, 3.04x on two and 2.51x on one beside a busy core; through the server the
  turns' ratios spread from 1.8x to 3.3x within one repetition.
- A 429 is the server refusing work past --max-concurrency (16 here) with Retry-After, as it should under 32
  clients on 2 cores; pooled requests wait for a slot instead, requests that cannot be pooled (scores, seeded
  samples) are refused. A running batch of completions holds one slot and is one thread among the sixteen. In
  a check outside this script (30 s of this load, servers of this commit and of the one before continuous
  batching, 1bd5906, run in turn, twice each): completions waited longer (p50 3.2-3.6 s against 1.2-1.5 s), 9-16
  requests were refused against 171-175 (table scores now served), and the other endpoints answered sooner;
  capping a batch at 8 rows brought completions to 2.2-2.6 s and the refusals back to 94-95.
- With 2 torch threads on this 2-core machine the decoding thread, its OpenMP helper, the event loop and the
  client share two cores: a token's parallel regions wait for the helper to be scheduled. Idle OpenMP threads
  sleep in the server (OMP_WAIT_POLICY=PASSIVE); letting them spin for a while instead (GOMP_SPINCOUNT 3,000,
  30,000 or 300,000, in a check outside this script) left the stream 36-47% behind all the same. Serve text
  with --threads 1."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny load, results not written")
    args = parser.parse_args()
    mixed_seconds = 5.0 if args.quick else 60.0
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print("training the served runs", flush=True)
        train_runs(folder, steps=2)
        repetitions = []
        for rep in range(1 if args.quick else 2):
            result = {"images": images_batching(folder)}
            server = Server(folder)
            try:
                result["stream"] = stream_overhead(server, folder, DEFAULT_THREADS)
                result["text"] = concurrent_text(server)
                result["mixed"] = mixed_load(server, mixed_seconds)
            finally:
                server.stop()
            result["settings"] = text_in_settings(folder)
            print(json.dumps(result), flush=True)
            repetitions.append(result)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{__import__('os').cpu_count()} CPUs",
               "mixed_seconds": mixed_seconds, "repetitions": repetitions}
    if not args.quick:
        (RESULTS / "serve.json").write_text(json.dumps(results, indent=1))
        write_results(results, RESULTS / "serve.md")
    else:
        write_results(results, Path(tempfile.gettempdir()) / "serve-quick.md")
        print((Path(tempfile.gettempdir()) / "serve-quick.md").read_text())


if __name__ == "__main__":
    main()
