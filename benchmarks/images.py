"""8x8 digits on this CPU: every genloom family, and a DDPM built from diffusers, trained for the same wall
budget each and scored by FID and KID against a held-out test split, with the same feature extractors for all.

The data: scikit-learn's 1,797 digits, split 80/20 with a fixed seed (1,437 train, 360 test). Every model
trains on the train split only; the extractor is genloom's small conv net trained on the train split's
labels, cross-checked by a pixel MLP trained alike (the FID (MLP) column). The peer is diffusers'
UNet2DModel + DDPMScheduler trained as diffusers'
examples/unconditional_image_generation/train_unconditional.py does, and sampled with 1,000 DDPM steps.
Rows "real train vs test" and "uniform noise" are the floor and the ceiling of the scale.

Targets: our diffusion's FID at most 0.8x the diffusers DDPM's (same sampler, same training time);
DPM-Solver++ with 20 steps within 10% of the FID of 1,000-step DDPM sampling and at least 30x faster;
every family's FID well below (at most a quarter of) pure noise's.

Usage: .venv/bin/python benchmarks/images.py                       (about 50 minutes on 2 cores)
       .venv/bin/python benchmarks/images.py --minutes 0.2 --samples 200 --families vae --out /tmp/bench
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import genloom as gl
from genloom.data.image_codec import ImageCodec
from genloom.layout import Layout
from genloom.metrics.features import FeatureNet, extract, train_feature_net
from genloom.metrics.images import frechet_distance, kernel_distance

RESULTS = Path(__file__).parent / "results"
FAMILIES = ("gan", "wgan-gp", "vae", "diffusion", "autoregressive")
FAMILY_OPTIONS: dict[str, dict] = {}  # every family at its defaults
# Families scored once per entry, each with its own sampling time; the others with their default sampler.
SAMPLERS = {"diffusion": {"DPM-Solver++ 20 steps": {"sampler": "dpm-solver", "steps": 20},
                          "DDPM 1000 steps": {"sampler": "ddpm", "steps": 1000}}}
SEED, TEST_FRACTION, GRID_COLUMNS = 0, 0.2, 16

# diffusers' train_unconditional.py at its defaults, but lr 1e-3 (small net, short run) and no random flip
# (a mirrored digit is another symbol); the U-Net with attention at the lowest resolution, sized to the data.
PEER_UNET = {"in_channels": 1, "out_channels": 1, "layers_per_block": 1,  # sample_size: the data's side
             "block_out_channels": (32, 64, 64), "norm_num_groups": 8,
             "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
             "up_block_types": ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")}
PEER_TRAIN = {"batch_size": 64, "lr": 1e-3, "betas": (0.95, 0.999), "weight_decay": 1e-6, "eps": 1e-8,
              "warmup_steps": 500, "grad_clip": 1.0, "ema_max_decay": 0.9999, "ema_inv_gamma": 1.0,
              "ema_power": 3 / 4}
PEER_SAMPLE_STEPS, PEER_SAMPLE_BATCH, CALIBRATION_STEPS = 1000, 500, 20
CLASSIFIER_STEPS = 3000
PEER_NAME, FLOOR_NAME, NOISE_NAME = "diffusers DDPM (1000 steps)", "real train vs test", "uniform noise"

TARGET_PEER_RATIO, SOLVER_FID_TOLERANCE, SOLVER_SPEEDUP, NOISE_FRACTION = 0.8, 0.10, 30, 0.25
OURS_DDPM, OURS_SOLVER = "diffusion (DDPM 1000 steps)", "diffusion (DPM-Solver++ 20 steps)"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def split(data: gl.Dataset) -> tuple[gl.Dataset, gl.Dataset]:
    """A seeded 80/20 split of the examples into train and test Datasets."""
    order = np.random.default_rng(SEED).permutation(len(data))
    test_size = math.ceil(TEST_FRACTION * len(data))
    parts = []
    for name, index in (("train", np.sort(order[test_size:])), ("test", np.sort(order[:test_size]))):
        parts.append(gl.Dataset(data.kind, data.values[index], f"{data.name}-{name}", data.labels[index],
                                data.class_names))
    return parts[0], parts[1]


class PixelMLP(nn.Module):
    """The second extractor: an MLP on the raw pixels, with none of the conv net's translation prior, so that a
    ranking both agree on is not an artefact of one architecture. Features: its last hidden layer."""

    batch_size = 500

    def __init__(self, layout: Layout, classes: int, hidden: int = 512, features: int = 128):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(layout.shape), hidden), nn.SiLU(),
                                  nn.Linear(hidden, features))
        self.head = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(F.silu(features))


EXTRACTORS = {"conv": FeatureNet, "mlp": PixelMLP}


class Scorer:
    """FID and KID of uint8 images against the test split, in the features of classifiers trained `steps` on the
    train split's labels (EXTRACTORS: a conv net, a pixel MLP). The first extractor's scores are "fid", "kid" and
    "kid_std", the others' carry their name ("fid_mlp"); `accuracy` is each one's test accuracy."""

    def __init__(self, train: gl.Dataset, test: gl.Dataset, steps: int = 300, extractors: tuple[str, ...] = ("conv",)):
        self.codec = ImageCodec().fit(train)
        self.nets, self.test_features, self.accuracy = {}, {}, {}
        x, labels = self.codec.encode(train.values), torch.from_numpy(train.labels)
        x_test = self.codec.encode(test.values)
        for name in extractors:
            self.nets[name] = train_feature_net(x, labels, self.codec.layout, steps=steps, seed=SEED,
                                                make_net=EXTRACTORS[name])
            self.test_features[name], logits = extract(self.nets[name], x_test)
            self.accuracy[name] = float((logits.argmax(1).numpy() == test.labels).mean())

    def keys(self, name: str) -> tuple[str, str, str]:
        """The FID, KID and KID-sd keys of one extractor's scores."""
        suffix = "" if name == next(iter(self.nets)) else f"_{name}"
        return f"fid{suffix}", f"kid{suffix}", f"kid_std{suffix}"

    def score(self, images: np.ndarray) -> dict:
        x, scores = self.codec.encode(images), {}
        for name, net in self.nets.items():
            fake, real = extract(net, x)[0], self.test_features[name]
            kid, kid_std = kernel_distance(real, fake, seed=SEED)
            scores |= dict(zip(self.keys(name), (frechet_distance(real, fake), kid, kid_std)))
        return scores

    def describe(self) -> str:
        return describe_accuracy(self.accuracy)


def describe_accuracy(accuracy: dict[str, float]) -> str:
    """The extractors' test accuracies in a line, from a Scorer or from a run's stored settings."""
    return ", ".join(f"{name} net {share:.2%}" for name, share in accuracy.items())


def parameter_count(model: gl.Model) -> tuple[int, str]:
    """Parameters of the network, and which part was counted (a GAN's generator only)."""
    net = getattr(model.net, "generator", None)
    counted = net if net is not None else model.net
    return sum(p.numel() for p in counted.parameters()), "generator only" if net is not None else ""


def run_family(name: str, train: gl.Dataset, scorer: Scorer, minutes: float, samples: int, runs: Path) -> list[dict]:
    """Train one family for the budget and score it once per sampler; one row per sampler."""
    labels = {f"{name} ({label})": options for label, options in SAMPLERS.get(name, {}).items()} or {name: {}}
    try:
        log(f"{name}: training for {minutes:g} minutes")
        model = gl.Model(name, **FAMILY_OPTIONS.get(name, {}))
        model.fit(train, minutes=minutes, out=runs / name, progress=False, device="cpu")
        params, counted = parameter_count(model)
        base = {"parameters": params, "parameters_counted": counted,
                "train_steps": model.record["steps_trained"], "train_seconds": model.record["train_seconds"]}
    except Exception as error:  # noqa: BLE001 - one broken family must not stop the benchmark
        log(f"{name}: failed: {error}")
        return [{"model": label, "error": f"{type(error).__name__}: {error}"} for label in labels]
    rows = []
    for label, options in labels.items():
        try:
            log(f"{label}: sampling {samples}")
            start = time.perf_counter()
            images = model.sample(samples, seed=SEED, **options)
            seconds = time.perf_counter() - start
            rows.append({"model": label, **base, "sample_seconds": seconds, **scorer.score(images),
                         "grid": images[:GRID_COLUMNS]})
        except Exception as error:  # noqa: BLE001
            log(f"{label}: failed: {error}")
            rows.append({"model": label, **base, "error": f"{type(error).__name__}: {error}"})
    return rows


# -- the diffusers peer ---------------------------------------------------------------------------
class PeerTrainer:
    """diffusers' unconditional training step: epsilon MSE at uniform timesteps, AdamW, clipping, EMA."""

    def __init__(self, unet, x: torch.Tensor, total_steps: int | None = None):
        from diffusers import DDPMScheduler
        from diffusers.optimization import get_cosine_schedule_with_warmup
        from diffusers.training_utils import EMAModel

        self.unet, self.x, self.step_count = unet, x, 0
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=1000)
        self.optimizer = torch.optim.AdamW(unet.parameters(), lr=PEER_TRAIN["lr"], betas=PEER_TRAIN["betas"],
                                           weight_decay=PEER_TRAIN["weight_decay"], eps=PEER_TRAIN["eps"])
        self.total_steps = total_steps or 10 ** 9
        self.warmup_steps = min(PEER_TRAIN["warmup_steps"], self.total_steps // 10)
        self.lr_scheduler = get_cosine_schedule_with_warmup(self.optimizer, self.warmup_steps, self.total_steps)
        self.ema = EMAModel(unet.parameters(), decay=PEER_TRAIN["ema_max_decay"], use_ema_warmup=True,
                            inv_gamma=PEER_TRAIN["ema_inv_gamma"], power=PEER_TRAIN["ema_power"])
        self.batches = self._batches()

    def _batches(self):
        """Shuffled epochs in batches of 64, the last one short, as a DataLoader with shuffle=True."""
        while True:
            for batch in torch.randperm(len(self.x)).split(PEER_TRAIN["batch_size"]):
                yield self.x[batch]

    def step(self) -> float:
        self.unet.train()
        clean = next(self.batches)
        noise = torch.randn(clean.shape)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (len(clean),)).long()
        noisy = self.noise_scheduler.add_noise(clean, noise, timesteps)
        loss = F.mse_loss(self.unet(noisy, timesteps).sample.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), PEER_TRAIN["grad_clip"])
        self.optimizer.step()
        self.lr_scheduler.step()
        self.ema.step(self.unet.parameters())
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return loss.item()

    def averaged_unet(self):
        unet = copy.deepcopy(self.unet).eval()
        self.ema.copy_to(unet.parameters())
        return unet


def train_peer(x: torch.Tensor, minutes: float) -> dict:
    """The peer for `minutes` of training time; its cosine schedule spans the step count those minutes
    hold at the rate measured on a throwaway copy (diffusers' schedule needs the total up front)."""
    from diffusers import UNet2DModel

    torch.manual_seed(SEED)
    unet = UNet2DModel(**PEER_UNET, sample_size=x.shape[-1])
    calibration = PeerTrainer(copy.deepcopy(unet), x)
    for _ in range(3):
        calibration.step()
    start = time.perf_counter()
    for _ in range(CALIBRATION_STEPS):
        calibration.step()
    seconds_per_step = (time.perf_counter() - start) / CALIBRATION_STEPS
    expected = max(10, int(60 * minutes / seconds_per_step))
    log(f"diffusers peer: {seconds_per_step * 1000:.0f} ms a step -> a schedule of {expected} steps")

    torch.manual_seed(SEED)
    trainer = PeerTrainer(unet, x, expected)
    start, loss = time.perf_counter(), math.nan
    # Stop at the budget, or at the schedule's end (past it diffusers' cosine climbs again).
    while time.perf_counter() - start < 60 * minutes and trainer.step_count < expected:
        loss = trainer.step()
    seconds = time.perf_counter() - start
    if trainer.step_count < 0.8 * expected:
        log(f"diffusers peer: {trainer.step_count} of {expected} scheduled steps in the budget: the CPU got slower "
            "than at calibration (another process?), so its learning rate never decayed")
    return {"unet": trainer.averaged_unet(), "steps": trainer.step_count, "seconds": seconds,
            "expected_steps": expected, "warmup_steps": trainer.warmup_steps, "final_loss": loss,
            "parameters": sum(p.numel() for p in unet.parameters())}


@torch.no_grad()
def sample_peer(unet, n: int, codec, sampler: str = "ddpm", steps: int = PEER_SAMPLE_STEPS) -> np.ndarray:
    """n images by the scheduler's own loop (as DDPMPipeline, or DDIMPipeline with eta 0), in seeded batches."""
    from diffusers import DDIMScheduler, DDPMScheduler

    scheduler = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}[sampler](num_train_timesteps=1000)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(SEED)
    side, chunks = unet.config.sample_size, []
    for start in range(0, n, PEER_SAMPLE_BATCH):
        image = torch.randn((min(PEER_SAMPLE_BATCH, n - start), unet.config.in_channels, side, side),
                            generator=generator)
        for t in scheduler.timesteps:
            image = scheduler.step(unet(image, t).sample, t, image, generator=generator).prev_sample
        chunks.append(image)
    return codec.decode(torch.cat(chunks))


def run_peer(train: gl.Dataset, scorer: Scorer, minutes: float, samples: int,
             samplers: dict[str, tuple[str, int]] | None = None) -> tuple[list[dict], dict]:
    """The peer trained for `minutes`, scored once per sampler (label: (name, steps); default DDPM 1000)."""
    samplers = samplers or {PEER_NAME: ("ddpm", PEER_SAMPLE_STEPS)}
    try:
        log(f"diffusers peer: training for {minutes:g} minutes")
        peer = train_peer(scorer.codec.encode(train.values), minutes)
    except Exception as error:  # noqa: BLE001
        log(f"diffusers peer: failed: {error}")
        return [{"model": label, "error": f"{type(error).__name__}: {error}"} for label in samplers], {}
    base = {"parameters": peer["parameters"], "parameters_counted": "", "train_steps": peer["steps"],
            "train_seconds": round(peer["seconds"], 2), "steps_per_second": peer["steps"] / peer["seconds"]}
    rows = []
    for label, (sampler, steps) in samplers.items():
        try:
            log(f"{label}: sampling {samples}")
            start = time.perf_counter()
            images = sample_peer(peer["unet"], samples, scorer.codec, sampler, steps)
            rows.append({"model": label, **base, "sample_seconds": time.perf_counter() - start,
                         **scorer.score(images), "grid": images[:GRID_COLUMNS]})
        except Exception as error:  # noqa: BLE001
            log(f"{label}: failed: {error}")
            rows.append({"model": label, **base, "error": f"{type(error).__name__}: {error}"})
    return rows, {k: peer[k] for k in ("expected_steps", "warmup_steps", "final_loss")}


# -- the scale's ends, the targets, the report ------------------------------------------------------
def reference_rows(train: gl.Dataset, scorer: Scorer, samples: int) -> list[dict]:
    rng = np.random.default_rng(SEED)
    real = train.values[np.sort(rng.permutation(len(train))[:min(samples, len(train))])]
    noise = rng.integers(0, 256, (samples, *train.values.shape[1:]), dtype=np.uint8)
    return [{"model": FLOOR_NAME, **scorer.score(real)}, {"model": NOISE_NAME, **scorer.score(noise)}]


def _base(model: str) -> str:
    """A row's model name without the mark of a row reused from an earlier run."""
    while model.endswith(" (reused)"):  # a row reused twice is still the same model
        model = model.removesuffix(" (reused)")
    return model


def verdicts(rows: list[dict]) -> dict[str, dict]:
    """Each target: whether it is met, and the numbers behind it (None where a row is missing)."""
    fid = {_base(r["model"]): r["fid"] for r in rows if "fid" in r}
    seconds = {_base(r["model"]): r["sample_seconds"] for r in rows if "sample_seconds" in r}

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    result = {}
    peer_ratio = ratio(fid.get(OURS_DDPM), fid.get(PEER_NAME))
    solver_vs_peer = ratio(fid.get(OURS_SOLVER), fid.get(PEER_NAME))
    result[f"our diffusion's FID <= {TARGET_PEER_RATIO}x the diffusers DDPM's (both DDPM 1000 steps)"] = {
        "met": peer_ratio is not None and peer_ratio <= TARGET_PEER_RATIO, "ratio": peer_ratio,
        "note": f"with DPM-Solver++ 20 steps: {solver_vs_peer:.2f}x" if solver_vs_peer is not None else ""}
    solver_ratio = ratio(fid.get(OURS_SOLVER), fid.get(OURS_DDPM))
    result[f"DPM-Solver++ 20 steps: FID within {SOLVER_FID_TOLERANCE:.0%} of DDPM 1000 steps'"] = {
        "met": solver_ratio is not None and solver_ratio <= 1 + SOLVER_FID_TOLERANCE, "ratio": solver_ratio}
    speedup = ratio(seconds.get(OURS_DDPM), seconds.get(OURS_SOLVER))
    result[f"DPM-Solver++ 20 steps at least {SOLVER_SPEEDUP}x faster than DDPM 1000 steps"] = {
        "met": speedup is not None and speedup >= SOLVER_SPEEDUP, "ratio": speedup}
    generators = [r for r in rows if _base(r["model"]) not in (FLOOR_NAME, NOISE_NAME, PEER_NAME)]
    worst = max((fid.get(_base(r["model"]), math.inf) for r in generators), default=None)
    noise_ratio = ratio(worst, fid.get(NOISE_NAME))
    result[f"every family's FID <= {NOISE_FRACTION}x uniform noise's"] = {
        "met": noise_ratio is not None and noise_ratio <= NOISE_FRACTION, "ratio": noise_ratio,
        "note": "the worst family's ratio"}
    return result


def table(rows: list[dict], samples: int) -> list[str]:
    columns = ["model", "parameters", "train steps", "train s", "FID", "KID", "FID (MLP)", f"sampling s ({samples})"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for r in rows:
        if "error" in r:
            cells = [r["model"], f"failed: {r['error']}"] + [""] * (len(columns) - 2)
        else:
            params = f"{r['parameters']:,}" if "parameters" in r else ""
            if r.get("parameters_counted"):
                params += f" ({r['parameters_counted']})"
            cells = [r["model"], params, str(r.get("train_steps", "")), str(r.get("train_seconds", "")),
                     f"{r['fid']:.3f}", f"{r['kid']:.4g} ± {r['kid_std']:.2g}",
                     f"{r['fid_mlp']:.3f}" if "fid_mlp" in r else "",
                     f"{r['sample_seconds']:.2f}" if "sample_seconds" in r else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(rows: list[dict], checks: dict, settings: dict, peer_details: dict, real: np.ndarray, out: Path) -> None:
    def number(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "n/a"

    text = "\n".join([
        "# Image benchmark: 8x8 digits, CPU, equal training time", "",
        f"Run {settings['date']} on {settings['machine']}; torch threads {settings['threads']}; torch "
        f"{settings['torch']}, diffusers {settings['diffusers']}; 1-minute load average "
        f"{settings['load_average'][0]} at the start, {settings['load_average'][1]} at the end "
        "(timings assume an otherwise idle machine).",
        f"Settings: {settings['minutes']:g} training minutes per model (training steps only; validation and "
        f"sample grids excluded), {settings['samples']} samples per model, seed {SEED}; data: digits split "
        f"{settings['train_examples']} train / {settings['test_examples']} test (seeded).",
        f"FID and KID against the test split in the features of genloom's conv feature net trained "
        f"{settings['classifier_steps']} steps on the train split's labels (one extractor for every row, not "
        f"InceptionV3); FID (MLP): the same in a pixel MLP's features, a cross-check with no conv prior; test "
        f"accuracy: {describe_accuracy(settings['classifier_accuracy'])}. KID: cubic-kernel MMD² over subsets of "
        "the test size. Families run at their defaults on the CPU; genloom holds out 10% of its train split for "
        "validation, the diffusers peer trains on all of it.",
        f"Diffusers peer: UNet2DModel {PEER_UNET['block_out_channels']}, attention at 2x2, "
        f"DDPMScheduler(1000); AdamW lr {PEER_TRAIN['lr']}, batch {PEER_TRAIN['batch_size']}, cosine schedule "
        f"over {peer_details.get('expected_steps', 'n/a')} expected steps with "
        f"{peer_details.get('warmup_steps', 'n/a')} warmup, EMA (max decay {PEER_TRAIN['ema_max_decay']}); "
        f"sampled with {PEER_SAMPLE_STEPS} DDPM steps in batches of {PEER_SAMPLE_BATCH}.", "",
        *table(rows, settings["samples"]), "",
        *[f"- {name}: {'met' if c['met'] else 'NOT met'} (ratio {number(c['ratio'])}"
          f"{'; ' + c['note'] if c.get('note') else ''})" for name, c in checks.items()], ""])
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "images.md").write_text(text, encoding="utf-8")
    numbers = [{k: v for k, v in r.items() if k != "grid"} for r in rows]
    (out / "images.json").write_text(json.dumps({"settings": settings, "rows": numbers, "targets": checks,
                                                 "peer": peer_details}, indent=1), encoding="utf-8")
    plot_grid([("real (test split)", real)] + [(r["model"], r["grid"]) for r in rows if "grid" in r],
              out / "images.png")


def plot_grid(rows: list[tuple[str, np.ndarray]], path: Path) -> None:
    """One labelled row of samples per model, the real test images first."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(rows), 1, figsize=(9, 0.7 * len(rows) + 0.3), dpi=110, squeeze=False)
    for axis, (label, images) in zip(axes[:, 0], rows):
        gutter = np.zeros((images.shape[1], 1), np.uint8)  # background-coloured, between digits
        strip = np.concatenate([part for img in images for part in (gutter, img[..., 0])][1:], axis=1)
        axis.imshow(strip, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training minutes per model")
    parser.add_argument("--samples", type=int, default=1000, help="samples scored per model")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), help="genloom families to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where images.md, .json and .png go")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of every model")
    parser.add_argument("--classifier-steps", type=int, default=CLASSIFIER_STEPS,
                        help="training steps of each feature extractor")
    parser.add_argument("--reuse", type=Path, metavar="JSON",
                        help="an earlier images.json: its rows for the models not run now (the peer included, "
                             "which is then not retrained) are copied in, marked as reused")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)

    import diffusers
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        log(f"load average {load_before:.1f}: other processes share the CPU, so the timings will be off")
    train, test = split(gl.load_data("digits"))
    log(f"extractors: training {args.classifier_steps} steps each")
    scorer = Scorer(train, test, args.classifier_steps, extractors=tuple(EXTRACTORS))
    log(f"extractors' test accuracy: {scorer.describe()}")
    earlier = json.loads(args.reuse.read_text(encoding="utf-8")) if args.reuse else {"rows": [], "peer": {}}
    if args.reuse and earlier["settings"].get("classifier_accuracy") != scorer.accuracy:
        raise SystemExit(f"--reuse: {args.reuse}'s extractors (test accuracy "
                         f"{earlier['settings'].get('classifier_accuracy', 'not recorded')}) are not this run's "
                         f"({scorer.describe()}): their FIDs do not compare")
    runs = Path(tempfile.mkdtemp(prefix="genloom-bench-images-"))
    rows = []
    for name in args.families:
        rows += run_family(name, train, scorer, args.minutes, args.samples, runs)
    new = {row["model"] for row in rows}
    reused = [{**row, "model": f"{_base(row['model'])} (reused)"} for row in earlier["rows"]
              if row["model"] not in new and row["model"].split(" (")[0] not in args.families
              and row["model"] not in (FLOOR_NAME, NOISE_NAME)]
    if any(row["model"].startswith(PEER_NAME) for row in reused):
        peer_details = earlier["peer"]
    else:
        peer_rows, peer_details = run_peer(train, scorer, args.minutes, args.samples)
        rows += peer_rows
    rows += [*reused, *reference_rows(train, scorer, args.samples)]

    settings = {"minutes": args.minutes, "samples": args.samples, "families": args.families,
                "train_examples": len(train), "test_examples": len(test), "seed": SEED,
                "classifier_steps": args.classifier_steps, "classifier_accuracy": scorer.accuracy,
                "date": time.strftime("%Y-%m-%d %H:%M"), "threads": torch.get_num_threads(),
                "machine": f"{cpu_name()}, {os.cpu_count()} CPUs",
                "torch": torch.__version__, "diffusers": diffusers.__version__,
                "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    real = test.values[:GRID_COLUMNS]
    report(rows, verdicts(rows), settings, peer_details, real, args.out)


if __name__ == "__main__":
    main()
