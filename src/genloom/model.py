"""`Model`: a family, the codec fitted to its data, and the run directory that holds them."""
from __future__ import annotations

import copy
import platform
import shutil
import tempfile
import weakref
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from . import __version__
from .data import CODECS, Dataset, load_data, load_source
from .errors import GenloomError
from .families import FAMILIES, Family, family_class, family_config, sample_options
from .families.sampling import SamplingConfig
from .files import write_json, write_text
from .nets.lora import merge_lora
from .metrics.report import write_model_card, write_report
from .train import METRICS_FILE, STATE_FILE, TrainConfig, Trainer, read_metrics, resolve_device
from .train.batches import make_batches, split_validation
from .train.loop import BEST_FILE
from .train.checkpoint import load_weights, save_weights
from .runs import is_gpt2_checkpoint, read_run

SAMPLE_GRID = 64        # samples written during and after training (a grid of images, or texts)
EVAL_EXAMPLES = 512     # held-out examples (or windows of text) scored by Family.evaluate after training
SAMPLE_BATCH = 500
MAX_CONDITION_DRAWS = 20  # batches drawn for conditional table sampling before giving up


class Model:
    """One generative model; `Model("vae", latent_dim=8)` picks the family, the data picks the rest."""

    def __init__(self, family: str = "vae", **options: Any):
        self.family_name = family
        self.config = family_config(family, options)
        self.codec = None
        self.net: Family | None = None       # the trained weights
        self.ema_net: Family | None = None   # their moving average, used for sampling
        self.run_dir: Path | None = None
        self.record: dict[str, Any] = {}     # what config.json holds

    def __repr__(self) -> str:
        state = f"{self.record.get('steps_trained', 0)} steps on {self.record['data']['name']}" if self.record else "unfitted"
        return f"Model({self.family_name!r}, {state})"

    # -- training ------------------------------------------------------------------------------
    def fit(self, data: str | Path | Dataset | np.ndarray | None = None, *, steps: int | None = None,
            minutes: float | None = None, epochs: float | None = None, out: str | Path | None = None,
            resume: bool = False, codec_options: dict[str, Any] | None = None, **train_options: Any) -> "Model":
        """Train on `data` (anything `load_data` takes) for a budget of steps, minutes or epochs; with
        resume=True continue the run in `out`. codec_options reach the codec, e.g. {"tokenizer": "bpe"}."""
        budget = {k: v for k, v in {"steps": steps, "minutes": minutes, "epochs": epochs}.items() if v is not None}
        run_dir = Path(out) if out is not None else None
        stored = self._stored_run(run_dir, resume)
        dataset = self._dataset(data, stored)
        defaults = family_class(self.family_name).defaults_for(dataset.kind)
        train_config = self._train_config(defaults, stored, budget, train_options)
        device = resolve_device(train_config.device)
        if not stored:
            self._fit_codec(dataset, codec_options)
        torch.manual_seed(train_config.seed)
        net = family_class(self.family_name)(self.codec.layout, self.config)
        x = self.codec.encode(dataset.values)
        labels = torch.from_numpy(dataset.labels) if net.conditional else None
        (x, labels), validation = split_validation(x, labels, train_config.val_fraction)
        if run_dir is None:
            run_dir = Path(tempfile.mkdtemp(prefix="genloom-run-"))
            weakref.finalize(self, shutil.rmtree, run_dir, ignore_errors=True)
        trainer = Trainer(net, x, labels, train_config, run_dir, device, validation, self._write_samples_at)

        run_dir.mkdir(parents=True, exist_ok=True)  # everything is checked: only now may the run appear
        self.run_dir = run_dir
        if resume and (run_dir / STATE_FILE).exists():  # a run killed before its first checkpoint starts over
            trainer.resume()
        self.record = self._make_record(dataset, train_config)
        self._write_config()
        trainer.fit()
        self.net, self.ema_net = trainer.family, trainer.ema.module
        self.record["steps_trained"] = trainer.step
        self.record["train_seconds"] = round(trainer.elapsed, 2)
        self.record["final_metrics"] = self._final_metrics(trainer, validation or (x, labels))
        self.save(run_dir)
        return self

    def _dataset(self, data: Any, stored: dict | None) -> Dataset:
        """Load the data (from the run's record when resuming without it); a resumed run's must be the same."""
        if data is None and not stored:
            raise GenloomError("no data given: name a built-in data set, a folder or a file")
        dataset = load_data(data) if data is not None else load_source(stored["data"]["source"])
        if stored:
            seen = (stored["data"]["kind"], stored["data"]["name"], stored["data"]["examples"])
            if (dataset.kind, dataset.name, len(dataset)) != seen:
                raise GenloomError(f"this data ({dataset.name}, {len(dataset)} {dataset.kind}) differs from the data "
                                   f"the run was trained on ({seen[1]}, {seen[2]} {seen[0]}); resume with the same data")
        return dataset

    def _fit_codec(self, dataset: Dataset, codec_options: dict | None) -> None:
        """The codec of the data's kind, with the family's preferred options under the ones given, fitted."""
        family_defaults = family_class(self.family_name).codec_defaults_by_kind.get(dataset.kind, {})
        options = {**family_defaults, **(codec_options or {})}
        try:
            codec = CODECS[dataset.kind](**options)
        except TypeError as error:
            raise GenloomError(f"unknown codec option for {dataset.kind} data ({error})") from None
        self.codec = codec.fit(dataset)

    def _stored_run(self, run_dir: Path | None, resume: bool) -> dict[str, Any] | None:
        """The config of the run to resume, whose family options and codec this model adopts."""
        if not resume:
            if run_dir is not None and (run_dir / "config.json").exists():
                raise GenloomError(f"{run_dir} already holds a run; pass resume=True (CLI: --resume) to continue "
                                   "it, or choose another output folder")
            return None
        if run_dir is None:
            raise GenloomError("resume needs the run's folder: pass out= (CLI: --out)")
        stored, self.codec = read_run(run_dir)
        if stored["family"] != self.family_name:
            raise GenloomError(f"the run in {run_dir} was trained with family '{stored['family']}', "
                               f"not '{self.family_name}'; resume it with --family {stored['family']}")
        self.config = family_config(self.family_name, stored["family_options"])
        return stored

    @staticmethod
    def _train_config(defaults: dict, stored: dict | None, budget: dict, options: dict) -> TrainConfig:
        """General defaults < the family's defaults < the resumed run's settings < what was asked now."""
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise GenloomError(f"unknown training option {', '.join(map(repr, unknown))}; "
                               f"options: {', '.join(sorted(known))}")
        settings = dict(stored["train"]) if stored else dict(defaults)
        trained_with = settings.get("optimizer", TrainConfig.optimizer)  # runs from before the option: AdamW
        if stored and options.get("optimizer", trained_with) != trained_with:
            raise GenloomError(f"the run trained with optimizer '{trained_with}'; resume it with the same one "
                               "(its state does not carry over), or start a new run")
        if budget:  # a new budget replaces the stored one whole
            settings.update(steps=None, minutes=None, epochs=None)
        config = TrainConfig(**{**settings, **budget, **options})
        config.check()
        return config

    def _make_record(self, dataset: Dataset, train_config: TrainConfig) -> dict[str, Any]:
        return {
            "genloom_version": __version__,
            "family": self.family_name,
            "family_options": asdict(self.config),
            "codec": self.codec.name,
            "data": {"name": dataset.name, "kind": dataset.kind, "examples": len(dataset),
                     "shape": list(self.codec.layout.shape), "classes": self.codec.layout.num_classes,
                     "source": dataset.source},
            "train": asdict(train_config),
            "steps_trained": 0,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        }

    def _final_metrics(self, trainer: Trainer, held_out: tuple) -> dict[str, float]:
        """The family's own numbers on held-out data (the training data when nothing is held out)."""
        x, labels = make_batches(*held_out, EVAL_EXAMPLES, 0, trainer.context_length).next()
        device = next(self.ema_net.parameters()).device
        self.ema_net.eval()
        with torch.no_grad():
            scores = self.ema_net.evaluate(x.to(device), labels.to(device) if labels is not None else None)
        if trainer.validation is not None:
            scores["best_val_loss"] = trainer.best_val_loss
        return {k: round(v, 4) for k, v in scores.items()}

    def _write_samples_at(self, step: int, net: Family) -> None:
        path = self.run_dir / "samples" / f"step-{step:06d}{self.codec.sample_suffix}"
        path.parent.mkdir(exist_ok=True)
        self.codec.save_samples(self._generate(net, SAMPLE_GRID, seed=0, labels=None), path)

    # -- sampling and the latent space ---------------------------------------------------------
    def sample(self, n: int, *, seed: int = 0, labels: Any = None, conditions: dict[str, Any] | None = None,
               **options: Any) -> Any:
        """n new examples (images: uint8 array (n, H, W, C); tables: a DataFrame); the same seed gives the
        same samples. Options reach the family's sampler, e.g. sampler="ddim", steps=50, guidance=3 for
        diffusion. `conditions` ({"income": ">50K"}) keeps only table rows with those values."""
        self._require_fitted()
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise GenloomError(f"n must be a whole number of at least 1; got {n!r}")
        options = sample_options(self.family_name, options)
        if conditions:
            return self._sample_matching(int(n), seed, conditions, options)
        return self._generate(self.ema_net, int(n), seed, labels, options)

    def _sample_matching(self, n: int, seed: int, conditions: dict[str, Any], options: Any) -> Any:
        """Rejection sampling (as SDV does, also after CTGAN's native conditioning): draw batches until n
        rows match, or give up after MAX_CONDITION_DRAWS batches with a message."""
        if not hasattr(self.codec, "condition_mask"):
            raise GenloomError(f"conditions apply to tables; this model makes {self.codec.name}")
        given = self.codec.condition_positions(conditions)  # a GAN asks its generator for them, as CTGAN
        kept, found = [], 0
        for attempt in range(MAX_CONDITION_DRAWS):
            rows = self._generate(self.ema_net, max(n, SAMPLE_BATCH), seed + attempt, None, options, given)
            matching = rows[self.codec.condition_mask(rows, conditions)]
            kept.append(matching)
            found += len(matching)
            if found >= n:
                return pd.concat(kept).iloc[:n].reset_index(drop=True)
        raise GenloomError(f"only {found} of {MAX_CONDITION_DRAWS * max(n, SAMPLE_BATCH):,} sampled rows matched "
                           f"{conditions}; the model rarely makes such rows: ask for fewer, or train it longer")

    def _generate(self, net: Family, n: int, seed: int, labels: Any, options: Any = None,
                  given: Sequence[int] = ()) -> Any:
        label_ids = self._label_tensor(labels, n, net)
        device = next(net.parameters()).device
        generator = torch.Generator().manual_seed(seed)  # on the CPU: the same samples on every device
        was_training = net.training
        net.eval()
        chunks = []
        with torch.no_grad():
            for start in range(0, n, SAMPLE_BATCH):
                size = min(SAMPLE_BATCH, n - start)
                chunk_labels = label_ids[start:start + size].to(device) if label_ids is not None else None
                chunks.append(net.sample(size, chunk_labels, generator, options, given).cpu())
        net.train(was_training)
        return self.codec.decode(torch.cat(chunks))

    def _label_tensor(self, labels: Any, n: int, net: Family) -> torch.Tensor | None:
        if labels is None:
            return None
        if not net.conditional:
            raise GenloomError(f"this {self.family_name} is not conditional, so it cannot take labels; "
                               "train it with conditional=True (CLI: --conditional) on labelled data")
        ids = self.codec.label_ids(labels)
        if len(ids) == 1:
            ids = np.repeat(ids, n)
        if len(ids) != n:
            raise GenloomError(f"{len(ids)} labels for {n} examples; give one label, or one per example")
        return torch.from_numpy(ids)

    def generate(self, prompt: str = "", *, max_tokens: int = 256, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float = 1.0, repetition_penalty: float = 1.0,
                 stop: Sequence[str] = (), seed: int = 0, stream: bool = False,
                 use_cache: bool = True) -> str | Iterator[str]:
        """Continue `prompt`; the text generated (without the prompt), or with stream=True its pieces as they come."""
        generate = self._latent_tool("generate")
        if self.codec.layout.kind != "sequence":
            raise GenloomError(f"generate continues text; this model makes {self.codec.layout.kind}s: use sample")
        if not isinstance(max_tokens, (int, np.integer)) or max_tokens < 1:
            raise GenloomError(f"max_tokens must be a whole number of at least 1; got {max_tokens!r}")
        sampling = SamplingConfig(temperature, top_k, top_p, repetition_penalty)
        sampling.check()
        ids = self.codec.encode(prompt) if prompt else torch.tensor([self.codec.layout.start_token])
        device = next(self.ema_net.parameters()).device
        tokens = generate(ids[None].to(device), int(max_tokens), sampling, torch.Generator().manual_seed(seed),
                          use_cache=use_cache)
        pieces = self._text_pieces(tokens, [s for s in ([stop] if isinstance(stop, str) else stop) if s])
        return pieces if stream else "".join(pieces)

    def _text_pieces(self, tokens: Iterator[torch.Tensor], stop: list[str]) -> Iterator[str]:
        """Decoded text as tokens arrive, ending at a stop string or the end token. Text that could still
        become a stop string, or a byte-level token that ends mid-character, waits until it is known."""
        ids: list[int] = []
        text, emitted = "", 0
        with torch.no_grad():
            for token in tokens:
                if int(token[0]) == self.codec.end_token:
                    break
                ids.append(int(token[0]))
                text = self.codec.decode(ids)
                hits = [hit for hit in (text.find(s, emitted) for s in stop) if hit >= 0]
                if hits:
                    if min(hits) > emitted:
                        yield text[emitted:min(hits)]
                    return
                ready = len(text) - max(_stop_prefix_length(text, stop), len(text) - len(text.rstrip("\ufffd")))
                if ready > emitted:
                    yield text[emitted:ready]
                    emitted = ready
        if len(text) > emitted:
            yield text[emitted:]

    def _latent_tool(self, method: str) -> Any:
        self._require_fitted()
        tool = getattr(self.ema_net, method, None)
        if tool is None:
            raise GenloomError(f"family '{self.family_name}' has no {method}; "
                               f"families with one: {', '.join(n for n, c in FAMILIES.items() if hasattr(c, method))}")
        return tool

    def _on_device(self, x: torch.Tensor, labels: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x and its label ids on the model's device; a conditional model insists on labels."""
        if self.ema_net.conditional and labels is None:
            raise GenloomError("this model is conditional: pass the labels of the examples")
        ids = self._label_tensor(labels, len(x), self.ema_net)
        device = next(self.ema_net.parameters()).device
        return x.to(device), ids.to(device) if ids is not None else None

    @torch.no_grad()
    def encode(self, values: Any, labels: Any = None) -> np.ndarray:
        """Latent codes (N, latent_dim) of examples."""
        encode = self._latent_tool("encode")
        return encode(*self._on_device(self.codec.encode(values), labels)).cpu().numpy()

    @torch.no_grad()
    def decode(self, latents: np.ndarray, labels: Any = None) -> Any:
        """Examples decoded from latent codes."""
        decode = self._latent_tool("decode")
        z = torch.as_tensor(np.asarray(latents), dtype=torch.float32)
        return self.codec.decode(decode(*self._on_device(z, labels)))

    @torch.no_grad()
    def log_prob(self, values: Any, labels: Any = None, seed: int = 0) -> np.ndarray:
        """Per-example log-likelihood (or its lower bound, the ELBO, for a VAE) in nats."""
        log_prob = self._latent_tool("log_prob")
        x, ids = self._on_device(self.codec.encode(values), labels)
        return log_prob(x, ids, torch.Generator().manual_seed(seed)).cpu().numpy()

    # -- runs on disk --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the run: config, codec, weights (+EMA), metrics, samples, report and model card."""
        self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.run_dir and self.run_dir.resolve() != path.resolve():
            for name in (METRICS_FILE, STATE_FILE, BEST_FILE):
                if (self.run_dir / name).exists():
                    shutil.copy2(self.run_dir / name, path / name)
            if (self.run_dir / "samples").exists():
                shutil.copytree(self.run_dir / "samples", path / "samples", dirs_exist_ok=True)
        metadata = {"family": self.family_name, "genloom_version": __version__}
        save_weights(merge_lora(self.net), path / "model.safetensors", metadata)  # a fine-tuned model saves whole
        save_weights(merge_lora(self.ema_net), path / "ema.safetensors", metadata)
        (path / "samples").mkdir(exist_ok=True)
        self.codec.save_samples(self._generate(self.ema_net, SAMPLE_GRID, seed=0, labels=None),
                                path / "samples" / f"final{self.codec.sample_suffix}")
        for name, text in self.codec.files().items():
            write_text(path / name, text)
        self.run_dir = path
        self.write_record()
        return path

    def write_record(self) -> None:
        """Rewrite the run's config.json, report.html and MODEL_CARD.md from `record`."""
        self._write_config()
        write_report(self.run_dir, self.record, read_metrics(self.run_dir / METRICS_FILE))
        write_model_card(self.run_dir, self.record)

    def _write_config(self) -> None:
        write_json(self.run_dir / "config.json", self.record)
        write_json(self.run_dir / "codec.json", self.codec.to_json())

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Model":
        """Rebuild a saved run (or a LoRA adapter and its base run); no pickled code is read."""
        path = Path(path)
        if (path / "adapter.json").exists():
            from .finetune import load_adapter  # finetune builds on Model
            return load_adapter(path, device)
        if is_gpt2_checkpoint(path):
            from .export.gpt2 import load_gpt2  # the GPT-2 reader builds on Model
            return load_gpt2(path, device)
        record, codec = read_run(path)
        if not (path / "model.safetensors").exists():
            raise GenloomError(f"{path} has no model.safetensors: its training did not finish; "
                               f"continue it with `genloom train --resume --out {path}`")
        model = cls.assemble(record, codec, device)
        load_weights(model.net, path / "model.safetensors")
        load_weights(model.ema_net, path / ("ema.safetensors" if (path / "ema.safetensors").exists()
                                            else "model.safetensors"))
        model.run_dir = path
        return model

    @classmethod
    def assemble(cls, record: dict[str, Any], codec: Any, device: str = "cpu") -> "Model":
        """A model with freshly initialised networks for a run record and codec (weights to be loaded)."""
        model = cls(record["family"], **record["family_options"])
        model.codec, model.record = codec, record
        model.net = family_class(record["family"])(codec.layout, model.config).to(resolve_device(device)).eval()
        model.ema_net = copy.deepcopy(model.net)
        return model

    def finetune(self, data: Any, *, out: str | Path, rank: int = 8, alpha: float = 16.0, **options: Any) -> "Model":
        """LoRA fine-tuning on new data; `out` receives only the adapter. Options as for fit."""
        from .finetune import finetune  # finetune builds on Model
        return finetune(self, data, out=out, rank=rank, alpha=alpha, **options)

    def to(self, device: str) -> "Model":
        """Move the weights to a device ('cpu', 'cuda' or 'auto')."""
        self._require_fitted()
        torch_device = resolve_device(device)
        self.net.to(torch_device), self.ema_net.to(torch_device)
        return self

    def _require_fitted(self) -> None:
        if self.ema_net is None:
            raise GenloomError("this model has not been trained yet: call fit(data) or gl.load(run_folder) first")


def _stop_prefix_length(text: str, stop: list[str]) -> int:
    """Length of the longest end of `text` that begins one of the stop strings."""
    return max((k for s in stop for k in range(1, min(len(s), len(text) + 1)) if text.endswith(s[:k])), default=0)


def load(path: str | Path, device: str = "cpu") -> Model:
    """Load a run folder written by `Model.save` or `genloom train`."""
    return Model.load(path, device=device)
