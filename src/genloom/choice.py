"""family="auto": the family (and its size) for the data in front of the user and the budget asked for.

Images and text have one default family each. For a table the choice follows benchmarks/tabular_many.py:
diffusion (sampled by DPM-Solver++ in 20 steps) where nearly every column is a number and there are a thousand
rows or more; otherwise the autoregressive transformer once the budget lets it pass over every row some ten
times, unless the table is small and most of its columns are continuous numbers; short of that the VAE, which
converges in a few hundred steps, is the better model in the same time. Measured one thread per model
(2026-12-07), quality against the VAE's: 0.936 against 0.884 on breastw after 12.6 passes, 0.855 against 0.823 on
pima after 13.0; 0.825 against 0.923 on cardio after 6.8 passes (utility 0.35 against 0.99)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import pandas as pd

    from .data.dataset import Dataset

AUTO = "auto"

# the family a kind gets when it has no choice to make
KIND_FAMILY = {"image": "vae", "text": "autoregressive", "molecule": "autoregressive", "signal": "diffusion"}

# tables: the transformer only where it can pass over the rows this many times (the figures above: worse than the
# VAE at 6-7 passes, better from 12-13)
TRANSFORMER_MIN_EPOCHS = 10
# and not where most columns are continuous numbers on a table so small that its transformer draws each number as
# one of a few quantile bins (defaults.BY_SIZE): a column of numbers is continuous where its distinct values are
# more than CONTINUOUS_VALUES of the rows. On breast_cancer (30 of 31 columns, 456 rows) and wine (12 of 14, 143
# rows) the VAE scored quality 0.905 and 0.772 at 1x where the transformer scored 0.883 and 0.726, and also
# ahead at 0.25x; on the six other small tables (at most a third of their columns continuous) the transformer
# was level or ahead (benchmarks/results/tabular_many.md, 2026-12-07)
COARSE_BINS = 16
CONTINUOUS_VALUES = 0.3
CONTINUOUS_SHARE = 0.5
# diffusion where nearly every column is a number, on a table of a thousand rows or more: on cardio (1,465 rows, 21
# of 22 columns numbers), thyroid (3,018, 6 of 7) and pendigits (5,496, 16 of 17) it scored quality 0.935, 0.821
# and 0.969 at 1x against the transformer's 0.923, 0.815 and 0.965 (the VAE's: 0.922, 0.827, 0.917), and 0.927,
# 0.826 and 0.966 at 0.25x against the VAE's 0.923, 0.840 and 0.917, with detection AUCs of 0.59-0.75 where the
# VAE's were 0.71-0.99; on the small tables its utility fell to 0.54-0.90 at 0.25x. In a check outside the
# benchmark (one seed, 30 s and 120 s): mammography (8,947 rows) 0.960 and 0.957 against the VAE's 0.871 and the
# transformer's 0.945 and 0.939; shuttle (39,278 rows) 0.871 both times against the VAE's 0.868 and 0.878 and the
# transformer's 0.736 in 30 s
DIFFUSION_MIN_ROWS = 1_000
DIFFUSION_NUMBERS_SHARE = 0.8
# and sampled by DPM-Solver++ in 20 steps, not by the 100 DDPM steps a table's diffusion takes by default (whose
# categories come out better from small steps): on such tables nearly as good and five times as fast. One trained
# run of each sampled both ways (60-90 s of training, one thread, sampling seeds 0-2, 2026-12-07), means of the
# seeds, 20 steps against 100: quality 0.969 / 0.935 / 0.824 against 0.969 / 0.935 / 0.833 on pendigits / cardio /
# thyroid, utility 0.996 / 0.991 / 0.992 against 1.000 / 0.993 / 0.994, detection AUC 0.677 / 0.693 / 0.606
# against 0.682 / 0.669 / 0.605; 100,000 pendigits rows in 10.0 s against 49.8 s on two threads, 15.7 s against
# 74.7 s on one, 16.4 s against 76.8 s on one beside a busy core (benchmarks/table_sampling.py)
DIFFUSION_SAMPLING = {"sampler": "dpm-solver", "sample_steps": 20}
# tokens the default table transformer trains on per second and thread, to turn a time budget into passes over
# the data, validation included: 10,200-15,700, typically 13,000-14,000, in batches of 64 to 500 (tables of 143 to
# 5,496 rows), on one thread of the benchmark's machine beside another job on the other core (the steps between
# the 0.25x and 1x runs of benchmarks/tabular_many.py over their seconds, 2026-12-07); the low end, so that a
# doubtful case errs toward the VAE
TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD = 13_000
# a narrower transformer trains on more tokens a second: the 64-wide one of large tables on 2.5x the 128-wide
# one's, in batches of 500 on one thread (2026-12-07), which is (128 / 64) ** 1.3; the constant above is the
# 128-wide one's
REFERENCE_WIDTH = 128
WIDTH_SPEED_EXPONENT = 1.3
# of a budget in minutes, what goes before and after training: torch's optimizer imports torch._dynamo (once per
# process), the codec, the closing validation, the held-out scores and writing the run: 0.8-1.5 s on tables of a
# few hundred rows, 2.6-3.2 s on 1,465-5,496 rows (the same runs: the fit's seconds less the steps at that rate)
SETUP_SECONDS = 2.0
# the constants above are one machine's: where the passes they give are within this factor of
# TRANSFORMER_MIN_EPOCHS either way, a few timed training steps on this machine, under its present load, decide
PROBE_MARGIN = 2.0
PROBE_SECONDS = 0.3  # timed steps (after one untimed) until this much time has passed, two at the least


@dataclass(frozen=True)
class FamilyChoice:
    """What family="auto" chose, and why, as the run records it; `options`: the family's options the choice comes
    with, which apply together unless the user gave one of them (a sampler, say, without auto's steps for it)."""

    family: str
    reason: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return {"asked": AUTO, **asdict(self)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FamilyChoice:
        """The choice a run recorded (as_record); runs from before options were recorded have none."""
        return cls(record["family"], record["reason"], record.get("options", {}))


@dataclass(frozen=True)
class NumberColumns:
    """How many of a table's columns the codec reads as numbers, and how many of those are continuous: distinct
    values in more than CONTINUOUS_VALUES of the rows that have one."""

    numbers: int = 0
    continuous: int = 0

    @classmethod
    def of(cls, frame: pd.DataFrame, kinds: Mapping[str, str]) -> NumberColumns:
        """`kinds`: every column's kind, as tables.column_kinds gives it (an identifier is no number)."""
        numbers = [frame[column] for column in frame.columns if kinds[str(column)] == "numerical"]
        return cls(len(numbers), sum(int(values.nunique() > CONTINUOUS_VALUES * values.count()) for values in numbers))


def number_columns(table: Dataset) -> NumberColumns:
    """NumberColumns of a loaded table, its columns' kinds as the codec takes them (its metadata file's, else
    inferred)."""
    from .data.tables import column_kinds, read_metadata

    kinds = column_kinds(table.values, read_metadata(table.source.get("metadata")))
    return NumberColumns.of(table.values, kinds)


def choose_family(kind: str, rows: int, columns: int, budget: Mapping[str, Any], threads: int,
                  probe: bool = True, numbers: NumberColumns = NumberColumns()) -> FamilyChoice:
    """The family for `rows` examples of `kind` (tables: `columns` columns, `numbers` saying which hold numbers)
    under `budget` (steps, minutes or epochs as given; none: the default step budget). With `probe`, a budget in
    minutes that leaves the choice in doubt is settled by the transformer's speed measured here and now
    (probed_tokens_per_second)."""
    if kind != "table":
        return FamilyChoice(KIND_FAMILY[kind], f"the default family for {kind} data")
    from .defaults import family_config

    if rows >= DIFFUSION_MIN_ROWS and numbers.numbers >= DIFFUSION_NUMBERS_SHARE * columns:
        return FamilyChoice("diffusion", f"{numbers.numbers} of {columns} columns are numbers, on {rows:,} rows: "
                                         f"diffusion scores best, sampled by {DIFFUSION_SAMPLING['sampler']} in "
                                         f"{DIFFUSION_SAMPLING['sample_steps']} steps", dict(DIFFUSION_SAMPLING))
    bins = family_config("autoregressive", "table", {}, rows).bins
    if bins <= COARSE_BINS and numbers.continuous >= CONTINUOUS_SHARE * columns:
        return FamilyChoice("vae", f"{numbers.continuous} of {columns} columns are continuous numbers, which the "
                                   f"transformer would draw as {bins} quantile bins on {rows:,} rows: the VAE does "
                                   "better")
    epochs = transformer_epochs(rows, columns, budget, transformer_speed(rows, threads))
    measured = ""
    in_doubt = 1 / PROBE_MARGIN < epochs / TRANSFORMER_MIN_EPOCHS < PROBE_MARGIN
    if probe and in_doubt and budget.get("minutes") is not None:
        speed = probed_tokens_per_second(rows, columns, threads)
        epochs = transformer_epochs(rows, columns, budget, speed)
        measured = f" at {speed:,.0f} tokens/s, measured here"
    if epochs < TRANSFORMER_MIN_EPOCHS:
        return FamilyChoice("vae", f"the budget gives the transformer about {epochs:.1f} passes over "
                                   f"{rows:,} rows{measured} (it needs {TRANSFORMER_MIN_EPOCHS}): the VAE does "
                                   "better in it")
    return FamilyChoice("autoregressive", f"{rows:,} rows and about {epochs:.0f} passes over them in the budget"
                                          f"{measured}: the transformer scores best")


def transformer_speed(rows: int, threads: int) -> float:
    """Tokens a second the default table transformer for `rows` rows trains on, on `threads` threads, by the
    constants above."""
    from .defaults import family_config, thread_speedup

    width = family_config("autoregressive", "table", {}, rows).n_embd
    return (TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD * (REFERENCE_WIDTH / width) ** WIDTH_SPEED_EXPONENT
            * thread_speedup(threads))


def transformer_epochs(rows: int, columns: int, budget: Mapping[str, Any], tokens_per_second: float) -> float:
    """Passes over `rows` the default table transformer makes within `budget` (the fewest of those given),
    training on `tokens_per_second`."""
    from .defaults import defaults_for
    from .train.config import TrainConfig

    passes = []
    if budget.get("epochs") is not None:
        passes.append(float(budget["epochs"]))
    if budget.get("steps") is not None or not budget:
        batch = defaults_for("autoregressive", "table", rows).train["batch_size"]
        passes.append((budget.get("steps") or TrainConfig.default_steps) * batch / rows)
    if budget.get("minutes") is not None:
        rows_per_second = tokens_per_second / (columns + 1)
        training_seconds = max(0.0, 60 * float(budget["minutes"]) - SETUP_SECONDS)
        passes.append(training_seconds * rows_per_second / rows)
    return min(passes)


def probed_tokens_per_second(rows: int, columns: int, threads: int) -> float:
    """Tokens per second the default table transformer for `rows` rows of `columns` columns trains on, on
    `threads` threads of this machine as loaded now: AdamW steps on random rows of tokens (one untimed, then
    PROBE_SECONDS of them). A row's tokens are its columns and a start token; the vocabulary's size barely
    changes the time."""
    import torch
    import torch.nn.functional as F

    from .defaults import defaults_for, family_config
    from .layout import Layout
    from .nets.transformer import Transformer
    from .train.device import using_threads

    config = family_config("autoregressive", "table", {}, rows)
    batch = defaults_for("autoregressive", "table", rows).train["batch_size"]
    vocab = columns * config.bins + 1
    with using_threads(threads), torch.random.fork_rng():
        torch.manual_seed(0)
        net = Transformer(Layout("table", (columns + 1,), vocab_size=vocab), config.n_layer, config.n_head,
                          config.n_embd, columns + 1, config.dropout, config.bias, config.rope, config.gelu,
                          config.layer_norm_eps)
        optimizer = torch.optim.AdamW(net.parameters())
        tokens = torch.randint(vocab, (batch, columns + 1))

        def step() -> None:
            logits = net(tokens[:, :-1])
            F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        step()  # the first step allocates, and imports what the optimizer needs
        steps, started = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - started < PROBE_SECONDS:
            step()
            steps += 1
        return steps * batch * (columns + 1) / (time.perf_counter() - started)  # as transformer_epochs counts
