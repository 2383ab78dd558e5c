"""Where the generated examples come from: trained runs (sampled here), or examples made some other way, one
source each, all of one data kind, and that kind the real data's."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..data.dataset import Dataset
from ..errors import GenloomError, note
from ..model import Model
from .classifier import Classifier


@dataclass
class Source:
    """One source of generated examples: a run (`model`) to sample, or its `examples` given as they are."""

    name: str
    model: Model | None = None
    examples: Any = None

    @property
    def kind(self) -> str | None:
        return self.model.codec.kind if self.model is not None else None

    def describe(self) -> dict[str, Any]:
        if self.model is None:
            return {"name": self.name, "given": "examples"}
        return {"name": self.name, "run": str(Path(self.model.run_dir).resolve()) if self.model.run_dir else None,
                "family": self.model.family_name}

    def draw(self, classifier: Classifier, n: int, seed: int, progress: bool) -> Any:
        if self.model is None:
            return classifier.check(self.examples, f"the examples of {self.name}")
        if progress:
            note(f"detector: sampling {n:,} examples from {self.name}")
        return classifier.check(self.model.sample(n, seed=seed, progress=progress), f"the samples of {self.name}")


def _source(name: str, value: Any) -> Source:
    if isinstance(value, Model):
        return Source(name, model=value)
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_dir():
            raise GenloomError(f"{value} is not a folder; give the run folders whose samples are the generated "
                               "examples")
        return Source(name, model=Model.load(path))
    return Source(name, examples=value)


def sources_of(fakes: Any) -> list[Source]:
    """Runs (folders or Models) in a list, or {name: run, Model or examples}."""
    if isinstance(fakes, (str, Path, Model)):
        fakes = [fakes]
    if isinstance(fakes, Mapping):
        sources = [_source(str(name), value) for name, value in fakes.items()]
    elif isinstance(fakes, Sequence):
        names = [str(fake) if isinstance(fake, (str, Path)) else _model_name(fake, i) for i, fake in enumerate(fakes)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise GenloomError(f"run {repeated[0]} is given twice; give each run once")
        sources = [_source(name, fake) if isinstance(fake, (str, Path, Model)) else _not_a_run(fake)
                   for name, fake in zip(names, fakes)]
    else:
        raise GenloomError(f"fakes are run folders, Models, or {{name: examples}}; got {type(fakes).__name__}")
    if not sources:
        raise GenloomError("give at least one source of generated examples: a run folder (CLI: --fake RUN)")
    return sources


def _model_name(fake: Any, index: int) -> str:
    if isinstance(fake, Model) and fake.run_dir is not None:
        return str(fake.run_dir)
    return f"source {index + 1}"


def _not_a_run(fake: Any) -> Source:
    raise GenloomError(f"a list of fakes holds run folders or Models; got {type(fake).__name__} (give examples as "
                       "{name: examples})")


def check_kinds(sources: list[Source], data: Dataset) -> None:
    """Every run must make the real data's kind; the message names runs of different kinds when they are mixed."""
    kinds = {source.name: source.kind for source in sources if source.kind is not None}
    if len(set(kinds.values())) > 1:
        shown = ", ".join(f"{name}: {kind}" for name, kind in kinds.items())
        raise GenloomError(f"the runs make different kinds of data ({shown}); a detector learns one kind: give "
                           "runs of one kind")
    for name, kind in kinds.items():
        if kind != data.kind:
            raise GenloomError(f"run {name} makes {kind} data, but the real data {data.name} is {data.kind} data; "
                               f"give runs trained on data like it")
