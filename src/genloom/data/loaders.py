"""`load_data`: a built-in name, a folder or a file -> a Dataset, with a one-line error otherwise."""
from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import GenloomError, note, warn
from ..options import whole_number
from .builtin import BUILTINS
from .domains import join_domains
from .dataset import Dataset
from .images import IMAGE_SUFFIXES, as_uint8_images, parse_image_size, read_image_folder, resize_images
from .molecules import molecules_dataset, read_smi, smiles_column, with_randomised
from .pii import anonymise_table, find_personal_columns
from .signals import AUDIO_SUFFIXES, Signals, is_audio_folder, read_audio_folder, read_series, resampled
from .tables import check_table, read_metadata, read_table
from .text import read_jsonl, read_text, read_text_folder


def load_data(source: str | Path | Dataset | np.ndarray | pd.DataFrame, *,
              image_size: int | tuple[int, int] | str | None = None, encoding: str = "utf-8",
              errors: str = "strict", text_field: str = "text", metadata: str | Path | None = None,
              target: str | None = None, anonymise: bool = False, randomised_smiles: int = 0,
              sample_rate: int | None = None) -> Dataset:
    """Load a built-in data set by name, a folder of images, recordings (WAV, FLAC, Ogg) or .txt files, a .npy/
    .npz/.txt/.jsonl/.csv/.parquet/.smi file, an image array or a DataFrame. A .npy of two dimensions holds series
    (one a row), of three or four images; recordings are resampled to `sample_rate` (default: the rate most of them
    have) and mixed down to mono; series are taken to be sampled at it (default: no rate). `encoding`, `errors`
    and `text_field` apply to text; `metadata` (a JSON of column kinds, SDV's layout), `target` (the column that
    evaluation's utility score predicts) and `anonymise` (personal data replaced by Faker's values, data/pii.py)
    to tables. A table with personal data in it is reported. Molecules: a .smi file, or a table whose column is
    named SMILES; each read by RDKit and kept in canonical form, followed by `randomised_smiles` randomised forms of
    it (augmentation; a run's held-out share may then hold forms of its training molecules)."""
    if isinstance(source, Dataset):  # loaded already; anonymised now if asked
        return _finished(source, None, anonymise) if anonymise else source
    if not isinstance(source, (str, Path, np.ndarray, pd.DataFrame)):
        raise GenloomError(f"load_data takes a built-in name ({', '.join(sorted(BUILTINS))}), a path, an image array "
                           f"or a DataFrame; got {type(source).__name__}")
    size = parse_image_size(image_size)
    randomised_smiles = whole_number("randomised_smiles", randomised_smiles, 0)
    sample_rate = None if sample_rate is None else whole_number("sample_rate", sample_rate, 100)
    text_options = {"encoding": encoding, "errors": errors, "text_field": text_field}
    table_options = {"metadata": str(Path(metadata).resolve()) if metadata else None, "target": target,
                     "anonymise": anonymise or None}
    read_metadata(metadata)  # a bad metadata file fails now, not when the codec is fitted
    if isinstance(source, pd.DataFrame):
        return _finished(Dataset("table", check_table(source, "the DataFrame"), "dataframe", source=table_options),
                         target, anonymise)
    if isinstance(source, np.ndarray):
        images = as_uint8_images(source, what="the image array")
        return _finished(Dataset("image", resize_images(images, size) if size else images, "array"), target,
                         anonymise)
    path = Path(source)
    if not path.exists():
        if str(source) in BUILTINS:
            data = BUILTINS[str(source)]()
            if randomised_smiles:
                data = _randomised(data, randomised_smiles)
            if sample_rate:
                data = _at_rate(data, sample_rate)
            return _finished(_resized(data, size) if size else data, target, anonymise)
        raise GenloomError(f"no file, folder or built-in data set named '{source}'; "
                           f"built-in ones: {', '.join(sorted(BUILTINS))}")
    if path.is_dir():
        loader = (_load_text_folder if _is_text_folder(path) else _load_audio_folder if is_audio_folder(path)
                  else _load_image_folder)
    else:
        loader = FILE_LOADERS.get(path.suffix.lower())
        if path.suffix.lower() in AUDIO_SUFFIXES:
            raise GenloomError(f"{path} is one recording; a model learns from many: give the folder that holds "
                               "them (one sub-folder per class, or none)")
        if loader is None:
            raise GenloomError(f"{path}: unsupported file type '{path.suffix}'; "
                               f"use a folder of images or one of {', '.join(sorted(FILE_LOADERS))}")
    data = (loader(path, size, **text_options) if loader in TEXT_LOADERS
            else loader(path, sample_rate) if loader is _load_audio_folder else loader(path, size))
    if randomised_smiles:
        data = _randomised(data, randomised_smiles)
    if sample_rate and data.kind != "signal":
        raise GenloomError(f"a sample rate applies to recordings; {path.name} holds {data.kind} data: leave it out")
    if sample_rate and data.values.rate is None:  # series: the rate they were sampled at
        data.values.rate = sample_rate
    options = {"image": {"image_size": list(size) if size else None}, "text": text_options,
               "table": table_options, "molecule": {"randomised_smiles": randomised_smiles or None},
               "signal": {"sample_rate": sample_rate}}[data.kind]
    data.source = {"source": str(path.resolve()), **options}
    return _finished(data, target, anonymise)


def _at_rate(data: Dataset, rate: int) -> Dataset:
    """Recordings resampled to `rate`; other data refuses the option."""
    if data.kind != "signal" or data.values.rate is None:
        raise GenloomError(f"a sample rate applies to recordings; {data.name} holds "
                           f"{'series without one' if data.kind == 'signal' else data.kind + ' data'}: leave it out")
    waves = [resampled(wave, data.values.rate, rate) for wave in data.values.waves]
    return replace(data, values=Signals(waves, rate), source={**data.source, "sample_rate": rate})


def _randomised(data: Dataset, count: int) -> Dataset:
    """Molecules each followed by `count` randomised SMILES of it; other data refuses the option."""
    if data.kind != "molecule":
        raise GenloomError(f"randomised SMILES augment molecules; this is {data.kind} data: leave the option out")
    return replace(data, values=with_randomised(data.values, count),
                   source={**data.source, "randomised_smiles": count})


def _finished(data: Dataset, target: str | None, anonymise: bool) -> Dataset:
    """The data with its target recorded and, for a table, its personal data reported or replaced."""
    data = _with_target(data, target)
    if data.kind == "table":
        return _personal_data_handled(data, anonymise)
    if anonymise:
        raise GenloomError(f"anonymise replaces personal data in tables; this is {data.kind} data: leave it out")
    return data


def _personal_data_handled(data: Dataset, anonymise: bool) -> Dataset:
    """Replace the table's personal data with Faker's values (anonymise), or warn that it holds some; either way
    the columns found are kept on the Dataset (the caller's own is left as it was)."""
    if anonymise:
        values, found = anonymise_table(data.values)
        data = replace(data, values=values, source={**data.source, "anonymise": True})
    else:
        found = find_personal_columns(data.values)
    described = {column: str(what) for column, what in found.items()}
    listed = "; ".join(f"{column}: {what}" for column, what in described.items())
    if anonymise:
        note(f"anonymised {listed} with Faker's values (one fake per value)" if found else
             f"--anonymise: no personal data found in {data.name}; its rows are used as they are")
    elif found:
        warn(f"{data.name} holds personal data ({listed}), which a model can learn and repeat: --anonymise "
             "(load_data(..., anonymise=True)) replaces it first")
    return replace(data, personal_data=described)


def _with_target(data: Dataset, target: str | None) -> Dataset:
    """Record the target column of a table (a built-in table names its own), after checking it exists."""
    if target is None:
        return data
    if data.kind != "table":
        raise GenloomError(f"a target column applies to tables; this data is {data.kind} data")
    if target not in data.values.columns:
        raise GenloomError(f"target column {target!r} is not in {data.name}; columns: "
                           f"{', '.join(map(str, data.values.columns))}")
    if data.values.shape[1] == 1:
        raise GenloomError(f"the target {target!r} is the only column of {data.name}: utility predicts it from the "
                           "other columns; leave the target out, or give a table with more columns")
    classes = data.values[target].dropna().unique()
    if len(classes) < 2:
        raise GenloomError(f"the target {target!r} of {data.name} holds one value only "
                           f"({classes[0] if len(classes) else 'none'!r}); utility needs two classes or more: "
                           "name another column, or leave the target out")
    data.source["target"] = target
    return data


def _is_text_folder(path: Path) -> bool:
    return any(path.glob("*.txt")) and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*"))


def _corpus(text: str, path: Path, name: str) -> Dataset:
    if not text.strip():
        raise GenloomError(f"{path} holds no text; give a corpus with at least a few thousand characters")
    return Dataset("text", text, name)


def _load_text_file(path: Path, size, **options) -> Dataset:
    return _corpus(read_text(path, options["encoding"], options["errors"]), path, path.stem)


def _load_text_folder(path: Path, size, **options) -> Dataset:
    return _corpus(read_text_folder(path, options["encoding"], options["errors"]), path, path.name)


def _load_jsonl(path: Path, size, **options) -> Dataset:
    return _corpus(read_jsonl(path, options["text_field"], options["encoding"], options["errors"]), path, path.stem)


def load_source(source: dict) -> Dataset:
    """Load the data a run recorded in config.json (its `source` and the options it was read with)."""
    if "domains" in source:  # two image sets of a translation
        return join_domains(*(load_source(part) for part in source["domains"]))
    if "source" not in source:
        raise GenloomError("this run was trained on in-memory data, which is not on record; pass the data again")
    return load_data(source["source"], **{k: v for k, v in source.items() if k != "source" and v is not None})


def _resized(data: Dataset, size: tuple[int, int]) -> Dataset:
    data.values = resize_images(data.values, size)
    data.source["image_size"] = list(size)
    return data


def _load_image_folder(path: Path, size: tuple[int, int] | None) -> Dataset:
    images, labels, class_names = read_image_folder(path, size)
    return Dataset("image", images, path.name, labels, class_names)


def _load_audio_folder(path: Path, rate: int | None) -> Dataset:
    signals, labels, class_names = read_audio_folder(path, rate)
    return Dataset("signal", signals, path.name, labels, class_names)


def _load_array(path: Path, size: tuple[int, int] | None) -> Dataset:
    """A .npy of two dimensions holds series, one a row; else images. A .npz holds `images` (or `x`) and optional
    `labels` (or `y`)."""
    try:
        images, labels = _read_arrays(path)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise GenloomError(f"{path} is not a readable numpy file ({error}); save it with numpy.save/savez") from None
    if images.ndim == 2 and labels is None:
        if size:
            raise GenloomError(f"{path} holds series (a 2-D array), not images: leave the image size out")
        return Dataset("signal", read_series(images, path), path.stem)
    images = as_uint8_images(images, what=str(path))
    if size:
        images = resize_images(images, size)
    class_names = None
    if labels is not None:
        labels, class_names = _label_ids(np.asarray(labels), len(images), path)
    return Dataset("image", images, path.stem, labels, class_names)


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    archive = np.load(path, allow_pickle=False)  # never unpickle a stranger's objects
    if not isinstance(archive, np.lib.npyio.NpzFile):
        return archive, None
    with archive:
        keys = set(archive.files)
        image_key = next((k for k in ("images", "x", "X") if k in keys), None)
        if image_key is None:
            raise GenloomError(f"{path} has arrays {sorted(keys)}; name the images 'images' (and labels 'labels')")
        label_key = next((k for k in ("labels", "y") if k in keys), None)
        return archive[image_key], (archive[label_key] if label_key else None)


def _label_ids(labels: np.ndarray, n: int, path: Path) -> tuple[np.ndarray, list[str]]:
    if labels.shape != (n,):
        raise GenloomError(f"{path}: {labels.shape} labels for {n} images; give one label per image")
    names, ids = np.unique(labels, return_inverse=True)
    return ids.astype(np.int64), [str(name) for name in names]


def _load_table(path: Path, size) -> Dataset:
    """A table, or molecules where it has a SMILES column."""
    frame = read_table(path)
    column = smiles_column(list(frame.columns))
    if column is None:
        return Dataset("table", frame, path.stem)
    others = [name for name in frame.columns if name != column]
    if others:
        note(f"{path.name}: molecules from its column {column!r}; {', '.join(map(repr, others[:5]))} left out")
    return molecules_dataset(frame[column].tolist(), path.stem, str(path))


def _load_smi(path: Path, size) -> Dataset:
    return molecules_dataset(read_smi(path), path.stem, str(path))


TEXT_LOADERS = (_load_text_file, _load_text_folder, _load_jsonl)
FILE_LOADERS: dict[str, Callable[..., Dataset]] = {
    ".npy": _load_array,
    ".npz": _load_array,
    ".txt": _load_text_file,
    ".jsonl": _load_jsonl,
    ".csv": _load_table,
    ".tsv": _load_table,
    ".parquet": _load_table,
    ".smi": _load_smi,
}
