"""The bad-input catalogue: what a new user, or a hostile one, might give the command line and the Python API.

Every case must end in one line that names the problem (`genloom: error: ...` and exit code 2 on the command
line, a GenloomError without a line break in Python), never a traceback, and must change nothing that was on
disk. The runs the cases use are made once per test session; the command runs in-process, so the whole
catalogue takes seconds."""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import genloom as gl
from genloom.cli import main
from tests.conftest import QUIET, TINY_VAE, write_images, write_tones

TRAIN = ["--steps", 1, "--quiet"]


# -- the runs and files the cases read ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def table_run(tmp_path_factory) -> str:
    """A tiny VAE on a table with an identifier, a number and a category; read-only."""
    out = tmp_path_factory.mktemp("runs") / "table-vae"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": np.arange(300), "size": rng.normal(0, 1, 300),
                          "colour": rng.choice(["red", "blue"], 300)})
    frame.to_csv(out.parent / "table.csv", index=False)
    gl.Model("vae", **TINY_VAE).fit(out.parent / "table.csv", steps=3, out=out, **QUIET)
    return str(out)


@pytest.fixture(scope="session")
def diffusion_run(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("runs") / "digits-diffusion"
    gl.Model("diffusion", width=8, timesteps=50).fit("digits", steps=2, out=out, **QUIET)
    return str(out)


@pytest.fixture(scope="session")
def detector_folder(tmp_path_factory) -> str:
    """A synthetic-content detector of 8x8 digits against noise, trained a few steps; read-only."""
    out = tmp_path_factory.mktemp("detectors") / "digits-detector"
    noise = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1)).astype(np.uint8)
    gl.train_detector("digits", {"noise": noise}, steps=2, out=out, progress=False)
    return str(out)


class Place:
    """A case's own folder, the shared runs, and makers of bad files."""

    def __init__(self, root: Path, runs: dict[str, str]):
        self.root, self.runs = root, {name: Path(path) for name, path in runs.items()}

    image = property(lambda self: self.runs["image"])          # a conditional VAE on digits
    text = property(lambda self: self.runs["text"])            # a character GPT on tiny Shakespeare
    table = property(lambda self: self.runs["table"])          # a VAE on a table with an id, a number, a category
    diffusion = property(lambda self: self.runs["diffusion"])  # unconditional diffusion on digits, 50 timesteps
    detector = property(lambda self: self.runs["detector"])    # a detector of 8x8 digits against noise
    molecule = property(lambda self: self.runs["molecule"])    # a tiny GPT on 2,000 MOSES molecules
    signal = property(lambda self: self.runs["signal"])        # a tiny conditional diffusion on two tones
    dynamics = property(lambda self: self.runs["dynamics"])    # diffusion of next_x given x and action

    def folder(self, name: str) -> Path:
        (self.root / name).mkdir()
        return self.root / name

    def file(self, name: str, content: bytes | str = b"") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def array(self, name: str, value: Any, **arrays: Any) -> Path:
        path = self.root / name
        np.savez(path, **arrays) if name.endswith(".npz") else np.save(path, value, allow_pickle=True)
        return path

    def csv(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.root / name
        frame.to_csv(path, index=False)
        return path

    def copy(self, run: str, damage: Callable[[Path], Any] | None = None) -> Path:
        """A copy of a shared run, damaged; the copy is part of what must not change further."""
        path = shutil.copytree(self.runs[run], self.root / f"copy-{run}")
        if damage is not None:
            damage(path)
        return path

    @property
    def out(self) -> Path:
        return self.root / "out"


def _edit_json(path: Path, edit: Callable[[dict], Any]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


class Payload:
    """Unpickling this writes a file: if a case's file ran code, the file appears."""

    def __reduce__(self):
        return (Path.write_text, (Path("/tmp/genloom-catalogue-pwned"), "code ran"))


def _pickled_checkpoint(run: Path) -> None:
    with open(run / "trainer.pt", "wb") as handle:
        pickle.dump({"step": Payload()}, handle)


def _zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@dataclass
class Case:
    id: str
    args: Callable[[Place], list]   # the command line (or, for API cases, a call that must fail)
    message: str                    # what the one line must say


def cli(id: str, args: Callable[[Place], list], message: str) -> Case:
    return Case(id, args, message)


# -- data files given to `genloom train` ----------------------------------------------------------------------
DATA = [
    cli("missing path", lambda p: ["train", p.root / "nowhere.npz", "--out", p.out, *TRAIN],
        "no file, folder or built-in data set named"),
    cli("unknown built-in", lambda p: ["train", "cifar", "--out", p.out, *TRAIN], "built-in ones: adult, breast_cancer"),
    cli("empty folder", lambda p: ["train", p.folder("empty"), "--out", p.out, *TRAIN], "no images found"),
    cli("a non-image in an image folder", lambda p: (write_images(p.root / "f", [(8, 8)] * 2),
        p.file("f/notes.doc", "x"), ["train", p.root / "f", "--out", p.out, *TRAIN])[-1], "notes.doc is not an image file"),
    cli("a corrupt png", lambda p: (write_images(p.root / "f", [(8, 8)] * 2), p.file("f/x.png", "garbage"),
        ["train", p.root / "f", "--out", p.out, *TRAIN])[-1], "x.png is not a readable image"),
    cli("images of two sizes", lambda p: (write_images(p.root / "f", [(8, 8), (9, 9)]),
        ["train", p.root / "f", "--out", p.out, *TRAIN])[-1], "images differ in size"),
    cli("a spreadsheet", lambda p: ["train", p.file("t.xlsx", "x"), "--out", p.out, *TRAIN], "unsupported file type '.xlsx'"),
    cli("a file without a suffix", lambda p: ["train", p.file("data", "x"), "--out", p.out, *TRAIN],
        "unsupported file type ''"),
    cli("a pickled object array", lambda p: ["train", p.array("o.npy", np.array([Payload()], dtype=object)), "--out",
        p.out, *TRAIN], "is not a readable numpy file"),
    cli("a one-dimensional array", lambda p: ["train", p.array("a.npy", np.zeros(10)), "--out", p.out, *TRAIN],
        "must be an array of shape (N, H, W) or (N, H, W, C)"),
    cli("two channels", lambda p: ["train", p.array("a.npy", np.zeros((4, 8, 8, 2))), "--out", p.out, *TRAIN],
        "must have 1, 3 or 4 channels"),
    cli("NaN pixels", lambda p: ["train", p.array("a.npy", np.full((4, 8, 8), np.nan)), "--out", p.out, *TRAIN],
        "NaN or infinite pixels"),
    cli("float pixels out of range", lambda p: ["train", p.array("a.npy", np.full((4, 8, 8), 5.0)), "--out", p.out,
        *TRAIN], "float pixels must lie in [0, 1] or [-1, 1]"),
    cli("integer pixels out of range", lambda p: ["train", p.array("a.npy", np.full((4, 8, 8), 300)), "--out",
        p.out, *TRAIN], "integer pixels must lie in 0..255"),
    cli("no images in an npz", lambda p: ["train", p.array("a.npz", None, pictures=np.zeros((4, 8, 8))), "--out",
        p.out, *TRAIN], "name the images 'images'"),
    cli("labels of another length", lambda p: ["train", p.array("a.npz", None, images=np.zeros((4, 8, 8)),
        labels=np.zeros(3)), "--out", p.out, *TRAIN], "(3,) labels for 4 images"),
    cli("no images at all", lambda p: ["train", p.array("a.npy", np.zeros((0, 8, 8))), "--out", p.out, *TRAIN],
        "is empty: give at least one image"),
    cli("text pixels", lambda p: ["train", p.array("a.npy", np.full((2, 4, 4), "x")), "--out", p.out, *TRAIN],
        "unsupported pixel type"),
    cli("a corrupt zip archive", lambda p: ["train", p.file("a.npz", b"PK\x03\x04 not a zip"), "--out", p.out, *TRAIN],
        "is not a readable numpy file"),
    cli("an empty text", lambda p: ["train", p.file("c.txt"), "--family", "autoregressive", "--out", p.out, *TRAIN],
        "holds no text"),
    cli("a text of blanks", lambda p: ["train", p.file("c.txt", "   \n\n  "), "--family", "autoregressive", "--out",
        p.out, *TRAIN], "holds no text"),
    cli("bytes that are not utf-8", lambda p: ["train", p.file("c.txt", b"caf\xc3\xa9 \xff"), "--family",
        "autoregressive", "--out", p.out, *TRAIN], "byte 0xff at offset 6"),
    cli("a corpus shorter than a block", lambda p: ["train", p.file("c.txt", "too short"), "--family",
        "autoregressive", "--out", p.out, *TRAIN], "not more than one block"),
    cli("an unknown encoding", lambda p: ["train", p.file("c.txt", "text"), "--encoding", "klingon", "--out", p.out,
        *TRAIN], "unknown text encoding 'klingon'"),
    cli("a line of jsonl that is not JSON", lambda p: ["train", p.file("c.jsonl", '{"text": "a"}\n{oops\n'),
        "--family", "autoregressive", "--out", p.out, *TRAIN], "line 2: not JSON"),
    cli("a jsonl without the text field", lambda p: ["train", p.file("c.jsonl", '{"body": "a"}\n'), "--family",
        "autoregressive", "--out", p.out, *TRAIN], "no text field 'text'"),
    cli("a jsonl line that is a list", lambda p: ["train", p.file("c.jsonl", '[1, 2]\n'), "--family",
        "autoregressive", "--out", p.out, *TRAIN], "line 1: no text field 'text'"),
    cli("an empty csv", lambda p: ["train", p.file("t.csv"), "--out", p.out, *TRAIN], "is empty; give a table"),
    cli("a csv with a header only", lambda p: ["train", p.file("t.csv", "a,b\n"), "--out", p.out, *TRAIN],
        "has a header but no rows"),
    cli("a repeated column name", lambda p: ["train", p.file("t.csv", "a,b,a\n1,2,3\n"), "--out", p.out, *TRAIN],
        "repeats the column name 'a'"),
    cli("a column of nothing", lambda p: ["train", p.file("t.csv", "a,b\n1,\n2,\n"), "--out", p.out, *TRAIN],
        "column 'b' of"),
    cli("an infinite value", lambda p: ["train", p.file("t.csv", "a,b\n1,2\ninf,3\n"), "--out", p.out, *TRAIN],
        "column 'a' of"),
    cli("a value of 1e308", lambda p: ["train", p.file("t.csv", "a,b\n1,2\n1e308,3\n"), "--out", p.out, *TRAIN],
        "has an infinite or too large value (1e+308 in row 2"),
    cli("numbers mixed with text", lambda p: ["train", p.csv("t.csv", pd.DataFrame(
        {"a": [str(i) for i in range(20)] + ["twenty"]})), "--out", p.out, *TRAIN], "column 'a' mixes numbers and text"),
    cli("an unclosed quote", lambda p: ["train", p.file("t.csv", 'a,b\n"1,2\n3,4\n'), "--out", p.out, *TRAIN],
        "is not a readable table"),
    cli("a table that is not utf-8", lambda p: ["train", p.file("t.csv", b"a,b\n\xff\xfe,1\n"), "--out", p.out,
        *TRAIN], "is not a readable table"),
    cli("a parquet file of garbage", lambda p: ["train", p.file("t.parquet", "garbage"), "--out", p.out, *TRAIN],
        "is not a readable table"),
    cli("an empty tsv", lambda p: ["train", p.file("t.tsv"), "--out", p.out, *TRAIN], "is empty"),
    cli("a missing metadata file", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": [1, 2]})), "--metadata",
        p.root / "nowhere.json", "--out", p.out, *TRAIN], "is not a metadata file like"),
    cli("metadata that is not JSON", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": [1, 2]})), "--metadata",
        p.file("m.json", "{"), "--out", p.out, *TRAIN], "is not a metadata file like"),
    cli("an unknown column kind", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": [1, 2]})), "--metadata",
        p.file("m.json", '{"columns": {"a": {"sdtype": "colour"}}}'), "--out", p.out, *TRAIN],
        "unknown column kind 'colour'"),
    cli("metadata of a missing column", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": range(20)})),
        "--metadata", p.file("m.json", '{"columns": {"b": {"sdtype": "numerical"}}}'), "--out", p.out, *TRAIN],
        "names column 'b', which the table does not have"),
    cli("a target that is not a column", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": range(20)})),
        "--target", "b", "--out", p.out, *TRAIN], "target column 'b' is not in t"),
    cli("a table of one row", lambda p: ["train", p.file("t.csv", "a,b\n1,x\n"), "--out", p.out, *TRAIN],
        "t has 1 row; a model learns from 10 rows at the least"),
    cli("a target of one class", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": range(20), "b": ["x"] * 20})),
        "--target", "b", "--out", p.out, *TRAIN], "the target 'b' of t holds one value only ('x')"),
    cli("a target that is the only column", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": range(20)})),
        "--target", "a", "--out", p.out, *TRAIN], "the target 'a' is the only column of t"),
    cli("a budget too short for the codec", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": range(200)})),
        "--minutes", "0.0001", "--out", p.out, "--quiet"], "minutes=0.0001 is too short: reading the data, "
        "fitting the codec and building the model took"),
    cli("a target for images", lambda p: ["train", "digits", "--target", "label", "--out", p.out, *TRAIN],
        "a target column applies to tables"),
    cli("text declared numerical", lambda p: ["train", p.csv("t.csv", pd.DataFrame({"a": ["x", "y", "z"] * 4})),
        "--metadata", p.file("m.json", '{"columns": {"a": {"sdtype": "numerical"}}}'), "--out", p.out, *TRAIN],
        "column 'a' holds no numbers"),
    cli("too many categories", lambda p: ["train", p.csv("t.csv", pd.DataFrame(
        {"a": [f"v{i % 15_000}" for i in range(21_000)]})), "--out", p.out, *TRAIN], "too many to model as categories"),
    cli("an image size of 0", lambda p: ["train", "digits", "--image-size", "0", "--out", p.out, *TRAIN],
        "image size 0 is impossible"),
    cli("an image size of words", lambda p: ["train", "digits", "--image-size", "big", "--out", p.out, *TRAIN],
        "image size 'big' is not understood"),
    cli("a text file among images", lambda p: (write_images(p.root / "f", [(8, 8)]), p.file("f/a.txt", "x"),
        ["train", p.root / "f", "--out", p.out, *TRAIN])[-1], "a.txt is not an image file"),
]

# -- options of `genloom train` -------------------------------------------------------------------------------
OPTIONS = [
    cli("a circuit of too many qubits", lambda p: ["train", "digits", "--family", "gan", "--backbone", "quantum",
                                                   "--qubits", 20, "--out", p.out],
        "a 20-qubit circuit is more than the simulator handles here (at most 12 qubits)"),
    cli("a quantum noise size other than the qubits", lambda p: ["train", "digits", "--family", "gan", "--backbone",
                                                                 "quantum", "--latent-dim", 8, "--out", p.out],
        "latent_dim must be 5 (the qubits), not 8"),
    cli("a quantum stylegan", lambda p: ["train", "digits", "--family", "stylegan", "--backbone", "quantum",
                                         "--out", p.out], "stylegan has its own generator"),
    cli("an unknown family", lambda p: ["train", "digits", "--family", "flow"], "argument --family: invalid choice: 'flow'"),
    cli("zero minutes", lambda p: ["train", "digits", "--minutes", 0, "--out", p.out], "minutes must be greater than 0"),
    cli("negative minutes", lambda p: ["train", "digits", "--minutes", -2, "--out", p.out], "minutes must be greater than 0"),
    cli("minutes in words", lambda p: ["train", "digits", "--minutes", "ten"], "argument --minutes: invalid float value"),
    cli("zero steps", lambda p: ["train", "digits", "--steps", 0, "--out", p.out], "steps must be at least 1; got 0"),
    cli("a fraction of a step", lambda p: ["train", "digits", "--steps", "2.5"], "argument --steps: invalid int value"),
    cli("zero epochs", lambda p: ["train", "digits", "--epochs", 0, "--out", p.out], "epochs must be greater than 0"),
    cli("a batch of zero", lambda p: ["train", "digits", "--batch-size", 0, "--out", p.out, *TRAIN],
        "batch_size must be at least 1; got 0"),
    cli("a learning rate of zero", lambda p: ["train", "digits", "--lr", 0, "--out", p.out, *TRAIN],
        "lr must be greater than 0"),
    cli("a negative learning rate", lambda p: ["train", "digits", "--lr", -1, "--out", p.out, *TRAIN],
        "lr must be greater than 0"),
    cli("a learning rate of nan", lambda p: ["train", "digits", "--lr", "nan", "--out", p.out, *TRAIN],
        "lr must be a finite number; got nan"),
    cli("an infinite learning rate", lambda p: ["train", "digits", "--lr", "inf", "--out", p.out, *TRAIN],
        "lr must be a finite number; got inf"),
    cli("negative warm-up", lambda p: ["train", "digits", "--warmup-steps", -1, "--out", p.out, *TRAIN],
        "warmup_steps must be at least 0"),
    cli("a final rate above the peak", lambda p: ["train", "digits", "--min-lr-ratio", 2, "--out", p.out, *TRAIN],
        "min_lr_ratio must lie in [0, 1]"),
    cli("an average that never moves", lambda p: ["train", "digits", "--ema-decay", 1, "--out", p.out, *TRAIN],
        "ema_decay must lie in [0, 1)"),
    cli("no clipping room", lambda p: ["train", "digits", "--grad-clip", 0, "--out", p.out, *TRAIN],
        "grad_clip must be greater than 0"),
    cli("everything held out", lambda p: ["train", "digits", "--val-fraction", 1, "--out", p.out, *TRAIN],
        "val_fraction must lie in [0, 1)"),
    cli("a beta of one", lambda p: ["train", "digits", "--adam-beta1", 1, "--out", p.out, *TRAIN],
        "adam_beta1 must lie in [0, 1)"),
    cli("an unknown optimizer", lambda p: ["train", "digits", "--optimizer", "sgd"], "argument --optimizer: invalid choice"),
    cli("Muon for a VAE", lambda p: ["train", "digits", "--optimizer", "muon", "--out", p.out, *TRAIN],
        "optimizer 'muon' needs a network that names its hidden matrices"),
    cli("accumulation with two optimisers", lambda p: ["train", "digits", "--family", "gan", "--grad-accum", 2,
        "--out", p.out, *TRAIN], "grad_accum works with one optimiser; family 'gan' has 2"),
    cli("a GPU that is not there", lambda p: ["train", "digits", "--device", "cuda", "--out", p.out, *TRAIN]
        if not torch.cuda.is_available() else ["train", "digits", "--device", "cuda:99", "--out", p.out, *TRAIN],
        "cuda"),
    cli("an unknown device", lambda p: ["train", "digits", "--device", "tpu", "--out", p.out, *TRAIN],
        "unknown device 'tpu'"),
    cli("no threads", lambda p: ["train", "digits", "--threads", 0, "--out", p.out, *TRAIN], "threads must be at least 1; got 0"),
    cli("negative threads", lambda p: ["train", "digits", "--threads", -2, "--out", p.out, *TRAIN],
        "threads must be at least 1; got -2"),
    cli("threads in words", lambda p: ["train", "digits", "--threads", "two"], "argument --threads: invalid int value: 'two'"),
    cli("a fraction of a thread", lambda p: ["train", "digits", "--threads", "1.5"], "argument --threads: invalid int value"),
    cli("a negative patience", lambda p: ["train", "digits", "--patience", -1, "--out", p.out, *TRAIN],
        "patience must be at least 0; got -1"),
    cli("a negative seed", lambda p: ["train", "digits", "--seed", -1, "--out", p.out, *TRAIN], "seed must be at least 0"),
    cli("checkpoints never", lambda p: ["train", "digits", "--checkpoint-minutes", 0, "--out", p.out, *TRAIN],
        "checkpoint_minutes must be greater than 0"),
    cli("a latent space of nothing", lambda p: ["train", "digits", "--latent-dim", 0, "--out", p.out, *TRAIN],
        "latent_dim must be at least 1; got 0"),
    cli("a latent size in words", lambda p: ["train", "digits", "--latent-dim", "sixteen"],
        "argument --latent-dim: invalid int value: 'sixteen'"),
    cli("a negative beta", lambda p: ["train", "digits", "--beta", -1, "--out", p.out, *TRAIN],
        "beta must be at least 0; got -1.0"),
    cli("an unknown GAN loss", lambda p: ["train", "digits", "--family", "gan", "--loss", "hinge"],
        "argument --loss: invalid choice: 'hinge'"),
    cli("a pack of zero", lambda p: ["train", "digits", "--family", "gan", "--pac", 0, "--out", p.out, *TRAIN],
        "pac must be at least 1; got 0"),
    cli("packs of several classes", lambda p: ["train", "digits", "--family", "gan", "--pac", 4, "--conditional",
        "--out", p.out, *TRAIN], "pac (PacGAN) packs examples of different classes"),
    cli("one noise level", lambda p: ["train", "digits", "--family", "diffusion", "--timesteps", 1, "--out", p.out,
        *TRAIN], "timesteps must be at least 2; got 1"),
    cli("levels not a power of two", lambda p: ["train", "digits", "--family", "autoregressive", "--levels", 3,
        "--out", p.out, *TRAIN], "levels (K) must be a power of 2 from 2 to 256"),
    cli("heads that do not split the width", lambda p: ["train", "shakespeare", "--family", "autoregressive",
        "--n-embd", 30, "--n-head", 4, "--out", p.out, *TRAIN], "n_embd (30) must split into n_head (4) heads"),
    cli("dropout of everything", lambda p: ["train", "shakespeare", "--family", "autoregressive", "--dropout", 1,
        "--out", p.out, *TRAIN], "dropout must lie in [0, 1)"),
    cli("one bin", lambda p: ["train", "wine", "--family", "autoregressive", "--bins", 1, "--out", p.out, *TRAIN],
        "bins must be at least 2; got 1"),
    cli("conditional without labels", lambda p: ["train", p.array("u.npy", np.zeros((10, 8, 8), dtype=np.uint8)),
        "--family", "gan", "--conditional", "--out", p.out, *TRAIN], "conditional gan needs labelled data"),
    cli("conditional text", lambda p: ["train", "shakespeare", "--family", "autoregressive", "--conditional",
        "--out", p.out, *TRAIN], "conditional autoregressive needs labelled data"),
    cli("a VAE of text", lambda p: ["train", "shakespeare", "--family", "vae", "--out", p.out, *TRAIN],
        "no encoder network for text data"),
    cli("diffusion of text", lambda p: ["train", "shakespeare", "--family", "diffusion", "--out", p.out, *TRAIN],
        "no denoiser network for text data"),
    cli("a U-Net that cannot halve", lambda p: ["train", "digits", "--family", "diffusion", "--image-size", 7,
        "--depth", 1, "--out", p.out, *TRAIN], "the U-Net cannot halve 7x7 images 1 time(s)"),
    cli("a U-Net too deep", lambda p: ["train", "digits", "--family", "diffusion", "--depth", 5, "--out", p.out,
        *TRAIN], "the U-Net cannot halve 8x8 images 5 time(s)"),
    cli("a compression that does not divide the images", lambda p: ["train", "digits", "--family", "latent-diffusion",
        "--compression", 16, "--out", p.out, *TRAIN], "the autoencoder compresses 16x per side, which does not divide 8x8"),
    cli("a compression not a power of two", lambda p: ["train", "digits", "--family", "vq-vae", "--compression", 3,
        "--out", p.out, *TRAIN], "compression must be a power of 2"),
    cli("a latent grid the U-Net cannot halve", lambda p: ["train", "digits", "--family", "latent-diffusion",
        "--depth", 1, "--out", p.out, *TRAIN], "the U-Net cannot halve 2x2 images 1 time(s)"),
    cli("a codebook of one code", lambda p: ["train", "digits", "--family", "vq-vae", "--codebook-size", 1,
        "--out", p.out, *TRAIN], "codebook_size must be at least 2; got 1"),
    cli("an autoencoder that is no run", lambda p: ["train", "digits", "--family", "latent-diffusion", "--autoencoder",
        p.folder("empty"), "--out", p.out, *TRAIN], "no genloom run there"),
    cli("an autoencoder from another family", lambda p: ["train", "digits", "--family", "latent-diffusion",
        "--autoencoder", p.runs["diffusion"], "--out", p.out, *TRAIN], "is a diffusion run; a latent-diffusion reuses"),
    cli("a translation without its second set", lambda p: ["train", "digits", "--family", "cyclegan", "--out", p.out,
        *TRAIN], "cyclegan translates between two image sets: name the second with target_data"),
    cli("a translation between sizes", lambda p: ["train", "digits", "--family", "cyclegan", "--target-data", "mnist",
        "--out", p.out, *TRAIN], "the two image sets differ: digits holds 8x8 1-channel images, mnist 28x28"),
    cli("translating with a VAE", lambda p: ["translate", p.image, "digits", "-o", p.root / "t.png"],
        "family 'vae' has no translate; families with one: cyclegan"),
    cli("a latent family on a table", lambda p: ["train", "wine", "--family", "vq-vae", "--out", p.out, *TRAIN],
        "no latent encoder network for table data"),
    cli("a BPE vocabulary smaller than bytes", lambda p: ["train", "shakespeare", "--family", "autoregressive",
        "--tokenizer", "bpe", "--vocab-size", 100, "--out", p.out, *TRAIN], "a BPE vocabulary needs more than the 256 bytes"),
    cli("an unknown number transform", lambda p: ["train", "wine", "--numbers", "log"],
        "argument --numbers: invalid choice: 'log'"),
    cli("resume without a folder", lambda p: ["train", "--resume"], "--resume needs --out"),
    cli("resume where nothing was saved", lambda p: ["train", "--resume", "--out", p.folder("out")],
        "nothing was saved in"),
    cli("resume where no folder is", lambda p: ["train", "--resume", "--out", p.root / "nowhere"], "nothing was saved in"),
    cli("resume of final weights", lambda p: ["train", "--resume", "--out", p.copy(
        "image", lambda run: (run / "trainer.pt").unlink()), "--steps", 40], "its weights are final"),
    cli("resume as another family", lambda p: ["train", "--resume", "--out", p.copy("image"), "--family", "gan"],
        "was trained with family 'vae', not 'gan'"),
    cli("resume on other data", lambda p: ["train", "wine", "--resume", "--out", p.copy("image")],
        "differs from the data the run was trained on"),
    cli("resume with another optimizer", lambda p: ["train", "--resume", "--out", p.copy("text"), "--optimizer",
        "adamw", "--steps", 200], "the run trained with optimizer 'muon'"),
    cli("a run over a run", lambda p: ["train", "digits", "--out", p.copy("image"), *TRAIN], "already holds a run"),
    cli("a run inside a file", lambda p: ["train", "digits", "--out", p.file("f.txt", "x") / "run", *TRAIN],
        "is a file, not a folder"),
    cli("a run where nothing may be written", lambda p: ["train", "digits", "--out", "/proc/genloom-run", *TRAIN],
        "cannot write /proc/genloom-run"),
    cli("no data", lambda p: ["train", "--out", p.out], "name the data to train on"),
    cli("a run into a file", lambda p: ["train", "digits", "--out", p.file("taken"), *TRAIN],
        "a file of that name is there"),
    cli("a run into an adapter's folder", lambda p: ["train", "digits", "--out", p.file("lora/adapter.json", "{}").parent,
        *TRAIN], "already holds a run (or what is left of one: adapter.json)"),
    cli("a run into what is left of one", lambda p: ["train", "digits", "--out", p.file("left/trainer.pt", "x").parent,
        *TRAIN], "what is left of one: trainer.pt"),
    cli("an unknown flag", lambda p: ["train", "digits", "--learning-rate", "0.1"], "unrecognized arguments: --learning-rate"),
    cli("a checkpoint holding code", lambda p: ["train", "--resume", "--out", p.copy("image", _pickled_checkpoint),
        "--steps", 40], "holds code or is damaged, so it will not be loaded"),
    cli("a truncated checkpoint", lambda p: ["train", "--resume", "--out", p.copy("image", lambda run: (
        run / "trainer.pt").write_bytes((run / "trainer.pt").read_bytes()[:1000])), "--steps", 40],
        "holds code or is damaged"),
    cli("settings of the wrong type", lambda p: ["train", "--resume", "--out", p.copy("image", lambda run: _edit_json(
        run / "config.json", lambda c: c["train"].update(batch_size="many"))), "--steps", 40],
        "config.json: batch_size must be a whole number; got 'many'"),
    cli("a table batch smaller than a pack", lambda p: ["train", "wine", "--family", "gan", "--batch-size", 5,
        "--out", p.out, *TRAIN], "a batch of 5 rows holds no whole pack of 10"),
    cli("a command that is not there", lambda p: ["sample-all"], "argument COMMAND: invalid choice: 'sample-all'"),
]

# -- `genloom sample`, `generate`, `evaluate`, `finetune`, `export`, `info` -----------------------------------
SAMPLE = [
    cli("zero samples", lambda p: ["sample", p.image, "-n", 0, "-o", p.root / "s.png"], "n must be a whole number of at least 1"),
    cli("negative samples", lambda p: ["sample", p.image, "-n", -5, "-o", p.root / "s.png"], "n must be a whole number"),
    cli("samples in words", lambda p: ["sample", p.image, "-n", "many"], "argument -n: invalid int value"),
    cli("labels for an unconditional model", lambda p: ["sample", p.diffusion, "--labels", 3, "-o", p.root / "s.png"],
        "is not conditional, so it cannot take labels"),
    cli("an unknown label", lambda p: ["sample", p.image, "--labels", "eleven", "-o", p.root / "s.png"],
        "unknown label 'eleven'"),
    cli("a label out of range", lambda p: ["sample", p.image, "--labels", 12, "-o", p.root / "s.png"],
        "label 12 is out of range; use 0..9"),
    cli("images to a csv", lambda p: ["sample", p.image, "-o", p.root / "s.csv"], "cannot write image samples to s.csv"),
    cli("rows to a png", lambda p: ["sample", p.table, "-o", p.root / "s.png"], "cannot write table samples to s.png"),
    cli("text to an npy", lambda p: ["sample", p.text, "-o", p.root / "s.npy"], "cannot write text samples to s.npy"),
    cli("samples inside a file", lambda p: ["sample", p.image, "-o", p.file("f.txt") / "s.png"], "is a file, not a folder"),
    cli("samples where nothing may be written", lambda p: ["sample", p.image, "-o", "/proc/s.png"], "cannot write /proc/s.png"),
    cli("a sampler for a VAE", lambda p: ["sample", p.image, "--sampler", "ddim", "-o", p.root / "s.png"],
        "family 'vae' takes no sampling options"),
    cli("an unknown sampler", lambda p: ["sample", p.diffusion, "--sampler", "euler"], "argument --sampler: invalid choice"),
    cli("zero sampler steps", lambda p: ["sample", p.diffusion, "--steps", 0, "-o", p.root / "s.png"],
        "steps must be at least 1; got 0"),
    cli("more steps than timesteps", lambda p: ["sample", p.diffusion, "--sampler", "ddim", "--steps", 51, "-o",
        p.root / "s.png"], "sampler steps must lie in 1..50; got 51"),
    cli("eta without DDIM", lambda p: ["sample", p.diffusion, "--eta", 0.5, "-o", p.root / "s.png"],
        "eta applies to the ddim sampler only"),
    cli("guidance without classes", lambda p: ["sample", p.diffusion, "--guidance", 2, "-o", p.root / "s.png"],
        "guidance needs a conditional model"),
    cli("negative guidance", lambda p: ["sample", p.diffusion, "--guidance", -1, "-o", p.root / "s.png"],
        "guidance must be at least 0"),
    cli("a negative temperature", lambda p: ["sample", p.text, "--temperature", -1, "-o", p.root / "s.txt"],
        "temperature must be at least 0"),
    cli("a nucleus of nothing", lambda p: ["sample", p.text, "--top-p", 0, "-o", p.root / "s.txt"],
        "top_p must lie in (0, 1]"),
    cli("top-k of zero", lambda p: ["sample", p.text, "--top-k", 0, "-o", p.root / "s.txt"], "top_k must be at least 1"),
    cli("a condition without a value", lambda p: ["sample", p.table, "--condition", "colour", "-o", p.root / "s.csv"],
        "a condition is COLUMN=VALUE"),
    cli("a condition on an unknown column", lambda p: ["sample", p.table, "--condition", "shape=round", "-o",
        p.root / "s.csv"], "unknown column 'shape' in the conditions"),
    cli("a condition on a number", lambda p: ["sample", p.table, "--condition", "size=3", "-o", p.root / "s.csv"],
        "conditions work on categorical and boolean columns; 'size' is numerical"),
    cli("a condition on an unknown category", lambda p: ["sample", p.table, "--condition", "colour=green", "-o",
        p.root / "s.csv"], "column 'colour' has no category 'green'"),
    cli("a condition on images", lambda p: ["sample", p.image, "--condition", "colour=red", "-o", p.root / "s.png"],
        "conditions apply to tables; this model makes image data"),
    cli("a grid of a million", lambda p: ["sample", p.image, "-n", 1_000_000, "-o", p.root / "s.png"],
        "a PNG grid holds at most 4,096 images"),
    cli("samples from nowhere", lambda p: ["sample", p.root / "nowhere"], "is not a folder"),
    cli("samples from a folder that is not a run", lambda p: ["sample", p.root], "is not a genloom run (no config.json)"),
    cli("samples on an unknown device", lambda p: ["sample", p.image, "--device", "tpu"], "unknown device 'tpu'"),
]
GENERATE = [
    cli("a character the model never saw", lambda p: ["generate", p.text, "--prompt", "ROMEO\u20ac"],
        "characters not in the model's vocabulary: '\u20ac'"),
    cli("zero tokens", lambda p: ["generate", p.text, "--max-tokens", 0], "max_tokens must be a whole number of at least 1"),
    cli("a negative temperature for text", lambda p: ["generate", p.text, "--temperature", -1],
        "temperature must be at least 0"),
    cli("a nucleus above one", lambda p: ["generate", p.text, "--top-p", 1.2], "top_p must lie in (0, 1]"),
    cli("no repetition at all", lambda p: ["generate", p.text, "--repetition-penalty", 0],
        "repetition_penalty must be greater than 0"),
    cli("text from an image model", lambda p: ["generate", p.image], "family 'vae' has no generate"),
    cli("text from a table model", lambda p: ["generate", p.table], "family 'vae' has no generate"),
    cli("a top-k of zero for text", lambda p: ["generate", p.text, "--top-k", 0], "top_k must be at least 1"),
]
EVALUATE = [
    cli("one sample", lambda p: ["evaluate", p.copy("text"), "--samples", 1], "samples must be a whole number of at least 2"),
    cli("a target that is not a column", lambda p: ["evaluate", p.copy("table"), "--target", "shape"],
        "target column 'shape' is not in the table"),
    cli("an identifier as target", lambda p: ["evaluate", p.copy("table"), "--target", "user_id"],
        "target column 'user_id' is an identifier"),
    cli("inception weights that are not there", lambda p: ["evaluate", p.copy("image"), "--inception-weights",
        p.root / "nope.pth"], "no InceptionV3 weights at"),
    cli("images to score a text model", lambda p: ["evaluate", p.copy("text"), "--data", "digits"],
        "cannot evaluate a model of text data on image data"),
    cli("data to score that is not there", lambda p: ["evaluate", p.copy("text"), "--data", p.root / "nowhere.txt"],
        "no file, folder or built-in data set named"),
    cli("images of another size to score", lambda p: ["evaluate", p.copy("image"), "--data", p.array(
        "small.npy", np.zeros((20, 5, 5), dtype=np.uint8))], "the model takes 8x8x1 images; these are 5x5x1"),
    cli("a table of other columns to score", lambda p: ["evaluate", p.copy("table"), "--data", p.csv("other.csv",
        pd.DataFrame({"user_id": [1, 2], "size": [0.1, 0.2], "colour": ["red", "blue"], "weight": [1, 2]}))],
        "the table has column 'weight' that the model was not trained with"),
]
FINETUNE = [
    cli("fine-tuning a VAE", lambda p: ["finetune", p.image, p.file("c.txt", "text " * 100), "--out", p.out, "--steps", 1],
        "fine-tuning supports autoregressive runs"),
    cli("fine-tuning text on images", lambda p: ["finetune", p.text, "digits", "--out", p.out, "--steps", 1],
        "the base model learnt text data; fine-tune it on text, not image"),
    cli("a rank of zero", lambda p: ["finetune", p.text, "shakespeare", "--out", p.out, "--rank", 0, "--steps", 1],
        "LoRA rank must be a whole number of at least 1"),
    cli("an alpha of zero", lambda p: ["finetune", p.text, "shakespeare", "--out", p.out, "--alpha", 0, "--steps", 1],
        "LoRA alpha must be greater than 0"),
    cli("resuming a fine-tuning that is not PPO", lambda p: ["finetune", p.text, "shakespeare", "--out", p.out,
        "--resume", "--steps", 1], "resume goes on with a PPO run; sft fine-tuning starts again from the base run"),
    cli("resuming PPO where none ran", lambda p: ["finetune", p.molecule, "--reward", "QED", "--out", p.folder("o"),
        "--resume"], "holds no PPO run to resume (ppo-state.pt is missing)"),
    cli("an adapter over a run", lambda p: ["finetune", p.text, "shakespeare", "--out", p.copy("image"), "--steps", 1],
        "already holds a run"),
    cli("a corpus with new characters", lambda p: ["finetune", p.text, p.file("c.txt", "\u20ac" * 500), "--out",
        p.out, "--steps", 1], "characters not in the model's vocabulary"),
    cli("an adapter into a file", lambda p: ["finetune", p.text, "shakespeare", "--out", p.file("taken"), "--steps", 1],
        "a file of that name is there"),
    cli("a rank of zero, before the corpus is read", lambda p: ["finetune", p.text, p.root / "nowhere.txt", "--out",
        p.out, "--rank", 0], "LoRA rank must be a whole number of at least 1"),
]
EXPORT_INFO = [
    cli("exporting a VAE as GPT-2", lambda p: ["export", p.image, "--gpt2", p.out], "only GPT-2-shaped models export"),
    cli("exporting a rotary text model", lambda p: ["export", p.text, "--gpt2", p.out], "only GPT-2-shaped models export"),
    cli("exporting into a file", lambda p: ["export", p.text, "--gpt2", p.file("f.txt") / "hf"], "is a file, not a folder"),
    cli("exporting over a file", lambda p: ["export", p.text, "--gpt2", p.file("taken")], "a file of that name is there"),
    cli("info of a thinned config", lambda p: ["info", p.copy("image", lambda run: _edit_json(
        run / "config.json", lambda c: c.update(data={})))], "lacks 'data.name'"),
    cli("info of an adapter without its base", lambda p: ["info", p.file("lora/adapter.json", '{"base": "../gone"}').parent],
        "its base run"),
    cli("info of nowhere", lambda p: ["info", p.root / "nowhere"], "is not a folder"),
    cli("info of a folder that is not a run", lambda p: ["info", p.root], "is not a genloom run (no config.json)"),
    cli("info of a config that is a list", lambda p: ["info", p.copy("image", lambda run: (
        run / "config.json").write_text("[1, 2]"))], "is not a genloom run config"),
    cli("info of a broken config", lambda p: ["info", p.copy("image", lambda run: (
        run / "config.json").write_text("{broken"))], "config.json is damaged"),
]

# -- run folders damaged by hand, or made by a stranger, read by `genloom sample` -----------------------------
DAMAGES: list[tuple[str, str, Callable[[Path], Any], str]] = [
    ("no family", "image", lambda r: _edit_json(r / "config.json", lambda c: c.pop("family")), "lacks 'family'"),
    ("an unknown family", "image", lambda r: _edit_json(r / "config.json", lambda c: c.update(family="flow")),
     "unknown family 'flow'"),
    ("an unknown kind", "image", lambda r: _edit_json(r / "config.json", lambda c: c.update(codec="graph")),
     "no codec for 'graph' data"),
    ("an option of the wrong type", "image", lambda r: _edit_json(
        r / "config.json", lambda c: c["family_options"].update(latent_dim="sixteen")),
     "latent_dim must be a whole number; got 'sixteen'"),
    ("an unknown option", "image", lambda r: _edit_json(
        r / "config.json", lambda c: c["family_options"].update(latent=3)), "unknown option 'latent' for family 'vae'"),
    ("a network too large to build", "image", lambda r: _edit_json(
        r / "config.json", lambda c: c["family_options"].update(latent_dim=10**9)), "does not fit in memory"),
    ("an empty codec", "image", lambda r: (r / "codec.json").write_text("{}"), "codec.json is damaged"),
    ("no codec", "image", lambda r: (r / "codec.json").unlink(), "is not a genloom run (no codec.json)"),
    ("a codec of other images", "image", lambda r: _edit_json(r / "codec.json", lambda c: c.update(image_size=[5, 5])),
     "do not fit the model that config.json and codec.json describe (image data of 1x5x5)"),
    ("a codec of an unknown column kind", "table", lambda r: _edit_json(
        r / "codec.json", lambda c: c["columns"][0].update(kind="evil")), "codec.json is damaged"),
    ("a codec with a damaged tokenizer", "text", lambda r: _edit_json(
        r / "codec.json", lambda c: c.update(tokenizer="bpe", bpe="{not a tokenizer")), "the BPE tokenizer is damaged"),
    ("weights of garbage", "image", lambda r: (r / "model.safetensors").write_bytes(b"garbage"),
     "model.safetensors cannot be read"),
    ("truncated weights", "image", lambda r: (r / "model.safetensors").write_bytes(
        (r / "model.safetensors").read_bytes()[:2000]), "model.safetensors cannot be read"),
    ("no weights", "image", lambda r: (r / "model.safetensors").unlink(), "its training did not finish"),
    ("no weight average", "image", lambda r: (r / "ema.safetensors").unlink(), "lacks ema.safetensors"),
    ("weights that are a folder", "image", lambda r: ((r / "model.safetensors").unlink(),
                                                      (r / "model.safetensors").mkdir()), "model.safetensors"),
    ("a config that is a folder", "image", lambda r: ((r / "config.json").unlink(), (r / "config.json").mkdir()),
     "config.json is a folder, not a file"),
    ("a pickle posing as weights", "image", lambda r: (r / "model.safetensors").write_bytes(
        pickle.dumps({"weight": Payload()})), "model.safetensors cannot be read"),
    ("a zip posing as weights", "image", lambda r: (r / "model.safetensors").write_bytes(
        _zip_of({"data.pkl": pickle.dumps(Payload())})), "model.safetensors cannot be read"),
    ("a codec of other columns", "table", lambda r: _edit_json(
        r / "codec.json", lambda c: c["columns"].pop(1)), "do not fit the model that config.json and codec.json describe"),
    ("an adapter without its base", "text", lambda r: (
        (r / "adapter.json").write_text(json.dumps({"base": "../gone", "rank": 2, "alpha": 4, "targets": ["c_attn"]})),
        save_file({"x": torch.zeros(1)}, r / "adapter.safetensors")), "is not there; keep the adapter beside the run"),
    ("an adapter of empty weights", "text", lambda r: (
        (r / "adapter.json").write_text(json.dumps({"base": ".", "rank": 2, "alpha": 4, "targets": ["c_attn"]})),
        (r / "adapter.safetensors").write_bytes(b"")), "is not a readable LoRA adapter"),
    ("an adapter of garbage", "text", lambda r: (r / "adapter.json").write_text("{"), "adapter.json is damaged"),
    ("an adapter of another rank", "text", lambda r: (
        (r / "adapter.json").write_text(json.dumps({"base": ".", "rank": 2, "alpha": 4, "targets": ["c_attn"]})),
        save_file({"net.h.0.attn.c_attn.lora_a": torch.zeros(3, 32)}, r / "adapter.safetensors")),
     "the adapter's tensors do not fit its base run with rank 2"),
    ("a GPT-2 folder without its tokenizer", "text", lambda r: (r / "config.json").write_text(json.dumps(
        {"model_type": "gpt2", "vocab_size": 10, "n_layer": 1, "n_head": 1, "n_embd": 4, "n_positions": 8})),
     "has no tokenizer.json"),
    ("a llama posing as a run", "text", lambda r: (r / "config.json").write_text(json.dumps({"model_type": "llama"})),
     "lacks 'family'"),
]
RUNS = [cli(f"a run with {name}", lambda p, run=run, damage=damage: ["sample", p.copy(run, damage), "-n", 2, "-o",
            p.root / f"s{'.png' if run == 'image' else '.csv' if run == 'table' else '.txt'}"], message)
        for name, run, damage, message in DAMAGES]

# -- genloom serve: refused before it listens ----------------------------------------------------------------------
SERVE = [
    cli("serve nowhere", lambda p: ["serve", p.root / "nowhere"], "is not a folder; give run folders"),
    cli("serve a folder without runs", lambda p: ["serve", (p.root / "empty").mkdir() or p.root / "empty"],
        "no runs in"),
    cli("serve beyond loopback without a key", lambda p: ["serve", p.table, "--host", "0.0.0.0"],
        "--host 0.0.0.0 lets other machines in; give --api-key"),
    cli("serve with no room for a request", lambda p: ["serve", p.table, "--max-concurrency", "0"],
        "--max-concurrency must be at least 1"),
    cli("serve on a port that is not a number", lambda p: ["serve", p.table, "--port", "http"],
        "argument --port: invalid int value: 'http'"),
    cli("serve with a negative timeout", lambda p: ["serve", p.table, "--timeout", "-1"],
        "--timeout must be positive"),
    cli("serve two runs of one name", lambda p: ["serve", p.table, p.table], "two runs are named"),
    cli("serve with no threads", lambda p: ["serve", p.table, "--threads", "0"], "--threads must be at least 1"),
]

# -- genloom interpolate and edit: the latent space -------------------------------------------------------------
LATENT = [
    cli("interpolate a run without a latent space", lambda p: ["interpolate", p.text, "--from", "seed:0", "--to",
        "seed:1"], "family 'autoregressive' has no decode; families with one: vae"),
    cli("interpolate from an index without data", lambda p: ["interpolate", p.image, "--from", "3", "--to", "seed:1"],
        "3 is an index into the data: give --data too"),
    cli("interpolate from an index past the data", lambda p: ["interpolate", p.image, "--from", "99999", "--to",
        "seed:1", "--data", "digits", "--label", "1"], "index 99999 is out of range: the data has 1797 examples"),
    cli("interpolate from a seed in words", lambda p: ["interpolate", p.image, "--from", "seed:x", "--to", "seed:1"],
        "a seed is a whole number of 0 or more, as in seed:3; got 'seed:x'"),
    cli("interpolate from a missing image", lambda p: ["interpolate", p.image, "--from", p.root / "a.png", "--to",
        "seed:1", "--label", "1"], "a.png is not an image file"),
    cli("interpolate from an image of another size", lambda p: ["interpolate", p.image, "--from",
        write_images(p.root / "big", [(16, 16)])[0], "--to", "seed:1", "--label", "1"],
        "the model takes 8x8x1 images; these are 16x16x1"),
    cli("interpolate in a curve", lambda p: ["interpolate", p.image, "--from", "seed:0", "--to", "seed:1", "--method",
        "cubic"], "argument --method: invalid choice: 'cubic'"),
    cli("interpolate with one step", lambda p: ["interpolate", p.image, "--from", "seed:0", "--to", "seed:1",
        "--steps", "1", "--label", "1"], "steps must be at least 2"),
    cli("edit toward a class the data lacks", lambda p: ["edit", p.image, "--data", "digits", "--from-label", "1",
        "--to-label", "eleven"], "no examples of 'eleven' in the data"),
    cli("edit a table without naming the class column", lambda p: ["edit", p.table, "--data", p.csv("t.csv",
        pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5], "c": ["a", "b"]})), "--from-label", "a", "--to-label", "b"],
        "name the column whose values mark the classes"),
]

# -- genloom anomaly ----------------------------------------------------------------------------------------------
ANOMALY = [
    cli("anomaly with too much contamination", lambda p: ["anomaly", "fit", "digits", "--contamination", "0.7",
        "--out", p.out], "contamination is the share of anomalies expected, in (0, 0.5]; got 0.7"),
    cli("anomaly with no contamination", lambda p: ["anomaly", "fit", "digits", "--contamination", "0",
        "--out", p.out], "in (0, 0.5]; got 0.0"),
    cli("anomaly with a family without a score", lambda p: ["anomaly", "fit", "digits", "--family", "wgan-gp",
        "--out", p.out], "family 'wgan-gp' gives no anomaly score; choose vae, diffusion, autoregressive"),
    cli("anomaly with an unknown view", lambda p: ["anomaly", "fit", "digits", "--views", "latent,nearest",
        "--out", p.out], "unknown anomaly view 'nearest'; use one or more of likelihood, latent"),
    cli("anomaly with no views", lambda p: ["anomaly", "fit", "digits", "--views", " , ", "--out", p.out],
        "give at least one anomaly view: likelihood, latent"),
    cli("anomaly scores from a run without a threshold", lambda p: ["anomaly", "score", p.table, "digits"],
        "holds a run but no anomaly threshold; fit it with `genloom anomaly fit`"),
    cli("anomaly without a step", lambda p: ["anomaly", "digits"], "argument fit|score: invalid choice: 'digits'"),
]

# -- genloom detector ---------------------------------------------------------------------------------------------
def _damage_json(folder: Path) -> None:
    (folder / "detector.json").write_text("{not json")


def _truncate_weights(folder: Path) -> None:
    path = folder / "detector.safetensors"
    path.write_bytes(path.read_bytes()[:40])


DETECTOR = [
    cli("a detector without generated examples", lambda p: ["detector", "train", "--real", "digits", "--out", p.out],
        "the following arguments are required: --fake"),
    cli("a detector against a run of another kind", lambda p: ["detector", "train", "--real", "digits", "--fake",
        p.table, "--out", p.out], "makes table data, but the real data digits is image data"),
    cli("a detector against runs of two kinds", lambda p: ["detector", "train", "--real", "digits", "--fake", p.image,
        p.text, "--out", p.out], "the runs make different kinds of data"),
    cli("a detector against a run of another image size", lambda p: ["detector", "train", "--real",
        p.array("big.npy", np.zeros((20, 16, 16), np.uint8)), "--fake", p.image, "--out", p.out],
        "makes 8x8x1 images; the real images are 16x16x1"),
    cli("a detector against a run given twice", lambda p: ["detector", "train", "--real", "digits", "--fake", p.image,
        p.image, "--out", p.out], "is given twice"),
    cli("a detector against a folder that is no run", lambda p: ["detector", "train", "--real", "digits", "--fake",
        p.root / "nowhere", "--out", p.out], "nowhere is not a folder; give the run folders"),
    cli("a detector holding out everything", lambda p: ["detector", "train", "--real", "digits", "--fake", p.image,
        "--held-out", "1", "--out", p.out], "held_out is the share of the examples kept to measure the detector"),
    cli("a detector into a folder of other files", lambda p: (p.file("taken/notes.txt", "x"), ["detector", "train",
        "--real", "digits", "--fake", p.image, "--out", p.root / "taken"])[-1], "already holds files and no detector"),
    cli("detector scores of a table file", lambda p: ["detector", "score", p.detector, p.csv("t.csv", pd.DataFrame(
        {"a": [1]}))], "t.csv: this image detector scores PNG files or an .npy of images; got '.csv'"),
    cli("detector scores of larger images", lambda p: ["detector", "score", p.detector, p.array("x.npy",
        np.zeros((2, 16, 16), np.uint8))], "this detector takes 8x8x1 images; "),
    cli("detector scores of a larger png", lambda p: ["detector", "score", p.detector, write_images(p.root / "f",
        [(9, 9)], mode="L")[0]], "are 9x9x1: resize them first"),
    cli("detector scores with a run", lambda p: ["detector", "score", p.image, p.array("x.npy", np.zeros((2, 8, 8)))],
        "is a genloom run, not a detector (no detector.json)"),
    cli("detector scores with a plain folder", lambda p: ["detector", "score", p.folder("plain"), p.array("x.npy",
        np.zeros((2, 8, 8)))], "plain is not a detector (no detector.json)"),
    cli("detector scores with a damaged record", lambda p: ["detector", "score", p.copy("detector", _damage_json),
        p.array("x.npy", np.zeros((2, 8, 8)))], "detector.json is damaged (JSONDecodeError"),
    cli("detector scores with truncated weights", lambda p: ["detector", "score", p.copy("detector",
        _truncate_weights), p.array("x.npy", np.zeros((2, 8, 8)))], "is damaged: its detector.safetensors cannot be "
        "read"),
    cli("detector scores with a record of another kind", lambda p: ["detector", "score", p.copy("detector",
        lambda d: _edit_json(d / "detector.json", lambda r: r.update(kind="table"))), p.array("x.npy",
        np.zeros((2, 8, 8)))], "is damaged: its detector.lightgbm.txt cannot be read"),
]

AUGMENT_TABLE = pd.DataFrame({"age": [float(i) for i in range(12)], "label": ["a"] * 10 + ["b"] * 2})
AUGMENT = [
    cli("augment with no ratio", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--target", "label",
        "--ratio", "0", "-o", p.root / "a.csv"], "ratio is each class's size after augmentation over the largest "
        "class's, in (0, 1] (1 = balanced), or 'auto'; got 0.0"),
    cli("augment past balance", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--target", "label",
        "--ratio", "1.5", "-o", p.root / "a.csv"], "in (0, 1] (1 = balanced), or 'auto'; got 1.5"),
    cli("augment a numeric target", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--target", "age",
        "--balance", "-o", p.root / "a.csv"], "balancing needs a categorical target; 'age' holds 12 distinct "
        "numbers (a quantity): choose a column of classes"),
    cli("augment a table without a target", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--balance", "-o",
        p.root / "a.csv"], "name the column whose classes to balance: target='column' (CLI: --target COLUMN)"),
    cli("augment a missing target", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--target", "income",
        "--balance", "-o", p.root / "a.csv"], "target column 'income' is not in the table; columns: age, label"),
    cli("augment saying how far twice", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--target", "label",
        "--balance", "--ratio", "0.5", "-o", p.root / "a.csv"], "say how far to fill the rare classes with one of "
        "--balance (as many as the largest class) and --ratio R (R times as many), or neither"),
    cli("augment unlabelled images", lambda p: ["augment", p.array("x.npy", np.zeros((4, 8, 8), np.uint8)),
        "--balance", "-o", p.root / "a.npz"], "x has no classes to balance: give labelled images"),
    cli("augment text", lambda p: ["augment", p.file("c.txt", "some text " * 50), "--balance", "-o",
        p.root / "a.csv"], "augmentation balances classes of tables and images; this is text data"),
    cli("augment a table into an image file", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE), "--target",
        "label", "--ratio", "0.1", "-o", p.root / "a.png"], "augmented table data is written to .csv or .parquet; "
        "got 'a.png'"),
    cli("augment over the marker column", lambda p: ["augment", p.csv("t.csv", AUGMENT_TABLE.assign(synthetic=0)),
        "--target", "label", "--balance", "-o", p.root / "a.csv"], "the table already has a column 'synthetic'"),
]

# -- genloom optimize: property-guided design ---------------------------------------------------------------------
DESIGN = [
    cli("optimize without a direction", lambda p: ["optimize", p.table, "-o", p.root / "d.csv"],
        "name the property to design toward: --maximize COLUMN or --minimize COLUMN (one of them)"),
    cli("optimize both ways", lambda p: ["optimize", p.table, "--maximize", "size", "--minimize", "size"],
        "--maximize COLUMN or --minimize COLUMN (one of them)"),
    cli("optimize a run without a property head", lambda p: ["optimize", p.table, "--maximize", "size", "-o",
        p.root / "d.csv"], "this run has no property head; train one with property='size' (CLI: genloom train DATA "
        "--family vae --property size)"),
    cli("optimize a family without design", lambda p: ["optimize", p.diffusion, "--maximize", "size"],
        "family 'diffusion' has no design; families with one: vae"),
    cli("a property that is not a column", lambda p: ["train", p.csv("t.csv", AUGMENT_TABLE), "--family", "vae",
        "--property", "income", "--out", p.out, *TRAIN], "the table has no column 'income' to predict; columns: age, "
        "label"),
    cli("a categorical property", lambda p: ["train", p.csv("t.csv", AUGMENT_TABLE), "--family", "vae", "--property",
        "label", "--out", p.out, *TRAIN], "the property 'label' is a categorical column; a property head predicts a "
        "number: name a numerical column"),
    cli("a property with missing values", lambda p: ["train", p.csv("t.csv", AUGMENT_TABLE.assign(
        age=[None] + [float(i) for i in range(11)])), "--family", "vae", "--property", "age", "--out", p.out, *TRAIN],
        "the property 'age' is missing in 1 row; drop those rows first"),
    cli("a property of images", lambda p: ["train", "digits", "--family", "vae", "--property", "x", "--out", p.out,
        *TRAIN], "unknown codec option for image data: 'property'"),
]

# -- tracking and comparing runs -------------------------------------------------------------------------------
ECOSYSTEM = [
    cli("tensorboard into a file", lambda p: ["train", "digits", "--family", "vae", "--tensorboard", p.file("events"),
        "--out", p.out, *TRAIN], "a file of that name is there"),
    cli("compare one run", lambda p: ["compare", p.image, "-o", p.root / "c.html"], "compare needs at least two runs; got 1"),
    cli("compare a folder that is not a run", lambda p: ["compare", p.image, p.folder("plain"), "-o", p.root / "c.html"],
        "plain is not a genloom run (no config.json)"),
    cli("compare a file", lambda p: ["compare", p.image, p.file("notes.txt", "x"), "-o", p.root / "c.html"],
        "notes.txt is not a folder"),
    cli("compare into a folder", lambda p: ["compare", p.image, p.text, "-o", p.folder("pages")],
        "pages: it is a folder; give a file name such as compare.html"),
]

SCALE = [
    cli("no processes", lambda p: ["train", "digits", "--nproc", 0, "--device", "cpu", "--out", p.out, *TRAIN],
        "--nproc 0: this machine has"),
    cli("more processes than cores", lambda p: ["train", "digits", "--nproc", 4096, "--device", "cpu", "--out", p.out,
        *TRAIN], "give 1 to"),
    cli("a shard past the last", lambda p: ["sample", p.image, "-n", 10, "--shard", "2/2", "-o", p.root / "s.png"],
        "--shard takes I/K, the I-th of K parts counted from 0"),
    cli("a shard in other words", lambda p: ["sample", p.image, "-n", 10, "--shard", "first", "-o", p.root / "s.png"],
        "e.g. 0/4; got 'first'"),
    cli("no shards", lambda p: ["sample", p.image, "-n", 10, "--shard", "0/0", "-o", p.root / "s.png"], "K at least 1"),
    cli("a shard that holds nothing", lambda p: ["sample", p.image, "-n", 10, "--shard", "0/2", "-o",
        p.root / "s.png"], "shard 0/2 of 10 samples holds none"),
    cli("a shard of conditioned rows", lambda p: ["sample", p.table, "-n", 10, "--shard", "0/1", "--condition",
        "colour=red", "-o", p.root / "s.csv"], "--shard and --condition do not go together"),
    cli("int8 of a GPT-2 checkpoint", lambda p: ["export", p.text, "--gpt2", p.out, "--int8"],
        "--int8 quantises an ONNX export"),
    cli("an export without a format", lambda p: ["export", p.image, "-o", p.root / "m.onnx"], "say what to write"),
]

FAIRNESS = [
    cli("a protected column that is not there", lambda p: ["evaluate", p.copy("table"), "--target", "colour",
        "--protected", "shape"], "protected column 'shape' is not in the table"),
    cli("a continuous protected column", lambda p: ["evaluate", p.copy("table"), "--target", "colour", "--protected",
        "size"], "distinct values), not a set of groups: bin it into at most 20 groups"),
    cli("protected groups without a target", lambda p: ["evaluate", p.copy("table"), "--protected", "colour"],
        "there is no target to predict"),
    cli("protected groups of images", lambda p: ["evaluate", p.copy("image"), "--protected", "colour"],
        "protected columns are groups of table rows; this model makes image data"),
    cli("a positive class without protected groups", lambda p: ["evaluate", p.copy("table"), "--positive", "red"],
        "give the protected columns too"),
    cli("fair balance without a target", lambda p: ["sample", p.table, "--fair-balance", "colour", "-o",
        p.root / "s.csv"], "this run was trained without one: name it"),
    cli("fair balance of a numerical target", lambda p: ["sample", p.table, "--fair-balance", "colour", "--target",
        "size", "-o", p.root / "s.csv"], "the target 'size' is numerical"),
    cli("fair balance on a number", lambda p: ["sample", p.table, "--fair-balance", "size", "--target", "colour",
        "-o", p.root / "s.csv"], "'size' is numerical: bin it into groups first"),
    cli("fair balance of images", lambda p: ["sample", p.image, "--fair-balance", "colour", "--target", "colour",
        "-o", p.root / "s.png"], "fair balance applies to tables; this model makes image data"),
    cli("a target to sample without fair balance", lambda p: ["sample", p.table, "--target", "colour", "-o",
        p.root / "s.csv"], "give that column too"),
    cli("a shard of fair-balanced rows", lambda p: ["sample", p.table, "-n", 10, "--shard", "0/1", "--fair-balance",
        "colour", "-o", p.root / "s.csv"], "--shard and --fair-balance do not go together"),
    cli("fair balance of conditioned rows", lambda p: ["sample", p.table, "--fair-balance", "colour", "--condition",
        "colour=red", "-o", p.root / "s.csv"], "fair_balance and conditions do not go together yet"),
]

# -- molecules -------------------------------------------------------------------------------------------------
MOLECULES = [
    cli("no readable SMILES", lambda p: ["train", p.file("m.smi", "C(C\nQQ\n"), "--out", p.out, *TRAIN],
        "m.smi: none of its 2 SMILES can be read by RDKit (first: 'C(C'); give one SMILES string per molecule"),
    cli("randomised SMILES of text", lambda p: ["train", p.file("c.txt", "some text " * 50), "--randomised-smiles", 2,
        "--out", p.out, *TRAIN], "randomised SMILES augment molecules; this is text data"),
    cli("a negative number of randomised SMILES", lambda p: ["train", p.file("m.smi", "CCO\n"), "--randomised-smiles",
        -1, "--out", p.out, *TRAIN], "randomised_smiles must be a whole number of at least 0; got -1"),
    cli("a molecule tokenizer for text", lambda p: ["train", p.file("c.txt", "some text " * 50), "--family",
        "autoregressive", "--tokenizer", "selfies", "--out", p.out, *TRAIN], "unknown tokenizer 'selfies'; use one of "
        "char, bpe"),
    cli("a text tokenizer for molecules", lambda p: ["train", p.file("m.smi", "CCO\nCCN\n"), "--tokenizer", "bpe",
        "--out", p.out, *TRAIN], "unknown molecule tokenizer 'bpe'; use one of smiles, selfies"),
    cli("molecules into a text file", lambda p: ["sample", p.molecule, "-n", 3, "-o", p.root / "s.txt"],
        "cannot write molecule samples to s.txt; use a .smi or .png or .csv path"),
    cli("too many molecules to draw", lambda p: ["sample", p.molecule, "-n", 500, "-o", p.root / "s.png"],
        "a drawing holds at most 400 molecules; write 500 samples to a .smi file"),
    cli("molecules scored on text", lambda p: ["evaluate", p.copy("molecule"), "--data", p.file("c.txt", "text " * 99)],
        "cannot evaluate a model of molecule data on text data"),
    cli("a GAN of molecules", lambda p: ["train", p.file("m.smi", "CCO\nc1ccccc1O\n"), "--family", "gan", "--out",
        p.out, *TRAIN], "a GAN cannot learn molecule data: its discrete tokens give the critic no gradient"),
    cli("a molecule property RDKit does not provide", lambda p: ["train", p.file("m.smi", "CCO\nc1ccccc1O\n"),
        "--family", "vae", "--property", "toxicity", "--out", p.out, *TRAIN], "no molecule property 'toxicity'"),
    cli("a property head on an autoregressive molecule model", lambda p: ["train", p.file("m.smi", "CCO\n"),
        "--property", "QED", "--out", p.out, *TRAIN], "unknown option"),
    cli("a molecule watermark", lambda p: ["sample", p.molecule, "-n", 3, "--watermark", "-o", p.root / "s.smi"],
        "molecule samples carry no invisible watermark"),
    cli("an autoregressive VAE decoder for images", lambda p: ["train", "digits", "--family", "vae", "--decoder",
        "autoregressive", "--out", p.out, *TRAIN], "no autoregressive decoder network for image data yet"),
    cli("word dropout without a decoder that reads", lambda p: ["train", p.file("m.smi", "CCO\nc1ccccc1O\n"),
        "--family", "vae", "--decoder", "parallel", "--word-dropout", 0.2, "--out", p.out, *TRAIN],
        "word_dropout masks what an autoregressive decoder reads: add --decoder autoregressive"),
]

# -- signals ----------------------------------------------------------------------------------------------------
SIGNALS = [
    cli("a corrupt recording", lambda p: (write_tones(p.root / "t", count=2), p.file("t/low/broken.wav", "RIFFxx"),
        ["train", p.root / "t", "--out", p.out, *TRAIN])[-1], "broken.wav is not a readable audio file"),
    cli("one recording", lambda p: (write_tones(p.root / "t", count=1), ["train", p.root / "t" / "low" / "000.wav",
        "--out", p.out, *TRAIN])[-1], "000.wav is one recording; a model learns from many: give the folder"),
    cli("a crop shorter than a network sees", lambda p: (write_tones(p.root / "t", count=2), ["train", p.root / "t",
        "--length", 512, "--out", p.out, *TRAIN])[-1], "a length of 512 samples is shorter than the networks' "
        "receptive field of 8 spectrogram frames"),
    cli("a crop shorter than WaveNet sees", lambda p: (write_tones(p.root / "t", count=2), [
        "train", p.root / "t", "--family", "autoregressive", "--backbone", "wavenet", "--representation", "waveform",
        "--length", 1024, "--wavenet-layers", 10, "--out", p.out, *TRAIN])[-1],
        "a sequence of 1,024 tokens is shorter than WaveNet's "
        "receptive field of 2,047 (2 cycle(s) of 10 dilated layers): lower --wavenet-layers"),
    cli("a WaveNet for images", lambda p: ["train", "digits", "--family", "autoregressive", "--backbone", "wavenet",
                                           "--out", p.out, *TRAIN], "no dilated causal network for image data yet"),
    cli("a WaveNet prior for a VQ-VAE", lambda p: ["train", "digits", "--family", "vq-vae", "--backbone", "wavenet",
                                                    "--out", p.out, *TRAIN], "the VQ-VAE's prior is a transformer"),
    cli("WaveNet's layers for a transformer", lambda p: ["train", "digits", "--family", "autoregressive",
                                                         "--wavenet-layers", 4, "--out", p.out, *TRAIN],
        "wavenet_layers and wavenet_cycles shape WaveNet: add --backbone wavenet"),
    cli("qubits for a classical generator", lambda p: ["train", "digits", "--family", "gan", "--qubits", 4,
                                                       "--out", p.out, *TRAIN],
        "qubits and circuit_depth shape the quantum generator: add --backbone quantum"),
    cli("too many mel bands", lambda p: (write_tones(p.root / "t", count=2), ["train", p.root / "t", "--mels", 500,
        "--out", p.out, *TRAIN])[-1], "mels must be at most 128"),
    cli("a sample rate for images", lambda p: ["train", "digits", "--sample-rate", 8000, "--out", p.out, *TRAIN],
        "a sample rate applies to recordings; digits holds image data"),
    cli("a spectrogram of series without a rate", lambda p: ["train", p.array("s.npy", np.ones((4, 64)) *
        np.arange(64)), "--representation", "mel", "--out", p.out, *TRAIN], "a mel spectrogram needs a sample rate"),
    cli("recordings into a table", lambda p: ["sample", p.signal, "-n", 2, "-o", p.root / "s.csv"],
        "cannot write signal samples to s.csv; use a .wav or .npy or .png path, or a folder"),
    cli("a recording watermark", lambda p: ["sample", p.signal, "-n", 2, "--watermark", "-o", p.root / "s.wav"],
        "signal samples carry no invisible watermark"),
    cli("recordings scored on text", lambda p: ["evaluate", p.copy("signal"), "--data", p.file("c.txt", "text " * 99)],
        "cannot evaluate a model of signal data on text data"),
    cli("a label the recordings lack", lambda p: ["sample", p.signal, "-n", 2, "--labels", "middle", "-o",
        p.root / "s.wav"], "unknown label 'middle'; known: high, low"),
]

# -- next-state prediction (condition_on) ----------------------------------------------------------------------
TRANSITIONS = pd.DataFrame({"x": np.linspace(-1, 1, 40), "next_x": np.linspace(-1, 1, 40) * 0.9})
DYNAMICS = [
    cli("condition_on a missing column", lambda p: ["train", p.csv("t.csv", TRANSITIONS), "--family", "diffusion",
        "--condition-on", "speed", "--out", p.out, *TRAIN], "condition_on names 'speed', not a column of this table"),
    cli("condition_on and class labels", lambda p: ["train", p.csv("t.csv", TRANSITIONS), "--family", "vae",
        "--condition-on", "x", "--conditional", "--out", p.out, *TRAIN], "a vae given columns (condition_on) is "
        "conditioned on them, not on class labels: drop --conditional"),
    cli("condition_on every column", lambda p: ["train", p.csv("t.csv", TRANSITIONS), "--family", "diffusion",
        "--condition-on", "x", "next_x", "--out", p.out, *TRAIN], "condition_on names every column"),
    cli("a model given rows sampled without them", lambda p: ["sample", p.dynamics, "-n", 3, "-o", p.root / "s.csv"],
        "this model generates rows given the values of other columns (condition_on): pass them"),
    cli("conditions without a column", lambda p: ["sample", p.dynamics, "--conditions", p.csv("c.csv", pd.DataFrame(
        {"x": [0.0, 0.5]})), "-o", p.root / "s.csv"], "the conditions lack column 'action'; this model generates "
        "next_x given x, action"),
    cli("conditions and a shard", lambda p: ["sample", p.dynamics, "--conditions", p.csv("c.csv", pd.DataFrame(
        {"x": [0.0], "action": [0.0]})), "--shard", "0/2", "-o", p.root / "s.csv"], "--conditions makes one row for "
        "each row of its file; --shard do not go with it"),
    cli("conditions for a model not given rows", lambda p: ["sample", p.table, "--conditions", p.csv("c.csv",
        pd.DataFrame({"size": [0.0]})), "-o", p.root / "s.csv"], "a table of conditions is for a model trained with "
        "condition_on"),
]

# -- preference and reward tuning -----------------------------------------------------------------------------
PREFERENCES = [
    cli("an empty preference file", lambda p: ["finetune", p.text, p.file("prefs.jsonl", ""), "--objective", "dpo",
        "--out", p.out, *TRAIN], "holds no preference pairs"),
    cli("a pair without its rejected response", lambda p: ["finetune", p.text, p.file("prefs.jsonl",
        '{"prompt": "A", "chosen": "b"}\n'), "--objective", "dpo", "--out", p.out, *TRAIN],
        "record 1: no 'rejected' string"),
    cli("preferences in a text file", lambda p: ["finetune", p.text, p.file("prefs.txt", "x"), "--objective", "dpo",
        "--out", p.out, *TRAIN], "preferences are a .jsonl file"),
    cli("DPO of an image model", lambda p: ["finetune", p.image, p.file("prefs.jsonl", '{"chosen": "b", "rejected": '
        '"c"}\n'), "--objective", "dpo", "--out", p.out, *TRAIN], "fine-tuning supports autoregressive runs"),
    cli("a reward RDKit does not provide", lambda p: ["finetune", p.molecule, "--reward", "toxicity", "--out", p.out,
        *TRAIN], "no molecule property 'toxicity'; properties: logP, SA, QED, weight"),
    cli("a reward and data", lambda p: ["finetune", p.molecule, p.file("m.smi", "CCO\n"), "--reward", "QED", "--out",
        p.out, *TRAIN], "name the data to fine-tune on, or (molecules) --reward PROPERTY"),
    cli("a property reward of text", lambda p: ["finetune", p.text, "--reward", "QED", "--out", p.out, *TRAIN],
        "a reward by name is a molecule property; this model makes text data"),
    cli("a reward tuned by sft", lambda p: ["finetune", p.molecule, "--reward", "QED", "--objective", "sft", "--out",
        p.out, *TRAIN], "--reward tunes by ppo or dpo: drop --objective sft"),
    cli("PPO of an image model", lambda p: ["finetune", p.image, p.file("prefs.jsonl", '{"chosen": "b", "rejected": '
        '"c"}\n'), "--objective", "ppo", "--out", p.out, *TRAIN], "fine-tuning supports autoregressive runs"),
    cli("a step budget for PPO toward a property", lambda p: ["finetune", p.molecule, "--reward", "QED", "--out",
        p.out, *TRAIN], "PPO runs for its rounds"),
    cli("a PPO round of one sample", lambda p: ["finetune", p.molecule, "--reward", "QED", "--rollouts", 1, "--out",
        p.out, *TRAIN], "rollouts must be"),
    cli("a PPO prompt longer than the context", lambda p: ["finetune", p.text, p.file("prefs.jsonl",
        '{"prompt": "' + "A" * 40 + '", "chosen": "b", "rejected": "c"}\n'), "--objective", "ppo", "--out", p.out,
        *TRAIN], "response tokens make"),
]

DISTILL = [
    cli("distilling a VAE", lambda p: ["distill", p.image, "--out", p.out, "--train-steps", 1],
        "distillation takes diffusion and autoregressive runs; this run's family is vae"),
    cli("a student of as many steps as its teacher", lambda p: ["distill", p.diffusion, "--steps", 20, "--out", p.out],
        "the teacher samples in 20 steps; a student of 20 would be no faster"),
    cli("teacher steps that do not halve to the student's", lambda p: ["distill", p.diffusion, "--steps", 4,
        "--teacher-steps", 12, "--out", p.out], "teacher_steps must be the student's 4 steps times a power of 2"),
    cli("a student of no steps", lambda p: ["distill", p.diffusion, "--steps", 0, "--out", p.out],
        "steps must be at least 1"),
    cli("a student wider than its teacher", lambda p: ["distill", p.text, "--n-embd", 64, "--out", p.out],
        "is not smaller than its teacher"),
    cli("a temperature for a diffusion student", lambda p: ["distill", p.diffusion, "--temperature", 3, "--out",
        p.out], "temperature applies to distilling another family; distilling diffusion runs takes steps"),
    cli("sampling steps for a text student", lambda p: ["distill", p.text, "--steps", 4, "--out", p.out],
        "steps applies to distilling another family; distilling autoregressive runs takes n_layer"),
    cli("a distillation budget too short", lambda p: ["distill", p.diffusion, "--minutes", "0.0001", "--out", p.out],
        "minutes=0.0001 is too short: reading the data took"),
    cli("a student written over a run", lambda p: ["distill", p.diffusion, "--out", p.copy("image")],
        "already holds a run"),
    cli("distilling an image model on text", lambda p: ["distill", p.diffusion, "shakespeare", "--out", p.out,
        "--train-steps", 1], "the teacher learnt image data; distil it on image, not text"),
]

CLI_CASES = (DATA + OPTIONS + SAMPLE + GENERATE + EVALUATE + FINETUNE + EXPORT_INFO + RUNS + SERVE + LATENT + ANOMALY
             + AUGMENT + DESIGN + ECOSYSTEM + SCALE + FAIRNESS + DETECTOR + MOLECULES + SIGNALS
             + DYNAMICS + PREFERENCES + DISTILL)


# -- the Python API -------------------------------------------------------------------------------------------
def _api(id: str, call: Callable[[Place], Any], message: str) -> Case:
    return Case(id, call, message)


def _model(path: Path) -> gl.Model:
    return gl.load(path)


API_CASES = [
    _api("load_data of None", lambda p: gl.load_data(None), "load_data takes a built-in name"),
    _api("load_data of a number", lambda p: gl.load_data(42), "load_data takes a built-in name"),
    _api("a data set of an unknown kind", lambda p: gl.Dataset("graph", [1], "g"), "unknown data kind 'graph'"),
    _api("an unknown family", lambda p: gl.Model("flow"), "unknown family 'flow'"),
    _api("an option in words", lambda p: gl.Model("vae", latent_dim="sixteen"),
         "latent_dim must be a whole number; got 'sixteen'"),
    _api("a fraction of a dimension", lambda p: gl.Model("vae", latent_dim=2.5), "latent_dim must be a whole number; got 2.5"),
    _api("a misspelt option", lambda p: gl.Model("vae", latnt_dim=3), "unknown option 'latnt_dim' for family 'vae'"),
    _api("a boolean as a number", lambda p: gl.Model("vae", conditional=1), "conditional must be true or false"),
    _api("steps in words", lambda p: gl.Model("vae").fit("digits", steps="3", out=p.out),
         "steps must be a whole number; got '3'"),
    _api("a fraction of a thread", lambda p: gl.Model("vae").fit("digits", threads=1.5, out=p.out),
         "threads must be a whole number; got 1.5"),
    _api("a fraction of a step", lambda p: gl.Model("vae").fit("digits", steps=2.5, out=p.out),
         "steps must be a whole number; got 2.5"),
    _api("negative minutes", lambda p: gl.Model("vae").fit("digits", minutes=-1, out=p.out), "minutes must be greater than 0"),
    _api("an unknown training option", lambda p: gl.Model("vae").fit("digits", learning_rate=1, out=p.out),
         "unknown training option 'learning_rate'"),
    _api("an unknown codec option", lambda p: gl.Model("autoregressive").fit("shakespeare", out=p.out,
         codec_options={"alphabet": "abc"}), "unknown codec option for text data"),
    _api("a wrong column kind", lambda p: gl.Model("vae").fit(pd.DataFrame({"a": [1.0, 2.0] * 6}), out=p.out,
         codec_options={"kinds": {"a": "money"}}), "unknown column kind 'money'"),
    _api("no data", lambda p: gl.Model("vae").fit(out=p.out), "no data given"),
    _api("zero samples from the API", lambda p: _model(p.image).sample(0), "n must be a whole number of at least 1"),
    _api("a fraction of a sample", lambda p: _model(p.image).sample(2.5), "n must be a whole number"),
    _api("samples in words from the API", lambda p: _model(p.image).sample("3"), "n must be a whole number"),
    _api("a billion billion samples", lambda p: _model(p.image).sample(10**15), "samples would take about"),
    _api("samples before training", lambda p: gl.Model("vae").sample(2), "has not been trained yet"),
    _api("encode without an encoder", lambda p: _model(p.text).encode(["to be or not"]),
         "family 'autoregressive' has no encode"),
    _api("log_prob without a likelihood", lambda p: _model(p.diffusion).log_prob(np.zeros((2, 8, 8), np.uint8)),
         "family 'diffusion' has no log_prob"),
    _api("log_prob of smaller images", lambda p: _model(p.image).log_prob(np.zeros((2, 5, 5), np.uint8), labels=[1, 2]),
         "the model takes 8x8x1 images; these are 5x5x1"),
    _api("log_prob of colour images", lambda p: _model(p.image).log_prob(np.zeros((2, 8, 8, 3), np.uint8), labels=[1, 2]),
         "these are 8x8x3"),
    _api("log_prob of rows with another column", lambda p: _model(p.table).log_prob(pd.DataFrame(
         {"user_id": [1], "size": [0.1], "colour": ["red"], "weight": [3]})), "has column 'weight' that the model was not"),
    _api("log_prob of rows without a column", lambda p: _model(p.table).log_prob(pd.DataFrame(
         {"user_id": [1], "size": [0.1]})), "lacks column 'colour'"),
    _api("encode of an unknown category", lambda p: _model(p.table).encode(pd.DataFrame(
         {"user_id": [1], "size": [0.1], "colour": ["green"]})), "has the category 'green', unseen in training"),
    _api("decode of codes of another size", lambda p: _model(p.image).decode(np.zeros((2, 7)), labels=[1, 2]),
         "latent codes must be finite numbers of shape (N, 4); got (2, 7)"),
    _api("decode of words", lambda p: _model(p.image).decode([["a", "b", "c", "d"]], labels=[1]),
         "latent codes must be finite numbers"),
    _api("generate from images", lambda p: _model(p.image).generate("x"), "family 'vae' has no generate"),
    _api("zero tokens from the API", lambda p: _model(p.text).generate("ROMEO:", max_tokens=0), "max_tokens must be"),
    _api("a top-k that is a fraction", lambda p: _model(p.text).generate("ROMEO:", top_k=1.5), "top_k must be a whole number"),
    _api("evaluate of a missing run", lambda p: gl.evaluate(p.root / "nowhere"), "is not a folder"),
    _api("evaluate of a number", lambda p: gl.evaluate(42), "evaluate takes a Model or a run folder; got int"),
    _api("evaluate with one sample", lambda p: gl.evaluate(_model(p.text), samples=1), "samples must be a whole number"),
    _api("fine-tuning an unsaved model", lambda p: gl.Model("autoregressive", n_layer=1, n_embd=16, n_head=2,
         block_size=16).fit("shakespeare", steps=1, progress=False).finetune("shakespeare", out=p.out),
         "the adapter must refer to a saved genloom run"),
    _api("labels for an unconditional model", lambda p: _model(p.diffusion).sample(2, labels=[1, 2]),
         "is not conditional, so it cannot take labels"),
    _api("conditions on images", lambda p: _model(p.image).sample(2, conditions={"a": 1}),
         "conditions apply to tables"),
    _api("a sampling option of another family", lambda p: _model(p.image).sample(2, sampler="ddim"),
         "family 'vae' takes no sampling options"),
    _api("a misspelt sampling option", lambda p: _model(p.diffusion).sample(2, stepz=3),
         "unknown sampling option 'stepz' for family 'diffusion'"),
    _api("save into a file", lambda p: _model(p.image).save(p.image / "config.json" / "run"), "is a file, not a folder"),
    _api("sample_to a file of the wrong type", lambda p: _model(p.image).sample_to(p.root / "s.txt", 3),
         "cannot write image samples to s.txt"),
    _api("log_prob of a text longer than the context", lambda p: _model(p.text).log_prob(["ok", "a" * 5000]),
         "text 1 is 5000 tokens; this model scores texts of 1 to"),
    _api("log_prob of an empty text", lambda p: _model(p.text).log_prob(""), "text 0 is 0 tokens"),
    _api("a stop that is not text", lambda p: _model(p.text).generate("ROMEO:", stop=[1]),
         "stop must be a string or a list of strings; got [1]"),
    _api("save over another run", lambda p: _model(p.image).save(p.text), "already holds a run, an adapter or a checkpoint"),
    _api("a shard of no parts", lambda p: _model(p.image).sample(4, shard=(0, 0)), "shard must be (i, k) with k >= 1"),
    _api("a shard of a fraction", lambda p: _model(p.image).sample(4, shard=(0.5, 2)), "got (0.5, 2)"),
    _api("a sharded sample_to of too few", lambda p: _model(p.image).sample_to(p.root / "s.npy", 4, shard=(0, 3)),
         "shard 0/3 of 4 samples holds none"),
    _api("a detector with no generated examples", lambda p: gl.train_detector("digits", []),
         "give at least one source of generated examples"),
    _api("a detector against too few examples", lambda p: gl.train_detector("digits", {"few": np.zeros((3, 8, 8))}),
         "few gives 3 examples; a detector needs at least 8"),
    _api("a detector against rows of other columns", lambda p: gl.train_detector(pd.DataFrame({"a": [0.5] * 40}),
         {"other": pd.DataFrame({"b": [0.5] * 40})}), "the examples of other lack column 'a'"),
    _api("detector scores of a table", lambda p: gl.Detector.load(p.detector).score(pd.DataFrame({"a": [1.0]})),
         "must be an array of shape (N, H, W) or (N, H, W, C)"),
    _api("a molecule of tokens the run never saw", lambda p: _model(p.molecule).log_prob(["CC[Se]C"]),
         "'CC[Se]C' holds tokens the model never saw: [Se]"),
    _api("labels for molecules", lambda p: _model(p.molecule).sample(2, labels=[1, 2]),
         "molecule models take no labels"),
    _api("an unknown tracker", lambda p: gl.Model("vae").fit("digits", steps=1, trackers=["wandb"], out=p.out),
         "unknown tracker 'wandb'; choose from tensorboard, mlflow"),
]


# -- running a case -------------------------------------------------------------------------------------------
def _snapshot(*roots: Path) -> dict[str, str]:
    return {str(path): (hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "folder")
            for root in roots if root.exists() for path in sorted(root.rglob("*"))}


@pytest.fixture
def place(tmp_path, trained_run, text_run, table_run, diffusion_run, detector_folder, molecule_run, signal_run,
          dynamics_run):
    Path("/tmp/genloom-catalogue-pwned").unlink(missing_ok=True)
    return Place(tmp_path, {"image": trained_run, "text": text_run, "table": table_run, "diffusion": diffusion_run,
                            "detector": detector_folder, "molecule": molecule_run, "signal": signal_run,
                            "dynamics": dynamics_run})


def _shared(place: Place) -> list[Path]:
    return list(place.runs.values())


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda case: case.id)
def test_the_command_line_refuses_in_one_line(case, place, capsys):
    argv = [str(arg) for arg in case.args(place)]
    before = _snapshot(place.root, *_shared(place))
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("genloom: error: "), err
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in err
    assert _snapshot(place.root, *_shared(place)) == before  # nothing on disk changed, nothing new appeared
    assert not Path("/tmp/genloom-catalogue-pwned").exists()  # no stranger's code ran


@pytest.mark.parametrize("case", API_CASES, ids=lambda case: case.id)
def test_the_api_refuses_in_one_line(case, place):
    before = _snapshot(place.root, *_shared(place))
    with pytest.raises(gl.GenloomError) as error:
        case.args(place)
    message = str(error.value)
    assert "\n" not in message and case.message in message, message
    assert _snapshot(place.root, *_shared(place)) == before


def test_the_catalogue_is_large():
    assert len(CLI_CASES) + len(API_CASES) >= 150
