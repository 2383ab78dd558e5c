"""Images: a small CNN (four 3x3 convolutions of 16 to 64 channels, two of them strided, pooled to 4x4, one linear
output) trained for a bounded number of steps on balanced batches, half real, half generated."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.dataset import Dataset
from ..data.images import as_uint8_images
from ..data.sample_files import read_png_samples
from ..errors import GenloomError, note
from ..files import atomic_path
from .classifier import Classifier, damaged, wrong_files

WIDTH = 32          # channels of the first convolutions (twice that in the last two)
BATCH = 64          # examples per step, half of them real
LEARNING_RATE = 1e-3
SCORE_BATCH = 512
PROGRESS_EVERY = 100


def small_cnn(channels: int, width: int = WIDTH) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, width // 2, 3, padding=1), nn.SiLU(),
        nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * width * 16, 1))


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 127.5 - 1


class ImageClassifier(Classifier):
    kind = "image"
    method = "small CNN (4 conv layers)"
    default_steps = 300
    steps_are = "CNN updates of 64 examples"
    weights_file = "detector.safetensors"
    reads = "PNG files or an .npy of images"

    def __init__(self, input: dict[str, Any]):
        super().__init__(input)
        self.shape = tuple(input["shape"])  # (H, W, C)
        self.net = small_cnn(self.shape[2], input.get("width", WIDTH))

    @classmethod
    def for_data(cls, data: Dataset) -> ImageClassifier:
        return cls({"shape": list(np.shape(data.values)[1:]), "width": WIDTH})

    def _size(self, shape: Sequence[int]) -> str:
        return "x".join(map(str, shape))

    def check_run(self, model: Any, name: str) -> None:
        channels, height, width = model.codec.layout.shape
        if (height, width, channels) != self.shape:
            raise GenloomError(f"run {name} makes {self._size((height, width, channels))} images; the real images are "
                               f"{self._size(self.shape)}: give real data of the run's size (load_data(..., "
                               "image_size=...), CLI: --image-size)")

    def real_examples(self, data: Dataset, n: int, rng: np.random.Generator, generated: Any) -> np.ndarray:
        return data.values[np.sort(rng.permutation(len(data))[:n])]

    def check(self, examples: Any, what: str = "the examples") -> np.ndarray:
        images = as_uint8_images(np.asarray(examples), what=what)
        if images.shape[1:] != self.shape:
            raise GenloomError(f"this detector takes {self._size(self.shape)} images; {what} are "
                               f"{self._size(images.shape[1:])}: resize them first")
        return images

    def read_files(self, paths: Sequence[Path]) -> tuple[np.ndarray, list[str]]:
        parts, names = [], []
        for path in paths:
            suffix = path.suffix.lower()
            if suffix == ".npy":
                try:
                    array = np.load(path, allow_pickle=False)
                except (ValueError, OSError, EOFError) as error:
                    raise GenloomError(f"{path} is not a readable numpy file ({error}); save it with "
                                       "numpy.save") from None
                images = self.check(array, str(path))
                names += [f"{path}[{i}]" for i in range(len(images))]
            elif suffix == ".png":  # one image, or each image of a grid genloom wrote
                images, labels = read_png_samples(path, "L" if self.shape[2] == 1 else "RGB")
                images = self.check(images, str(path))
                names += labels
            else:
                raise wrong_files(self, path)
            parts.append(images)
        return np.concatenate(parts), names

    @staticmethod
    def take(examples: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return examples[rows]

    @staticmethod
    def join(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)

    def fit(self, examples: np.ndarray, generated: np.ndarray, weights: np.ndarray, steps: int, seed: int,
            progress: bool) -> None:
        """Each batch draws half its examples from the real ones and half from the generated ones (balanced
        classes, whatever their counts), with replacement."""
        with torch.random.fork_rng(devices=[]):  # the caller's torch seed stays as it was
            torch.manual_seed(seed)
            self._train(examples, generated, steps, np.random.default_rng(seed), progress)

    def _train(self, examples: np.ndarray, generated: np.ndarray, steps: int, rng: np.random.Generator,
               progress: bool) -> None:
        real, fake = np.flatnonzero(generated == 0), np.flatnonzero(generated == 1)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE)
        labels = torch.cat([torch.zeros(BATCH // 2), torch.ones(BATCH // 2)])[:, None]
        self.net.train()
        running = None
        for step in range(1, steps + 1):
            rows = np.concatenate([rng.choice(real, BATCH // 2), rng.choice(fake, BATCH // 2)])
            loss = nn.functional.binary_cross_entropy_with_logits(self.net(as_tensor(examples[rows])), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
            if progress and (step % PROGRESS_EVERY == 0 or step == steps):
                note(f"detector: CNN step {step}/{steps}, loss {running:.4f}")
        self.net.eval()

    @torch.no_grad()
    def predict(self, examples: np.ndarray) -> np.ndarray:
        self.net.eval()
        chunks = [torch.sigmoid(self.net(as_tensor(examples[i:i + SCORE_BATCH])))[:, 0]
                  for i in range(0, len(examples), SCORE_BATCH)]
        return torch.cat(chunks).double().numpy()

    def save(self, folder: Path) -> None:
        with atomic_path(folder / self.weights_file) as tmp:
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp))

    @classmethod
    def load(cls, folder: Path, input: dict[str, Any]) -> ImageClassifier:
        classifier = cls(input)
        try:
            classifier.net.load_state_dict(load_file(str(folder / cls.weights_file)))
        except (SafetensorError, OSError, RuntimeError) as error:
            raise damaged(folder, cls.weights_file, error) from None
        classifier.net.eval()
        return classifier
