"""Text: character n-grams (1 to 4 characters, hashed: scikit-learn's HashingVectorizer is stateless, so nothing
but its settings is stored) and a logistic regression whose weights go to safetensors."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ..data.dataset import Dataset
from ..errors import GenloomError, note
from ..files import atomic_path
from .classifier import Classifier, damaged, wrong_files

NGRAMS = (1, 4)
FEATURES = 2 ** 18
REGULARISATION = 1.0  # scikit-learn's C
MIN_LENGTH = 8        # real passages are at least this many characters


class TextClassifier(Classifier):
    kind = "text"
    method = "character 1-4-grams, hashed, and a logistic regression"
    default_steps = 300
    steps_are = "solver iterations at most"
    weights_file = "detector.safetensors"
    reads = ".txt files (each one example)"

    def __init__(self, input: dict[str, Any], coef: np.ndarray | None = None, intercept: float = 0.0):
        super().__init__(input)
        from sklearn.feature_extraction.text import HashingVectorizer

        self.vectorizer = HashingVectorizer(analyzer="char", ngram_range=tuple(input["ngram_range"]),
                                            n_features=int(input["n_features"]), alternate_sign=False,
                                            lowercase=False, norm="l2")
        self.coef, self.intercept = coef, intercept

    @classmethod
    def for_data(cls, data: Dataset) -> TextClassifier:
        return cls({"ngram_range": list(NGRAMS), "n_features": FEATURES})

    def real_examples(self, data: Dataset, n: int, rng: np.random.Generator, generated: Any) -> list[str]:
        """Passages of the corpus as long as the generated texts are (their median length in characters), at
        random places that do not overlap."""
        length = max(MIN_LENGTH, int(np.median([len(text) for text in generated])))
        places = len(data.values) // length
        if places < 2:
            raise GenloomError(f"{data.name} holds {len(data.values):,} characters: too few for two real passages as "
                               f"long as the generated texts ({length} characters); give a longer corpus")
        starts = np.sort(rng.permutation(places)[:n]) * length
        return [data.values[start:start + length] for start in starts]

    def check(self, examples: Any, what: str = "the texts") -> list[str]:
        texts = [examples] if isinstance(examples, str) else list(examples)
        if not texts or not all(isinstance(text, str) for text in texts):
            raise GenloomError(f"{what}: a text detector scores strings (a list of texts)")
        return texts

    def read_files(self, paths: Sequence[Path]) -> tuple[list[str], list[str]]:
        texts = []
        for path in paths:
            if path.suffix.lower() != ".txt":
                raise wrong_files(self, path)
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise GenloomError(f"{path} does not exist; name the text files to score") from None
            except UnicodeDecodeError:
                raise GenloomError(f"{path} is not UTF-8 text") from None
        return texts, [str(path) for path in paths]

    @staticmethod
    def take(examples: list[str], rows: np.ndarray) -> list[str]:
        return [examples[i] for i in rows]

    @staticmethod
    def join(parts: list[list[str]]) -> list[str]:
        return [text for part in parts for text in part]

    def fit(self, examples: list[str], generated: np.ndarray, weights: np.ndarray, steps: int, seed: int,
            progress: bool) -> None:
        from sklearn.linear_model import LogisticRegression

        if progress:
            note(f"detector: logistic regression on the character n-grams of {len(examples):,} texts")
        model = LogisticRegression(C=REGULARISATION, max_iter=steps, random_state=seed)
        model.fit(self.vectorizer.transform(examples), generated, sample_weight=weights * len(weights))
        # scores come from the stored float32 weights, here as after loading: a round trip scores the same
        self.coef, self.intercept = model.coef_[0].astype(np.float32), float(model.intercept_[0])

    def predict(self, examples: list[str]) -> np.ndarray:
        logits = self.vectorizer.transform(examples) @ self.coef.astype(np.float64) + self.intercept
        return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def save(self, folder: Path) -> None:
        with atomic_path(folder / self.weights_file) as tmp:
            save_file({"coef": self.coef, "intercept": np.array([self.intercept])}, str(tmp))

    @classmethod
    def load(cls, folder: Path, input: dict[str, Any]) -> TextClassifier:
        try:
            weights = load_file(str(folder / cls.weights_file))
            coef, intercept = weights["coef"], float(weights["intercept"][0])
        except (SafetensorError, OSError, KeyError, IndexError) as error:
            raise damaged(folder, cls.weights_file, error) from None
        if coef.shape != (int(input["n_features"]),):
            raise damaged(folder, cls.weights_file, f"{coef.shape[0]} weights for {input['n_features']} features")
        return cls(input, coef, intercept)
