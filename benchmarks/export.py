"""Export: the same trained networks run by PyTorch (fp32), ONNX Runtime (fp32) and ONNX Runtime with int8
linear layers (dynamic quantisation): file size, the network's latency at batch 1 and 64, sampling time, and
what the change costs in quality (tables: SDMetrics quality and train-on-synthetic utility against held-out
rows; images: how far the samples move from PyTorch's for the same seeds).

All on one thread (torch.set_num_threads(1), ONNX Runtime's intra-op threads 1); pin the script to a core
(taskset -c 1). Three models: a VAE on Adult (MLP), a VAE on MNIST (conv) and a diffusion model on digits (U-Net,
DPM-Solver++ 20 steps).

Usage: taskset -c 1 .venv/bin/python benchmarks/export.py            (some 8 minutes)
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genloom as gl
from genloom.export import OnnxModel, export_onnx
from genloom.export.onnx import NETWORKS, network_arguments
from genloom.metrics.tabular import table_scores
from genloom.train.batches import held_out_indices
from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "export.md"
MODELS = {  # name: (family, data, options, training steps, sampling options)
    "Adult VAE (table)": ("vae", "adult", {}, 1500, {}),
    "MNIST VAE (28x28, conv)": ("vae", "mnist", {}, 300, {}),
    "digits diffusion (8x8, U-Net)": ("diffusion", "digits", {}, 600, {"sampler": "dpm-solver", "steps": 20}),
}


def latency(network, args: tuple, batch: int, repeats: int) -> float:
    """Median milliseconds of one call of the network on `batch` examples."""
    args = tuple(None if a is None else a[:1].repeat(batch, *[1] * (a.dim() - 1)) for a in args)
    times = []
    with torch.no_grad():
        network(*args)
        for _ in range(repeats):
            started = time.perf_counter()
            network(*args)
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def quality(samples, reference, dataset, kinds: dict[str, str] | None) -> str:
    if isinstance(samples, np.ndarray):
        moved = np.abs(samples.astype(int) - reference.astype(int))
        return f"pixels moved vs torch: mean {moved.mean():.2f}, max {moved.max()} grey levels"
    train_rows, held = held_out_indices(len(dataset), 0.2)
    real, train = dataset.values.iloc[held], dataset.values.iloc[train_rows[:5000]]
    scores, _ = table_scores(samples, train, real, kinds, target="income")
    return f"quality {scores['quality']:.3f}, utility {scores['utility_synthetic']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "few training steps, fewer timing repeats")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats, samples = (5, 200) if args.quick else (30, 2000)
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M')}, one thread; latency: median of {repeats} calls; sampling and "
             f"quality: {samples:,} samples, seed 0.", "",
             "| model | runtime | file KB | network ms, batch 1 | network ms, batch 64 | sampling s | quality |",
             "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        for name, (family, data, options, steps, sampling) in MODELS.items():
            dataset = gl.load_data(data)
            model = gl.Model(family, **options).fit(dataset, steps=10 if args.quick else steps, progress=False,
                                                    threads=1)
            part = NETWORKS[family]
            network = getattr(model.ema_net, part)
            inputs = network_arguments(model, network)
            rows = {}
            for runtime in ("torch fp32", "ONNX Runtime fp32", "ONNX Runtime int8"):
                if runtime == "torch fp32":
                    runner, size = model, sum(p.numel() * 4 for p in network.parameters())
                    net = network
                else:
                    path = export_onnx(model, Path(folder) / f"{data}-{runtime[-4:]}.onnx", int8="int8" in runtime)
                    exported = OnnxModel(path, threads=1)
                    runner, size, net = exported.model, path.stat().st_size, getattr(exported.model.ema_net, part)
                started = time.perf_counter()
                made = runner.sample(samples, seed=0, progress=False, **sampling)
                seconds = time.perf_counter() - started
                rows[runtime] = made
                said = quality(made, rows["torch fp32"], dataset, getattr(model.codec, "kinds", None))
                log(f"{name}, {runtime}: {size / 1e3:.0f} KB, {seconds:.2f} s, {said}")
                lines.append(f"| {name} | {runtime} | {size / 1e3:,.0f} | {latency(net, inputs, 1, repeats):.3f} | "
                             f"{latency(net, inputs, 64, repeats):.3f} | {seconds:.2f} | {said} |")
    write_section(args.out, "main", "Export: PyTorch, ONNX Runtime and int8", lines)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
