"""`Model`: a family, the codec fitted to its data, and the run folder that holds them."""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
import weakref
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import __version__
from .choice import AUTO, FamilyChoice, NumberColumns, choose_family, number_columns
from .data.codec import Codec, fitted_codec
from .data.dataset import Dataset
from .data.image_watermark import Marker
from .data.domains import is_joined, join_domains
from .data.fair_balance import balance_request, balanced_rows
from .data.loaders import load_data, load_source
from .data.preferences import preference_pairs, read_preferences
from .defaults import (budget_of, codec_options_for, family_config, one_thread_minutes, resolve_train_config,
                       sampling_options_for, stored_family_config)
from .distill import method_for, distilled
from .errors import GenloomError
from .families import build_family, family_entry, sample_options
from .families.base import Family
from .families.configs import DESIGN_PRIOR_WEIGHT, DESIGN_STEPS, DistillSettings, PPOSettings, TokenSampling
from .families.drawing import (SAMPLE_BATCH, check_memory, check_shard, draw, draw_chunks, label_tensor,
                               latent_tensor, progress_bar, shard_rows)
from .families.latent_paths import path_between, seed_code
from .families.text_stream import SharedTokens, TextBatch, TextStream, stop_strings
from .families.watermark import DEFAULT_THRESHOLD, TextWatermark, WatermarkVerdict, watermark_of
from .files import check_writable
from .finetune import (OBJECTIVES, LoRASettings, check_adapter_base, check_resumable, train_adapter,
                       train_preference_adapter)
from .finetune.ppo import (SequenceReward, check_prompts, reward_model_reward, train_ppo_adapter,
                           train_reward_model)
from .options import checked_value, whole_number
from .runs.folder import check_save_target, is_own_run, new_record, write_config, write_pages, write_run
from .runs.resume import starting_point
from .runs.adapter import adapted_record
from .runs.loading import load_run
from .tracking import Tracker, Trackers
from .train.batches import split_validation
from .train.device import available_cores, resolve_device
from .train.distributed import processes_from_environment
from .train.loop import STATE_FILE, CallBudget, Trainer

if TYPE_CHECKING:
    from .data.content_credentials import ContentSigner

FILE_CHUNK = 10_000     # examples decoded and written at a time by sample_to
DISTILL_SETTINGS = {field.name for field in fields(DistillSettings)}


class Model:
    """One generative model; `Model("vae", latent_dim=8)` picks the family, the data picks the rest;
    `Model()` (family "auto") lets the data and the budget pick the family too (choice.py)."""

    def __init__(self, family: str = AUTO, **options: Any):
        self.asked_family = family
        self.family_name = family                       # the family trained: the one asked, or auto's choice
        self.options = options                          # as given; the data kind's defaults join them at fit
        self.config = family_config(family, None, options) if family != AUTO else None
        self.codec: Codec | None = None
        self.net: Family | None = None                  # the trained weights
        self.ema_net: Family | None = None              # their moving average, used for sampling
        self.run_dir: Path | None = None
        self.scratch_dir: Path | None = None            # a temporary run folder, for fit without out=
        self.record: dict[str, Any] = {}                # what config.json holds
        self._preview_given: np.ndarray | None = None   # the conditions a model given rows shows its samples for

    def __repr__(self) -> str:
        state = f"{self.record.get('steps_trained', 0)} steps on {self.record['data']['name']}" if self.record else "unfitted"
        return f"Model({self.family_name!r}, {state})"

    # -- training ------------------------------------------------------------------------------
    def fit(self, data: str | Path | Dataset | np.ndarray | None = None, *, steps: int | None = None,
            minutes: float | None = None, epochs: float | None = None, out: str | Path | None = None,
            resume: bool = False, codec_options: dict[str, Any] | None = None, codec_data: Any = None,
            trackers: Sequence[str | Tracker] = (), budget_started: float | None = None, **train_options: Any) -> Model:
        """Train on `data` (anything `load_data` takes) for a budget of steps, minutes or epochs; with
        resume=True continue the run in `out`. codec_options reach the codec, e.g. {"tokenizer": "bpe"};
        codec_data, if given, is what the codec learns from instead of `data` (the data before a resampling,
        whose repeated rows would be spikes to a number transform). A budget in minutes bounds the whole call:
        the codec, training, validation and writing the run. `trackers` ("tensorboard", "mlflow" or
        genloom.tracking objects) receive the numbers, samples and record as the run folder does.
        `budget_started`, a time.perf_counter() reading, starts the budget's clock before the call, so that a
        caller's own set-up counts too (the CLI's imports and data reading). Under torchrun each process trains
        on its share of every batch and only the first writes the run (train/distributed.py)."""
        started = time.perf_counter() if budget_started is None else budget_started
        processes = processes_from_environment()
        tracked = Trackers(trackers)
        run_dir = Path(out) if out is not None else None
        if run_dir is not None:
            check_writable(run_dir, folder=True)
        stored, codec, dataset = starting_point(run_dir, resume, self.asked_family, data)
        budget = budget_of(steps, minutes, epochs)
        threads = train_options.get("threads") or available_cores()
        choice = self._choose_family(stored, dataset, budget, threads)
        config = resolve_train_config(self.family_name, dataset.kind, stored and stored["train"], budget,
                                      train_options, len(dataset))
        device = processes.device(resolve_device(config.device))
        processes.start(device)  # all processes have checked the run folder before the first writes to it
        # the budget tiers were measured on one CPU process; every process of a distributed run builds one model
        cpu_minutes = (one_thread_minutes(budget, threads) if device.type == "cpu" and not processes.distributed
                       else None)
        user_options = {k: v for k, v in self.options.items() if v is not None}
        auto = choice.options if choice and not set(choice.options) & set(user_options) else {}
        asked = {**auto, **user_options}
        self.config = (stored_family_config(self.family_name, stored["family_options"]) if stored else
                       family_config(self.family_name, dataset.kind, asked, len(dataset), cpu_minutes))
        second = self.config.second_data()
        if second is not None and not is_joined(dataset):  # a translation's target domain (a resumed run has it)
            dataset = join_domains(dataset, load_data(second, image_size=dataset.source.get("image_size")))
        asked_of_codec = {**(codec_options or {}), **self.config.codec_options()}
        codec_settings = codec_options_for(self.family_name, dataset.kind, asked_of_codec, len(dataset),
                                           private=config.dp_epsilon is not None)
        learnt = dataset if codec_data is None else load_data(codec_data, target=dataset.source.get("target"))
        self.codec = codec or fitted_codec(learnt, codec_settings)
        torch.manual_seed(config.seed)
        net = build_family(self.family_name, self.codec.layout, self.config)
        net.adopt(load_run)
        given = self.codec.row_conditions(dataset.values)  # a table's condition_on columns, read as labels are
        labels = given if given is not None else torch.from_numpy(dataset.labels) if net.conditional else None
        self._preview_given = given[:self.codec.preview_count].numpy() if given is not None else None
        (x, labels), validation = split_validation(self.codec.encode(dataset.values), labels, config.val_fraction)
        if run_dir is None:
            run_dir = self.scratch_dir = Path(tempfile.mkdtemp(prefix="genloom-run-"))
            weakref.finalize(self, shutil.rmtree, run_dir, ignore_errors=True)
        def on_sample(step: int, net: Family) -> None:
            tracked.samples(step, self._write_samples_at(step, net))
        trainer = Trainer(net, x, labels, config, run_dir, device, validation, on_sample, on_log=tracked.metrics,
                          processes=processes)
        call_budget = None if config.minutes is None else CallBudget(config.minutes, started)
        if call_budget is not None:
            call_budget.check_time_left("reading the data, fitting the codec and building the model")
        self.run_dir = run_dir
        if stored and (run_dir / STATE_FILE).exists():  # a run killed before its first checkpoint starts over
            trainer.resume()
        self.record = new_record(self.family_name, self.config, self.codec, dataset, trainer.config)
        if choice is not None:
            self.record["family_choice"] = choice.as_record()
        if processes.writes:
            run_dir.mkdir(parents=True, exist_ok=True)  # everything is checked: only now may the run appear
            write_config(run_dir, self.record, self.codec)
            tracked.start(run_dir, self.record)
        try:
            fitted = False
            try:
                trainer.fit(call_budget and call_budget.deadline)
                fitted = True
            finally:
                processes.finish(together=fitted)
            self.net, self.ema_net = trainer.family, trainer.ema.module
            if not processes.writes:  # the same training; the first process writes the run
                return self
            self.record.update(steps_trained=trainer.step, train_seconds=round(trainer.elapsed, 2),
                               final_metrics=trainer.held_out_scores(validation or (x, labels)))
            if trainer.privacy is not None:
                self.record["privacy"] = trainer.privacy.spent()
            if trainer.stopped_early:
                self.record["stopped_early"] = (f"no better validation loss in the last {trainer.stale_validations} "
                                                "validations")
            if trainer.kept_best:
                self.record["best_weights"] = trainer.kept_best
            self.record["fit_seconds"] = round(time.perf_counter() - started, 2)  # all but writing the run
            self.save(run_dir)
        except BaseException:
            if processes.writes:
                tracked.abort()
            raise
        tracked.samples(trainer.step, run_dir / "samples" / f"final{self.codec.sample_suffix}")
        tracked.finish(run_dir, self.record)
        return self

    def _choose_family(self, stored: dict | None, dataset: Dataset, budget: Mapping[str, Any],
                       threads: int) -> FamilyChoice | None:
        """Set the family to train: a resumed run's own, the one asked, or auto's choice for this data and
        budget (returned, to be recorded)."""
        if stored is not None:
            self.family_name = stored["family"]
            choice = stored.get("family_choice")
            return FamilyChoice.from_record(choice) if choice else None
        if self.asked_family != AUTO:
            return None
        table = dataset.kind == "table"
        choice = choose_family(dataset.kind, len(dataset), dataset.values.shape[1] if table else 0, budget, threads,
                               numbers=number_columns(dataset) if table else NumberColumns())
        self.family_name = choice.family
        return choice

    def _write_samples_at(self, step: int, net: Family) -> Path:
        path = self.run_dir / "samples" / f"step-{step:06d}{self.codec.sample_suffix}"
        self.codec.save_samples(self._previews(net), path)
        return path

    def _previews(self, net: Family) -> Any:
        """The samples a run shows (preview_count, seed 0); a model given rows makes them for the conditions of the
        first training rows (read again from the run's data where this model was loaded, not fitted)."""
        given = None
        if net.given_rows:
            if self._preview_given is None:
                data = load_source(self.record["data"]["source"])
                self._preview_given = self.codec.row_conditions(data.values)[:self.codec.preview_count].numpy()
            given = self._preview_given
        return self.codec.decode(self._draw(net, len(given) if given is not None else self.codec.preview_count, 0,
                                            given, self._sampling({})))

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, n: int | None = None, *, seed: int = 0, labels: Any = None, conditions: Any = None,
               fair_balance: str | None = None, target: str | None = None, positive: Any = None,
               progress: bool = True, shard: tuple[int, int] | None = None, watermark: bool | None = None,
               **options: Any) -> Any:
        """n new examples (images: uint8 array (n, H, W, C); tables: a DataFrame; text: a list of strings); the
        same seed gives the same samples. Options reach the family's sampler, e.g. sampler="ddim", steps=50,
        guidance=3 for diffusion. `conditions` ({"income": ">50K"}) asks for table rows with those values.
        `fair_balance="sex"` gives every group of that column the same rate of the positive class of `target` (by
        default the one given at training; the positive class: `positive`, or the rarer of two), each group
        keeping its share of the rows (data/fair_balance.py). `shard=(i, k)` makes only the i-th of k parts of
        the n (labels: one, or one for each of the n): k processes or machines make the n samples together, the
        same as one would. Images of 64x64 and more carry an invisible watermark (the run's tag and the sample's
        index; `watermark=False`: none, True: an error where the images are too small). A model trained with
        condition_on takes `conditions` as a DataFrame of those columns (or a dict of them) and makes one row for
        each row given (n may be left out)."""
        given = self._given_rows(conditions, n)
        if given is not None:
            if labels is not None or fair_balance is not None:
                raise GenloomError("a model given rows makes one row for each row of conditions; labels and "
                                   "fair_balance do not apply: leave them out")
            n, conditions = len(given), None
        n, options = self._sampling_request(n, options)
        rows = self._shard_rows(n, shard, conditions or fair_balance)
        marker = self._watermarker(watermark)
        check_memory(self.ema_net, len(rows), "write them to a file with sample_to (CLI: genloom sample -o), which "
                     "streams")
        if fair_balance is None and (target, positive) != (None, None):
            raise GenloomError("target and positive say what fair_balance=COLUMN evens out; give that column too")
        if conditions or fair_balance is not None:
            def drawn(size: int, chunk_seed: int, given: list[int]) -> Any:
                return self.codec.decode(self._draw(self.ema_net, size, chunk_seed, None, options, given, progress))
            if fair_balance is None:
                return self.codec.sample_where(conditions, n, seed, drawn)
            if conditions:
                raise GenloomError("fair_balance and conditions do not go together yet: balance the groups of the "
                                   "whole table, then select rows from the result")
            asked = balance_request(self.codec, fair_balance, target or self.record["data"]["source"].get("target"),
                                    positive)
            return balanced_rows(self.codec, *asked, n, seed, drawn)
        ids = given[rows.start:rows.stop] if given is not None else self._shard_labels(labels, n, rows)
        samples = self.codec.decode(self._draw(self.ema_net, len(rows), seed, ids, options, (), progress, rows.start),
                                    rows.start)
        return marker(samples, rows.start) if marker else samples

    def sample_to(self, path: str | Path, n: int, *, seed: int = 0, labels: Any = None, progress: bool = True,
                  shard: tuple[int, int] | None = None, watermark: bool | None = None,
                  signer: ContentSigner | None = None, **options: Any) -> Path:
        """Write n samples (or shard (i, k) of them) to a file, its suffix picks the format, FILE_CHUNK at a time,
        so any n fits in memory; the same seed gives the samples `sample` gives (watermarked alike). Refuses what
        the disk cannot hold; an interrupted write leaves no file. A `signer` (ContentSigner.load(folder)) signs
        C2PA Content Credentials into each PNG written."""
        n, options = self._sampling_request(n, options)
        rows = self._shard_rows(n, shard, None)
        ids = self._shard_labels(labels, n, rows)
        marker = self._watermarker(watermark)
        request = {"seed": seed, "samples": n, **({"shard": list(shard)} if shard is not None else {})}
        with self.codec.sample_writer(path, len(rows), self.provenance(watermark=watermark, **request),
                                      signer) as writer, \
                progress_bar(self.ema_net, len(rows), options, progress) as bar:
            for first, samples in draw_chunks(self.ema_net, rows, seed, ids, options, FILE_CHUNK, bar.update,
                                              workers=torch.get_num_threads()):
                decoded = self.codec.decode(samples, first)
                writer.write(marker(decoded, first) if marker else decoded)
        return Path(path)

    def _given_rows(self, conditions: Any, n: int | None) -> np.ndarray | None:
        """For a model given rows (condition_on): the encoded conditions, one row for each sample (one row given
        with n: repeated n times); None for other models, whose conditions are {column: value} to meet."""
        net = self._fitted()
        if not net.given_rows:
            if isinstance(conditions, pd.DataFrame):
                raise GenloomError("a table of conditions is for a model trained with condition_on; ask this one for "
                                   "rows with column values: conditions={column: value}")
            return None
        if conditions is None:
            net.check_given(None)
        if n is not None:
            whole_number("n", n)
        if not isinstance(conditions, (pd.DataFrame, Mapping)):
            raise GenloomError(f"conditions are a DataFrame of the given columns (or a dict of them); got "
                               f"{type(conditions).__name__}")
        try:
            frame = conditions if isinstance(conditions, pd.DataFrame) else pd.DataFrame(
                [conditions] if all(np.isscalar(value) for value in conditions.values()) else dict(conditions))
        except ValueError as error:
            raise GenloomError(f"the conditions do not make a table ({error}); give columns of one length") from None
        if len(frame) == 0:
            raise GenloomError("the conditions hold no rows: give one row for each sample to make")
        given = self.codec.row_conditions(frame).numpy()
        if n is not None and n != len(given):
            if len(given) != 1:
                raise GenloomError(f"n is {n} but the conditions hold {len(given)} rows: one sample is made for each "
                                   "row (leave n out)")
            given = np.repeat(given, n, axis=0)
        return given

    def _watermarker(self, asked: bool | None) -> Marker | None:
        """The codec's invisible watermark for this run's samples (codec.watermarker), or None."""
        return self.codec.watermarker(asked, self.run_dir.name if self.run_dir else self.family_name)

    @staticmethod
    def _shard_rows(n: int, shard: Any, conditions: Mapping[str, Any] | None) -> range:
        shard = check_shard(shard)
        if shard is not None and conditions:
            raise GenloomError("conditioned samples cannot be sharded: rejection sampling draws as many rows as it "
                               "takes to find them; sample them in one process")
        rows = shard_rows(n, shard)
        if not rows:
            most = math.ceil(n / SAMPLE_BATCH)
            raise GenloomError(f"shard {shard[0]}/{shard[1]} of {n:,} samples holds none: samples are shared out in "
                               f"whole batches of {SAMPLE_BATCH}, so {n:,} make at most {most} shard(s)")
        return rows

    def _shard_labels(self, labels: Any, n: int, rows: range) -> np.ndarray | None:
        """Label ids for a shard's rows: one for all, or the shard's part of one for each of the n."""
        ids = self.codec.label_ids(labels) if labels is not None else None
        if ids is None or len(ids) == 1 or len(rows) == n:
            return ids
        if len(ids) != n:
            raise GenloomError(f"{len(ids)} labels for {n} examples; give one label, or one per example")
        return ids[rows.start:rows.stop]

    def provenance(self, *, watermark: bool | None = False, **request: Any) -> dict[str, Any]:
        """Where examples made now come from, for the files that hold them (data/provenance.py): genloom's version,
        the run's folder, family and configuration's SHA-256, the time, what was asked (seed, samples...) and,
        for samples drawn with `watermark` (as `sample` takes it), the invisible mark they carry."""
        self._fitted()
        config = json.dumps(self.record, sort_keys=True, default=str).encode()
        marker = self._watermarker(watermark) if watermark is not False else None
        return {"generator": f"genloom {__version__}", "run": self.run_dir.name if self.run_dir else None,
                "family": self.family_name, "config_sha256": hashlib.sha256(config).hexdigest(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **request,
                **({"watermark": marker.describe()} if marker else {})}

    def _sampling_request(self, n: Any, options: dict[str, Any]) -> tuple[int, Any]:
        self._fitted()
        return whole_number("n", n), self._sampling(options)

    def _sampling(self, options: dict[str, Any]) -> Any:
        """The family's sampling settings: those given, over its defaults on this data kind."""
        return sample_options(self.family_name, sampling_options_for(self.family_name, self.codec.kind, options))

    @staticmethod
    def _draw(net: Family, n: int, seed: int, ids: np.ndarray | None = None, options: Any = None,
              given: Sequence[int] = (), progress: bool = False, first: int = 0) -> torch.Tensor:
        """n encoded samples from `net`, all randomness from `seed`, from the `first`-th on; `ids` their classes."""
        with progress_bar(net, n, options, progress) as bar:
            return draw(net, n, seed, ids, options, given, bar.update, first, workers=torch.get_num_threads())

    def generate(self, prompt: str = "", *, max_tokens: int = 256, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float = 1.0, repetition_penalty: float = 1.0,
                 stop: str | Sequence[str] = (), seed: int = 0, stream: bool = False,
                 use_cache: bool = True, watermark: str | None = None) -> str | Iterator[str]:
        """Continue `prompt`; the text generated (without the prompt), or with stream=True its pieces as they come.
        With a `watermark` key, the text carries a statistical watermark that detect_watermark finds."""
        generate = self._text_generator()
        max_tokens = whole_number("max_tokens", max_tokens)
        sampling = TokenSampling(temperature, top_k, top_p, repetition_penalty)
        tokens = generate(self._right_aligned([self._prompt_ids(prompt)])[0], max_tokens, sampling,
                          torch.Generator().manual_seed(seed), use_cache=use_cache, watermark=watermark_of(watermark))
        pieces = TextStream(tokens, self.codec.decode, self.codec.end_token, stop_strings(stop))
        return pieces if stream else "".join(pieces)

    def describe(self) -> dict[str, Any]:
        """What a client may ask of the model: its data's classes, columns or tokenizer, whether it takes labels,
        its sampling options and the tools its family has (encode, decode, log_prob, generate)."""
        net = self._fitted()
        sampling = family_entry(self.family_name).sampling
        return {**self.codec.describe(), "conditional": net.conditional, "tools": sorted(net.tools),
                "sampling_options": [field.name for field in fields(sampling)] if sampling else []}

    def generate_many(self, prompts: Sequence[str], *, max_tokens: Sequence[int], stops: Sequence[Sequence[str]],
                      temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0,
                      repetition_penalty: float = 1.0, seed: int = 0,
                      watermark: str | None = None) -> list[TextStream]:
        """Continue prompts together, one forward pass a step for all of them (what a server does with completions
        that arrive together); each stream has its own stop strings and max_tokens. Prompts of different lengths
        are right-aligned in one key/value cache, each row attending to its own tokens only. Draws differ from
        `generate`'s for the same seed: the rows share one generator."""
        generate = self._text_generator()
        if not len(prompts) == len(max_tokens) == len(stops):
            raise GenloomError(f"{len(prompts)} prompts need as many max_tokens and stops; got {len(max_tokens)} "
                               f"and {len(stops)}")
        if not prompts:
            raise GenloomError("no prompts to continue; give at least one")
        limits = [whole_number("max_tokens", limit) for limit in max_tokens]
        sampling = TokenSampling(temperature, top_k, top_p, repetition_penalty)
        tokens, padding = self._right_aligned([self._prompt_ids(prompt) for prompt in prompts])
        shared = SharedTokens(generate(tokens, max(limits), sampling, torch.Generator().manual_seed(seed),
                                       watermark=watermark_of(watermark), padding=padding),
                              len(prompts))
        return [TextStream(shared.row(row, limit), self.codec.decode, self.codec.end_token, stop_strings(stop))
                for row, (limit, stop) in enumerate(zip(limits, stops))]

    def text_batch(self, *, temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0,
                   repetition_penalty: float = 1.0, seed: int = 0, watermark: str | None = None) -> TextBatch:
        """Continuous batching: texts continued side by side, new prompts joining while others decode (what a
        server does with completions that arrive while others are made). `batch.join(prompt, max_tokens=...,
        stop=...)` gives that prompt's TextStream; reading any stream advances every row one forward pass a step.
        Each row's logits are those it would have alone; its draws differ from generate's for the same seed (the
        rows share one generator). Close a stream you stop reading before its end (`stream.close()`): until then
        its row stays in the pass."""
        self._text_generator()
        sampling = TokenSampling(temperature, top_k, top_p, repetition_penalty)
        tokens = self._fitted().token_batch(sampling, torch.Generator().manual_seed(seed), watermark_of(watermark))
        return TextBatch(tokens, self._prompt_ids, self.codec.decode, self.codec.end_token)

    def detect_watermark(self, text: str, key: str, threshold: float = DEFAULT_THRESHOLD) -> WatermarkVerdict:
        """Whether `text` carries the watermark `key` made (generate(..., watermark=key)): its tokens under this
        model's tokenizer, the share green after their predecessor tested against chance. A wrong key finds
        chance, not an error."""
        self._text_generator()
        return TextWatermark(key).detect(self.codec.encode(text).tolist(), self.codec.layout.vocab_size, threshold)

    def _text_generator(self) -> Callable[..., Iterator[torch.Tensor]]:
        generate = self._fitted().tool("generate")
        if self.codec.kind != "text":
            raise GenloomError(f"generate continues text; this model makes {self.codec.kind} data: use sample")
        return generate

    def _prompt_ids(self, prompt: str) -> torch.Tensor:
        """A prompt's token ids; an empty prompt: the start token."""
        return self.codec.encode(prompt) if prompt else torch.tensor([self.codec.layout.start_token])

    def _right_aligned(self, ids: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) prompts on the device, right-aligned, and where their lengths differ the filler before each
        (B,): copies of the row's first token."""
        longest = max(len(row) for row in ids)
        padding = torch.tensor([longest - len(row) for row in ids])
        rows = [torch.cat([row[:1].expand(longest - len(row)), row]) for row in ids]
        device = next(self.ema_net.parameters()).device
        return torch.stack(rows).to(device), padding.to(device) if padding.any() else None

    # -- the latent space and likelihoods ------------------------------------------------------
    def _on_device(self, x: torch.Tensor, labels: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x and its label ids on the model's device; a conditional model insists on labels."""
        if self.ema_net.conditional and labels is None:
            raise GenloomError("this model is conditional: pass the labels of the examples")
        ids = label_tensor(self.ema_net, self.codec.label_ids(labels), len(x)) if labels is not None else None
        device = next(self.ema_net.parameters()).device
        return x.to(device), ids.to(device) if ids is not None else None

    @torch.no_grad()
    def encode(self, values: Any, labels: Any = None) -> np.ndarray:
        """Latent codes (N, *latent_shape) of examples: a VAE's posterior mean, a GAN's inversion (an optimisation:
        slower), a diffusion model's DDIM inversion to its noise (images: the shape of an image)."""
        encode = self._fitted().tool("encode")
        return encode(*self._on_device(self.codec.encode(values), labels)).cpu().numpy()

    @torch.no_grad()
    def decode(self, latents: np.ndarray, labels: Any = None) -> Any:
        """Examples decoded from latent codes (N, *latent_shape)."""
        decode = self._fitted().tool("decode")
        return self.codec.decode(decode(*self._on_device(latent_tensor(latents, self.ema_net.latent_shape), labels)))

    @torch.no_grad()
    def interpolate(self, start: Any, end: Any, steps: int = 8, *, method: str = "slerp", labels: Any = None) -> Any:
        """`steps` examples decoded along the path between two latent codes, both ends included: an end is a seed
        (an int: the prior's draw for it) or an example (an image, a table row as a dict), encoded."""
        decode = self._fitted().tool("decode")
        steps = whole_number("steps", steps)
        codes = [self._latent_code(point, labels) for point in (start, end)]
        path = path_between(*codes, steps, method)
        return self.codec.decode(decode(*self._on_device(path, labels)))

    def _latent_code(self, point: Any, labels: Any) -> torch.Tensor:
        if isinstance(point, (int, np.integer)) and not isinstance(point, bool):
            return seed_code(int(point), self.ema_net.latent_shape)
        single = labels if labels is None or np.ndim(labels) == 0 else None
        return torch.from_numpy(self.encode(self.codec.one_example(point), single)[0])

    @torch.no_grad()
    def attribute_vector(self, data: Any, *, from_label: Any, to_label: Any, labels: Any = None) -> np.ndarray:
        """The latent direction from one class to another: the mean code of `data`'s examples of `to_label`
        minus that of `from_label` ("smiling - neutral"). `labels` are the examples' classes (a Dataset carries
        its own); for a table, name a column: labels="income" takes each row's value of it."""
        values, classes = self.codec.examples_and_classes(data, labels)
        names, means = np.asarray([str(value) for value in classes]), []
        for wanted in (from_label, to_label):
            chosen = names == str(wanted)
            if not chosen.any():
                known = ", ".join(sorted(set(names))[:20])
                raise GenloomError(f"no examples of {wanted!r} in the data; its classes: {known}")
            picked = values[chosen]  # an image array's or a DataFrame's rows
            given = classes[chosen] if self.ema_net.conditional else None
            means.append(self.encode(picked, given).mean(axis=0))
        return means[1] - means[0]

    @torch.no_grad()
    def edit(self, values: Any, vector: np.ndarray, scale: float = 1.0, labels: Any = None) -> Any:
        """Examples moved along a latent direction (attribute_vector's): decode(encode(x) + scale * vector)."""
        shape = self._fitted().latent_shape
        vector = np.asarray(vector)
        direction = latent_tensor(vector[None] if vector.ndim == len(shape) else vector, shape).numpy()
        return self.decode(self.encode(values, labels) + scale * direction, labels)

    @torch.no_grad()
    def log_prob(self, values: Any, labels: Any = None, seed: int = 0) -> np.ndarray:
        """Per-example log-likelihood (or its lower bound, the ELBO, for a VAE) in nats; a text model scores each
        text of a list (or one text) as if it began a generation: its tokens after the start token."""
        log_prob = self._fitted().tool("log_prob")
        generator = torch.Generator().manual_seed(seed)
        if self.codec.kind == "text":
            texts = [values] if isinstance(values, str) else list(values)
            return np.array([log_prob(self._scored_tokens(text, index), None, generator).item()
                             for index, text in enumerate(texts)])
        x, ids = self._on_device(self.codec.encode(values), labels)
        return log_prob(x, ids, generator).cpu().numpy()

    def optimize(self, property: str | None = None, *, maximize: bool = True, n: int = 20,
                 prior_weight: float = DESIGN_PRIOR_WEIGHT, steps: int = DESIGN_STEPS, seed: int = 0,
                 temperature: float = 1.0) -> Any:
        """n rows (or molecules) designed toward a higher property (lower with maximize=False), best first: codes of
        a VAE trained with property='COLUMN' (molecules: an RDKit property), drawn by `steps` of Langevin dynamics
        from its prior tilted toward the property head's prediction, then decoded (molecules: a table of SMILES,
        RDKit's value and the head's estimate). A larger prior_weight keeps them nearer the prior, where rows look
        like the training rows; a smaller one pushes the property further. A VAE with an autoregressive decoder
        (molecules) draws each token at `temperature`: lower gives likelier, less varied molecules."""
        design = self._fitted().tool("design")
        trained = self.ema_net.config.property
        if property is not None and property != trained:
            raise GenloomError(f"this run's property head predicts {trained!r}, not {property!r}; train a run with "
                               f"property={property!r} to design toward it" if trained else
                               f"this run has no property head; train one with property={property!r} "
                               f"(CLI: genloom train DATA --family vae --property {property})")
        n, steps = whole_number("n", n), whole_number("steps", steps)
        if isinstance(prior_weight, bool) or not isinstance(prior_weight, (int, float)) or not prior_weight >= 0:
            raise GenloomError(f"prior_weight must be a number of 0 or more; got {prior_weight!r}")
        temperature = checked_value("temperature", temperature, float, {"above": 0})
        rows = self.codec.designed(design(n, bool(maximize), float(prior_weight), steps,
                                          torch.Generator().manual_seed(seed), temperature))
        return rows.sort_values(trained, ascending=not maximize, kind="stable").reset_index(drop=True)

    def translate_to(self, path: str | Path, images: Any, *, to: str | int = "B", progress: bool = True) -> Path:
        """Write `images` (uint8 (N, H, W, C), or anything load_data reads) translated into domain `to` ("A": the
        training images, "B": target_data's) to a .png grid, an .npy array or a new folder of PNGs,
        SAMPLE_BATCH at a time; an interrupted write leaves nothing."""
        translate = self._fitted().tool("translate")
        domain = int(self.codec.label_ids([to])[0])
        images = load_data(images).values  # an array is checked as training images are
        device = next(self.ema_net.parameters()).device
        with self.codec.sample_writer(path, len(images), self.provenance(translated_to=str(to))) as writer, \
                tqdm(total=len(images), desc="translating", unit="image", disable=not progress, delay=2) as bar, \
                torch.inference_mode():
            for start in range(0, len(images), SAMPLE_BATCH):
                chunk = self.codec.encode(images[start:start + SAMPLE_BATCH]).to(device)
                writer.write(self.codec.decode(translate(chunk, domain).cpu()))
                bar.update(len(chunk))
        return Path(path)

    @torch.no_grad()
    def anomaly_scores(self, values: Any, labels: Any = None, seed: int = 0) -> np.ndarray:
        """How unlike the training data each example (an image, a table row) is, higher = less typical: the
        negative log-likelihood in nats where the family has one, a diffusion model's denoising error averaged
        over noise levels (describe()'s tools say which families have it)."""
        score = self._fitted().tool("anomaly_score")
        x, ids = self._on_device(self.codec.encode(values), labels)
        return score(x, ids, torch.Generator().manual_seed(seed)).cpu().numpy()

    def _scored_tokens(self, text: str, index: int) -> torch.Tensor:
        """(1, T+1): the start token, then the text's T tokens, at most a context's worth."""
        tokens = self.codec.encode(text)
        context = self.ema_net.context_length
        if not 0 < len(tokens) <= context:
            raise GenloomError(f"text {index} is {len(tokens)} tokens; this model scores texts of 1 to {context} "
                               "tokens (its context): split longer texts")
        start = torch.tensor([self.codec.layout.start_token])
        return torch.cat([start, tokens])[None].to(next(self.ema_net.parameters()).device)

    # -- runs on disk --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the run: config, codec, weights (+EMA, LoRA adapters merged in), metrics, samples, report and
        model card; into a new folder or over its own run."""
        self._fitted()
        path = Path(path)
        check_save_target(path, self.run_dir if is_own_run(self.run_dir, self.record) else None)
        final = self._previews(self.ema_net)
        origins = {key: self.record[key] for key in ("adapter", "imported_from") if key in self.record}
        record = {key: value for key, value in self.record.items() if key not in origins}
        if origins:  # a merged adapter or an imported checkpoint becomes a run of its own; where it came from stays
            record["derived_from"] = origins
        write_run(path, record, self.codec, self.net, self.ema_net, final, self.run_dir)
        self.run_dir, self.record = path, record
        return path

    def is_own_run(self) -> bool:
        """Whether run_dir holds this model's own genloom run, which evaluations may update."""
        return is_own_run(self.run_dir, self.record)

    def write_record(self) -> None:
        """Rewrite the run's config.json, report.html and MODEL_CARD.md from `record`."""
        write_config(self.run_dir, self.record, self.codec)
        write_pages(self.run_dir, self.record)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Model:
        """Rebuild a saved run, a LoRA adapter (on its base run) or a GPT-2 checkpoint; no pickled code is read."""
        run = load_run(path, device)
        model = cls(run.record["family"])
        model.config, model.codec, model.record = run.config, run.codec, run.record
        model.net, model.ema_net, model.run_dir = run.net, run.ema_net, run.path
        return model

    def distill(self, data: Any = None, *, out: str | Path, train_steps: int | None = None,
                minutes: float | None = None, epochs: float | None = None, budget_started: float | None = None,
                **options: Any) -> Model:
        """A faster student of this model, trained and written as a run of its own to `out`, and returned
        (genloom/distill.py). Diffusion: steps= (its sampling steps, default 4) and teacher_steps=; autoregressive:
        n_layer=, n_head=, n_embd= (default: half the teacher's), temperature= (1) and soft_weight= (0.5). It learns
        on `data`, or on the data this run was trained on; train_steps or epochs bound its training, minutes the
        whole call (as fit's: reading the data and the teacher, training, writing the student; budget_started as
        fit's), and other options are training options as for fit."""
        started = time.perf_counter() if budget_started is None else budget_started
        teacher = self._fitted()
        if "privacy" in self.record:
            raise GenloomError("this run was trained with differential privacy; a student taught on its data would "
                               "spend privacy its record does not count: train a private model instead (dp_epsilon)")
        asked = {name: options.pop(name) for name in [*options] if name in DISTILL_SETTINGS}
        settings = method_for(teacher).checked(teacher, DistillSettings.from_options(asked, "distillation setting"))
        out = Path(out)
        check_save_target(out, None)
        dataset = load_data(data) if data is not None else load_source(self.record["data"]["source"])
        if dataset.kind != self.codec.kind:
            raise GenloomError(f"the teacher learnt {self.codec.kind} data; distil it on {self.codec.kind}, "
                               f"not {dataset.kind}")
        config = resolve_train_config(self.family_name, dataset.kind, None, budget_of(train_steps, minutes, epochs),
                                      options, len(dataset))
        given = self.codec.row_conditions(dataset.values)
        labels = given if given is not None else self._teacher_labels(dataset) if teacher.conditional else None
        (x, labels), validation = split_validation(self.codec.encode(dataset.values), labels, config.val_fraction)
        device = resolve_device(config.device)
        call_budget = None if config.minutes is None else CallBudget(config.minutes, started)
        taught = distilled(teacher.to(device), x, labels, validation, settings, config, call_budget)
        student = Model(self.family_name)
        student.config, student.codec = taught.config, self.codec
        student.net, student.ema_net = taught.net, taught.ema_net
        student.record = new_record(self.family_name, taught.config, self.codec, dataset, config)
        teacher_run = str(self.run_dir) if self.is_own_run() else None
        student.record.update(steps_trained=taught.steps_trained, train_seconds=taught.train_seconds,
                              final_metrics=taught.final_metrics,
                              distilled_from={"run": teacher_run, **taught.teaching})
        student.save(out)
        return student

    def _teacher_labels(self, dataset: Dataset) -> torch.Tensor:
        """The class ids of the data a conditional teacher is distilled on, by the teacher's class names."""
        if dataset.labels is None:
            raise GenloomError("the teacher is class-conditional: distil it on labelled data (its own, or one "
                               "sub-folder per class)")
        names = np.asarray(dataset.class_names, dtype=object)[dataset.labels] if dataset.class_names else dataset.labels
        return torch.from_numpy(self.codec.label_ids(names))

    def finetune(self, data: Any, *, out: str | Path, objective: str = "sft", beta: float = 0.1, rank: int = 8,
                 alpha: float = 16.0, steps: int | None = None, minutes: float | None = None,
                 epochs: float | None = None, ppo: Mapping[str, Any] | None = None, resume: bool = False,
                 **train_options: Any) -> Model:
        """LoRA fine-tuning; `out` receives only the adapter. objective="sft": on new data (anything load_data
        reads), as the model was trained. objective="dpo": on preference pairs (a .jsonl of {"prompt", "chosen",
        "rejected"}, or a list of such dicts) by direct preference optimisation, `beta` weighing the preference
        against staying near the model as it is. objective="ppo": on the same pairs, a reward model learnt from
        them (for steps, minutes or epochs), then PPO toward it after the pairs' prompts; `ppo`: PPO's settings
        (rounds, rollouts, kl_coef, ...: PPOSettings); resume=True goes on with a PPO run in `out` from its last
        whole round (its reward model is read back, not trained again). Options as for fit."""
        if objective not in OBJECTIVES:
            raise GenloomError(f"unknown fine-tuning objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
        check_resumable(objective, resume)
        out, lora = self._adapter_target(out, rank, alpha, resume)
        if ppo and objective != "ppo":
            raise GenloomError(f"PPO options apply to objective='ppo'; drop ppo={dict(ppo)!r} for {objective}")
        config = resolve_train_config(self.family_name, self.codec.kind, None, budget_of(steps, minutes, epochs),
                                      train_options)
        if objective == "sft":
            trained = train_adapter(self.ema_net, self.codec, self.run_dir, load_data(data), config, out, lora)
        else:
            pairs, source = ((read_preferences(data), str(Path(data).resolve())) if isinstance(data, (str, Path))
                             else (preference_pairs(data, "the preference pairs"), "in-memory pairs"))
            if objective == "dpo":
                trained = train_preference_adapter(self.ema_net, self.codec, self.run_dir, pairs, source, config,
                                                   out, lora, beta)
            else:
                prompts = list(dict.fromkeys(pair.prompt for pair in pairs))
                settings = PPOSettings.from_options(dict(ppo or {}), "PPO option")
                check_prompts(self.ema_net, self.codec, prompts, settings)  # before the reward model trains
                learnt = train_reward_model(self.ema_net, self.codec, pairs, config, out / "reward-model", lora,
                                            resume)
                trained = train_ppo_adapter(self.ema_net, self.codec, self.run_dir, reward_model_reward(learnt),
                                            prompts, settings, config, out, lora,
                                            {"reward_model": {"source": source, "pairs": len(pairs)}}, resume)
        self.net, self.ema_net, adapter = trained
        self.run_dir, self.record = out, adapted_record(self.record, adapter)
        return self

    def finetune_ppo(self, reward: SequenceReward, *, out: str | Path, prompts: Sequence[str] = (),
                     reward_source: Mapping[str, Any], rank: int = 8, alpha: float = 16.0,
                     ppo: Mapping[str, Any] | None = None, resume: bool = False, **train_options: Any) -> Model:
        """LoRA-tune toward `reward` (of each batch of drawn samples: finetune/ppo.py) by PPO, drawing after each
        of `prompts` in turn (none: unprompted); `reward_source` says in the adapter's record what the reward
        was; resume=True goes on with the run in `out`. reward.finetune_reward is the way in for a function of one
        sample."""
        out, lora = self._adapter_target(out, rank, alpha, resume)
        settings = PPOSettings.from_options(dict(ppo or {}), "PPO option")
        timed = [name for name in ("steps", "minutes", "epochs") if train_options.pop(name, None) is not None]
        if timed:
            raise GenloomError(f"PPO runs for its rounds (ppo={{'rounds': N}}, CLI --rounds), not {timed[0]}: drop "
                               f"{timed[0]}")
        config = resolve_train_config(self.family_name, self.codec.kind, None, budget_of(None, None, None),
                                      train_options)
        self.net, self.ema_net, adapter = train_ppo_adapter(self.ema_net, self.codec, self.run_dir, reward,
                                                            list(prompts), settings, config, out, lora,
                                                            dict(reward_source), resume)
        self.run_dir, self.record = out, adapted_record(self.record, adapter)
        return self

    def _adapter_target(self, out: str | Path, rank: int, alpha: float,
                        resume: bool = False) -> tuple[Path, LoRASettings]:
        """The adapter's folder and LoRA settings, refused (check_adapter_base) before any data is read."""
        self._fitted()
        lora, base = LoRASettings(rank, alpha), None if self.run_dir == self.scratch_dir else self.run_dir
        check_adapter_base(self.ema_net, self.record, base, Path(out), lora, resume)
        return Path(out), lora

    def to(self, device: str) -> Model:
        """Move the weights to a device ('cpu', 'cuda' or 'auto')."""
        self._fitted().to(resolve_device(device)), self.net.to(resolve_device(device))
        return self

    def _fitted(self) -> Family:
        """The weights it samples from; a one-line error before training."""
        if self.ema_net is None:
            raise GenloomError("this model has not been trained yet: call fit(data) or gl.load(run_folder) first")
        return self.ema_net


def load(path: str | Path, device: str = "cpu") -> Model:
    """Load a run folder written by `Model.save` or `genloom train` (or an adapter, or a GPT-2 checkpoint)."""
    return Model.load(path, device=device)
