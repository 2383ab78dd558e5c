"""Fair-balanced table sampling: rows in which every group of a protected column has the same positive rate of
the target, each group keeping its own share of rows (a model's rows with the association between the group and
the outcome taken out, and nothing else changed).

Built on conditional sampling (TabularCodec.sample_where): a first plain draw measures what the model makes, the
groups' shares and the overall positive rate; each (group, target value) cell then gets its quota of rows, first
from that draw, then from draws conditioned on the cell."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GenloomError
from .codec import Draw
from .table_codec import MAX_CONDITION_DRAWS, TabularCodec

FIRST_DRAW = 2000          # rows drawn at least to measure the shares and the rate
MOST_PER_DRAW = 50_000     # rows drawn at most per conditioned try of a rare cell
GROUPED_KINDS = ("categorical", "boolean")


def positive_class(target: str, values: list[str], positive: Any = None) -> str:
    """The value of `target` a yes/no question asks for: `positive` (one of `values`, spaces around it ignored
    if that finds it), or the less frequent of two `values` given most frequent first."""
    if positive is not None:
        asked = str(positive)
        found = [v for v in values if v == asked] or [v for v in values if v.strip() == asked.strip()]
        if not found:
            raise GenloomError(f"the target {target!r} has no value {asked!r}; its values: "
                               f"{', '.join(map(repr, values[:10]))}")
        return found[0]
    if len(values) != 2:
        raise GenloomError(f"the target {target!r} has {len(values)} values, not two; name the positive one "
                           "(positive=VALUE; CLI: --positive VALUE)")
    return values[-1]


def whole_counts(n: int, shares: pd.Series) -> pd.Series:
    """n split in proportion to `shares` in whole numbers that sum to n (largest remainders first)."""
    exact = shares / shares.sum() * n
    counts = np.floor(exact).astype(int)
    extra = (exact - counts).sort_values(ascending=False, kind="stable").index[:n - counts.sum()]
    counts[extra] += 1
    return counts


def balance_request(codec: TabularCodec, column: str, target: str | None, positive: Any) -> tuple[str, str, str]:
    """The column to balance, the target and its positive class, checked against the model's columns."""
    if codec.kind != "table":
        raise GenloomError(f"fair balance applies to tables; this model makes {codec.kind} data")
    kinds = codec.kinds
    if column not in kinds:
        raise GenloomError(f"cannot fair-balance on {column!r}: the table has no such column; columns: "
                           f"{', '.join(kinds)}")
    if kinds[column] not in GROUPED_KINDS:
        raise GenloomError(f"fair balance evens out the groups of a categorical or boolean column; {column!r} is "
                           f"{kinds[column]}: bin it into groups first")
    if target is None:
        raise GenloomError("fair balance evens out the positive rate of a target, and this run was trained without "
                           "one: name it (target=COLUMN; CLI: --target COLUMN)")
    if target not in kinds or target == column:
        raise GenloomError(f"the target {target!r} is not a column other than {column!r}; columns: "
                           f"{', '.join(kinds)}")
    if kinds[target] not in GROUPED_KINDS:
        raise GenloomError(f"the target {target!r} is {kinds[target]}; fair balance evens out the rate of one class "
                           "of a categorical or boolean target")
    return column, target, positive_class(target, codec.describe()["conditions"][target], positive)


def not_made(column: str, group: str, target: str, value: str, draws: int) -> GenloomError:
    return GenloomError(f"the model made no rows of {column}={group!r} with {target} {value} in {draws:,} draws, so "
                        "that group cannot get the common positive rate: train it longer, or balance on another "
                        "column")


def balanced_rows(codec: TabularCodec, column: str, target: str, positive: str, n: int, seed: int,
                  draw: Draw) -> pd.DataFrame:
    """n rows from `draw` (size, seed, given) -> rows, shuffled, in which every group of `column` that the
    model makes has the model's overall rate of `target` == `positive` (to the nearest row) and its share of
    the rows (to the nearest row); the non-positive rows of a group keep their own mix of target values."""
    first = draw(max(n, FIRST_DRAW), seed, [])
    groups, outcomes = first[column].astype(str).to_numpy(), first[target].astype(str).to_numpy()
    rate = float(np.mean(outcomes == positive))
    quotas = {}  # (group, target value) -> rows
    for group, size in whole_counts(n, pd.Series(groups).value_counts()).items():
        positives = round(size * rate)
        others = pd.Series(outcomes[(groups == group) & (outcomes != positive)]).value_counts()
        if size > positives and others.empty:
            raise not_made(column, group, target, f"other than {positive!r}", len(first))
        quotas[group, positive] = positives
        quotas.update(whole_counts(size - positives, others).rename(lambda value: (group, value)).to_dict())
    parts = []
    for index, ((group, value), quota) in enumerate(quotas.items()):
        made = first[(groups == group) & (outcomes == value)]
        if quota and made.empty:
            raise not_made(column, group, target, f"= {value!r}", len(first))
        parts.append(made.iloc[:quota])
        if quota > len(made):  # the rest by rejection, in tries sized to find it at the cell's rate
            short = quota - len(made)
            batch = min(math.ceil(2 * short * len(first) / len(made)), MOST_PER_DRAW)
            parts.append(codec.sample_where({column: group, target: value}, short,
                                            seed + (index + 1) * MAX_CONDITION_DRAWS, draw, batch))
    rows = pd.concat(parts, ignore_index=True)
    return rows.iloc[np.random.default_rng(seed).permutation(len(rows))].reset_index(drop=True)
