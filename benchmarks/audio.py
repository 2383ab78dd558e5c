"""Spoken digits on this CPU: each family, class-conditional, trained for the same budget on the built-in
`spoken_digits` (2,700 recordings of the Free Spoken Digit Dataset at 8 kHz, cropped or padded to 0.64 s), then
scored by `gl.evaluate` on the dataset's own test split (300 recordings): the Fréchet distance (FD) in the features
of a spectrogram classifier trained on the real training recordings, with its floor (training vs held-out
recordings) and ceiling (white noise); the share of the samples of each held-out label that the classifier
recognises as that digit (chance: 0.10), beside the classifier's own accuracy on held-out recordings (its ceiling);
and the seconds it takes to sample one second of audio (32 recordings, one of each digit in turn, with the
run's default sampler, and Griffin-Lim for the spectrogram models). The best row's picture of held-out and
generated spectrograms goes beside the results (audio-spectrograms.png).

Target (issue 23): the best family's conditional samples are recognised at >= 50%.

Usage (one core, nothing else running; about 8 minutes a row at the default budget):
  .venv/bin/python benchmarks/audio.py --threads 1
  .venv/bin/python benchmarks/audio.py --genloom 'diffusion w16={"family": "diffusion", "width": 16}' --section sweep
  .venv/bin/python benchmarks/audio.py --quick --out /tmp/audio.md     (a smoke run)
"""
from __future__ import annotations

import argparse
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genloom as gl
from shared_parts import all_numbers, genloom_rows, log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "audio.md"
TARGET_ACCURACY = 0.50
SPEED_SAMPLES = 32
CODEC_KEYS = ("representation", "length", "mels")  # a row's JSON keys that go to the codec
TRAIN_KEYS = ("batch_size", "lr")                   # and to training
DEFAULT_ROWS = {
    "diffusion": {"family": "diffusion"},
    "vae": {"family": "vae"},
    "gan": {"family": "gan"},
    "autoregressive": {"family": "autoregressive"},
    "diffusion (waveform)": {"family": "diffusion", "representation": "waveform"},
}


def run_row(label: str, settings: dict, threads: int, folder: Path) -> dict:
    """Train one row's model, evaluate it and time its sampling."""
    settings = dict(settings)
    minutes, family = settings.pop("minutes"), settings.pop("family")
    codec = {key: settings.pop(key) for key in CODEC_KEYS if key in settings}
    train = {key: settings.pop(key) for key in TRAIN_KEYS if key in settings}
    model = gl.Model(family, conditional=True, **settings)
    started = time.perf_counter()
    model.fit("spoken_digits", minutes=minutes, out=folder / label.replace(" ", "-"), threads=threads,
              codec_options=codec, progress=False, **train)
    trained = time.perf_counter() - started
    scores = gl.evaluate(model, progress=False)
    started = time.perf_counter()
    model.sample(SPEED_SAMPLES, labels=np.arange(SPEED_SAMPLES) % 10, seed=1, progress=False)
    seconds_of_audio = SPEED_SAMPLES * model.codec.length / model.codec.rate
    speed = (time.perf_counter() - started) / seconds_of_audio
    log(f"{label}: {model.record['steps_trained']} steps, FD {scores['fd']:.1f}, conditional accuracy "
        f"{scores['conditional_accuracy']:.3f}, {speed:.3f} s per second of audio")
    return {"label": label, "steps": model.record["steps_trained"], "train_seconds": round(trained, 1),
            "sampling_seconds_per_audio_second": speed, **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_arguments(parser, RESULTS, "0.3 minutes a row")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--genloom", nargs="*", default=None, metavar="LABEL=JSON",
                        help='rows (default: each family); JSON keys family, minutes, family options, '
                             f'{", ".join(TRAIN_KEYS)} for training and {", ".join(CODEC_KEYS)} for the codec')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = genloom_rows(args.genloom, DEFAULT_ROWS, {"minutes": 0.3 if args.quick else args.minutes})
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_row(label, settings, args.threads, Path(tmp)) for label, settings in rows.items()]
        best = max(results, key=lambda result: result["conditional_accuracy"])
        section = "" if args.section == "main" else f"-{args.section}"  # a section's own picture: main's stays
        picture = args.out.with_name(f"{args.out.stem}{section}-spectrograms.png")
        shutil.copy(Path(tmp) / best["label"].replace(" ", "-") / "evaluation" / "spectrograms.png", picture)
    reached = "met" if best["conditional_accuracy"] >= TARGET_ACCURACY else "not met"
    body = [f"Run {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, "
            f"{args.threads} thread(s): `{shlex.join([Path(sys.executable).name, *sys.argv])}`.", "",
            "| model | budget | steps | FD | conditional accuracy | s per s of audio |",
            "|---|---|---|---|---|---|"]
    for result, settings in zip(results, rows.values()):
        body.append(f"| {result['label']} | {settings['minutes']:g} min | {result['steps']} | {result['fd']:.1f} | "
                    f"{result['conditional_accuracy']:.3f} | {result['sampling_seconds_per_audio_second']:.3f} |")
    first = results[0]
    body += ["", f"References from the same evaluation: FD of the training recordings against the held-out ones "
             f"{first['fd_train_vs_held_out']:.1f} (the floor), of white noise {first['fd_noise']:.1f} (the "
             f"ceiling); the classifier recognises {first['classifier_accuracy']:.3f} of the held-out recordings "
             "(chance 0.10).", "",
             f"Target: the best family's conditional samples recognised at >= {TARGET_ACCURACY:.2f}: {reached} "
             f"({best['label']}: {best['conditional_accuracy']:.3f}).", "",
             f"Held-out and generated spectrograms, one of each digit, of {best['label']}: `{picture.name}`.", "",
             *all_numbers(results)]
    write_section(args.out, args.section, "Audio: spoken digits on a CPU", body)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
