"""Class-imbalance augmentation on this CPU: genloom.augment (a generative model trained on a class-balanced
resampling of the data draws new examples of the rare class) against imbalanced-learn's SMOTE and ADASYN and
against no augmentation, in one process, on the same splits, scored by the same classifier and code. Why:
augmentation claims to be an alternative to SMOTE's interpolation between neighbours; this says whether the
classifier trained on its output finds the rare class better.

Tasks (each seed draws its own split; the test split is real and untouched, its class shares as in the data):
- adult: genloom.load_data("adult") (32,561 rows), target income; stratified 70/30 split; in the training split
  the positive class " >50K" is subsampled to 5% of the training rows (all " <=50K" rows kept: ~17,300 + ~911).
- breast_cancer: genloom.load_data("breast_cancer") (569 rows, 30 numbers), target "target"; stratified 70/30;
  "malignant" subsampled to 5% of the training rows (250 benign + 13 malignant).
- mnist: ../shared/data/mnist28.npz, a pool of POOL_PER_CLASS training images of each digit drawn per seed;
  stratified 70/30 split of the pool (350 / 150 per digit); digit CUT_DIGIT cut to 2% of its count in the
  training split (7 images). MNIST, not sklearn's digits: digits has ~126 training images a class, so 2% leaves 2-3,
  fewer than SMOTE's and ADASYN's 5 neighbours at their defaults; the pool size keeps the image fits (the bulk of
  the run) within budget. The other digits stay balanced, so every method adds images of the cut digit only.

Methods, each giving a training set for the same classifier:
- none: the imbalanced training split as it is.
- SMOTE / ADASYN (imbalanced-learn, default settings: balance every class to the largest): numbers standardised
  (StandardScaler on the training split, inverted afterwards) so that the neighbours are not fnlwgt's. Adult's
  categorical columns: SMOTE is SMOTENC (categorical columns by their ordinal codes, marked categorical); ADASYN
  has no categorical variant, so it interpolates one-hot columns and each category is the largest of its one-hot
  block. breast_cancer: plain SMOTE. Images: flattened pixels in [0, 1].
- genloom: gl.augment(train, target=...) at its default (ratio "auto": the model learns from three quarters of the
  training split and a gradient-boosted judge picks the amount to add, nothing included, on the held-out quarter;
  the test split is never seen), the `synthetic` column dropped, encoded exactly as `none`. Budget: --table-steps /
  --image-steps training steps per fit (family "auto" picks the family for the budget: on these tables at 500
  steps it picked the VAE for Adult, the autoregressive transformer for breast_cancer, when the results were made;
  since 2026-12-07 it picks the transformer for Adult, the VAE for breast_cancer; images always the VAE). --genloom
  LABEL=JSON adds rows with other settings (JSON keys family, ratio, steps, image_steps, options): the default
  rows add 'genloom balanced' (ratio 1.0, like SMOTE's default); a row whose settings come to the same fit as an
  earlier row's (e.g. "vae" where "auto" chose the VAE) reuses that fit.

Classifier: scikit-learn HistGradientBoostingClassifier(random_state=seed) at its defaults. Tables: categorical
columns as ordinal codes marked categorical (native support), numbers as they are. Images: binary, the cut digit
against the rest, on the 784 pixels / 255 (a 10-class HGB takes ~50 s a fit on one core; the binary one ~6 s).
Scores on the real test split: AUPRC of the rare class (average_precision_score of its predicted probability)
and its recall at the classifier's default threshold (0.5), mean +- sd over seeds and per seed.
Targets: genloom (the default, family "auto") >= SMOTE by mean AUPRC on at least 2 of the 3 tasks; genloom never
below `none` by more than the seed spread (sd of `none`'s AUPRC).

Usage (one core, threads pinned to 1; the results file's run, with a third genloom row, about 40 minutes):
  taskset -c 1 .venv/bin/python benchmarks/augment.py --genloom 'genloom auto={}' 'genloom balanced={"ratio": 1.0}' \
      'genloom ratio 0.25={"ratio": 0.25}'
  taskset -c 1 .venv/bin/python benchmarks/augment.py          (rows genloom auto and genloom balanced, ~30 min)
  taskset -c 1 .venv/bin/python benchmarks/augment.py --quick --out /tmp/augment.md          (a smoke run, ~1 min)
  taskset -c 1 .venv/bin/python benchmarks/augment.py --section sweep --tasks mnist --seeds 0 1 2 \
      --genloom 'vae 300 steps={"family": "vae", "image_steps": 300}'
"""
from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy, torch and scikit-learn read them

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import average_precision_score, recall_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import genloom as gl  # noqa: E402
from shared_parts import genloom_arguments, genloom_rows, log, results_arguments, write_section  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TABLES = {"adult": ("income", " >50K", lambda: gl.load_data("adult").values),
          "breast_cancer": ("target", "malignant", lambda: gl.load_data("breast_cancer").values)}
TASKS = ("adult", "breast_cancer", "mnist")
TEST_SHARE, TABLE_MINORITY_SHARE, IMAGE_CUT_SHARE = 0.3, 0.05, 0.02
POOL_PER_CLASS, CUT_DIGIT = 500, 3
TABLE_STEPS, IMAGE_STEPS = 500, 100
PEERS = ("none", "SMOTE", "ADASYN")
DEFAULT = "genloom auto"


# -- data ----------------------------------------------------------------------------------------
def table_task(name: str, seed: int) -> dict:
    """The imbalanced training frame and the untouched test frame of a table task."""
    target, rare, load = TABLES[name]
    frame = load()
    train, test = train_test_split(frame, test_size=TEST_SHARE, stratify=frame[target], random_state=seed)
    common = train[train[target] != rare]
    keep = round(TABLE_MINORITY_SHARE / (1 - TABLE_MINORITY_SHARE) * len(common))
    minority = train[train[target] == rare].sample(keep, random_state=seed)
    train = pd.concat([common, minority]).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    categorical = [c for c in frame.columns if c != target and not pd.api.types.is_numeric_dtype(frame[c])]
    vocab = {c: sorted(frame[c].astype(str).unique()) for c in categorical}  # category names only, no labels
    return {"kind": "table", "target": target, "rare": rare, "train": train, "test": test.reset_index(drop=True),
            "categorical": categorical, "numeric": [c for c in frame.columns if c not in categorical and c != target],
            "vocab": vocab}


def image_task(seed: int, pool: int = POOL_PER_CLASS) -> dict:
    arrays = np.load(DATA / "mnist28.npz")
    rng = np.random.default_rng(seed)
    labels = arrays["train_labels"].astype(np.int64)
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), pool, replace=False) for c in range(10)])
    images, labels = arrays["train_images"][chosen][..., None], labels[chosen]
    train, test = train_test_split(np.arange(len(labels)), test_size=TEST_SHARE, stratify=labels, random_state=seed)
    cut = rng.permutation(train[labels[train] == CUT_DIGIT])
    cut = cut[:math.ceil(IMAGE_CUT_SHARE * len(cut))]
    train = np.sort(np.concatenate([train[labels[train] != CUT_DIGIT], cut]))
    return {"kind": "image", "rare": CUT_DIGIT, "x": images[train], "y": labels[train], "x_test": images[test],
            "y_test": labels[test]}


# -- encodings -----------------------------------------------------------------------------------
def encode(task: dict, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Features (numbers as they are, categories as ordinal codes; unknown -> NaN) and rare-class 0/1 labels."""
    parts = [frame[task["numeric"]].astype(np.float64).to_numpy()]
    for column in task["categorical"]:
        codes = pd.Categorical(frame[column].astype(str), categories=task["vocab"][column]).codes.astype(np.float64)
        codes[codes < 0] = np.nan
        parts.append(codes[:, None])
    return np.hstack(parts), (frame[task["target"]].astype(str) == str(task["rare"])).to_numpy().astype(int)


def categorical_mask(task: dict) -> np.ndarray | None:
    if task["kind"] != "table" or not task["categorical"]:
        return None
    return np.r_[np.zeros(len(task["numeric"]), bool), np.ones(len(task["categorical"]), bool)]


def resample_table(task: dict, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE(NC) / ADASYN on the encoded training split, numbers standardised for the neighbours."""
    from imblearn.over_sampling import ADASYN, SMOTE, SMOTENC

    x, y = encode(task, task["train"])
    n_num, n_cat = len(task["numeric"]), len(task["categorical"])
    scaler = StandardScaler().fit(x[:, :n_num])
    numbers = scaler.transform(x[:, :n_num])
    if method == "SMOTE":
        features = np.hstack([numbers, x[:, n_num:]])
        sampler = (SMOTENC(categorical_features=list(range(n_num, n_num + n_cat)), random_state=seed) if n_cat
                   else SMOTE(random_state=seed))
        out, y_out = sampler.fit_resample(features, y)
        return np.hstack([scaler.inverse_transform(out[:, :n_num]), out[:, n_num:]]), y_out
    # ADASYN: one-hot blocks, interpolated, each decoded to its largest entry
    sizes = [len(task["vocab"][c]) for c in task["categorical"]]
    onehot = [np.eye(size)[x[:, n_num + i].astype(int)] for i, size in enumerate(sizes)]
    out, y_out = ADASYN(random_state=seed).fit_resample(np.hstack([numbers, *onehot]), y)
    codes, start = [], n_num
    for size in sizes:
        codes.append(out[:, start:start + size].argmax(axis=1).astype(np.float64)[:, None])
        start += size
    return np.hstack([scaler.inverse_transform(out[:, :n_num]), *codes]), y_out


def resample_images(task: dict, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import ADASYN, SMOTE

    sampler = SMOTE(random_state=seed) if method == "SMOTE" else ADASYN(random_state=seed)
    x, y = sampler.fit_resample(task["x"].reshape(len(task["x"]), -1) / 255.0, task["y"])
    return x, (y == task["rare"]).astype(int)


def genloom_set(task: dict, spec: dict, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    steps = spec["image_steps"] if task["kind"] == "image" else spec["steps"]
    common = {"ratio": spec.get("ratio", "auto"), "family": spec.get("family", "auto"), "steps": steps,
              "seed": seed, "options": spec.get("options")}
    if task["kind"] == "image":
        data = gl.Dataset("image", task["x"], "mnist", task["y"], [str(i) for i in range(10)])
        result = gl.augment(data, **common)
        x = result.values.reshape(len(result.values), -1) / 255.0
        y = (result.classes == str(task["rare"])).astype(int)
    else:
        result = gl.augment(task["train"], target=task["target"], **common)
        x, y = encode(task, result.values.drop(columns=["synthetic"]))
    family = result.model.family_name if result.model is not None else "none"
    chosen = {"ratio chosen": result.choice.ratio} if result.choice is not None else {}
    return x, y, {"family": family, "added": int(result.synthetic.sum()), **chosen}


# -- one task, one seed --------------------------------------------------------------------------
def score(task: dict, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    classifier = HistGradientBoostingClassifier(random_state=seed, categorical_features=categorical_mask(task))
    classifier.fit(x, y)
    if task["kind"] == "image":
        x_test = task["x_test"].reshape(len(task["x_test"]), -1) / 255.0
        y_test = (task["y_test"] == task["rare"]).astype(int)
    else:
        x_test, y_test = encode(task, task["test"])
    probability = classifier.predict_proba(x_test)[:, list(classifier.classes_).index(1)]
    return average_precision_score(y_test, probability), recall_score(y_test, classifier.predict(x_test))


def run_task(name: str, seed: int, methods: list[str], specs: dict[str, dict]) -> list[dict]:
    task = image_task(seed) if name == "mnist" else table_task(name, seed)
    rows, fits = [], {}
    for method in methods:
        started = time.perf_counter()
        info, error, auprc, recall = {}, None, float("nan"), float("nan")
        try:
            if method == "none":
                x, y = ((task["x"].reshape(len(task["x"]), -1) / 255.0, (task["y"] == task["rare"]).astype(int))
                        if task["kind"] == "image" else encode(task, task["train"]))
            elif method in PEERS:
                x, y = (resample_images if task["kind"] == "image" else resample_table)(task, method, seed)
            else:
                spec = specs[method]
                key = json.dumps({k: v for k, v in spec.items() if k != "family"}, sort_keys=True)
                asked = spec.get("family", "auto")
                reuse = next((fit for (_, other), fit in fits.items() if other == key and fit[2]["family"] == asked),
                             None)
                if reuse is None:
                    x, y, info = genloom_set(task, spec, seed)
                    fits[asked, key] = (x, y, info)
                else:
                    x, y, info = reuse[0], reuse[1], {**reuse[2], "reused": True}
            fit_seconds = time.perf_counter() - started
            auprc, recall = score(task, x, y, seed)
            info = {**info, "rows": int(len(y)), "rare rows": int(y.sum()), "augment s": round(fit_seconds, 1)}
        except Exception as failure:  # a method that fails on a task is reported, not fatal
            error = f"{type(failure).__name__}: {failure}"
        seconds = time.perf_counter() - started
        rows.append({"task": name, "seed": seed, "method": method, "auprc": auprc, "recall": recall,
                     "seconds": seconds, "error": error, **info})
        log(f"{name} seed {seed} {method}: AUPRC {auprc:.3f}, recall {recall:.3f}, {seconds:.1f} s "
            + json.dumps(info) + (f" ({error})" if error else ""))
    return rows


# -- summary -------------------------------------------------------------------------------------
def stats(values: list[float]) -> tuple[float, float | None]:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return float("nan"), None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def fmt(mean: float, sd: float | None) -> str:
    return "nan" if np.isnan(mean) else f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def task_table(rows: list[dict], task: str, methods: list[str]) -> list[str]:
    lines = ["| method | AUPRC | recall | AUPRC per seed | recall per seed | rows (rare) | genloom family | "
             "augment s / seed |", "|" + " --- |" * 8]
    best = np.nanmax([stats([r["auprc"] for r in rows if r["task"] == task and r["method"] == m])[0]
                      for m in methods])
    for method in methods:
        mine = sorted((r for r in rows if r["task"] == task and r["method"] == method), key=lambda r: r["seed"])
        auprc, recall = stats([r["auprc"] for r in mine]), stats([r["recall"] for r in mine])
        cell = fmt(*auprc)
        families = sorted({r.get("family") for r in mine if r.get("family")})
        reused = any(r.get("reused") for r in mine)
        sizes = {(r.get("rows"), r.get("rare rows")) for r in mine if r.get("rows")}
        size = " / ".join(f"{a:,} ({b:,})" for a, b in sorted(sizes)[:1]) + (" …" if len(sizes) > 1 else "")
        seconds = np.mean([r.get("augment s", np.nan) for r in mine]) if method not in ("none",) else None
        lines.append(f"| {method} | {f'**{cell}**' if auprc[0] == best else cell} | {fmt(*recall)} | "
                     + " ".join(f"{r['auprc']:.3f}" for r in mine) + " | "
                     + " ".join(f"{r['recall']:.3f}" for r in mine) + f" | {size} | "
                     + (", ".join(families) + (" (same fit as above)" if reused else "") if families else "–")
                     + ("; ratio chosen " + " ".join(f"{r['ratio chosen']:g}" if "ratio chosen" in r else "–"
                                                     for r in mine)
                        if any("ratio chosen" in r for r in mine) else "")
                     + " | " + (f"{seconds:.1f}" if seconds is not None and not np.isnan(seconds) else "–") + " |")
    return lines


def verdicts(rows: list[dict], tasks: list[str], methods: list[str]) -> list[str]:
    if DEFAULT not in methods or "SMOTE" not in methods or "none" not in methods:
        return []
    mean = {(t, m): stats([r["auprc"] for r in rows if r["task"] == t and r["method"] == m]) for t in tasks
            for m in methods}
    wins = [t for t in tasks if mean[t, DEFAULT][0] >= mean[t, "SMOTE"][0]]
    lines = [f"- genloom >= SMOTE by mean AUPRC on {len(wins)} of {len(tasks)} tasks ("
             + "; ".join(f"{t}: {mean[t, DEFAULT][0]:.3f} vs {mean[t, 'SMOTE'][0]:.3f}" for t in tasks)
             + f"); target at least 2 of 3: **{'met' if len(wins) >= min(2, len(tasks)) else 'not met'}**"]
    below = []
    for t in tasks:
        gap = mean[t, "none"][0] - mean[t, DEFAULT][0]
        spread = mean[t, "none"][1] or 0.0
        if gap > spread:
            below.append(t)
    lines.append("- genloom below no augmentation by more than none's sd: "
                 + "; ".join(f"{t}: {mean[t, DEFAULT][0]:.3f} vs {mean[t, 'none'][0]:.3f} (gap "
                             f"{mean[t, 'none'][0] - mean[t, DEFAULT][0]:+.3f}, sd {mean[t, 'none'][1] or 0:.3f})"
                             for t in tasks)
                 + f"; target never: **{'met' if not below else 'not met (' + ', '.join(below) + ')'}**")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--table-steps", type=int, default=TABLE_STEPS, help="genloom's training steps on a table")
    parser.add_argument("--image-steps", type=int, default=IMAGE_STEPS, help="genloom's training steps on images")
    genloom_arguments(parser, list(PEERS), "'genloom auto' and 'genloom balanced'",
                      "family, ratio, steps, image_steps, options")
    results_arguments(parser, RESULTS / "augment.md", "1 seed, tiny budgets")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.table_steps, args.image_steps = [0], 20, 5
    specs = genloom_rows(args.genloom, {DEFAULT: {}, "genloom balanced": {"ratio": 1.0}},
                         {"steps": args.table_steps, "image_steps": args.image_steps})
    methods = [*args.peers, *specs]
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows = []
    for name in args.tasks:
        for seed in args.seeds:
            rows += run_task(name, seed, methods, specs)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    import imblearn
    import sklearn
    settings = {"cpu cores": cores, "torch threads": torch.get_num_threads(), "python": platform.python_version(),
                "torch": torch.__version__, "genloom": gl.__version__, "imbalanced-learn": imblearn.__version__,
                "scikit-learn": sklearn.__version__, "seeds": args.seeds,
                "genloom rows": {label: spec for label, spec in specs.items()},
                "date": time.strftime("%Y-%m-%d"), "wall minutes": round((time.perf_counter() - started) / 60, 1)}
    failures = [f"- {r['task']} seed {r['seed']} {r['method']}: {r['error']}" for r in rows if r["error"]]
    command = "taskset -c 1 .venv/bin/python benchmarks/augment.py " + " ".join(
        f"'{a}'" if any(c in a for c in " {}\"") else a for a in sys.argv[1:])
    body = [f"## {'Main run' if args.section == 'main' else 'Run ' + args.section}: rare-class AUPRC and recall on "
            "the real test split (mean ± sd over seeds; bold: best AUPRC of the task)", ""]
    for task in args.tasks:
        body += [f"### {task}", "", *task_table(rows, task, methods), ""]
    body += [*verdicts(rows, args.tasks, methods), "", "rows (rare): the classifier's training rows and how many "
             "of them are the rare class (the smallest over seeds; '…' where seeds differ). augment s: the resampling's seconds "
             "(genloom: its fit and draw).", *(["", "Failures:", *failures] if failures else []), "",
             "Settings: " + "; ".join(f"{k} {v}" for k, v in settings.items()), "", f"Command: `{command.strip()}`"]
    write_section(args.out, args.section, "Class-imbalance augmentation: genloom vs SMOTE and ADASYN", body)
    print("\n".join(body))


if __name__ == "__main__":
    main()
