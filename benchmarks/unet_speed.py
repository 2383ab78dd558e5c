"""genloom's U-Net against diffusers' UNet2DModel with the same blocks and parameter count, at 28x28: the time of
one denoising pass over a batch of 250 (what a sampler pays per step), at 1 thread, 2 threads and on a busy machine.

Target (issue 18): 1,000-step sampling no slower per parameter than diffusers'; the parameter counts are equal, so
the pass times compare directly.

Usage: .venv/bin/python benchmarks/unet_speed.py            (about 2 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import genloom as gl
from images import PEER_UNET
from shared_parts import THREAD_SETTINGS, results_arguments, seconds_in_each_setting, write_section

RESULTS = Path(__file__).parent / "results"
BATCH, SIDE, REPEATS = 250, 28, 3


def nets() -> dict[str, torch.nn.Module]:
    from diffusers import UNet2DModel

    model = gl.Model("diffusion").fit(gl.load_data("mnist").values[:256], steps=1, progress=False, device="cpu")
    ours = model.ema_net.denoiser.eval()
    theirs = UNet2DModel(**PEER_UNET, sample_size=SIDE).eval()
    return {"genloom UNet": lambda x, t: ours(x, t, None), "diffusers UNet2DModel": lambda x, t: theirs(x, t).sample,
            "parameters": (sum(p.numel() for p in ours.parameters()), sum(p.numel() for p in theirs.parameters()))}


@torch.no_grad()
def pass_seconds(forward) -> float:
    """The median of REPEATS passes, after one to warm up."""
    x, t = torch.randn(BATCH, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0)), torch.full((BATCH,), 500)
    forward(x, t)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        forward(x, t)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    results_arguments(parser, RESULTS / "unet_speed.md", "the same (it is short)")
    args = parser.parse_args()
    candidates = nets()
    counts = candidates.pop("parameters")
    seconds = seconds_in_each_setting(candidates, pass_seconds)
    body = [f"Run {time.strftime('%Y-%m-%d %H:%M')}; parameters {counts[0]:,} (genloom) and {counts[1]:,} (diffusers); "
            f"a pass over {BATCH} noisy {SIDE}x{SIDE} digits, median of {REPEATS}.", "",
            "| setting | genloom s | diffusers s | genloom / diffusers |", "| --- | --- | --- | --- |"]
    for setting in THREAD_SETTINGS:
        ours, theirs = seconds["genloom UNet", setting], seconds["diffusers UNet2DModel", setting]
        body.append(f"| {setting} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f} |")
    print("\n".join(body))
    write_section(args.out, args.section, "U-Net denoising pass: genloom against diffusers", body)


if __name__ == "__main__":
    main()
