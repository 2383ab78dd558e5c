"""Latent against pixel diffusion on MNIST-sized images: seconds per training step (the autoencoder's stage and
the diffusion's) and per 100 samples (DPM-Solver++, 20 steps), at 1 and 2 threads and on a busy machine (two
other processes spinning on the cores), each setting repeated; the ratios are what benchmarks/images28.py's
speed targets ask (training steps/s >= 2x, sampling >= 3x).

Usage: .venv/bin/python benchmarks/latent_speed.py            (some 6 minutes on 2 cores)
"""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import torch

from genloom.data.image_layout import ImageLayout
from genloom.families import sample_options
from genloom.families.configs import DiffusionConfig, LatentDiffusionConfig
from genloom.families.diffusion import Diffusion
from genloom.families.latent import LatentDiffusion

RESULTS = Path(__file__).parent / "results"
LAYOUT = ImageLayout((1, 28, 28), 10)
BATCH, STEPS, SAMPLES, REPEATS = 64, 6, 100, 2


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def step_seconds(family, x: torch.Tensor) -> float:
    """Median seconds of a training step (forward, backward, AdamW) after one warm-up step."""
    optimizer = torch.optim.AdamW([p for p in family.parameters() if p.requires_grad])
    times = []
    for index in range(STEPS + 1):
        start = time.perf_counter()
        for _, loss, _ in family.losses(x, None):
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def sample_seconds(family) -> float:
    options = sample_options(family.name, {"sampler": "dpm-solver", "steps": 20})
    start = time.perf_counter()
    with torch.inference_mode():
        family.eval().sample(SAMPLES, None, torch.Generator().manual_seed(0), options)
    family.train()
    return time.perf_counter() - start


def measure() -> dict[str, float]:
    torch.manual_seed(0)
    x = torch.rand(BATCH, *LAYOUT.shape) * 2 - 1
    pixel = Diffusion(LAYOUT, DiffusionConfig())
    latent = LatentDiffusion(LAYOUT, LatentDiffusionConfig())
    numbers = {"pixel step": step_seconds(pixel, x)}
    latent.begin_step(0.0)
    numbers["autoencoder step"] = step_seconds(latent, x)
    latent.begin_step(1.0)
    numbers["latent step"] = step_seconds(latent, x)
    numbers["pixel sampling"] = sample_seconds(pixel)
    numbers["latent sampling"] = sample_seconds(latent)
    return numbers


def main() -> None:
    lines = ["# Latent vs pixel diffusion: speed by setting (MNIST 28x28, batch 64, default options)", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')}; median of {STEPS} training steps; {SAMPLES} samples by "
             "DPM-Solver++ 20. Busy: two other processes spin on the 2 cores while 2 threads measure.", "",
             "| setting | repeat | pixel s/step | latent s/step | autoencoder s/step | steps/s ratio | "
             "pixel s/100 samples | latent s/100 | sampling ratio |", "|" + " --- |" * 9]
    for setting, threads, busy in (("1 thread", 1, False), ("2 threads", 2, False), ("busy, 2 threads", 2, True)):
        torch.set_num_threads(threads)
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(2 if busy else 0)]
        for spinner in spinners:
            spinner.start()
        try:
            for repeat in range(REPEATS):
                n = measure()
                lines.append(f"| {setting} | {repeat + 1} | {n['pixel step']:.3f} | {n['latent step']:.3f} | "
                             f"{n['autoencoder step']:.3f} | {n['pixel step'] / n['latent step']:.2f} | "
                             f"{n['pixel sampling']:.2f} | {n['latent sampling']:.2f} | "
                             f"{n['pixel sampling'] / n['latent sampling']:.2f} |")
                print(lines[-1], flush=True)
        finally:
            stop.set()
            for spinner in spinners:
                spinner.join()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latent_speed.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
