"""The one table of defaults that depend on the family, the data kind or both (and on how much data there is),
and how they combine with what the user asks: general defaults < the family's < the kind's < the family's on
that kind < those under differential privacy (training and codec) < those for the data's size < the user's.
Families and codecs keep only defaults that hold everywhere; every choice measured per kind lives here."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import GenloomError
from .families import family_entry
from .options import Options
from .train.config import TrainConfig

ANY = "*"


@dataclass(frozen=True)
class Defaults:
    options: Mapping[str, Any] = field(default_factory=dict)   # the family's options
    train: Mapping[str, Any] = field(default_factory=dict)     # TrainConfig
    codec: Mapping[str, Any] = field(default_factory=dict)     # the codec's options
    sampling: Mapping[str, Any] = field(default_factory=dict)  # the family's sampling options


# DCGAN's Adam (beta1 0.5) at a constant rate; the weight average of G is kept (Karras et al. 2018).
GAN_TRAIN = {"lr": 2e-4, "adam_beta1": 0.5, "adam_beta2": 0.999, "warmup_steps": 0, "min_lr_ratio": 1.0,
             "ema_decay": 0.999, "grad_clip": 10.0}

DIFFUSION_TRAIN = {"lr": 1e-3, "ema_decay": 0.999, "warmup_steps": 100}
# a GPT wants no weight average, some decay and a higher learning rate than a small conv net
AUTOREGRESSIVE_TRAIN = {"lr": 3e-3, "batch_size": 16, "ema_decay": 0.0, "weight_decay": 0.1, "warmup_steps": 100,
                        "min_lr_ratio": 0.1, "eval_every": 250}

TABLE: dict[tuple[str, str], Defaults] = {
    # rows of a table are cheap: large batches, as CTGAN's and TVAE's. The weights of the best validation are kept,
    # for a long budget overfits a table of a few thousand rows (benchmarks/tabular_many.py at 1x SDV CTGAN's fit
    # time, 2026-12-07: the transformer on taxis, 5,112 rows, held-out loss 1.59 at step 250, 2.71 at 1,005, its
    # rows all but copies (DCR ratio 0.03); the VAE on pendigits, 5,496 rows, 24.9 at step 1,000, 44.7 at 5,850)
    (ANY, "table"): Defaults(train={"batch_size": 500, "keep_best": True}),
    ("gan", ANY): Defaults(train=GAN_TRAIN),
    ("gan", "table"): Defaults(options={"pac": 10}),  # CTGAN's PacGAN
    # WGAN-GP's Adam betas (0, 0.9), as the paper
    ("wgan-gp", ANY): Defaults(train={**GAN_TRAIN, "adam_beta1": 0.0, "adam_beta2": 0.9}),
    ("wgan-gp", "table"): Defaults(options={"pac": 10}),
    ("stylegan", ANY): Defaults(train=GAN_TRAIN),
    # CycleGAN's Adam: 2e-4, beta1 0.5
    ("cyclegan", ANY): Defaults(train={**GAN_TRAIN, "batch_size": 32}),
    ("diffusion", ANY): Defaults(train=DIFFUSION_TRAIN),
    ("latent-diffusion", ANY): Defaults(train=DIFFUSION_TRAIN),
    # TabDDPM: quantile-transformed numbers; categories come out better from 100 small DDPM steps than from
    # 20 large ones (benchmarked)
    # Given columns (condition_on) are blurred a little in training (noise regularisation, Rothfuss et al. 2019): a
    # state seen with one outcome otherwise keeps that outcome alone (benchmarks/dynamics.py's ball, 2,000 steps:
    # both outcomes at 0.975 of the two-outcome states with noise 0.03, 0.2 without; the one-outcome states'
    # energy distance 0.032 against 0.014; with 0.1: 1.0 and 0.151)
    ("diffusion", "table"): Defaults(options={"sampler": "ddpm", "sample_steps": 100, "condition_noise": 0.03},
                                     codec={"numbers": "quantile"}),
    ("autoregressive", ANY): Defaults(train=AUTOREGRESSIVE_TRAIN),
    # its autoencoder learns from larger batches at a conv net's rate; the transformer then takes them too
    ("vq-vae", ANY): Defaults(train={**AUTOREGRESSIVE_TRAIN, "lr": 2e-3, "batch_size": 64}),
    # Muon for the blocks' matrices and larger batches, measured on benchmarks/text.py; its rate 0.04: in 420
    # steps of the three-block model on tiny Shakespeare, 1.88 in 175 and 188 steps against 196 and 216 at 0.02,
    # best 1.672 and 1.699 against 1.700 and 1.729 (seeds 0 and 1, 2026-12-07; 0.03 and 0.05 lay between)
    ("autoregressive", "text"): Defaults(train={"optimizer": "muon", "muon_lr": 0.04, "batch_size": 32,
                                                "warmup_steps": 30, "min_lr_ratio": 0.0}),
    ("autoregressive", "table"): Defaults(codec={"numbers": "quantile"}),  # one token per number: its quantile bin
    # a molecule is a short sequence (MOSES': at most 57 tokens): many of them to a batch; Muon as for text: in 5
    # minutes on moses (`genloom train moses --minutes 5`, 2 threads, once per optimizer, 2026-12-04) it reached
    # validity 0.66 (1,000 samples) and held-out loss 0.424 where AdamW reached 0.46 and 0.479, though its steps
    # cost 1.3x
    # sampled without the tail a model trained with cross-entropy smears over every token (epsilon sampling):
    # on a 20-minute model of benchmarks/molecules.py (5,000 samples at temperature 1, SMILES' grammar) validity
    # 0.911 / 0.930 / 0.944 / 0.954 / 0.965 and FCD 0.54 / 0.53 / 0.57 / 0.66 / 0.84 at epsilon 0 / 0.003 / 0.01
    # / 0.02 / 0.03, where temperature 0.9 gave 0.951 at FCD 0.76: 0.02 is MOSES-level validity at the least cost
    ("autoregressive", "molecule"): Defaults(train={"batch_size": 128, "lr": 2e-3, "optimizer": "muon",
                                                    "muon_lr": 0.02}, sampling={"epsilon": 0.02}),
    # an image's ELBO sums over its pixels and is steady from one code (one-class MNIST digit 0: AUROC 0.992 with one
    # code, 0.990 with 16, at a sixteenth of the cost); a table row's is not (0.01-0.05 AUROC on ODDS tables)
    ("vae", "image"): Defaults(options={"importance_samples": 1}),
    # a spectrogram (40 frames x 32 bands of spoken_digits) at half the image U-Net's width: three times the steps in
    # a CPU budget (benchmarks/audio.py, 5 minutes on one thread, conditional: 415 steps, FD 259.7, conditional
    # accuracy 0.49 at width 16; 127 steps, FD 476.0, 0.27 at width 32); and guided: the same kind of run (315
    # steps) scored conditional accuracy 0.43 / 0.69 / 0.80 and FD 285 / 134 / 144 at guidance 1 / 2 / 3
    ("diffusion", "signal"): Defaults(options={"width": 16, "guidance": 3.0}),
    # the chemical VAE (Gomez-Bombarelli et al. 2018) in SELFIES, whose every token sequence is a molecule; a
    # larger code than a table's, as MOSES' VAE (128). A molecule's ELBO is 60-150 nats where a row's is some 10:
    # the property head's error weighs 10x more (QED on 1,500 molecules, 300 steps: held-out R^2 -0.02 at weight 3,
    # 0.18 at 30; 0.75 after 8 minutes on 50,000). Its decoder reads the tokens before each one (a GRU, as MOSES'
    # VAE), with the KL weight warmed up over the first 30%: 5 minutes on 50,000 moses molecules (one thread)
    # gave samples of mean QED 0.53-0.54 against 0.43 for the parallel decoder after 15 (the data: 0.80). Beta 0.5
    # or 0.2, word dropout 0.3 or free bits 0.25-0.5 nats did not do better there (samples 0.48-0.53)
    ("vae", "molecule"): Defaults(options={"latent_dim": 64, "property_weight": 30.0, "decoder": "autoregressive",
                                           "kl_warmup": 0.3},
                                  train={"batch_size": 128, "lr": 1e-3}, codec={"tokenizer": "selfies"}),
}


# What changes with the number of examples: the first tier whose bound is above it applies. A small table wants
# smaller batches (more updates in the same time), frequent validation and early stopping, so that a long budget
# does not overfit a few hundred rows; and fewer quantile bins for its numbers (some 20 rows a bin at least).
BY_SIZE: dict[tuple[str, str], tuple[tuple[int, Defaults], ...]] = {
    (ANY, "table"): ((1_000, Defaults(train={"batch_size": 64, "eval_every": 50, "patience": 10})),
                     (5_000, Defaults(train={"batch_size": 256, "eval_every": 100, "patience": 10}))),
    # a small table's transformer keeps the default dropout (0), rate and width: on six small tables (172-615 rows),
    # three seeds, both budgets of benchmarks/tabular_many.py (2026-12-07), dropout 0.1 or 0.3, a rate of 1e-3, or 64
    # wide with dropout 0.2 moved the mean quality by -0.005 to +0.008 and the utility by -0.008 to +0.003, within the
    # seeds' spread: its validation loss turns up after 50-100 steps whatever the regularisation, and the best
    # weights (keep_best) are kept
    # a large table's transformer half as wide: on Adult at the default budget it scores as the 128-wide one
    # (seeds 0 and 1: quality 0.969 against 0.968, utility 0.912 against 0.913, detection AUC 0.684 against
    # 0.681; benchmarks/table_width.py), trains in 0.39x the time and samples in 0.39x on one thread (100,000
    # rows in 8.7-9.2 s on two: benchmarks/table_sampling.py)
    ("autoregressive", "table"): ((1_000, Defaults(options={"bins": 16})), (20_000, Defaults()),
                                  (math.inf, Defaults(options={"n_embd": 64}))),
    # the quantile transform scores as the Gaussian mixtures do for a small table's VAE (utility 0.944 against
    # 0.938 at 5 s, 0.950 against 0.954 at 15 s on four tables, two seeds) and fits in milliseconds, not a second
    ("vae", "table"): ((5_000, Defaults(codec={"numbers": "quantile"})),),
}

# threads do not add speed in proportion: measured on the 2-core machine (penguins in batches of 64, diamonds in
# batches of 500), a second thread gave 1.47x and 1.61x on an idle machine and 1.0x with another training job on
# the other core; threads ** 0.55 is 1.46x for two, the low end, so a busy machine still errs toward the VAE in
# family="auto"'s choice (choice.py)
THREAD_SPEEDUP_EXPONENT = 0.55


def thread_speedup(threads: int) -> float:
    """How many times one thread's speed training on `threads` threads gives, as the constant above counts it."""
    return threads ** THREAD_SPEEDUP_EXPONENT


# What changes with a short budget in minutes, counted in minutes of one thread (a second thread adds less than
# itself: minutes x thread_speedup(threads), as family="auto" counts a table's): the first tier whose
# bound is above it applies. A budget without minutes takes no tier, nor does training on a GPU or in several processes.
BY_MINUTES: dict[tuple[str, str], tuple[tuple[float, Defaults], ...]] = {
    # text: two blocks, not three, for a short run. On tiny Shakespeare a step costs two thirds (0.21 against 0.32 s
    # on one thread) and 1.88 takes about as many steps, so it comes in 0.7x the time; the best loss, the two
    # trained side by side, one thread each (2026-12-07): 1.595 against 1.600 in 5 minutes, but 1.588 against
    # 1.548 in 10; on two threads in 2.1 minutes 1.619 against 1.625 (1.88 at 26 s against 38 s)
    ("autoregressive", "text"): ((5.0, Defaults(options={"n_layer": 2})),),
}


def defaults_for(family: str, kind: str | None, examples: int | None = None,
                 minutes: float | None = None, private: bool = False) -> Defaults:
    """The defaults of `family` on data of `kind` (None: before the data is known, the family's alone) with
    `examples` of it (None: any number), a budget of `minutes` of one thread (None: not in minutes), trained under
    differential privacy or not."""
    keys = [(family, ANY)] if kind is None else [(family, ANY), (ANY, kind), (family, kind)]
    parts = [TABLE[key] for key in keys if key in TABLE]
    parts += [UNDER_PRIVACY[key] for key in keys if key in UNDER_PRIVACY] if private else []
    for tiers, amount in ((BY_SIZE, examples), (BY_MINUTES, minutes)):
        if amount is not None:
            parts += [first for key in keys
                      for first in [defaults for bound, defaults in tiers.get(key, ()) if amount < bound][:1]]
    return Defaults(*({k: v for part in parts for k, v in getattr(part, name).items()}
                      for name in ("options", "train", "codec", "sampling")))


def family_config(family: str, kind: str | None, given: Mapping[str, Any], examples: int | None = None,
                  minutes: float | None = None) -> Options:
    """The family's options: its defaults on this kind (and size, and budget in minutes of one thread) under
    those given (None given: the default)."""
    chosen = {**defaults_for(family, kind, examples, minutes).options,
              **{k: v for k, v in given.items() if v is not None}}
    return family_entry(family).options.from_options(chosen, "option", f"family {family!r}")


def stored_family_config(family: str, stored: Mapping[str, Any]) -> Options:
    """A saved run's options: whole when written, so one added since takes its field's default, which is what runs
    before it did (a molecule VAE saved before the autoregressive decoder keeps its parallel one), not the kind's."""
    return family_config(family, None, stored)


def sampling_options_for(family: str, kind: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The family's sampling options: what suits it on this kind, under those given."""
    return {**defaults_for(family, kind).sampling, **given}


# What training under differential privacy changes (above the family's defaults on the kind, below those for the
# data's size and the user's). A table's declared target leads the row: the autoregressive family then draws it
# first and every other column given it, where last it must learn the target from all the others through DP-SGD's
# noise. On Adult at epsilon 3 (the transformer of benchmarks/privacy.py, batches of 1,000, seeds 0-2, 2026-12-07)
# utility 0.774 / 0.794 / 0.758 against 0.831 / 0.675 / 0.570 with the target last; quality 0.904-0.922 against
# 0.895-0.930. The families that read whole rows do not mind the order.
# The transformer also steps at a higher rate: Adam divides each step by the root of the gradients' second moment,
# which DP-SGD's noise inflates, so the same rate takes smaller steps. On Adult at epsilon 3 (600 steps, one run
# each, 2026-12-07) utility 0.879 / 0.887 / 0.882 (seeds 0-2) at 0.01 in batches of 500, against 0.782 / 0.810 /
# 0.790 at the public rate of 0.003 in batches of 2,000; 0.886 at 0.02; in batches of 2,000 (some 4x the time, on
# one thread beside other work: not timed otherwise) 0.890 / 0.892 / 0.889 at 0.01 and 0.895 at 0.02. A smaller
# clipping norm (0.1, 0.3: 0.779, 0.783) or 16 bins (0.759) did not help. The table VAE (width 16: 128 units, the
# same runs) gains as much, though from lower: 0.688 / 0.584 / 0.788 at 0.01 against 0.497 / 0.452 (seeds 0, 1) at
# its 0.002; 0.483 at 0.03. Measured on Adult only (26,049 rows in batches of 500): small tables, whose batches the
# size tiers shrink, take the rate unmeasured.
# Only training and codec defaults apply under privacy (tests/test_defaults.py holds the table to that).
UNDER_PRIVACY: dict[tuple[str, str], Defaults] = {
    (ANY, "table"): Defaults(codec={"target_first": True}),
    ("autoregressive", "table"): Defaults(train={"lr": 1e-2}),
    ("vae", "table"): Defaults(train={"lr": 1e-2}),
}


# What an anomaly detector's score is made of (anomaly.py's views), by family, and the codec it reads with, by family
# and kind. A VAE adds the local outlier factor of an example's latent code among the training codes to its
# likelihood, and reads a table's numbers on their own scale: in benchmarks/anomaly.py (ODDS, five seeds; one-class
# MNIST, ten digits; 2026-12-07) mean AUROC 0.924 on the tables and 0.966 on the digits; its likelihood alone 0.920
# and 0.942 (0.902 on the tables with quantile numbers), the latent view alone 0.821 and 0.928. Other families
# have no quick encoder (diffusion inverts by DDIM) and score by their likelihood alone.
ANOMALY_VIEWS: dict[str, tuple[str, ...]] = {"vae": ("likelihood", "latent")}
ANOMALY_CODEC: dict[tuple[str, str], dict[str, Any]] = {("vae", "table"): {"numbers": "standard"}}


def anomaly_views_for(family: str) -> tuple[str, ...]:
    return ANOMALY_VIEWS.get(family, ("likelihood",))


def anomaly_codec_for(family: str, kind: str) -> dict[str, Any]:
    return dict(ANOMALY_CODEC.get((family, kind), {}))


def codec_options_for(family: str, kind: str, given: Mapping[str, Any], examples: int | None = None,
                      private: bool = False) -> dict[str, Any]:
    """The codec's options: what suits the family on this kind (and size, and training under differential privacy),
    under those given."""
    return {**defaults_for(family, kind, examples, private=private).codec, **given}


def budget_of(steps: int | None, minutes: float | None, epochs: float | None) -> dict[str, Any]:
    """The training budget asked for: those of steps, minutes and epochs that were given."""
    return {k: v for k, v in {"steps": steps, "minutes": minutes, "epochs": epochs}.items() if v is not None}


def one_thread_minutes(budget: Mapping[str, Any], threads: int) -> float | None:
    """A budget's minutes as minutes of one thread, on `threads` threads (None: the budget is not in minutes)."""
    minutes = budget.get("minutes")
    return None if minutes is None else float(minutes) * thread_speedup(threads)


def resolve_train_config(family: str, kind: str, stored: Mapping[str, Any] | None, budget: Mapping[str, Any],
                         options: Mapping[str, Any], examples: int | None = None) -> TrainConfig:
    """The training settings: general defaults < the family's on this kind, under differential privacy if asked
    (dp_epsilon), and size < a resumed run's settings < what was asked now. A new budget (steps, minutes, epochs)
    replaces the stored one whole."""
    private = options.get("dp_epsilon") is not None
    settings = dict(stored) if stored else dict(defaults_for(family, kind, examples, private=private).train)
    trained_with = settings.get("optimizer", TrainConfig.optimizer)  # runs from before the option: AdamW
    if stored and options.get("optimizer", trained_with) != trained_with:
        raise GenloomError(f"the run trained with optimizer '{trained_with}'; resume it with the same one "
                           "(its state does not carry over), or start a new run")
    if budget:
        settings.update(steps=None, minutes=None, epochs=None)
    return TrainConfig.from_options({**settings, **budget, **options}, "training option")
