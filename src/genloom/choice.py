"""family="auto": the family (and its size) for the data in front of the user and the budget asked for.

Images and text have one default family each. For a table the choice follows benchmarks/tabular_many.py: the
autoregressive transformer scores best on tables small and large once the budget lets it pass over every row
some twenty times (eight small tables at 1x SDV CTGAN's fit time: mean utility rank 2.06 against the VAE's 3.00);
short of that the VAE, which converges in a few hundred steps, is the better model in the same time (on Adult
at 76 s: utility 0.90 against the transformer's 0.72; on the small tables at 0.25x: 0.933 against 0.831)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

AUTO = "auto"

# the family a kind gets when it has no choice to make
KIND_FAMILY = {"image": "vae", "text": "autoregressive"}

# tables: the transformer only where it can pass over the rows this many times
TRANSFORMER_MIN_EPOCHS = 20
# tokens the default table transformer trains on per second and thread, to turn a time budget into passes over
# the data: in batches of 64 (small tables) 5,300-12,000, typically 8,000, on one thread of the benchmark's
# machine (benchmarks/tabular_many.py, 2026-12-02); batches of 500 go faster (13,000), so large tables err
# toward the VAE
TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD = 8_000
# threads do not add speed in proportion: measured on the 2-core machine (penguins in batches of 64, diamonds in
# batches of 500), a second thread gave 1.47x and 1.61x on an idle machine and 1.0x with another training job on
# the other core; threads ** 0.55 is 1.46x for two, the low end, so a busy machine still errs toward the VAE
THREAD_SPEEDUP_EXPONENT = 0.55
# of a budget in minutes, what goes before and after training: torch's optimizer imports torch._dynamo (1.2-2.4 s
# once per process), the codec, the closing validation and writing the run (3.5-4 s on small tables, same run)
SETUP_SECONDS = 4.0


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
    epochs = transformer_epochs(rows, columns, budget, threads)
    if epochs < TRANSFORMER_MIN_EPOCHS:
        return FamilyChoice("vae", f"the budget gives the transformer about {epochs:.1f} passes over "
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
        tokens_per_second = TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD * threads ** THREAD_SPEEDUP_EXPONENT
        rows_per_second = tokens_per_second / (columns + 1)
        training_seconds = max(0.0, 60 * float(budget["minutes"]) - SETUP_SECONDS)
        passes.append(training_seconds * rows_per_second / rows)
    return min(passes)
