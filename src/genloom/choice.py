"""family="auto": the family (and its size) for the data in front of the user and the budget asked for.

Images and text have one default family each. For a table the choice follows benchmarks/tabular_many.py: the
VAE is the best model on small tables and short budgets (it fits in seconds and does not overfit a few hundred
rows), the autoregressive transformer is the best on large tables once it can see every row many times, and
below that it is beaten by the VAE trained for the same time (on Adult at 76 s: utility 0.72 against 0.90)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

AUTO = "auto"

# the family a kind gets when it has no choice to make
KIND_FAMILY = {"image": "vae", "text": "autoregressive"}

# tables: the transformer only where it has this many rows and can pass over them this many times
TRANSFORMER_MIN_ROWS, TRANSFORMER_MIN_EPOCHS = 5_000, 20
# rows the default table transformer trains on per second and thread, per token of a row (measured on Adult:
# 1,216 steps of 500 rows of 15 tokens in 345 s on 2 threads), to turn a time budget into passes over the data
TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD = 13_000


@dataclass(frozen=True)
class FamilyChoice:
    """What family="auto" chose, and why, as the run records it."""

    family: str
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {"asked": AUTO, **asdict(self)}


def choose_family(kind: str, rows: int, columns: int, budget: Mapping[str, Any], threads: int) -> FamilyChoice:
    """The family for `rows` examples of `kind` (tables: `columns` columns) under `budget` (steps, minutes or
    epochs as given; none: the default step budget)."""
    if kind != "table":
        return FamilyChoice(KIND_FAMILY[kind], f"the default family for {kind} data")
    if rows < TRANSFORMER_MIN_ROWS:
        return FamilyChoice("vae", f"a small table ({rows:,} rows < {TRANSFORMER_MIN_ROWS:,}): the VAE fits it "
                                   "best and fastest")
    epochs = transformer_epochs(rows, columns, budget, threads)
    if epochs < TRANSFORMER_MIN_EPOCHS:
        return FamilyChoice("vae", f"the budget gives the transformer about {epochs:.0f} passes over "
                                   f"{rows:,} rows (it needs {TRANSFORMER_MIN_EPOCHS}): the VAE does better in it")
    return FamilyChoice("autoregressive", f"{rows:,} rows and about {epochs:.0f} passes over them in the budget: "
                                          "the transformer scores best")


def transformer_epochs(rows: int, columns: int, budget: Mapping[str, Any], threads: int) -> float:
    """Passes over `rows` the default table transformer makes within `budget` (the fewest of those given)."""
    from .defaults import defaults_for
    from .train.config import TrainConfig

    passes = []
    if budget.get("epochs") is not None:
        passes.append(float(budget["epochs"]))
    if budget.get("steps") is not None or not budget:
        batch = defaults_for("autoregressive", "table", rows).train["batch_size"]
        passes.append((budget.get("steps") or TrainConfig.default_steps) * batch / rows)
    if budget.get("minutes") is not None:
        rows_per_second = TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD * threads / (columns + 1)
        passes.append(60 * float(budget["minutes"]) * rows_per_second / rows)
    return min(passes)
