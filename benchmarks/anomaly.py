"""Anomaly detection on this CPU: genloom.AnomalyDetector (a generative model's likelihood as the outlier
score) against PyOD's IForest, ECOD, KNN, COPOD, AutoEncoder and VAE and scikit-learn's IsolationForest and
LocalOutlierFactor(novelty=True), all at their defaults, in one process, on the same splits, scored by the same
code. Why: the detector claims to drop into PyOD and scikit-learn pipelines; this says whether it is also worth
choosing over them, on tables and on images.

Data, semi-supervised (every detector fits on normal examples only and scores a test set with anomalies):
- ODDS tables (../shared/data/anomaly/*.npz, arrays x and y, y == 1 an anomaly): each seed fits on a random 60%
  of the normal rows and tests on the other 40% plus every anomaly. Features are standardised by a
  StandardScaler fitted on the training rows, for every detector, genloom's included. Seeds 0-4.
- one-class MNIST (../shared/data/mnist28.npz): for each digit d, fit on TRAIN_IMAGES random training images of
  d; test on TEST_PER_SIDE test images of d and as many of the other digits (the anomalies). PyOD and
  scikit-learn get the 784 pixels as floats in [0, 1]; genloom gets the uint8 images (N, 28, 28), as its image
  codec takes them. Seed 0.
Scores: AUROC and AUPRC (anomaly = positive class) from scikit-learn, the mean over seeds +- their standard
deviation; a detector's rank on a set is by mean AUROC (1 best); its mean rank is over all sets.

Budget: genloom's detector trains for --steps updates on a table and --image-steps on images (its default
without a budget is 2000, too slow for 50 fits on one core); everything else is as AnomalyDetector() leaves it.
PyOD's and scikit-learn's random_state is the seed; their other settings are their defaults.
Targets: genloom's default detector has the best mean AUROC over all sets, and beats the best PyOD detector's
mean AUROC over the MNIST tasks by at least 0.05.

--genloom LABEL=JSON adds detectors with other settings (JSON keys: family, options, steps, image_steps, views), so
that a settings sweep gets its peers' figures from the same run; each run writes its own section of the
results file (--section), leaving the others there.

Usage (one core, threads pinned to 1; about 35 minutes):
  taskset -c 1 .venv/bin/python benchmarks/anomaly.py
  taskset -c 1 .venv/bin/python benchmarks/anomaly.py --quick --out /tmp/anomaly.md     (a smoke run, ~2 min)
  taskset -c 1 .venv/bin/python benchmarks/anomaly.py --section sweep --datasets cardio pima satellite \\
      --seeds 0 1 --digits 1 5 8 --genloom 'latent 4={"options": {"latent_dim": 4}}'
"""
from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy, torch and numba read them

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import genloom as gl  # noqa: E402
from shared_parts import genloom_arguments, genloom_rows, log, results_arguments, write_section  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ODDS = ("breastw", "cardio", "mammography", "pendigits", "pima", "satellite", "shuttle", "thyroid")
PYOD = ("PyOD IForest", "PyOD ECOD", "PyOD KNN", "PyOD COPOD", "PyOD AutoEncoder", "PyOD VAE")
SKLEARN = ("sklearn IsolationForest", "sklearn LOF")
PEERS = PYOD + SKLEARN
DEFAULT = "genloom"
TRAIN_SHARE, TRAIN_IMAGES, TEST_PER_SIDE = 0.6, 2000, 1000
STEPS, IMAGE_STEPS = 500, 100
MNIST_MARGIN = 0.05


# -- data ----------------------------------------------------------------------------------------
def odds_split(name: str, seed: int) -> dict:
    """Standardised train (normal rows only) and test rows, test labels (1 = anomaly)."""
    arrays = np.load(DATA / "anomaly" / f"{name}.npz")
    x = arrays["x" if "x" in arrays else "X"].astype(np.float64)
    y = arrays["y"].ravel().astype(int)
    normal = np.random.default_rng(seed).permutation(np.flatnonzero(y == 0))
    train = normal[:int(TRAIN_SHARE * len(normal))]
    test = np.setdiff1d(np.arange(len(y)), train)
    scaler = StandardScaler().fit(x[train])
    table = {"train": scaler.transform(x[train]), "test": scaler.transform(x[test])}
    return {"peer": table, "genloom": table, "y": y[test], "kind": "table"}


def mnist_split(digit: int, seed: int, train_images: int, per_side: int) -> dict:
    """Training images of `digit`; test images of it and as many of other digits (the anomalies)."""
    arrays = np.load(DATA / "mnist28.npz")
    rng = np.random.default_rng(seed)
    train = rng.permutation(np.flatnonzero(arrays["train_labels"] == digit))[:train_images]
    labels = arrays["test_labels"]
    same = rng.permutation(np.flatnonzero(labels == digit))[:per_side]
    other = rng.permutation(np.flatnonzero(labels != digit))[:per_side]
    images = {"train": arrays["train_images"][train], "test": arrays["test_images"][np.concatenate([same, other])]}
    pixels = {part: (value.reshape(len(value), -1) / 255.0) for part, value in images.items()}
    return {"peer": pixels, "genloom": images, "y": np.r_[np.zeros(len(same), int), np.ones(len(other), int)],
            "kind": "image"}


# -- detectors -----------------------------------------------------------------------------------
def peer(name: str, seed: int):
    """The peer at its defaults; an object with fit(X) and anomaly_scores(X) (higher = more anomalous)."""
    if name in SKLEARN:
        from sklearn.ensemble import IsolationForest
        from sklearn.neighbors import LocalOutlierFactor

        model = IsolationForest(random_state=seed) if name == "sklearn IsolationForest" \
            else LocalOutlierFactor(novelty=True)
        return model, lambda x: -model.score_samples(x)
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    from pyod.models.vae import VAE

    model = {"PyOD IForest": lambda: IForest(random_state=seed), "PyOD ECOD": ECOD, "PyOD KNN": KNN,
             "PyOD COPOD": COPOD, "PyOD AutoEncoder": lambda: AutoEncoder(random_state=seed, verbose=0),
             "PyOD VAE": lambda: VAE(random_state=seed, verbose=0)}[name]()
    return model, model.decision_function


def genloom_detector(spec: dict, kind: str, seed: int):
    steps = spec.get("image_steps", IMAGE_STEPS) if kind == "image" else spec.get("steps", STEPS)
    model = gl.AnomalyDetector(family=spec.get("family", "vae"), steps=steps, seed=seed,
                               options=spec.get("options"), views=spec.get("views"))
    return model, model.decision_function


def run_task(data: dict, name: str, seed: int, detectors: list[str], specs: dict[str, dict]) -> list[dict]:
    rows = []
    for detector in detectors:
        started = time.perf_counter()
        try:
            if detector in PEERS:
                model, score = peer(detector, seed)
                model.fit(data["peer"]["train"])
                scores = score(data["peer"]["test"])
            else:
                model, score = genloom_detector(specs[detector], data["kind"], seed)
                model.fit(data["genloom"]["train"])
                scores = score(data["genloom"]["test"])
            scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=np.inf, posinf=1e300, neginf=-1e300)
            auroc, auprc = roc_auc_score(data["y"], scores), average_precision_score(data["y"], scores)
            error = None
        except Exception as failure:  # a peer that fails on a set is reported, not fatal
            auroc = auprc = float("nan")
            error = f"{type(failure).__name__}: {failure}"
        seconds = time.perf_counter() - started
        rows.append({"data": name, "seed": seed, "detector": detector, "auroc": auroc, "auprc": auprc,
                     "seconds": seconds, "error": error})
        log(f"{name} seed {seed} {detector}: AUROC {auroc:.3f}, AUPRC {auprc:.3f}, {seconds:.1f} s"
            + (f" ({error})" if error else ""))
    return rows


# -- summary -------------------------------------------------------------------------------------
def summarise(rows: list[dict], detectors: list[str]) -> dict:
    sets = list(dict.fromkeys(row["data"] for row in rows))
    cell = {}
    for data in sets:
        for detector in detectors:
            mine = [r for r in rows if r["data"] == data and r["detector"] == detector]
            cell[data, detector] = {metric: (float(np.mean([r[metric] for r in mine])),
                                             float(np.std([r[metric] for r in mine], ddof=1)) if len(mine) > 1 else None)
                                    for metric in ("auroc", "auprc")}
            cell[data, detector]["seconds"] = float(np.sum([r["seconds"] for r in mine]))
    ranks = {d: [] for d in detectors}
    for data in sets:
        aurocs = np.array([cell[data, d]["auroc"][0] for d in detectors])
        for d, rank in zip(detectors, rankdata(-np.nan_to_num(aurocs, nan=-1.0))):
            ranks[d].append(float(rank))
    groups = {"ODDS": [s for s in sets if not s.startswith("mnist")], "MNIST": [s for s in sets if s.startswith("mnist")],
              "all": sets}
    means = {(group, d): float(np.mean([cell[s, d]["auroc"][0] for s in members])) if members else None
             for group, members in groups.items() for d in detectors}
    auprc_means = {(group, d): float(np.mean([cell[s, d]["auprc"][0] for s in members])) if members else None
                   for group, members in groups.items() for d in detectors}
    return {"sets": sets, "cell": cell, "rank": {d: float(np.mean(r)) for d, r in ranks.items()}, "mean": means,
            "auprc_mean": auprc_means, "groups": groups}


def verdicts(summary: dict, detectors: list[str]) -> list[str]:
    if DEFAULT not in detectors:
        return []
    lines = []
    best = max(detectors, key=lambda d: summary["mean"]["all", d])
    lines.append(f"- Best mean AUROC over all {len(summary['sets'])} sets: {best} "
                 f"({summary['mean']['all', best]:.3f}; genloom {summary['mean']['all', DEFAULT]:.3f}): "
                 f"target **{'met' if best == DEFAULT else 'not met'}**")
    pyod = [d for d in detectors if d in PYOD]
    if summary["groups"]["MNIST"] and pyod:
        top = max(pyod, key=lambda d: summary["mean"]["MNIST", d])
        margin = summary["mean"]["MNIST", DEFAULT] - summary["mean"]["MNIST", top]
        lines.append(f"- MNIST mean AUROC: genloom {summary['mean']['MNIST', DEFAULT]:.3f}, best PyOD detector "
                     f"{top} {summary['mean']['MNIST', top]:.3f}, margin {margin:+.3f} (target >= +{MNIST_MARGIN}): "
                     f"target **{'met' if margin >= MNIST_MARGIN else 'not met'}**")
    return lines


def metric_table(summary: dict, detectors: list[str], metric: str) -> list[str]:
    lines = ["| data | " + " | ".join(detectors) + " |", "|" + " --- |" * (len(detectors) + 1)]
    for data in summary["sets"]:
        values = [summary["cell"][data, d][metric] for d in detectors]
        top = np.nanmax([mean for mean, _ in values])
        cells = [("nan" if np.isnan(mean) else f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""))
                 for mean, sd in values]
        cells = [f"**{c}**" if mean == top else c for c, (mean, _) in zip(cells, values)]
        lines.append(f"| {data} | " + " | ".join(cells) + " |")
    means = summary["mean"] if metric == "auroc" else summary["auprc_mean"]
    for group, members in summary["groups"].items():
        if members and (group == "all" or len(members) < len(summary["sets"])):
            values = [means[group, d] for d in detectors]
            lines.append(f"| mean, {group} ({len(members)} sets) | "
                         + " | ".join(f"**{v:.3f}**" if v == max(values) else f"{v:.3f}" for v in values) + " |")
    if metric == "auroc":
        ranks = [summary["rank"][d] for d in detectors]
        lines.append("| mean rank by AUROC | "
                     + " | ".join(f"**{r:.2f}**" if r == min(ranks) else f"{r:.2f}" for r in ranks) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(ODDS), choices=list(ODDS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="ODDS splits")
    parser.add_argument("--digits", nargs="*", type=int, default=list(range(10)), help="one-class MNIST tasks")
    parser.add_argument("--mnist-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES)
    parser.add_argument("--test-per-side", type=int, default=TEST_PER_SIDE)
    parser.add_argument("--steps", type=int, default=STEPS, help="genloom's training steps on a table")
    parser.add_argument("--image-steps", type=int, default=IMAGE_STEPS, help="genloom's training steps on images")
    genloom_arguments(parser, list(PEERS), "one, 'genloom', at the package's defaults",
                      "family, options, steps, image_steps; an empty JSON is the default detector")
    results_arguments(parser, RESULTS / "anomaly.md", "2 tables, 1 seed, 2 digits, tiny budgets")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.seeds, args.digits = ["pima", "cardio"], [0], [0, 1]
        args.train_images, args.test_per_side, args.steps, args.image_steps = 300, 100, 50, 10
    specs = genloom_rows(args.genloom, {DEFAULT: {}}, {"steps": args.steps, "image_steps": args.image_steps})
    detectors = [*specs, *args.peers]
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows = []
    for name in args.datasets:
        for seed in args.seeds:
            rows += run_task(odds_split(name, seed), name, seed, detectors, specs)
    for digit in args.digits:
        for seed in args.mnist_seeds:
            rows += run_task(mnist_split(digit, seed, args.train_images, args.test_per_side), f"mnist-{digit}", seed,
                             detectors, specs)
    summary = summarise(rows, detectors)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    import pyod
    import sklearn
    settings = {"cpu cores": cores, "torch threads": torch.get_num_threads(), "python": platform.python_version(),
                "torch": torch.__version__, "genloom": gl.__version__, "pyod": pyod.__version__,
                "scikit-learn": sklearn.__version__, "ODDS seeds": args.seeds, "MNIST seeds": args.mnist_seeds,
                "MNIST": f"{args.train_images} training images of the digit, test {args.test_per_side} + "
                         f"{args.test_per_side} others",
                "genloom detectors": {label: spec for label, spec in specs.items()},
                "wall minutes": round((time.perf_counter() - started) / 60, 1)}
    seconds = ", ".join(f"{d} {sum(summary['cell'][s, d]['seconds'] for s in summary['sets']):.0f} s"
                        for d in detectors)
    failures = [f"- {r['data']} seed {r['seed']} {r['detector']}: {r['error']}" for r in rows if r["error"]]
    command = "taskset -c 1 .venv/bin/python benchmarks/anomaly.py " + " ".join(
        f"'{a}'" if any(c in a for c in " {}\"") else a for a in sys.argv[1:])
    body = [f"## {'Default detector' if args.section == 'main' else 'Run ' + args.section}: AUROC "
            "(mean ± sd over seeds; bold: best of the row)", "", *metric_table(summary, detectors, "auroc"), "",
            "AUPRC:", "", *metric_table(summary, detectors, "auprc"), "", *verdicts(summary, detectors),
            "", f"Fit + score seconds, all tasks: {seconds}.", *(["", "Failures:", *failures] if failures else []),
            "", "Settings: " + "; ".join(f"{k} {v}" for k, v in settings.items()), "", f"Command: `{command.strip()}`"]
    write_section(args.out, args.section, "Anomaly detection: genloom vs PyOD and scikit-learn", body)
    print("\n".join(body))


if __name__ == "__main__":
    main()
