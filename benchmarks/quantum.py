"""A quantum generator against classical ones on scikit-learn's 8x8 digits (all 1,797, unconditional), each trained
by genloom's GAN family (the same critic, loss and Adam) for the same minutes on one core, two rows at a time side
by side, each pinned to its own core. The quantum generator is the patch QGAN of PennyLane's tutorial: 4 circuits
of 5 qubits (one an ancilla) give 16 pixels each, simulated by PennyLane's default.qubit with gradients through
torch; its classical peers of the same size are an MLP (5 noise values, 12 hidden units, 64 pixels: registered
here as the image decoder, the backbone registry's way in) and genloom's conv generator at its smallest (width 1),
and the quantum circuits are made deep enough (37 layers) that all three have about as many trainable parameters
(868, 904, 877). Scored by
`gl.evaluate`: the Fréchet distance in the features of a digit classifier trained on the real images, with its
floor (training vs held-out images) and ceiling (noise), precision and recall; and the seconds a training step
and 1,000 samples take. The sample grids of the quantum generator and the MLP go beside the results
(quantum-digits.png, quantum left). Each row runs in a process of its own.

With --timings it measures instead what a circuit costs by its qubits: one pass of the generator alone (a batch of
64 through 6 layers, forward and back) for 8x8 digits, beside genloom's default conv generator, at 1 thread, 2
threads and 1 thread beside a busy core (section "qubits").

Usage (two cores, nothing else running; about 2 x the budget in all):
  .venv/bin/python benchmarks/quantum.py
  .venv/bin/python benchmarks/quantum.py --timings --section qubits     (a minute or two)
  .venv/bin/python benchmarks/quantum.py --quick --out /tmp/quantum.md     (a smoke run)
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from shared_parts import (THREAD_SETTINGS, all_numbers, genloom_rows, log, results_arguments, seconds_in_each_setting,
                          write_section)

RESULTS = Path(__file__).parent / "results" / "quantum.md"
SPEED_SAMPLES = 1000
EQUAL_SIZE = ("quantum, 37 layers", "classical MLP, 12 hidden")  # the pair whose grids are drawn
DEFAULT_ROWS = {
    "quantum, 37 layers": {"backbone": "quantum", "qubits": 5, "circuit_depth": 37},
    "classical MLP, 12 hidden": {"latent_dim": 5, "mlp_hidden": 12},
    "classical conv, width 1": {"width": 1, "latent_dim": 5},
    "quantum, 6 layers (the tutorial's)": {"backbone": "quantum", "qubits": 5, "circuit_depth": 6},
    "classical, genloom's default": {},
}


def use_mlp_generator(hidden: int) -> None:
    """Make an MLP of `hidden` SiLU units the image GAN's generator in this process."""
    from torch import nn

    from genloom.nets import register_backbone

    @register_backbone(("image",), "decoder")
    class MLPGenerator(nn.Module):
        def __init__(self, layout, in_features: int, width: int = 32, cond_dim: int = 0):
            super().__init__()
            self.shape = tuple(layout.shape)
            self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.SiLU(),
                                     nn.Linear(hidden, math.prod(self.shape)))

        def forward(self, z, cond=None):
            return self.net(z).reshape(len(z), *self.shape)


def run_row(label: str, settings: dict, core: int, folder: Path) -> dict:
    """Train one row's GAN on one core, evaluate it and time its sampling."""
    os.sched_setaffinity(0, {core})
    import torch

    import genloom as gl

    torch.set_num_threads(1)
    settings = dict(settings)
    minutes = settings.pop("minutes")
    if "mlp_hidden" in settings:
        use_mlp_generator(settings.pop("mlp_hidden"))
    model = gl.Model("gan", **settings)
    run = folder / "".join(character if character.isalnum() else "-" for character in label)
    started = time.perf_counter()
    model.fit("digits", minutes=minutes, out=run, threads=1, progress=False)
    trained = time.perf_counter() - started
    scores = gl.evaluate(model, "digits", progress=False)
    started = time.perf_counter()
    model.sample(SPEED_SAMPLES, seed=1, progress=False)
    sampling = time.perf_counter() - started
    generator = model.ema_net.generator
    counts = generator.parameter_counts() if hasattr(generator, "parameter_counts") else \
        {"quantum": 0, "classical": sum(p.numel() for p in generator.parameters())}
    steps = model.record["steps_trained"]
    log(f"{label}: {steps} steps, FD {scores['fid']:.1f}, {counts}")
    return {"label": label, "steps": steps, "train_seconds": round(trained, 1), "seconds_per_step": trained / steps,
            "sampling_seconds_per_1000": sampling * 1000 / SPEED_SAMPLES, "parameters": counts,
            "qubits": settings.get("qubits", 0), "patches": getattr(generator, "patches", 0),
            "grid": str(run / "samples" / "final.png"), **scores}


def side_by_side(paths: list[str], out: Path) -> None:
    """The grids in a row, a white gap between them."""
    grids = [Image.open(path).convert("RGB") for path in paths]
    gap = 16
    canvas = Image.new("RGB", (sum(g.width for g in grids) + gap * (len(grids) - 1), max(g.height for g in grids)),
                       "white")
    left = 0
    for grid in grids:
        canvas.paste(grid, (left, 0))
        left += grid.width + gap
    canvas.save(out)


TIMED_QUBITS = (5, 8, 10, 12)


def seconds_per_pass(generator, latent: int) -> float:
    """Mean seconds of one forward and backward pass of a batch of 64, after one that builds any caches."""
    import torch

    z = torch.randn(64, latent)
    generator(z).sum().backward()
    started = time.perf_counter()
    for _ in range(3):
        generator(z).sum().backward()
    return (time.perf_counter() - started) / 3


def time_circuits(out: Path, section: str) -> None:
    """Seconds of one forward and backward pass of the generator alone, by qubits, beside genloom's default conv
    generator, at 1 thread, 2 threads and 1 thread beside a busy core."""
    from genloom.data.image_layout import ImageLayout
    from genloom.nets import build_backbone

    layout = ImageLayout((1, 8, 8), 10)
    generators = {f"quantum, {qubits} qubits": (build_backbone("quantum decoder", layout, qubits, qubits=qubits,
                                                               depth=6), qubits) for qubits in TIMED_QUBITS}
    generators["classical conv, genloom's default"] = (build_backbone("decoder", layout, 32), 32)
    seconds = seconds_in_each_setting(generators, lambda pair: seconds_per_pass(*pair))
    body = [f"Run {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}: "
            f"`{shlex.join([Path(sys.executable).name, *sys.argv])}`. Seconds per forward and backward pass of the "
            "generator alone (a batch of 64; the circuits 6 layers deep), and in brackets x the conv generator's "
            "in the same setting.", "",
            f"| generator | circuits for 64 pixels | {' | '.join(THREAD_SETTINGS)} |",
            "|---|---|" + "---|" * len(THREAD_SETTINGS)]
    peer = "classical conv, genloom's default"
    for name, (generator, _) in generators.items():
        cells = [f"{seconds[name, setting]:.4f} ({seconds[name, setting] / seconds[peer, setting]:.1f}x)"
                 for setting in THREAD_SETTINGS]
        body.append(f"| {name} | {getattr(generator, 'patches', '-')} | {' | '.join(cells)} |")
    write_section(out, section, "A quantum generator: 8x8 digits on a CPU", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_arguments(parser, RESULTS, "0.2 minutes a row")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each row")
    parser.add_argument("--timings", action="store_true", help="time the circuits by their qubits instead")
    args = parser.parse_args()
    if args.timings:
        time_circuits(args.out, args.section)
        return
    rows = genloom_rows(None, DEFAULT_ROWS, {"minutes": 0.2 if args.quick else args.minutes})
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(2, max_tasks_per_child=1) as pool:
        labels = list(rows)
        results = []
        for first in range(0, len(labels), 2):  # two rows at a time, one on each core
            pair = labels[first:first + 2]
            futures = [pool.submit(run_row, label, rows[label], core, Path(tmp)) for core, label in enumerate(pair)]
            results += [future.result() for future in futures]
        by_label = {result["label"]: result for result in results}
        picture = args.out.with_name(f"{args.out.stem}-digits.png")
        side_by_side([by_label[label]["grid"] for label in EQUAL_SIZE], picture)
    for result in results:
        del result["grid"]  # a temporary folder's
    body = [f"Run {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, one core a row, two "
            f"rows at a time: `{shlex.join([Path(sys.executable).name, *sys.argv])}`.", "",
            "| generator | qubits x circuits | parameters (quantum + classical) | budget | steps | s per step | FD | "
            "precision | recall | s per 1,000 samples |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for result, settings in zip(results, rows.values()):
        counts = result["parameters"]
        circuits = f"{result['qubits']} x {result['patches']}" if result["qubits"] else "-"
        body.append(f"| {result['label']} | {circuits} | {counts['quantum'] + counts['classical']:,} "
                    f"({counts['quantum']:,} + {counts['classical']:,}) | {settings['minutes']:g} min | "
                    f"{result['steps']:,} | {result['seconds_per_step']:.3f} | {result['fid']:.1f} | "
                    f"{result['precision']:.3f} | {result['recall']:.3f} | "
                    f"{result['sampling_seconds_per_1000']:.2f} |")
    first = results[0]
    quantum, classical = (by_label[label] for label in EQUAL_SIZE)
    body += ["", f"References from the same evaluation: FD of the training images against held-out ones "
             f"{first['fid_train_vs_held_out']:.1f} (the floor), of noise {first['fid_noise']:.1f} (the ceiling).", "",
             f"At equal size ({quantum['parameters']['quantum'] + quantum['parameters']['classical']:,} and "
             f"{classical['parameters']['classical']:,} parameters) the quantum generator reaches FD "
             f"{quantum['fid']:.1f} in {quantum['steps']:,} steps, the MLP {classical['fid']:.1f} in "
             f"{classical['steps']:,}: a step of the simulated circuits costs "
             f"{quantum['seconds_per_step'] / classical['seconds_per_step']:.0f}x the classical one's.", "",
             f"Samples of the quantum generator (left) and the MLP: `{picture.name}`.", "",
             "The conv row's critic is one channel wide too (`--width` sizes both G and D), so its figure says "
             "little about a conv generator of that size; the MLP row has the others' critic.", "",
             *all_numbers(results)]
    write_section(args.out, args.section, "A quantum generator: 8x8 digits on a CPU", body)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
