"""The text transformer exported to ONNX with its key/value cache: file size, held-out loss and tokens/s of one
generated stream, PyTorch (fp32) against ONNX Runtime fp32 and int8 (dynamic quantisation of the matrix products
and the embedding), on 1 thread, 2 threads, and 1 thread beside a process keeping the other core busy. The three
runtimes are timed in turn within each repetition, so a change in the machine's speed touches all alike.

Targets (the scale-and-deploy issue): int8 >= 1.5x torch's tokens/s, held-out loss at most 2% above fp32's, the
file at most 0.35x the fp32 one.

Usage: .venv/bin/python benchmarks/export_gpt.py       (some 6 minutes; it pins itself to the cores it measures)
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import genloom as gl
from genloom.export import OnnxModel, export_onnx
from shared_parts import THREAD_SETTINGS, log, results_arguments, thread_setting, write_section

RESULTS = Path(__file__).parent / "results" / "export.md"
PROMPT = "ROMEO:"
WINDOWS = 100  # held-out windows scored


def held_out_loss(model, windows: torch.Tensor) -> float:
    with torch.no_grad():
        return -model.ema_net.log_prob(windows).mean().item() / (windows.shape[1] - 1)


def tokens_per_second(runner, tokens: int, seed: int) -> float:
    started = time.perf_counter()
    runner.generate(PROMPT, max_tokens=tokens, seed=seed)
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "20 training steps, 50 tokens")
    parser.add_argument("--steps", type=int, default=600, help="training steps of the default text model")
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    steps, tokens = (20, 50) if args.quick else (args.steps, args.tokens)
    os.sched_setaffinity(0, {0, 1})
    model = gl.Model("autoregressive").fit("shakespeare", steps=steps, progress=False, threads=2)
    corpus = model.codec.encode(gl.load_data("shakespeare").values[-100_000:])  # the end, past the training part
    window = model.ema_net.net.block_size + 1
    windows = torch.stack([corpus[i * window:(i + 1) * window] for i in range(WINDOWS)])
    lines = ["### The text transformer with its cache (export_gpt.py)", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')}: the default text model after {steps} steps on tiny Shakespeare; "
             f"held-out loss over {WINDOWS} windows of {window - 1} tokens from the end of the corpus; "
             f"generation: one stream of {tokens} tokens after '{PROMPT}', best of {args.repeats}, the three runtimes "
             "in turn within each repetition.", ""]
    with tempfile.TemporaryDirectory() as folder:
        paths = {"ONNX Runtime fp32": export_onnx(model, Path(folder) / "gpt.onnx"),
                 "ONNX Runtime int8": export_onnx(model, Path(folder) / "gpt-int8.onnx", int8=True)}
        torch_bytes = sum(p.numel() * 4 for p in model.ema_net.net.parameters())
        sizes = {"torch fp32": torch_bytes, **{name: path.stat().st_size for name, path in paths.items()}}
        losses = {"torch fp32": held_out_loss(model, windows),
                  **{name: held_out_loss(OnnxModel(path).model, windows) for name, path in paths.items()}}
        lines += ["| runtime | file KB | held-out loss |", "|---|---|---|"]
        lines += [f"| {name} | {sizes[name] / 1e3:,.0f} | {losses[name]:.4f} |" for name in sizes]
        lines += ["", "| setting | torch fp32 tokens/s | ONNX Runtime fp32 | ONNX Runtime int8 | int8 / torch |",
                  "|---|---|---|---|---|"]
        for name in THREAD_SETTINGS:
            with thread_setting(name):
                threads = torch.get_num_threads()
                runners = {"torch fp32": model,
                           **{label: OnnxModel(path, threads=threads) for label, path in paths.items()}}
                speeds: dict[str, list[float]] = {label: [] for label in runners}
                for repeat in range(args.repeats):
                    for label, runner in runners.items():
                        speeds[label].append(tokens_per_second(runner, tokens, seed=repeat))
                best = {label: max(values) for label, values in speeds.items()}
                log(f"{name}: " + ", ".join(f"{label} {statistics.median(v):.0f} (best {max(v):.0f})"
                                            for label, v in speeds.items()))
                lines.append(f"| {name} | {best['torch fp32']:,.0f} | {best['ONNX Runtime fp32']:,.0f} | "
                             f"{best['ONNX Runtime int8']:,.0f} | {best['ONNX Runtime int8'] / best['torch fp32']:.2f}x |")
    section = args.section if args.section != "main" else "gpt"  # export.py writes "main"
    write_section(args.out, section, "Export: PyTorch, ONNX Runtime and int8", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
