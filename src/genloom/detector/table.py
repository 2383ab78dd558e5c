"""Tables: LightGBM's gradient-boosted trees over the rows as numbers (metrics.tabular.FeatureMatrix: numbers and
dates as floats, categories as codes fixed on the real rows, unseen ones missing). LightGBM writes its model as
text, so the detector holds no pickle."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.tables import column_kinds, read_metadata, read_table
from ..errors import GenloomError, note
from ..files import atomic_path
from ..metrics.tabular import FeatureMatrix
from .classifier import Classifier, damaged, wrong_files

TREE_SETTINGS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
                 "feature_fraction": 0.9, "verbose": -1, "deterministic": True, "force_row_wise": True,
                 "num_threads": 1}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")


class TableClassifier(Classifier):
    kind = "table"
    method = "LightGBM gradient-boosted trees"
    default_steps = 200
    steps_are = "boosting rounds"
    weights_file = "detector.lightgbm.txt"
    reads = "table files (.csv, .tsv, .parquet)"

    def __init__(self, input: dict[str, Any], booster: Any = None):
        super().__init__(input)
        self.features = FeatureMatrix.from_json(input)
        self.booster = booster

    @classmethod
    def for_data(cls, data: Dataset) -> TableClassifier:
        kinds = column_kinds(data.values, read_metadata(data.source.get("metadata")))
        return cls(FeatureMatrix(data.values, kinds).to_json())

    @property
    def names(self) -> list[str]:
        return self.features.columns()

    def check_run(self, model: Any, name: str) -> None:
        made = [c for c, kind in model.codec.kinds.items() if kind != "identifier"]
        missing = [c for c in self.names if c not in made]
        if missing:
            raise GenloomError(f"run {name} makes rows without column {', '.join(map(repr, missing))} of the real "
                               f"table; its columns: {', '.join(made)}")

    def real_examples(self, data: Dataset, n: int, rng: np.random.Generator, generated: Any) -> pd.DataFrame:
        return data.values.iloc[np.sort(rng.permutation(len(data))[:n])].reset_index(drop=True)

    def check(self, examples: Any, what: str = "the rows") -> pd.DataFrame:
        frame = examples if isinstance(examples, pd.DataFrame) else pd.DataFrame(examples)
        missing = [c for c in self.names if c not in frame.columns]
        if missing:
            raise GenloomError(f"{what} lack column {', '.join(map(repr, missing))}; this detector reads the columns "
                               f"{', '.join(self.names)}")
        return frame[self.names].reset_index(drop=True)

    def read_files(self, paths: Sequence[Path]) -> tuple[pd.DataFrame, list[str]]:
        parts, names = [], []
        for path in paths:
            if path.suffix.lower() not in TABLE_SUFFIXES:
                raise wrong_files(self, path)
            if not path.is_file():
                raise GenloomError(f"{path} is not a file; give the tables to score")
            frame = self.check(read_table(path), str(path))
            parts.append(frame)
            names += [f"{path}[{i}]" for i in range(len(frame))]
        return self.join(parts), names

    @staticmethod
    def take(examples: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
        return examples.iloc[rows].reset_index(drop=True)

    @staticmethod
    def join(parts: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return self.features(self.check(frame))

    def fit(self, examples: pd.DataFrame, generated: np.ndarray, weights: np.ndarray, steps: int, seed: int,
            progress: bool) -> None:
        import lightgbm  # its import loads OpenMP: only when a table detector is used

        mask = self.features.categorical_mask()
        rows = lightgbm.Dataset(self._matrix(examples), generated, weight=weights,
                                feature_name=[f"f{i}" for i in range(len(mask))],
                                categorical_feature=[i for i, categorical in enumerate(mask) if categorical])
        if progress:
            note(f"detector: {steps} boosting rounds over {len(generated):,} rows")
        self.booster = lightgbm.train({**TREE_SETTINGS, "seed": seed}, rows, num_boost_round=steps)

    def predict(self, examples: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(self._matrix(examples)), dtype=np.float64)

    def save(self, folder: Path) -> None:
        with atomic_path(folder / self.weights_file) as tmp:
            self.booster.save_model(str(tmp))

    @classmethod
    def load(cls, folder: Path, input: dict[str, Any]) -> TableClassifier:
        import lightgbm  # its import loads OpenMP: only when a table detector is used

        path = folder / cls.weights_file
        try:
            if not path.is_file():
                raise OSError("no such file")
            booster = lightgbm.Booster(model_file=str(path))
        except (lightgbm.basic.LightGBMError, OSError, ValueError) as error:
            raise damaged(folder, cls.weights_file, error) from None
        if booster.num_feature() != len(FeatureMatrix.from_json(input).columns()):
            raise damaged(folder, cls.weights_file, f"its trees read {booster.num_feature()} columns, the record "
                                                    f"names {len(input['kinds'])}")
        return cls(input, booster)
