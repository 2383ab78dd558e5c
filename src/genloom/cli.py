"""The `genloom` command: train, sample and inspect runs. Errors are one line and exit with code 2.

The parser is built from the option records (no torch); each command imports what it needs when it runs, so
that `genloom --help` and `genloom info` start in a fraction of a second."""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import typing
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

from . import __version__
from .choice import AUTO
from .errors import GenloomError
from .families import CATALOG
from .families.configs import DESIGN_PRIOR_WEIGHT, DESIGN_STEPS, DistillSettings, PPOSettings
from .families.watermark import DEFAULT_THRESHOLD
from .options import field_type
from .train.config import TrainConfig

if TYPE_CHECKING:
    from .data.content_credentials import ContentSigner

EXIT_USER_ERROR = 2
# what the command's clock misses: the interpreter's start before main and its exit after run (0.2 s and 0.35 s)
INTERPRETER_SECONDS = 0.6
TRAIN_FLAGS = ("batch_size", "grad_accum", "optimizer", "lr", "muon_lr", "weight_decay", "adam_beta1", "adam_beta2",
               "warmup_steps", "min_lr_ratio", "grad_clip", "ema_decay", "val_fraction", "eval_every", "eval_batches",
               "patience", "keep_best", "log_every", "sample_every", "checkpoint_every", "checkpoint_minutes", "seed",
               "compile", "threads")
DISTILL_FLAGS = {field.name for field in fields(DistillSettings)}  # genloom distill
PRIVACY_FLAGS = ("dp_epsilon", "dp_delta", "dp_max_grad_norm")  # train only: fine-tuning is not private
PPO_FLAGS = {field.name for field in fields(PPOSettings)}  # genloom finetune --objective ppo
DEVICES = "auto, cpu or cuda (a GPU: cuda:1)"


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line, as every other error is, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"genloom: error: {message} (see: {self.prog} --help)\n")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_option_flags(parser: argparse.ArgumentParser, records: dict[str, type], names: set[str] | None = None,
                      title: str = "") -> set[str]:
    """One flag per field of the option records (named by their owner, e.g. a family), with its help text and
    choices; bools as --x/--no-x. Unset flags stay out of the namespace; the help names each owner's default
    where they differ."""
    group = parser.add_argument_group(title) if title else parser
    owners: dict[str, dict[str, Any]] = {}  # field -> {owner: default}
    helps: dict[str, dict[str, str]] = {}   # field -> {help text: the owners that say it}
    specs: dict[str, tuple[Any, type]] = {}  # field -> (the first owner's field, its plain type)
    choices: dict[str, dict[str, None]] = {}  # field -> every owner's choices, in order (each owner checks its own)
    for owner, record in records.items():
        hints = typing.get_type_hints(record)
        for field in fields(record):
            if names is None or field.name in names:
                owners.setdefault(field.name, {})[owner] = field.default
                said = helps.setdefault(field.name, {})
                said[field.metadata["help"]] = f"{said.get(field.metadata['help'], '')}, {owner}".lstrip(", ")
                specs.setdefault(field.name, (field, field_type(hints[field.name])[0]))
                choices.setdefault(field.name, {}).update(dict.fromkeys(field.metadata["choices"] or ()))
    for name, defaults in owners.items():
        field, kind = specs[name]
        values = list(defaults.values())
        shown = values[0] if all(v == values[0] for v in values) else ", ".join(f"{o} {v}" for o, v in defaults.items())
        said = helps[name]
        text = "; ".join(said) if len(said) == 1 else "; ".join(f"{who}: {what}" for what, who in said.items())
        text = text if "default" in text else f"{text} (default: {shown})"
        if kind is bool:
            group.add_argument(_flag(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        elif typing.get_origin(kind) is list:  # a list of names
            group.add_argument(_flag(name), nargs="+", default=argparse.SUPPRESS, help=text, metavar="NAME")
        else:
            allowed = list(choices[name]) or None
            group.add_argument(_flag(name), type=kind, default=argparse.SUPPRESS, choices=allowed, help=text,
                               metavar="{" + ",".join(allowed) + "}" if allowed else kind.__name__.upper())
    return set(owners)


def _add_corpus_flags(parser: argparse.ArgumentParser) -> None:
    """How to read a text corpus: shared by train, finetune and evaluate."""
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default: utf-8)")
    parser.add_argument("--errors", default="strict", choices=["strict", "replace", "ignore"],
                        help="what to do with bytes the encoding cannot read (default: strict = stop)")
    parser.add_argument("--text-field", default="text", help="field of a .jsonl corpus (default: text)")


def _given(args: argparse.Namespace, names: set[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _check_output(path: str | Path, folder: bool = False) -> Path:
    from .files import check_writable

    check_writable(path, folder)
    return Path(path)


def cmd_train(args: argparse.Namespace) -> int | None:
    if args.nproc is not None and args.nproc != 1:  # the launcher starts this command again in each process
        from .train.distributed import launch

        return launch(args.nproc, _without_nproc(args.argv), args.device)
    from .data.loaders import load_data
    from .model import Model
    from .runs.record import CONFIG_FILE, read_record
    from .train.distributed import processes_from_environment

    out = Path(args.out) if args.out else None
    if args.resume and out is None:
        raise GenloomError("--resume needs --out: the folder of the run to continue")
    if out is not None:
        _check_output(out, folder=True)
    resumable = args.resume and (out / CONFIG_FILE).exists()  # else fit says that nothing was saved there
    family = args.family or (read_record(out)["family"] if resumable else AUTO)
    model = Model(family, **_given(args, args.family_option_names))
    data = None
    if args.data is not None:
        data = load_data(args.data, image_size=args.image_size, encoding=args.encoding, errors=args.errors,
                         text_field=args.text_field, metadata=args.metadata, target=args.target,
                         anonymise=args.anonymise, randomised_smiles=args.randomised_smiles,
                         sample_rate=args.sample_rate)
    elif not args.resume:
        raise GenloomError("name the data to train on: a built-in name (digits, shakespeare, adult), a folder or a file")
    if out is None:
        out = Path("runs") / f"{data.name}-{family}"  # auto: runs/<data>-auto, whatever it picks
    model.fit(data, out=out, resume=args.resume, steps=args.steps, minutes=args.minutes, epochs=args.epochs,
              budget_started=args.started - INTERPRETER_SECONDS, device=args.device, progress=not args.quiet,
              codec_options=_given(args, {"tokenizer", "vocab_size", "numbers", "representation", "length", "mels"}),
              trackers=_trackers(args), **_given(args, {*TRAIN_FLAGS, *PRIVACY_FLAGS}))
    if not processes_from_environment().writes:  # the first process reports
        return None
    record = model.record
    if "family_choice" in record:
        print(f"family auto: {record['family']} ({record['family_choice']['reason']})")
    print(f"trained {record['family']} on {record['data']['name']} for {record['steps_trained']} steps "
          f"in {record['train_seconds']:.1f} s ({record['fit_seconds']:.1f} s in all)"
          + (f"; stopped early: {record['stopped_early']}" if "stopped_early" in record else "")
          + (f"; sampling from {record['best_weights']}" if "best_weights" in record else ""))
    if record["final_metrics"]:
        print("final: " + ", ".join(f"{k} {v:g}" for k, v in record["final_metrics"].items()))
    print(f"run written to {out}/ (open {out / 'report.html'})")
    return None


def _without_nproc(argv: Sequence[str]) -> list[str]:
    """The command line as given, less --nproc N (or --nproc=N): what each launched process runs."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--nproc":
            skip = True
        elif not argument.startswith("--nproc="):
            kept.append(argument)
    return kept


def _trackers(args: argparse.Namespace) -> list:
    """--tensorboard and --mlflow; MLFLOW_TRACKING_URI alone also turns MLflow on, where mlflow is installed."""
    import os

    from .errors import warn
    from .tracking import MLflow, TensorBoard

    trackers = [TensorBoard(args.tensorboard or None)] if args.tensorboard is not None else []
    if args.mlflow:
        trackers.append(MLflow())
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        try:
            trackers.append(MLflow())
        except GenloomError as error:
            warn(f"MLFLOW_TRACKING_URI is set, but the run is not tracked: {error}")
    return trackers


def cmd_compare(args: argparse.Namespace) -> None:
    from .compare import compare_runs

    out = _check_output(args.output) if args.output else None
    if out is not None and out.is_dir():
        raise GenloomError(f"cannot write the page {out}: it is a folder; give a file name such as compare.html")
    print(compare_runs(args.runs, out), end="")
    if out is not None:
        print(f"wrote {out}")


def cmd_generate(args: argparse.Namespace) -> None:
    from .model import load

    model = load(args.run, device=args.device)
    pieces = model.generate(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, repetition_penalty=args.repetition_penalty, stop=args.stop or (),
                            seed=args.seed, stream=True, use_cache=not args.no_cache, watermark=args.watermark_key)
    first = next(pieces, "")  # a bad option fails here, before anything is printed
    sys.stdout.write(args.prompt + first)
    sys.stdout.flush()
    for piece in pieces:  # print as the tokens come
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def cmd_provenance(args: argparse.Namespace) -> None:
    from .data.content_credentials import can_check, has_manifest, read_credentials
    from .data.provenance import check_provenance

    record, matches = check_provenance(args.file)
    signed = Path(args.file).suffix.lower() == ".png" and has_manifest(Path(args.file))
    if args.c2pa_trust and not signed:
        raise GenloomError(f"{args.file} carries no C2PA manifest for --c2pa-trust to check; drop it")
    readable = signed and (args.c2pa_trust is not None or can_check())
    credentials = read_credentials(args.file, args.c2pa_trust) if readable else None
    width = max(map(len, record))
    for name, value in record.items():
        print(f"{name:<{width}}  {value if isinstance(value, str) else json.dumps(value)}")
    if credentials is not None:
        print(f"{'c2pa':<{width}}  {credentials.describe()}")
    elif signed:
        print(f"{'c2pa':<{width}}  a manifest, not checked: pip install 'genloom[c2pa]' to check it")
    if not matches:
        raise GenloomError(f"{args.file} no longer matches the content_sha256 it was written with: it was changed "
                           "after genloom wrote it")
    if credentials is not None and credentials.state == "Invalid":
        why = ("the file was changed after it was signed" if credentials.edited else
               "the content is as signed, but the signature no longer holds (an expired or revoked certificate)")
        raise GenloomError(f"{args.file}'s C2PA manifest does not validate ({', '.join(credentials.failures)}): {why}")
    print(f"{args.file}: the content matches")


def cmd_c2pa_cert(args: argparse.Namespace) -> None:
    from .data.content_credentials import CA_FILE, CHAIN_FILE, KEY_FILE, make_identity

    folder = make_identity(args.folder, args.name)
    print(f"wrote {folder / CHAIN_FILE} (the signer's certificate and its CA's), {folder / KEY_FILE} (its key: keep "
          f"it private) and {folder / CA_FILE}; sign samples with `genloom sample RUN -o grid.png --c2pa-cert "
          f"{folder}`; readers trust them when given {folder / CA_FILE} as a trust anchor")


def _content_signer(folder: str | None, model: Any, output: str) -> ContentSigner | None:
    """The C2PA signing identity in `folder` (None without one), checked, with the output a PNG it can sign,
    before any sample is drawn."""
    if folder is None:
        return None
    from .data.content_credentials import ContentSigner

    if ".png" not in model.codec.sample_formats:
        raise GenloomError(f"C2PA Content Credentials are signed into PNG images; {model.codec.kind} samples are "
                           "not written as PNGs: drop --c2pa-cert (the file carries its provenance all the same)")
    signer = ContentSigner.load(folder)
    model.codec.sample_writer(output, 1, None, signer)  # refuses a file that is not a PNG
    return signer


def cmd_detect_watermark(args: argparse.Namespace) -> None:
    from .data.images import IMAGE_SUFFIXES
    from .model import load

    if Path(args.file).suffix.lower() in IMAGE_SUFFIXES:
        _detect_image_watermark(args)
        return
    if not args.key or not args.run:
        raise GenloomError("a text watermark is read with the key and the run that wrote it: give --key KEY --run RUN")
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenloomError(f"{args.file} does not exist; name the text file to read") from None
    except UnicodeDecodeError:
        raise GenloomError(f"{args.file} is not UTF-8 text; a text watermark is read from the text itself") from None
    print(load(args.run).detect_watermark(text, args.key, args.threshold).describe())


def _detect_image_watermark(args: argparse.Namespace) -> None:
    """Each image's verdict and payload; with --run, whether its tag is that run's."""
    from .data.image_watermark import read_file, run_tag

    if args.key:
        raise GenloomError("--key is for text; an image watermark is read without one (drop --key)")
    tag = run_tag(Path(args.run).name) if args.run else None
    found = read_file(Path(args.file), args.threshold)
    for name, mark in found:
        whose = "" if tag is None or not mark.watermarked else (
            f"; the tag of run {Path(args.run).name}" if mark.run_tag == tag else
            f"; not the tag of run {Path(args.run).name} ({tag:04x})")
        print(f"{name}: {mark.describe()}{whose}")
    if len(found) > 1:
        print(f"{sum(mark.watermarked for _, mark in found)} of {len(found)} images watermarked")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .data.loaders import load_data
    from .evaluation import evaluate
    from .model import load

    model = load(args.run, device=args.device)
    data = None
    if args.data:
        data = load_data(args.data, encoding=args.encoding, errors=args.errors, text_field=args.text_field)
    scores = evaluate(model, data, samples=args.samples, seed=args.seed, inception_weights=args.inception_weights,
                      target=args.target, protected=args.protected or (), positive=args.positive,
                      progress=not args.quiet)
    width = max(map(len, scores))
    for name, value in scores.items():
        print(f"{name:<{width}}  {value:g}")
    if model.is_own_run():
        print(f"saved in {Path(args.run) / 'config.json'} and {Path(args.run) / 'report.html'}")


def _tuned_how(adapter: dict[str, Any], data_name: str) -> str:
    """What an adapter was tuned on, for the closing line of genloom finetune."""
    if adapter.get("objective") == "dpo":
        return f"by DPO on {adapter['preferences']['pairs']} preference pairs"
    if adapter.get("objective") == "ppo":
        reward = adapter["reward"]
        toward = (f"a reward model learnt from {reward['reward_model']['pairs']} preference pairs"
                  if "reward_model" in reward else f"{reward.get('property') or reward.get('function')}")
        last = adapter["history"][-1]
        return (f"by PPO toward {toward} ({len(adapter['history'])} rounds; last round's mean reward "
                f"{last['reward']:.3f}, KL to the base {last['kl']:.2f} nats)")
    return f"on {data_name}"


def cmd_finetune(args: argparse.Namespace) -> None:
    from .data.loaders import load_data
    from .finetune import LoRASettings, check_adapter_base, check_resumable
    from .model import load

    if (args.data is None) == (args.reward is None):
        raise GenloomError("name the data to fine-tune on, or (molecules) --reward PROPERTY to tune toward; one of "
                           "them")
    objective = args.objective or ("ppo" if args.reward is not None else "sft")
    if args.reward is not None and objective == "sft":
        raise GenloomError("--reward tunes by ppo or dpo: drop --objective sft, or give data instead of --reward")
    model = load(args.run, device=args.device)
    lora = LoRASettings(args.rank, args.alpha)
    check_resumable(objective, args.resume)  # and the rest before the data is read
    check_adapter_base(model.ema_net, model.record, model.run_dir, Path(args.out), lora, args.resume)
    options = {"out": args.out, "objective": objective, "beta": args.beta, "rank": args.rank, "alpha": args.alpha,
               "resume": args.resume, "steps": args.steps, "minutes": args.minutes, "epochs": args.epochs,
               "device": args.device, "progress": not args.quiet, "ppo": _given(args, PPO_FLAGS),
               **_given(args, set(TRAIN_FLAGS))}
    data_name = ""
    if args.reward is not None:
        from .reward import finetune_reward

        finetune_reward(model, args.reward, pairs=args.pairs, **options)
    else:
        data = load_data(args.data, encoding=args.encoding, errors=args.errors, text_field=args.text_field) \
            if objective == "sft" else args.data
        data_name = getattr(data, "name", "")
        model.finetune(data, **options)
    print(f"fine-tuned {args.run} {_tuned_how(model.record['adapter'], data_name)} with LoRA rank {args.rank}; "
          f"adapter written to {args.out}/ (use it like a run: genloom sample {args.out})")


def cmd_distill(args: argparse.Namespace) -> None:
    from .data.loaders import load_data
    from .model import load
    from .runs.folder import check_save_target

    model = load(args.run, device=args.device)
    check_save_target(Path(args.out), None)  # before the data is read
    data = load_data(args.data, encoding=args.encoding, errors=args.errors, text_field=args.text_field) \
        if args.data is not None else None
    student = model.distill(data, out=args.out, train_steps=args.train_steps, minutes=args.minutes,
                            epochs=args.epochs, budget_started=args.started - INTERPRETER_SECONDS,
                            device=args.device, progress=not args.quiet,
                            **_given(args, DISTILL_FLAGS | set(TRAIN_FLAGS)))
    taught = student.record["distilled_from"]
    halvings = f"{taught.get('stages')} halving{'s' if taught.get('stages') != 1 else ''}"
    how = (f"samples in {taught['steps']} steps (from {taught['teacher_steps']}, in {halvings})"
           if "steps" in taught else f"{taught['parameters']:,} parameters against the teacher's "
           f"{taught['teacher_parameters']:,}")
    scores = ", ".join(f"{name} {value:g}" for name, value in student.record["final_metrics"].items())
    print(f"distilled {args.run} by {taught['method']}: the student {how}; held out: {scores}; written to "
          f"{args.out}/ (genloom sample {args.out})")


def cmd_export(args: argparse.Namespace) -> None:
    output, form = (args.gpt2, "gpt2") if args.gpt2 else (args.output, args.format)
    if form is None or output is None:
        raise GenloomError("say what to write: --format onnx -o model.onnx, or --gpt2 FOLDER")
    if args.int8 and form != "onnx":
        raise GenloomError("--int8 quantises an ONNX export (--format onnx); a GPT-2 checkpoint is written in full "
                           "precision")
    from .model import load

    if form == "gpt2":
        from .export.gpt2 import save_gpt2

        _check_output(output, folder=True)
        path = save_gpt2(load(args.run), output)
        print(f"wrote a GPT-2 checkpoint to {path}/ (transformers: GPT2LMHeadModel.from_pretrained('{path}'))")
        return
    from .export.onnx import export_onnx, table_note

    _check_output(output)
    path = export_onnx(load(args.run), output, int8=args.int8)
    print(f"wrote {'an int8' if args.int8 else 'an'} ONNX model to {path} (and its .json and .safetensors); use it "
          f"with genloom.export.OnnxModel('{path}').sample(16) (text: .generate('...'))")
    note = table_note(path)
    if note:
        print(f"beside it: {note}")


def cmd_sample(args: argparse.Namespace) -> None:
    from .model import load

    model = load(args.run, device=args.device)
    output = _check_output(args.output or f"samples{model.codec.sample_formats[0]}")
    options = _given(args, args.sample_option_names)
    shard = _shard(args.shard) if args.shard is not None else None
    signer = _content_signer(args.c2pa_cert, model, output)
    if (args.target, args.positive) != (None, None) and args.fair_balance is None:
        raise GenloomError("--target and --positive say what --fair-balance COLUMN evens out; give that column too")
    if args.conditions is not None:  # a model trained with condition_on: one row made for each row given
        from .data.tables import read_table

        others = [flag for flag, value in (("--shard", shard), ("--labels", args.labels), ("--condition",
                  args.condition), ("--fair-balance", args.fair_balance), ("--watermark", args.watermark))
                  if value not in (None, False)]
        if others:
            raise GenloomError(f"--conditions makes one row for each row of its file; {', '.join(others)} do not go "
                               "with it: leave them out")

        given = read_table(Path(args.conditions))
        samples = model.sample(seed=args.seed, conditions=given, progress=not args.quiet, **options)
        model.codec.save_samples(samples, output, model.provenance(seed=args.seed, samples=len(given),
                                                                   conditions=str(args.conditions)), signer)
        print(f"wrote {len(given)} samples, one for each row of {args.conditions}, to {output}")
        return
    if args.condition or args.fair_balance:
        if shard is not None:
            raise GenloomError(f"--shard and {'--condition' if args.condition else '--fair-balance'} do not go "
                               "together: rejection sampling draws as many rows as it takes to find them; sample "
                               "conditioned rows in one process")
        conditions = dict(_condition(text) for text in args.condition or ())
        balance = {"fair_balance": args.fair_balance, "target": args.target, "positive": args.positive}
        samples = model.sample(args.n, seed=args.seed, labels=args.labels, conditions=conditions,
                               progress=not args.quiet, watermark=args.watermark, **balance, **options)
        asked = {key: value for key, value in {"conditions": conditions, **balance}.items() if value}
        model.codec.save_samples(samples, output, model.provenance(seed=args.seed, samples=args.n, **asked), signer)
    else:  # written as they come, a chunk at a time
        model.sample_to(output, args.n, seed=args.seed, labels=args.labels, progress=not args.quiet, shard=shard,
                        watermark=args.watermark, signer=signer, **options)
    if shard is None:
        print(f"wrote {args.n} samples to {output}")
    else:
        from .families.drawing import shard_rows

        rows = shard_rows(args.n, shard)
        print(f"wrote samples {rows.start} to {rows.stop - 1} of {args.n} (shard {args.shard}) to {output}")


def _shard(text: str) -> tuple[int, int]:
    """--shard I/K: the I-th of K parts, counted from 0."""
    index, slash, count = text.partition("/")
    if not (slash and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise GenloomError(f"--shard takes I/K, the I-th of K parts counted from 0 (I from 0 to K-1, K at least 1), "
                           f"e.g. 0/4; got {text!r}")
    return int(index), int(count)


def cmd_translate(args: argparse.Namespace) -> None:
    from .data.loaders import load_data
    from .model import load

    model = load(args.run, device=args.device)
    output = _check_output(args.output, folder=not Path(args.output).suffix)
    images = load_data(args.images, image_size=args.image_size)
    model.translate_to(output, images.values, to=args.to, progress=not args.quiet)
    print(f"translated {len(images)} images into domain {args.to}; written to {output}")


def _path_end(text: str, data: Any) -> Any:
    """An end of an interpolation from the command line: seed:N, an index into --data, or an image file."""
    if text.startswith("seed:"):
        seed = text.removeprefix("seed:")
        if not seed.isdigit():
            raise GenloomError(f"a seed is a whole number of 0 or more, as in seed:3; got {text!r}")
        return int(seed)
    if text.lstrip("-").isdigit():
        if data is None:
            raise GenloomError(f"{text} is an index into the data: give --data too (or seed:{text} for a seed)")
        return _example_at(data, int(text))
    return Path(text)


def _check_index(index: int, count: int) -> None:
    if not 0 <= index < count:
        raise GenloomError(f"index {index} is out of range: the data has {count} examples (0..{count - 1})")


def _example_at(data: Any, index: int) -> Any:
    _check_index(index, len(data))
    values = data.values
    return values.iloc[index].to_dict() if hasattr(values, "iloc") else values[index]


def _write_examples(model: Any, examples: Any, output: Path, request: dict[str, Any], strip: bool = False) -> None:
    """Examples to a file its suffix names, with their provenance (`request`: what was asked); images to a PNG go
    as one row (a strip) or a grid."""
    if strip and model.codec.kind == "image" and output.suffix.lower() == ".png":
        from .data.images import image_grid
        from .data.provenance import png_info
        from .files import atomic_path

        with atomic_path(output) as tmp:
            strip_image = image_grid(examples, columns=len(examples))
            strip_image.save(tmp, format="PNG", pnginfo=png_info(strip_image, model.provenance(**request)))
    else:
        model.codec.save_samples(examples, output, model.provenance(**request))


def cmd_interpolate(args: argparse.Namespace) -> None:
    from .data.loaders import load_data
    from .model import load

    model = load(args.run, device=args.device)
    output = _check_output(args.output or f"interpolation{model.codec.sample_formats[0]}")
    data = load_data(args.data) if args.data else None
    ends = [_path_end(text, data) for text in (args.start, args.end)]
    examples = model.interpolate(*ends, args.steps, method=args.method, labels=args.label)
    _write_examples(model, examples, output, {"interpolated": [args.start, args.end], "method": args.method},
                    strip=True)
    print(f"wrote {args.steps} steps from {args.start} to {args.end} to {output}")


def cmd_edit(args: argparse.Namespace) -> None:
    import numpy as np

    from .data.loaders import load_data
    from .model import load

    model = load(args.run, device=args.device)
    output = _check_output(args.output or f"edited{model.codec.sample_formats[0]}")
    data = load_data(args.data)
    vector = model.attribute_vector(data, from_label=args.from_label, to_label=args.to_label, labels=args.labels)
    values, classes = model.codec.examples_and_classes(data, args.labels)
    indices = args.index or [int(i) for i in np.flatnonzero(classes.astype(str) == str(args.from_label))[:8]]
    for index in indices:
        _check_index(index, len(values))
    labels = classes.take(indices) if model.ema_net.conditional else None
    edited = model.edit(values.take(indices, axis=0), vector, args.scale, labels=labels)  # arrays and frames alike
    _write_examples(model, edited, output, {"edited": indices, "toward": str(args.to_label), "scale": args.scale})
    print(f"wrote {len(indices)} examples moved {args.scale:g}x from {args.from_label} toward {args.to_label} "
          f"to {output}")


def cmd_optimize(args: argparse.Namespace) -> None:
    from .model import load

    if (args.maximize is None) == (args.minimize is None):
        raise GenloomError("name the property to design toward: --maximize COLUMN or --minimize COLUMN (one of them)")
    model = load(args.run, device=args.device)
    output = _check_output(args.output or "designed.csv")
    column = args.maximize or args.minimize
    designed = model.optimize(column, maximize=args.maximize is not None, n=args.n, prior_weight=args.prior_weight,
                              steps=args.steps, seed=args.seed, temperature=args.temperature)
    model.codec.save_samples(designed, output, model.provenance(seed=args.seed, optimized=column))
    values = designed[column]
    unvalued = f"; {values.isna().sum()} without one (not a molecule)" if values.isna().any() else ""
    print(f"designed {len(designed)} rows toward a {'higher' if args.maximize else 'lower'} {column!r} "
          f"({model.codec.design_values}: mean {values.mean():.4g}, best {values.iloc[0]:.4g}{unvalued}); written to "
          f"{output}")


def cmd_anomaly_fit(args: argparse.Namespace) -> None:
    from .anomaly import AnomalyDetector
    from .data.loaders import load_data

    out = _check_output(args.out, folder=True)
    views = None if args.views is None else [view.strip() for view in args.views.split(",") if view.strip()]
    detector = AnomalyDetector(args.family, args.contamination, args.steps, args.minutes, args.seed, views=views)
    detector.fit(load_data(args.data), out=out)
    print(f"fitted a {args.family} anomaly detector ({' + '.join(detector.views_)}): threshold "
          f"{detector.threshold_:.4g} flags "
          f"{detector.labels_.mean():.1%} of the training data; run written to {out}/")


def cmd_anomaly_score(args: argparse.Namespace) -> None:
    import pandas as pd

    from .anomaly import AnomalyDetector
    from .data.loaders import load_data
    from .files import atomic_path

    detector = AnomalyDetector.load(args.run)
    output = _check_output(args.output)
    data = load_data(args.data)
    scores = detector.decision_function(data)
    flags = (scores > detector.threshold_).astype(int)
    with atomic_path(output) as tmp:
        pd.DataFrame({"score": scores, "anomaly": flags}).to_csv(tmp, index_label="row")
    print(f"scored {len(scores)} examples: {flags.sum()} flagged as anomalies; written to {output}")


def cmd_detector_train(args: argparse.Namespace) -> None:
    from .detector import train_detector

    out = _check_output(args.out, folder=True)
    detector = train_detector(args.real, args.fake, out=out, samples=args.samples, steps=args.steps,
                              held_out=args.held_out, seed=args.seed, progress=not args.quiet)
    record = detector.record
    article = "an" if detector.kind[0] in "aeiou" else "a"
    print(f"trained {article} {detector.kind} detector ({record['method']}) on {record['real']['examples']:,} real "
          f"and {sum(s['examples'] for s in record['sources']):,} generated examples; ROC AUC on the held-out ones "
          "(0.5: cannot tell them apart, 1: always can):")
    held = {source["name"]: source["held_out"] for source in record["sources"]}
    width = max(map(len, detector.aucs))
    for name, auc in detector.aucs.items():
        count = held[name] if name in held else sum(held.values())
        print(f"  {name:<{width}}  {auc:.4f}  ({record['real']['held_out']:,} real vs {count:,} generated)")
    print(f"detector written to {out}/ (score files with: genloom detector score {out} FILES...)")


def cmd_detector_score(args: argparse.Namespace) -> None:
    from .detector import Detector

    names, scores = Detector.load(args.detector).score_files(args.files)
    width = max(len("example"), *map(len, names))
    print(f"{'example':<{width}}  p_generated")
    for name, score in zip(names, scores):
        print(f"{name:<{width}}  {score:.4f}")


def cmd_augment(args: argparse.Namespace) -> None:
    from .augmentation import MARKER, augment, kind_of, writer_for
    from .data.loaders import load_data

    if args.balance and args.ratio is not None:
        raise GenloomError("say how far to fill the rare classes with one of --balance (as many as the largest "
                           "class) and --ratio R (R times as many), or neither (checked on held-out examples)")
    output, marker = _check_output(args.output), args.marker or MARKER
    data = load_data(args.data)
    kind_of(data), writer_for(data.kind, output)  # a wrong file type fails now, not after the training
    ratio = 1.0 if args.balance else AUTO if args.ratio is None else args.ratio
    result = augment(data, target=args.target, ratio=ratio, family=args.family,
                     steps=args.steps, minutes=args.minutes, seed=args.seed, marker=marker, progress=not args.quiet)
    result.save(output)
    print(f"{result.summary()}; written to {output} ({kind_of(data).marked.format(marker=marker)})")


def _condition(text: str) -> tuple[str, str]:
    column, equals, value = text.partition("=")
    if not equals or not column:
        raise GenloomError(f"a condition is COLUMN=VALUE, e.g. --condition income='>50K'; got {text!r}")
    return column, value


def cmd_info(args: argparse.Namespace) -> None:
    from .metrics.report import summary_rows
    from .runs.record import is_adapter, read_adapter_record, read_record, run_problems

    path = Path(args.run)
    record, base = read_adapter_record(path) if is_adapter(path) else (read_record(path), path)
    if args.json:
        print(json.dumps(record, indent=2))
        return
    rows = {**summary_rows(record), "health": "; ".join(run_problems(base, record)) or "ok"}
    if "adapter" in record:
        adapter = record["adapter"]
        rows["adapter"] = (f"LoRA rank {adapter.get('rank')}, alpha {adapter.get('alpha')}, "
                           f"{adapter.get('steps_trained')} steps on this data, over the run in {base}")
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(args.run).iterdir())
    print(f"{'files':<{width}}  {' '.join(files)}")


def cmd_serve(args: argparse.Namespace) -> None:
    import os
    import socket

    from .extras import require

    require("fastapi", "serve", "genloom serve")
    uvicorn = require("uvicorn", "serve", "genloom serve")
    from .serve.limits import limit_malloc_arenas, quiet_idle_threads

    quiet_idle_threads()
    import torch

    from .serve.app import create_app
    from .serve.catalogue import RunCatalogue
    from .serve.settings import ServeSettings, inference_threads
    from .train.device import available_cores

    settings = ServeSettings(host=args.host, port=args.port, api_key=args.api_key or os.environ.get("GENLOOM_API_KEY"),
                             max_loaded=args.max_loaded, max_concurrency=args.max_concurrency,
                             max_samples=args.max_samples, max_tokens=args.max_tokens,
                             max_body_bytes=args.max_body_bytes, timeout_seconds=args.timeout, cors_origin=args.cors,
                             batching=not args.no_batching, threads=args.threads,
                             watermark_key=args.watermark_key or os.environ.get("GENLOOM_WATERMARK_KEY"))
    catalogue = RunCatalogue(args.runs, settings.max_loaded, args.device)
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise GenloomError(f"cannot listen on {args.host}:{args.port} ({error.strerror}); choose another "
                               "--port or --host") from None
    names = catalogue.names()
    print(f"serving {len(names)} run{'s' * (len(names) != 1)} ({', '.join(names[:5])}{', ...' * (len(names) > 5)}) "
          f"on http://{args.host}:{args.port}/ (API documentation: /docs)", flush=True)
    limit_malloc_arenas()
    torch.set_num_threads(inference_threads(settings, available_cores()))
    uvicorn.run(create_app(catalogue, settings), host=args.host, port=args.port, log_level="warning")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="genloom", description="Train, sample and inspect generative models.")
    parser.add_argument("--version", action="version", version=f"genloom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    families = [AUTO, *sorted(CATALOG)]

    train = commands.add_parser("train", help="train a model on a data set", description=(
        "Train a family on DATA: a built-in name (digits, mnist, shakespeare, adult, breast_cancer, wine, "
        "diabetes), a folder of images (one sub-folder per class), a .npy/.npz array, a .txt or .jsonl corpus or a "
        "folder of .txt files, a .csv/.tsv/.parquet table. Writes the run to --out."))
    train.add_argument("data", nargs="?", help="data set; may be left out with --resume")
    train.add_argument("--family", choices=families, metavar="{" + ",".join(families) + "}",
                       help="generative family (default: auto, chosen from the data and the budget; with "
                       "--resume, the run's own)")
    train.add_argument("--out", help="run folder (default: runs/<data>-<family>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    budget = train.add_argument_group("budget (training stops at whichever comes first; default: 2000 steps)")
    budget.add_argument("--steps", type=int, help="updates of the weights")
    budget.add_argument("--minutes", type=float, help="minutes for the whole command: reading the data, fitting "
                        "the codec, training, validation and writing the run")
    budget.add_argument("--epochs", type=float, help="passes over the training data")
    train.add_argument("--image-size", help="images: resize to N or HxW pixels")
    train.add_argument("--metadata", metavar="JSON", help="tables: column kinds, as SDV's metadata "
                       '({"columns": {"zip": {"sdtype": "categorical"}}}); the others are inferred')
    train.add_argument("--target", help="tables: the column that evaluation's utility score predicts")
    train.add_argument("--anonymise", action="store_true", help="tables: replace names, e-mail addresses, phone "
                       "numbers, street addresses, card numbers and national ids with Faker's values before training")
    train.add_argument("--numbers", choices=["modes", "quantile"], default=argparse.SUPPRESS,
                       help="tables: how numbers are encoded: CTGAN's mode-specific normalisation or TabDDPM's "
                            "quantile transform (default: quantile for diffusion and autoregressive, else modes)")
    text = train.add_argument_group("text and molecules")
    text.add_argument("--tokenizer", choices=["char", "bpe", "smiles", "selfies"], default=argparse.SUPPRESS,
                      help="text: characters (default) or a BPE vocabulary trained on the corpus; molecules: SMILES "
                           "tokens (default) or SELFIES, whose every sequence is a valid molecule")
    text.add_argument("--vocab-size", type=int, default=argparse.SUPPRESS, help="BPE vocabulary size (default: 1024)")
    _add_corpus_flags(text)
    text.add_argument("--randomised-smiles", type=int, default=0, metavar="K",
                      help="molecules: each one also as K randomised SMILES (augmentation; default: 0)")
    signals = train.add_argument_group("signals (recordings and series)")
    signals.add_argument("--sample-rate", type=int, help="recordings: resample to this rate in Hz (default: the rate "
                         "most of them have)")
    signals.add_argument("--representation", choices=["mel", "waveform"], default=argparse.SUPPRESS,
                         help="what the model learns: log-mel spectrograms, turned back into sound by Griffin-Lim "
                              "(default for recordings), or the waveform (series: always)")
    signals.add_argument("--length", type=int, default=argparse.SUPPRESS, help="samples a signal is cropped or "
                         "padded to (default: what holds nine in ten whole)")
    signals.add_argument("--mels", type=int, default=argparse.SUPPRESS, help="mel bands of a spectrogram "
                         "(default: 32)")
    train.add_argument("--device", default="auto", help=f"{DEVICES} (default: auto)")
    train.add_argument("--nproc", type=int, help="train in N processes on this machine, each on its share of every "
                       "batch (torchrun; one per CPU core or GPU); several machines: torchrun --nnodes, see README")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    tracking = train.add_argument_group("experiment tracking (the tracking extra: pip install 'genloom[tracking]')")
    tracking.add_argument("--tensorboard", nargs="?", const="", metavar="DIR",
                          help="log numbers, samples and settings for TensorBoard in DIR (default: <run>/tensorboard)")
    tracking.add_argument("--mlflow", action="store_true", help="log the run to MLflow (MLFLOW_TRACKING_URI, else "
                          "./mlflow.db); on by itself when MLFLOW_TRACKING_URI is set")
    _add_option_flags(train, {"train": TrainConfig}, set(TRAIN_FLAGS), "training")
    _add_option_flags(train, {"train": TrainConfig}, set(PRIVACY_FLAGS), "differential privacy (Opacus DP-SGD: vae, "
                      "diffusion and autoregressive on tables and images; the privacy extra)")
    train.set_defaults(func=cmd_train, family_option_names=_add_option_flags(
        train, {name: entry.options for name, entry in sorted(CATALOG.items())},
        title="family options (those that apply to --family)"))

    sample = commands.add_parser("sample", help="draw samples from a trained run into a file")
    sample.add_argument("run", help="run folder")
    sample.add_argument("-n", type=int, default=64, help="number of samples, written as they come (default: 64)")
    sample.add_argument("-o", "--output", help=".png grid, .npy array or a new folder of PNGs for images, .csv or "
                        ".parquet for tables, "
                        ".txt or .jsonl for text (default: samples.png, .csv or .txt)")
    sample.add_argument("--seed", type=int, default=0, help="the same seed gives the same samples (default: 0)")
    sample.add_argument("--labels", nargs="+", help="class names or ids for a conditional model")
    sample.add_argument("--condition", action="append", metavar="COLUMN=VALUE",
                        help="tables: keep rows with this value (repeatable), e.g. --condition income='>50K'")
    sample.add_argument("--conditions", metavar="FILE", help="tables: for a run trained with --condition-on, a .csv "
                        "(or .parquet) of those columns; one row is made for each of its rows (-n is ignored)")
    sample.add_argument("--fair-balance", metavar="COLUMN", help="tables: give every group of this column (e.g. sex) "
                        "the same rate of the target's positive class, each group keeping its share of the rows")
    sample.add_argument("--target", help="with --fair-balance: the target column (default: the one given at training)")
    sample.add_argument("--positive", metavar="VALUE", help="with --fair-balance: the target's positive class "
                        "(default: the less frequent of a two-valued target)")
    sample.add_argument("--shard", metavar="I/K", help="make only the I-th of K parts of the n samples (from 0): K "
                        "processes or machines with the same seed make the n samples together")
    sample.add_argument("--watermark", action=argparse.BooleanOptionalAction, help="images of 64x64 and more carry "
                        "an invisible 32-bit watermark (the run's tag and the image's index; genloom detect-watermark "
                        "reads it) unless --no-watermark; --watermark refuses images too small to carry one")
    sample.add_argument("--c2pa-cert", metavar="FOLDER", help="sign C2PA Content Credentials (made by a trained "
                        "model, with the provenance) into each PNG, with the certificate chain.pem and key signer.key "
                        "in FOLDER (`genloom c2pa-cert FOLDER` makes them)")
    sample.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    sample.add_argument("--quiet", action="store_true", help="no progress bar")
    sample.set_defaults(func=cmd_sample, sample_option_names=_add_option_flags(
        sample, {name: entry.sampling for name, entry in sorted(CATALOG.items()) if entry.sampling},
        title="sampling options (those that apply to the run's family)"))

    translate = commands.add_parser("translate", help="translate images with a cyclegan run, in either direction")
    translate.add_argument("run", help="run folder of a cyclegan")
    translate.add_argument("images", help="the images: a folder, a .npy/.npz file or a built-in name")
    translate.add_argument("-o", "--output", required=True, help="a new folder of PNGs, a .png grid or an .npy array")
    translate.add_argument("--to", default="B", help="the domain to translate into: B (the --target-data images, "
                           "the default) or A (the training images)")
    translate.add_argument("--image-size", help="resize the images to N or HxW pixels first")
    translate.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    translate.add_argument("--quiet", action="store_true", help="no progress bar")
    translate.set_defaults(func=cmd_translate)

    generate = commands.add_parser("generate", help="continue a prompt with a text model, printing as it goes")
    generate.add_argument("run", help="run folder")
    generate.add_argument("--prompt", default="", help="text to continue (default: none)")
    generate.add_argument("--max-tokens", type=int, default=256, help="tokens to generate at most (default: 256)")
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default: 1.0)")
    generate.add_argument("--top-k", type=int, help="keep the k most likely tokens (default: all)")
    generate.add_argument("--top-p", type=float, default=1.0, help="nucleus: keep the smallest set whose "
                          "probability reaches p (default: 1.0)")
    generate.add_argument("--repetition-penalty", type=float, default=1.0,
                          help="above 1 discourages tokens already in the text (default: 1.0)")
    generate.add_argument("--stop", action="append", help="stop before this text (repeatable)")
    generate.add_argument("--seed", type=int, default=0, help="the same seed gives the same text (default: 0)")
    generate.add_argument("--watermark-key", help="mark the text with this key (a statistical watermark, Kirchenbauer "
                          "et al. 2023), which genloom detect-watermark finds")
    generate.add_argument("--no-cache", action="store_true",
                          help="recompute the whole context for every token (slower; past the context length it "
                               "slides a full window where the cache restarts from the last half)")
    generate.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    generate.add_argument("--quiet", action="store_true", help="accepted for symmetry: generate shows no progress bar")
    generate.set_defaults(func=cmd_generate)

    finetune = commands.add_parser("finetune", help="LoRA-fine-tune a trained text or molecule run on new data, on "
                                   "preference pairs (DPO, or PPO against a reward model learnt from them) or toward "
                                   "a molecule property (PPO); saves only the adapter")
    finetune.add_argument("run", help="the trained autoregressive run to adapt")
    finetune.add_argument("data", nargs="?", help="the new data; with --objective dpo or ppo, a .jsonl of "
                          "{\"prompt\", \"chosen\", \"rejected\"} objects")
    finetune.add_argument("--out", required=True, help="folder for the adapter")
    finetune.add_argument("--resume", action="store_true", help="ppo: go on with the PPO run in --out from its last "
                          "whole round (give --rounds above the rounds it has done)")
    finetune.add_argument("--objective", choices=["sft", "dpo", "ppo"], help="sft: the next-token loss on the new "
                          "data (the default with data); dpo: direct preference optimisation on preference pairs; "
                          "ppo: a reward model learnt from the pairs (for --steps), then PPO toward it after their "
                          "prompts (the default with --reward)")
    finetune.add_argument("--beta", type=float, default=0.1, help="dpo: how far the preference may pull the model "
                          "from where it started (larger: less far; default: 0.1)")
    finetune.add_argument("--reward", metavar="PROPERTY", help="molecules: instead of data, tune toward a higher "
                          "RDKit property (QED, logP, SA, weight), by PPO on the run's samples as it learns (or "
                          "--objective dpo: on pairs of the base run's samples)")
    finetune.add_argument("--pairs", type=int, default=256, help="--reward with dpo: sample pairs scored (default: "
                          "256)")
    finetune.add_argument("--rank", type=int, default=8, help="LoRA rank (default: 8)")
    finetune.add_argument("--alpha", type=float, default=16.0, help="LoRA scale alpha (default: 16)")
    finetune.add_argument("--steps", type=int, help="updates of the adapters (default: 2000)")
    finetune.add_argument("--minutes", type=float, help="minutes of training")
    finetune.add_argument("--epochs", type=float, help="passes over the new data")
    _add_corpus_flags(finetune)
    finetune.add_argument("--device", default="auto", help=f"{DEVICES} (default: auto)")
    finetune.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_option_flags(finetune, {"train": TrainConfig}, set(TRAIN_FLAGS), "training")
    _add_option_flags(finetune, {"ppo": PPOSettings}, PPO_FLAGS, "PPO")
    finetune.set_defaults(func=cmd_finetune)

    distill = commands.add_parser("distill", help="teach a trained run to a faster student, written as a run: a "
                                  "diffusion model to fewer sampling steps (progressive distillation), an "
                                  "autoregressive one to a smaller transformer (knowledge distillation)")
    distill.add_argument("run", help="the trained diffusion or autoregressive run (the teacher)")
    distill.add_argument("data", nargs="?", help="the data to distil on (default: the data the run trained on)")
    distill.add_argument("--out", required=True, help="folder for the student's run")
    distill.add_argument("--train-steps", type=int, help="updates of the student (default: 2000; diffusion: shared "
                         "by its stages)")
    distill.add_argument("--minutes", type=float, help="minutes for the whole command: reading the data and the "
                         "teacher, training and writing the student's run")
    distill.add_argument("--epochs", type=float, help="passes over the data")
    _add_corpus_flags(distill)
    distill.add_argument("--device", default="auto", help=f"{DEVICES} (default: auto)")
    distill.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_option_flags(distill, {"distill": DistillSettings}, None, "distillation")
    _add_option_flags(distill, {"train": TrainConfig}, set(TRAIN_FLAGS), "training")
    distill.set_defaults(func=cmd_distill)

    evaluate = commands.add_parser("evaluate", help="score a run with the metrics of its data kind")
    evaluate.add_argument("run", help="run folder")
    evaluate.add_argument("--data", help="data to score on, all of it (default: the held-out part of the run's own)")
    _add_corpus_flags(evaluate)
    evaluate.add_argument("--samples", type=int, help="text: samples drawn for diversity metrics (default: 20); "
                          "molecules: samples scored (default: 10,000, as MOSES)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the samples scored (default: 0)")
    evaluate.add_argument("--inception-weights", metavar="FILE",
                          help="images: InceptionV3 weights (pt_inception-2015-12-05-6726825d.pth) for FID/KID/IS; "
                               "default $GENLOOM_INCEPTION_WEIGHTS, else a feature net trained on the run's images")
    evaluate.add_argument("--target", help="tables: the column the utility score predicts (train on synthetic, "
                          "test on real; default: the one given at training)")
    evaluate.add_argument("--protected", action="append", metavar="COLUMN",
                          help="tables: a column of groups (sex, race; repeatable) across which the utility "
                               "classifier's demographic-parity and equalised-odds differences are measured, trained "
                               "on real and on synthetic rows")
    evaluate.add_argument("--positive", metavar="VALUE", help="with --protected: the target's class the rates "
                          "count (default: the less frequent of a two-valued target)")
    evaluate.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress lines")
    evaluate.set_defaults(func=cmd_evaluate)

    export = commands.add_parser("export", help="write a run in another format")
    export.add_argument("run", help="run folder")
    export.add_argument("--format", choices=["onnx", "gpt2"], help="onnx: the network as an ONNX graph, sampled "
                        "by ONNX Runtime (vae, gan, wgan-gp, diffusion; autoregressive with its key/value cache); "
                        "gpt2: a Hugging Face checkpoint folder")
    export.add_argument("-o", "--output", help="the file (onnx) or folder (gpt2) to write")
    export.add_argument("--int8", action="store_true", help="onnx: int8 weights in the linear layers (dynamic "
                        "quantisation): a smaller file, faster on CPUs")
    export.add_argument("--gpt2", metavar="FOLDER", help="the same as --format gpt2 -o FOLDER (text models trained "
                        "with --bias --no-rope)")
    export.set_defaults(func=cmd_export)

    interpolate = commands.add_parser("interpolate", help="decode the path between two examples or seeds (the "
                                      "latent space of a VAE, a GAN or a diffusion model): a strip of images or a "
                                      "table of rows")
    interpolate.add_argument("run", help="run folder")
    interpolate.add_argument("--from", dest="start", required=True, metavar="A",
                             help="seed:N, an index into --data, or an image file")
    interpolate.add_argument("--to", dest="end", required=True, metavar="B", help="the other end, as --from")
    interpolate.add_argument("--steps", type=int, default=8, help="examples along the path, ends included (default: 8)")
    interpolate.add_argument("--method", choices=["slerp", "lerp"], default="slerp",
                             help="great circle or straight line (default: slerp)")
    interpolate.add_argument("--data", help="the data the indices point into")
    interpolate.add_argument("--label", help="the class of a conditional run's path")
    interpolate.add_argument("-o", "--output", help=".png strip or .npy for images, .csv or .parquet for tables "
                             "(default: interpolation.png or .csv)")
    interpolate.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    interpolate.set_defaults(func=cmd_interpolate)

    edit = commands.add_parser("edit", help="move examples along a latent direction between two classes "
                               "(attribute vector arithmetic)")
    edit.add_argument("run", help="run folder")
    edit.add_argument("--data", required=True, help="labelled data: the classes' mean codes give the direction")
    edit.add_argument("--from-label", required=True, help="the class the direction starts from")
    edit.add_argument("--to-label", required=True, help="the class it points to")
    edit.add_argument("--labels", metavar="COLUMN", help="tables: the column whose values are the classes")
    edit.add_argument("--index", type=int, nargs="+", help="the examples to edit (default: the first 8 of "
                      "--from-label)")
    edit.add_argument("--scale", type=float, default=1.0, help="how far along the direction (default: 1)")
    edit.add_argument("-o", "--output", help="where to write them (default: edited.png or .csv)")
    edit.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    edit.set_defaults(func=cmd_edit)

    optimize = commands.add_parser("optimize", help="design table rows or molecules toward a higher or lower property "
                                   "(a VAE trained with --property COLUMN, or an RDKit property)")
    optimize.add_argument("run", help="run folder of a VAE trained with --property")
    optimize.add_argument("--maximize", metavar="COLUMN", help="the property to raise")
    optimize.add_argument("--minimize", metavar="COLUMN", help="or the property to lower")
    optimize.add_argument("-n", type=int, default=20, help="rows to design (default: 20)")
    optimize.add_argument("--prior-weight", type=float, default=DESIGN_PRIOR_WEIGHT, help="how close to the prior "
                          "the codes stay: larger keeps rows more like the training rows, smaller pushes the property "
                          f"further (default: {DESIGN_PRIOR_WEIGHT:g})")
    optimize.add_argument("--steps", type=int, default=DESIGN_STEPS, help="Langevin steps on the codes "
                          f"(default: {DESIGN_STEPS})")
    optimize.add_argument("--temperature", type=float, default=1.0, help="molecules, a VAE with an autoregressive "
                          "decoder: of each token's draw; lower gives likelier, less varied molecules (default: 1)")
    optimize.add_argument("--seed", type=int, default=0, help="(default: 0)")
    optimize.add_argument("-o", "--output", help=".csv or .parquet (default: designed.csv)")
    optimize.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    optimize.set_defaults(func=cmd_optimize)

    anomaly = commands.add_parser("anomaly", help="anomaly detection with a generative model: fit, then score")
    anomaly_commands = anomaly.add_subparsers(dest="anomaly_command", required=True, metavar="fit|score",
                                              help="fit a detector, or score data with one",
                                              parser_class=Parser)
    anomaly_fit = anomaly_commands.add_parser("fit", help="train a detector on (mostly) normal data")
    anomaly_fit.add_argument("data", help="a table (.csv, .parquet), images (a folder, .npy) or a built-in name")
    anomaly_fit.add_argument("--family", default="vae", help="vae, diffusion (its denoising error) or "
                             "autoregressive (default: vae)")
    anomaly_fit.add_argument("--contamination", type=float, default=0.1,
                             help="share of the training data expected to be anomalous, in (0, 0.5] (default: 0.1)")
    anomaly_fit.add_argument("--steps", type=int, help="training steps (default: the family's)")
    anomaly_fit.add_argument("--minutes", type=float, help="a time budget instead of steps")
    anomaly_fit.add_argument("--seed", type=int, default=0, help="(default: 0)")
    anomaly_fit.add_argument("--views", help="what the score adds up, comma-separated: likelihood, latent (the latent "
                             "code's local outlier factor) (default: the family's; the vae's is both)")
    anomaly_fit.add_argument("--out", required=True, help="the run folder to write")
    anomaly_fit.set_defaults(func=cmd_anomaly_fit)
    anomaly_score = anomaly_commands.add_parser("score", help="score new data with a fitted detector")
    anomaly_score.add_argument("run", help="the run `genloom anomaly fit` wrote")
    anomaly_score.add_argument("data", help="the data to score, with the training data's columns or image size")
    anomaly_score.add_argument("-o", "--output", default="scores.csv",
                               help="a CSV of row, score and anomaly (0/1), in the data's order (default: scores.csv)")
    anomaly_score.set_defaults(func=cmd_anomaly_score)

    detector = commands.add_parser("detector", help="a synthetic-content detector: train a classifier of real vs "
                                    "generated examples, then score files with it")
    detector_commands = detector.add_subparsers(dest="detector_command", required=True, metavar="train|score",
                                                help="train a detector, or score files with one", parser_class=Parser)
    detector_train = detector_commands.add_parser("train", help="train a detector of real vs generated examples and "
                                                  "report its ROC AUC on held-out ones, per run")
    detector_train.add_argument("--real", required=True, help="the real data: a built-in name, a folder or a file")
    detector_train.add_argument("--fake", required=True, nargs="+", metavar="RUN", help="run folders whose samples "
                                "are the generated examples (of the real data's kind)")
    detector_train.add_argument("--out", required=True, help="the detector folder to write")
    detector_train.add_argument("--samples", type=int, default=1000, help="examples drawn from each run; as many real "
                                "ones in all (default: 1000)")
    detector_train.add_argument("--steps", type=int, help="training iterations: CNN updates for images (default "
                                "300), boosting rounds for tables (200), solver iterations for text (300)")
    detector_train.add_argument("--held-out", type=float, default=0.25, help="share of the examples kept to measure "
                                "the detector (default: 0.25)")
    detector_train.add_argument("--seed", type=int, default=0, help="(default: 0)")
    detector_train.add_argument("--quiet", action="store_true", help="no progress lines")
    detector_train.set_defaults(func=cmd_detector_train)
    detector_score = detector_commands.add_parser("score", help="print the probability that each example was "
                                                  "generated")
    detector_score.add_argument("detector", help="the folder `genloom detector train` wrote")
    detector_score.add_argument("files", nargs="+", help="images: PNG files or an .npy of images; tables: .csv, .tsv "
                                "or .parquet files; text: .txt files (each one example)")
    detector_score.set_defaults(func=cmd_detector_score)

    augment = commands.add_parser("augment", help="add a model's examples of the rare classes, as many as help on "
                                  "held-out examples or until balanced (the generative alternative to SMOTE)")
    augment.add_argument("data", help="a table (.csv, .parquet) with --target, or labelled images (a folder with one "
                         "sub-folder per class, an .npz with labels), or a built-in name")
    augment.add_argument("--target", help="tables: the column of classes to balance")
    augment.add_argument("--balance", action="store_true", help="add examples until every class is as large as the "
                         "largest")
    augment.add_argument("--ratio", type=float, help="instead: until every class has R times the largest's count, "
                         "0 < R <= 1 (default, without --balance: the model learns from three quarters of each class "
                         "and adds the fewest examples that help a classifier as much as any amount on the quarter "
                         "held out, none included)")
    augment.add_argument("--family", choices=families, default=AUTO, metavar="{" + ",".join(families) + "}",
                         help="the model that makes the examples (default: auto)")
    augment.add_argument("--steps", type=int, help="training steps (default: the family's)")
    augment.add_argument("--minutes", type=float, help="a time budget for the training instead")
    augment.add_argument("--seed", type=int, default=0, help="(default: 0)")
    augment.add_argument("--marker", help="tables: the column that marks added rows 1 (default: synthetic)")
    augment.add_argument("-o", "--output", required=True, help=".csv or .parquet for a table, .npz for images "
                         "(images, labels and synthetic)")
    augment.add_argument("--quiet", action="store_true", help="no progress bar")
    augment.set_defaults(func=cmd_augment)

    serve = commands.add_parser("serve", help="serve runs over HTTP: an API, OpenAI-compatible text endpoints "
                                "and a web studio")
    serve.add_argument("runs", nargs="+", metavar="RUN_OR_FOLDER", help="run folders, or folders of runs")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on; anything but loopback needs "
                       "--api-key (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    serve.add_argument("--api-key", help="callers of /v1 must send it (default: $GENLOOM_API_KEY, else none)")
    serve.add_argument("--max-loaded", type=int, default=4, help="runs kept in memory (default: 4)")
    serve.add_argument("--max-concurrency", type=int, default=4,
                       help="inference requests at once; more get 429 (default: 4)")
    serve.add_argument("--max-samples", type=int, default=1024, help="n of one request at most (default: 1024)")
    serve.add_argument("--max-tokens", type=int, default=2048, help="tokens of one completion at most (default: 2048)")
    serve.add_argument("--max-body-bytes", type=int, default=16 << 20, help="request body cap (default: 16 MiB)")
    serve.add_argument("--timeout", type=float, default=120.0, help="seconds a request may compute (default: 120)")
    serve.add_argument("--cors", metavar="ORIGIN", help="let browser pages from ORIGIN call the API (default: none)")
    serve.add_argument("--no-batching", action="store_true", help="draw every sample request alone (default: "
                       "unseeded requests that arrive together are drawn in one pass)")
    serve.add_argument("--watermark-key", help="mark every completion with this key (a statistical watermark; a "
                       "request's own 'watermark' field wins); also GENLOOM_WATERMARK_KEY")
    serve.add_argument("--threads", type=int, help="torch threads of one inference (default: the cores available "
                       "divided among --max-concurrency slots, at least 1)")
    serve.add_argument("--device", default="cpu", help=f"{DEVICES} (default: cpu)")
    serve.set_defaults(func=cmd_serve)

    compare = commands.add_parser("compare", help="compare runs side by side: their metrics (the best marked) "
                                  "and samples, in the terminal and as an HTML page")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders (two or more; grouped by data kind)")
    compare.add_argument("-o", "--output", default="compare.html", help="the HTML page (default: compare.html; "
                         "'' for none)")
    compare.set_defaults(func=cmd_compare)

    provenance = commands.add_parser("provenance", help="show where a sample file came from, and whether its "
                                     "content still matches what was written")
    provenance.add_argument("file", help="a PNG genloom wrote, or a file with FILE.provenance.json beside it")
    provenance.add_argument("--c2pa-trust", metavar="CA.pem", help="a PNG's C2PA manifest: trust signers under "
                            "this CA certificate (as `genloom c2pa-cert` writes), to check who signed")
    provenance.set_defaults(func=cmd_provenance)

    c2pa_cert = commands.add_parser("c2pa-cert", help="make a local identity that signs C2PA Content Credentials "
                                    "into sampled PNGs (genloom sample --c2pa-cert)")
    c2pa_cert.add_argument("folder", help="a new folder for chain.pem, signer.key and ca.pem")
    c2pa_cert.add_argument("--name", default="genloom local signer", help="the signer's name in its certificate")
    c2pa_cert.set_defaults(func=cmd_c2pa_cert)

    detect = commands.add_parser("detect-watermark", help="tell whether a text carries the watermark a key made "
                                 "(genloom generate --watermark-key), or an image the one genloom sample writes: a "
                                 "z-score and a verdict (and an image's run tag and index)")
    detect.add_argument("file", help="the text (UTF-8), or an image (PNG, JPEG...; each image of a genloom grid)")
    detect.add_argument("--key", help="text: the key the text was generated with")
    detect.add_argument("--run", help="text: the run that generated it (its tokenizer reads the text); images: say "
                        "whether the mark is this run's")
    detect.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"z-score above which the file counts as watermarked (default: {DEFAULT_THRESHOLD:g}, "
                             "a 1%% false-positive rate)")
    detect.set_defaults(func=cmd_detect_watermark)

    info = commands.add_parser("info", help="show what a run holds, and whether its files are whole")
    info.add_argument("run", help="run folder")
    info.add_argument("--json", action="store_true", help="print config.json")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `genloom` command's work; returns the exit code."""
    started = time.perf_counter()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a bad command line (2, already printed)
        return int(exit_.code or 0)
    args.started = started  # --minutes counts the command's whole time, its imports and data reading too
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args) or 0
    except GenloomError as error:
        message = f"genloom: error: {error}"
        if "RANK" not in os.environ or not _left_for_launcher(message):
            print(message, file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("genloom: interrupted; a training run continues with --resume from its last checkpoint", file=sys.stderr)
        return 130


def _left_for_launcher(message: str) -> bool:
    from .train.distributed import report_error  # under torchrun: torch is loaded already

    return report_error(message)


def run() -> None:
    """The console script: main, then an exit that does not sweep the heap. The interpreter's last cyclic
    collections over torch's objects took 1.9-2.1 s after a table's training (0.34-0.36 s with the objects frozen
    out of the collector), time a user's --minutes would pay."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
