"""The `genloom` command: train, sample and inspect runs. Errors are one line and exit with code 2."""
from __future__ import annotations

import argparse
import json
import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Sequence

from .data import load_data
from .errors import GenloomError
from .families import FAMILIES
from .train import TrainConfig

EXIT_USER_ERROR = 2
TRAIN_FLAGS = ("batch_size", "grad_accum", "optimizer", "lr", "muon_lr", "weight_decay", "adam_beta1", "adam_beta2",
               "warmup_steps", "min_lr_ratio", "grad_clip", "ema_decay", "val_fraction", "eval_every", "eval_batches", "log_every",
               "sample_every", "checkpoint_every", "checkpoint_minutes", "seed", "compile")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _flag_type(config: type, name: str) -> type:
    """The field's type without its `| None`: int for `top_k: int | None`."""
    hint = typing.get_type_hints(config)[name]
    return next((arg for arg in typing.get_args(hint) if arg is not type(None)), hint)


def _add_dataclass_flags(parser: argparse.ArgumentParser, configs: dict[str, type], names: set[str] | None = None,
                         title: str = "") -> set[str]:
    """One flag per field of the configs (named by their owner, e.g. a family); bools as --x/--no-x.
    Unset flags stay out of the namespace; the help names each owner's default where they differ."""
    group = parser.add_argument_group(title) if title else parser
    owners: dict[str, dict[str, Any]] = {}  # field -> {owner: default}
    kinds: dict[str, type] = {}
    for owner, config in configs.items():
        for field in fields(config):
            if names is None or field.name in names:
                owners.setdefault(field.name, {})[owner] = field.default if field.default is not MISSING else None
                kinds.setdefault(field.name, _flag_type(config, field.name))
    for name, defaults in owners.items():
        values = list(defaults.values())
        shown = values[0] if all(v == values[0] for v in values) else ", ".join(f"{o} {v}" for o, v in defaults.items())
        if kinds[name] is bool:
            group.add_argument(_flag(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=f"(default: {shown})")
        else:
            group.add_argument(_flag(name), type=kinds[name], default=argparse.SUPPRESS,
                               metavar=kinds[name].__name__.upper(), help=f"(default: {shown})")
    return set(owners)


def _add_corpus_flags(parser) -> None:
    """How to read a text corpus: shared by train and finetune."""
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default: utf-8)")
    parser.add_argument("--errors", default="strict", choices=["strict", "replace", "ignore"],
                        help="what to do with bytes the encoding cannot read (default: strict = stop)")
    parser.add_argument("--text-field", default="text", help="field of a .jsonl corpus (default: text)")


def _given(args: argparse.Namespace, names: set[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def cmd_train(args: argparse.Namespace) -> None:
    from .model import Model

    from .runs import read_run

    out = Path(args.out) if args.out else None
    if args.resume and out is None:
        raise GenloomError("--resume needs --out: the folder of the run to continue")
    family = args.family or (read_run(out)[0]["family"] if args.resume else "vae")
    model = Model(family, **_given(args, args.family_option_names))
    data = None
    if args.data is not None:
        data = load_data(args.data, image_size=args.image_size, encoding=args.encoding, errors=args.errors,
                         text_field=args.text_field, metadata=args.metadata, target=args.target)
    elif not args.resume:
        raise GenloomError("name the data to train on: a built-in name (digits, shakespeare), a folder or a file")
    if out is None:
        out = Path("runs") / f"{data.name}-{family}"
    model.fit(data, out=out, resume=args.resume, steps=args.steps, minutes=args.minutes, epochs=args.epochs,
              device=args.device, progress=not args.quiet, codec_options=_given(args, {"tokenizer", "vocab_size", "numbers"}),
              **_given(args, set(TRAIN_FLAGS)))
    record = model.record
    print(f"trained {record['family']} on {record['data']['name']} for {record['steps_trained']} steps "
          f"in {record['train_seconds']:.1f} s")
    if record["final_metrics"]:
        print("final: " + ", ".join(f"{k} {v:g}" for k, v in record["final_metrics"].items()))
    print(f"run written to {out}/ (open {out / 'report.html'})")


def cmd_generate(args: argparse.Namespace) -> None:
    from .model import load

    model = load(args.run, device=args.device)
    pieces = model.generate(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, repetition_penalty=args.repetition_penalty, stop=args.stop or (),
                            seed=args.seed, stream=True, use_cache=not args.no_cache)
    sys.stdout.write(args.prompt)
    for piece in pieces:  # print as the tokens come
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate
    from .model import load

    model = load(args.run, device=args.device)
    data = None
    if args.data:
        data = load_data(args.data, encoding=args.encoding, errors=args.errors, text_field=args.text_field)
    scores = evaluate(model, data, samples=args.samples, seed=args.seed, inception_weights=args.inception_weights,
                      target=args.target)
    width = max(map(len, scores))
    for name, value in scores.items():
        print(f"{name:<{width}}  {value:g}")
    if "evaluation" in model.record:
        print(f"saved in {Path(args.run) / 'config.json'} and {Path(args.run) / 'report.html'}")


def cmd_finetune(args: argparse.Namespace) -> None:
    from .model import load

    model = load(args.run, device=args.device)
    data = load_data(args.data, encoding=args.encoding, errors=args.errors, text_field=args.text_field)
    model.finetune(data, out=args.out, rank=args.rank, alpha=args.alpha, steps=args.steps, minutes=args.minutes,
                   device=args.device, progress=not args.quiet, **_given(args, set(TRAIN_FLAGS)))
    print(f"fine-tuned {args.run} on {data.name} with LoRA rank {args.rank}; adapter written to {args.out}/ "
          f"(use it like a run: genloom generate {args.out})")


def cmd_export(args: argparse.Namespace) -> None:
    from .export import save_gpt2
    from .model import load

    path = save_gpt2(load(args.run), args.gpt2)
    print(f"wrote a GPT-2 checkpoint to {path}/ (transformers: GPT2LMHeadModel.from_pretrained('{path}'))")


def cmd_sample(args: argparse.Namespace) -> None:
    from .model import load

    model = load(args.run, device=args.device)
    conditions = dict(_condition(text) for text in args.condition or [])
    samples = model.sample(args.n, seed=args.seed, labels=args.labels, conditions=conditions,
                           **_given(args, args.sample_option_names))
    path = model.codec.save_samples(samples, Path(args.output or f"samples{model.codec.sample_suffix}"))
    print(f"wrote {args.n} samples to {path}")


def _condition(text: str) -> tuple[str, str]:
    column, equals, value = text.partition("=")
    if not equals or not column:
        raise GenloomError(f"a condition is COLUMN=VALUE, e.g. --condition income='>50K'; got {text!r}")
    return column, value


def cmd_info(args: argparse.Namespace) -> None:
    from .metrics.report import summary_rows
    from .runs import read_run

    record, _ = read_run(args.run)
    if args.json:
        print(json.dumps(record, indent=2))
        return
    rows = summary_rows(record)
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(args.run).iterdir())
    print(f"{'files':<{width}}  {' '.join(files)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genloom", description="Train, sample and inspect generative models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model on a data set", description=(
        "Train a family on DATA: a built-in name (digits, shakespeare), a folder of images (one sub-folder per "
        "class), a .npy/.npz array, a .txt or .jsonl corpus or a folder of .txt files, a .csv/.parquet table. "
        "Writes the run to --out."))
    train.add_argument("data", nargs="?", help="data set; may be left out with --resume")
    train.add_argument("--family", choices=sorted(FAMILIES),
                       help="generative family (default: vae, or the run's own with --resume)")
    train.add_argument("--out", help="run folder (default: runs/<data>-<family>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    budget = train.add_argument_group("budget (training stops at whichever comes first)")
    budget.add_argument("--steps", type=int)
    budget.add_argument("--minutes", type=float)
    budget.add_argument("--epochs", type=float)
    train.add_argument("--image-size", help="resize images to N or HxW pixels")
    train.add_argument("--metadata", metavar="JSON", help="tables: column kinds, as SDV's metadata "
                       '({"columns": {"zip": {"sdtype": "categorical"}}}); the others are inferred')
    train.add_argument("--target", help="tables: the column that evaluation's utility score predicts")
    train.add_argument("--numbers", choices=["modes", "quantile"], default=argparse.SUPPRESS,
                       help="tables: how numbers are encoded: CTGAN's mode-specific normalisation or TabDDPM's "
                            "quantile transform (default: quantile for diffusion and autoregressive, else modes)")
    text = train.add_argument_group("text")
    text.add_argument("--tokenizer", choices=["char", "bpe"], default=argparse.SUPPRESS,
                      help="characters (default) or a BPE vocabulary trained on the corpus")
    text.add_argument("--vocab-size", type=int, default=argparse.SUPPRESS, help="BPE vocabulary size (default: 1024)")
    _add_corpus_flags(text)
    train.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_dataclass_flags(train, {"train": TrainConfig}, set(TRAIN_FLAGS), "training")
    train.set_defaults(func=cmd_train, family_option_names=_add_dataclass_flags(
        train, {name: cls.Config for name, cls in sorted(FAMILIES.items())},
        title="family options (those that apply to --family)"))

    sample = commands.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run", help="run folder")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default: 64)")
    sample.add_argument("-o", "--output", help=".png grid or .npy array for images, .csv or .parquet for tables, "
                        ".txt for text (default: samples.png, .csv or .txt)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--labels", nargs="+", help="class names or ids for a conditional model")
    sample.add_argument("--condition", action="append", metavar="COLUMN=VALUE",
                        help="tables: keep rows with this value (repeatable), e.g. --condition income='>50K'")
    sample.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    sample.set_defaults(func=cmd_sample, sample_option_names=_add_dataclass_flags(
        sample, {name: cls.SampleOptions for name, cls in sorted(FAMILIES.items()) if cls.SampleOptions},
        title="sampling options (those that apply to the run's family)"))

    generate = commands.add_parser("generate", help="continue a prompt with a text model, printing as it goes")
    generate.add_argument("run", help="run folder")
    generate.add_argument("--prompt", default="", help="text to continue (default: none)")
    generate.add_argument("--max-tokens", type=int, default=256)
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default: 1.0)")
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float, default=1.0)
    generate.add_argument("--repetition-penalty", type=float, default=1.0)
    generate.add_argument("--stop", action="append", help="stop before this text (repeatable)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--no-cache", action="store_true",
                          help="recompute the whole context for every token (slower; past the context length it "
                               "slides a full window where the cache restarts from the last half)")
    generate.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    generate.set_defaults(func=cmd_generate)

    finetune = commands.add_parser("finetune", help="LoRA-fine-tune a trained run on new data; saves only the adapter")
    finetune.add_argument("run", help="the trained run to adapt")
    finetune.add_argument("data", help="the new data (a corpus for a text model)")
    finetune.add_argument("--out", required=True, help="folder for the adapter")
    finetune.add_argument("--rank", type=int, default=8, help="LoRA rank (default: 8)")
    finetune.add_argument("--alpha", type=float, default=16.0, help="LoRA scale alpha (default: 16)")
    finetune.add_argument("--steps", type=int)
    finetune.add_argument("--minutes", type=float)
    _add_corpus_flags(finetune)
    finetune.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    finetune.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_dataclass_flags(finetune, {"train": TrainConfig}, set(TRAIN_FLAGS), "training")
    finetune.set_defaults(func=cmd_finetune)

    evaluate = commands.add_parser("evaluate", help="score a run with the metrics of its data kind")
    evaluate.add_argument("run", help="run folder")
    evaluate.add_argument("--data", help="data to score on, all of it (default: the held-out part of the run's own)")
    _add_corpus_flags(evaluate)
    evaluate.add_argument("--samples", type=int, default=20, help="samples drawn for diversity metrics (default: 20)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--inception-weights", metavar="FILE",
                          help="images: InceptionV3 weights (pt_inception-2015-12-05-6726825d.pth) for FID/KID/IS; "
                               "default $GENLOOM_INCEPTION_WEIGHTS, else a feature net trained on the run's images")
    evaluate.add_argument("--target", help="tables: the column the utility score predicts (train on synthetic, "
                          "test on real; default: the one given at training)")
    evaluate.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    evaluate.set_defaults(func=cmd_evaluate)

    export = commands.add_parser("export", help="write a run in another format")
    export.add_argument("run", help="run folder")
    export.add_argument("--gpt2", required=True, metavar="FOLDER",
                        help="a Hugging Face GPT-2 checkpoint folder (text models trained with --bias --no-rope)")
    export.set_defaults(func=cmd_export)

    info = commands.add_parser("info", help="show what a run holds")
    info.add_argument("run", help="run folder")
    info.add_argument("--json", action="store_true", help="print config.json")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `genloom` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GenloomError as error:
        print(f"genloom: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("genloom: interrupted; a training run continues with --resume from its last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
