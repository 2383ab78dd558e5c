"""Privacy of synthetic rows: distance to the closest training record (DCR) and exact copies.

The distance is SDMetrics' (`sdmetrics.single_table.privacy.dcr_utils.calculate_dcr`): per column, the
absolute difference over the training range, capped at 1, for numbers and dates, and 0/1 for categories;
averaged over the columns. SDMetrics computes it with a pandas cross join, which takes minutes on tens of
thousands of rows; here it is the same formula on tensors, a block of rows at a time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..data.tables import as_numbers
from ..errors import GenloomError

PAIRS_PER_BLOCK = 20_000_000  # row pairs x columns held in memory at once


MISSING = 1e6  # a missing number sits this far from every value: missing vs missing 0, missing vs a value 1


def _as_arrays(frame: pd.DataFrame, reference: pd.DataFrame, kinds: dict[str, str]):
    """Numbers scaled by the reference range (missing ones at MISSING), and categories one-hot over the
    values of both frames (missing a value of its own), for `frame` and `reference`."""
    numbers = [c for c, k in kinds.items() if k in ("numerical", "datetime")]
    categories = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
    lows, ranges = {}, {}  # from the minimum, so float32 keeps the precision of large values (dates in seconds)
    for column in numbers:
        values = as_numbers(reference[column], kinds[column])
        lows[column], ranges[column] = np.nanmin(values), np.nanmax(values) - np.nanmin(values)
    known = {c: pd.unique(pd.concat([reference[c], frame[c]]).astype(str)) for c in categories}

    def scaled(part: pd.DataFrame) -> torch.Tensor:
        # a constant column: any difference counts fully, as SDMetrics does
        columns = [(as_numbers(part[c], kinds[c]) - lows[c]) / (ranges[c] if ranges[c] > 0 else 1e-12)
                   for c in numbers]
        values = np.stack(columns, 1) if columns else np.zeros((len(part), 0))
        return torch.tensor(np.nan_to_num(values, nan=MISSING, posinf=MISSING, neginf=-MISSING), dtype=torch.float32)

    def one_hot(part: pd.DataFrame) -> torch.Tensor:
        blocks = []
        for column in categories:
            codes = pd.Categorical(part[column].astype(str), categories=known[column]).codes  # "nan" for missing
            blocks.append(F.one_hot(torch.from_numpy(codes.astype(np.int64)), len(known[column])).float())
        return torch.cat(blocks, 1) if blocks else torch.zeros(len(part), 0)

    return (scaled(frame), one_hot(frame)), (scaled(reference), one_hot(reference)), len(numbers), len(categories)


def closest_distances(frame: pd.DataFrame, reference: pd.DataFrame, kinds: dict[str, str]) -> np.ndarray:
    """For each row of `frame`, its distance (in [0, 1]) to the closest row of `reference`."""
    (numbers, one_hot), (ref_numbers, ref_one_hot), n_numbers, n_categories = _as_arrays(frame, reference, kinds)
    if n_numbers + n_categories == 0:
        raise GenloomError("privacy distances need a numerical, datetime, categorical or boolean column; "
                           "this table has only identifiers")
    block = max(1, PAIRS_PER_BLOCK // max(1, len(reference) * max(1, n_numbers)))
    result = []
    for start in range(0, len(frame), block):
        numeric = (numbers[start:start + block, None, :] - ref_numbers[None, :, :]).abs().clamp(max=1.0).sum(2)
        mismatches = n_categories - one_hot[start:start + block] @ ref_one_hot.T  # categories that differ
        result.append(((numeric + mismatches) / (n_numbers + n_categories)).min(1).values)
    return torch.cat(result).double().numpy()


def exact_copy_share(frame: pd.DataFrame, reference: pd.DataFrame, columns: list[str]) -> float:
    """Share of rows of `frame` equal, in every one of `columns`, to some row of `reference`."""
    def keys(part: pd.DataFrame) -> pd.Series:
        return pd.util.hash_pandas_object(part[columns].astype(str), index=False)
    return float(keys(frame).isin(set(keys(reference))).mean())


def privacy_scores(synthetic: pd.DataFrame, training: pd.DataFrame, held_out: pd.DataFrame,
                   kinds: dict[str, str], rows: int = 5000, seed: int = 0) -> tuple[dict[str, float], dict]:
    """DCR of synthetic and of held-out real rows to the training rows (up to `rows` of each), their ratio of
    medians (>= 1: synthetic rows are no closer to the training data than new real rows are), and the
    shares of exact copies of training rows among synthetic and among held-out rows (what the data repeats).
    Returns the scores and the two distance arrays for the report."""
    rng = np.random.default_rng(seed)
    pick = lambda part: part.iloc[np.sort(rng.choice(len(part), min(rows, len(part)), replace=False))]  # noqa: E731
    measured = {c: k for c, k in kinds.items() if k != "identifier"}
    queries = pick(synthetic), pick(held_out)  # measured in one pass: the training rows are prepared once
    distances = closest_distances(pd.concat(queries, ignore_index=True), training, measured)
    synthetic_dcr, held_out_dcr = np.split(distances, [len(queries[0])])
    columns = list(measured)
    scores = {"dcr_synthetic_median": float(np.median(synthetic_dcr)),
              "dcr_held_out_median": float(np.median(held_out_dcr)),
              # undefined (NaN, left out of the scores) when half the held-out rows repeat a training row
              "dcr_ratio": float(np.median(synthetic_dcr) / np.median(held_out_dcr))
              if np.median(held_out_dcr) > 0 else float("nan"),
              "exact_copies": exact_copy_share(synthetic, training, columns),
              "exact_copies_held_out": exact_copy_share(held_out, training, columns)}
    return scores, {"synthetic": synthetic_dcr, "held_out": held_out_dcr}
