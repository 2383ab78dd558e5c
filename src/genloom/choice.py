"""family="auto": the family (and its size) for the data in front of the user and the budget asked for.

Images and text have one default family each. For a table the choice follows benchmarks/tabular_many.py: the
autoregressive transformer scores best on tables small and large once the budget lets it pass over every row
some twenty times (eight small tables at 1x SDV CTGAN's fit time: mean utility rank 2.06 against the VAE's 3.00);
short of that the VAE, which converges in a few hundred steps, is the better model in the same time (on Adult
at 76 s: utility 0.90 against the transformer's 0.72; on the small tables at 0.25x: 0.933 against 0.831)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping

AUTO = "auto"

# the family a kind gets when it has no choice to make
KIND_FAMILY = {"image": "vae", "text": "autoregressive", "molecule": "autoregressive", "signal": "diffusion"}

# tables: the transformer only where it can pass over the rows this many times
TRANSFORMER_MIN_EPOCHS = 20
# tokens the default table transformer trains on per second and thread, to turn a time budget into passes over
# the data: in batches of 64 (small tables) 5,300-12,000, typically 8,000, on one thread of the benchmark's
# machine (benchmarks/tabular_many.py, 2026-12-02); batches of 500 go faster (13,000), so large tables err
# toward the VAE
TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD = 8_000
# a narrower transformer trains on more tokens a second: the 64-wide one of large tables on 2.5x the 128-wide
# one's, in batches of 500 on one thread (2026-12-07), which is (128 / 64) ** 1.3; the constant above is the
# 128-wide one's
REFERENCE_WIDTH = 128
WIDTH_SPEED_EXPONENT = 1.3
# of a budget in minutes, what goes before and after training: torch's optimizer imports torch._dynamo (1.2-2.4 s
# once per process), the codec, the closing validation and writing the run (3.5-4 s on small tables, same run)
SETUP_SECONDS = 4.0
# the constants above are one machine's: where the passes they give are within this factor of
# TRANSFORMER_MIN_EPOCHS either way, a few timed training steps on this machine, under its present load, decide
PROBE_MARGIN = 2.0
PROBE_SECONDS = 0.3  # timed steps (after one untimed) until this much time has passed, two at the least


@dataclass(frozen=True)
class FamilyChoice:
    """What family="auto" chose, and why, as the run records it."""

    family: str
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {"asked": AUTO, **asdict(self)}


def choose_family(kind: str, rows: int, columns: int, budget: Mapping[str, Any], threads: int,
                  probe: bool = True) -> FamilyChoice:
    """The family for `rows` examples of `kind` (tables: `columns` columns) under `budget` (steps, minutes or
    epochs as given; none: the default step budget). With `probe`, a budget in minutes that leaves the choice in
    doubt is settled by the transformer's speed measured here and now (probed_tokens_per_second)."""
    if kind != "table":
        return FamilyChoice(KIND_FAMILY[kind], f"the default family for {kind} data")
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
