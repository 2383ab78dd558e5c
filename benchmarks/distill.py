"""Distilled students against their teachers (`genloom distill`).

Section `diffusion`: a diffusion model trained on the 8x8 digits (images.py's split and its FID extractor) and its
4-step student (progressive distillation, 3 halvings from 32 DDIM steps). FID of 1,000 samples against the test
split for the teacher with DPM-Solver++ at 20 steps (its default) and at 4 steps (the no-training way to sample in
4 steps; genloom's DPM-Solver++ equals diffusers' DPMSolverMultistepScheduler, tests/families/test_samplers.py),
the teacher's DDIM at 4 steps (its leading grid, and the trailing one the student samples on), and the student;
then the time to sample 1,000 images, teacher (20 steps) and student in turn, at 1 thread, 2 threads and 1 thread
beside a busy core. Targets (the scale-and-deploy issue): the student's FID at most 1.3x the teacher's
DPM-Solver++ 20-step FID, at least 4x its sampling speed.

Section `text`: the default text model trained on tiny Shakespeare is the teacher; a student of half its width
and depth is distilled on its soft targets, and the same student architecture trained from scratch, each given the
same minutes for its whole call (the distillation's: reading the teacher's targets once, training, writing the
run), one after the other on the same core, once per seed. Held-out loss (nats per token, the same windows from
the end of the corpus for all). Target: the distilled student's held-out loss below the scratch student's.

Usage: .venv/bin/python benchmarks/distill.py --only diffusion    (some 17 minutes)
       .venv/bin/python benchmarks/distill.py --only text         (some 5 + 2 x 2 x --student-minutes minutes)
Training runs on one thread pinned to core 1.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import replace
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genloom as gl
from images import Scorer, split
from shared_parts import THREAD_SETTINGS, all_numbers, log, results_arguments, thread_setting, write_section

RESULTS = Path(__file__).parent / "results" / "distill.md"
TITLE = "Distilled students (genloom distill)"
SAMPLES, SEED = 1000, 0
FID_RATIO, SPEEDUP = 1.3, 4.0
WINDOWS = 200  # held-out windows of text scored


def sample_seconds(model: gl.Model, **options) -> float:
    started = time.perf_counter()
    model.sample(SAMPLES, seed=SEED, progress=False, **options)
    return time.perf_counter() - started


def trailing(model: gl.Model) -> gl.Model:
    """The model sampling DDIM on the trailing grid (from the noisiest step), as its student does."""
    copy = gl.Model("diffusion")
    copy.config, copy.codec, copy.net = replace(model.config, timestep_spacing="trailing"), model.codec, model.net
    copy.ema_net = type(model.ema_net)(model.ema_net.layout, copy.config)
    copy.ema_net.load_state_dict(model.ema_net.state_dict())
    copy.record = model.record
    return copy


def diffusion_section(args: argparse.Namespace, runs: Path) -> list[str]:
    train, test = split(gl.load_data("digits"))
    scorer = Scorer(train, test)
    if args.teacher:
        teacher = gl.load(args.teacher)
    else:
        log(f"teacher: training for {args.teacher_minutes:g} minutes")
        teacher = gl.Model("diffusion").fit(train, minutes=args.teacher_minutes, out=runs / "teacher",
                                            progress=False, threads=1, device="cpu")
    log(f"student: distilling for {args.distill_minutes:g} minutes")
    student = teacher.distill(train, out=runs / "student", minutes=args.distill_minutes, steps=4, progress=False,
                              threads=1, device="cpu")
    rows = {"teacher, DPM-Solver++ 20 steps": (teacher, {}),
            "teacher, DPM-Solver++ 4 steps": (teacher, {"steps": 4}),
            "teacher, DDIM 4 steps": (teacher, {"sampler": "ddim", "steps": 4}),
            "teacher, DDIM 4 steps (trailing)": (trailing(teacher), {"sampler": "ddim", "steps": 4}),
            "student, DDIM 4 steps (trailing)": (student, {})}
    scores = {}
    for label, (model, options) in rows.items():
        scores[label] = scorer.score(model.sample(SAMPLES, seed=SEED, progress=False, **options))["fid"]
        log(f"{label}: FID {scores[label]:.2f}")
    timings = []
    for setting in THREAD_SETTINGS:
        with thread_setting(setting):
            for repeat in range(args.repeats):
                teacher_s, student_s = sample_seconds(teacher), sample_seconds(student)
                timings.append({"setting": setting, "repeat": repeat + 1, "teacher_s": teacher_s,
                                "student_s": student_s, "speedup": teacher_s / student_s})
                log(f"{setting}: teacher {teacher_s:.2f} s, student {student_s:.2f} s")
    taught = student.record["distilled_from"]
    reference = scores["teacher, DPM-Solver++ 20 steps"]
    student_fid = scores["student, DDIM 4 steps (trailing)"]
    lines = ["## Diffusion: a 4-step student of the digits model", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')}; teacher: {teacher.record['steps_trained']} steps "
             f"({teacher.record['train_seconds']:.0f} s, 1 thread); student: {taught['method']}, "
             f"{taught['teacher_steps']} -> {taught['steps']} steps in {taught['stages']} stages, "
             f"{student.record['steps_trained']} steps ({student.record['train_seconds']:.0f} s, 1 thread). FID of "
             f"{SAMPLES} samples (seed {SEED}) against the test split in images.py's feature net.", "",
             "| sampler | FID | x the teacher's 20-step FID |", "| --- | --- | --- |",
             *[f"| {label} | {fid:.2f} | {fid / reference:.2f} |" for label, fid in scores.items()], "",
             f"Seconds to sample {SAMPLES} images, the teacher (20 steps) and the student (4) in turn:", "",
             "| setting | repeat | teacher s | student s | speed-up |", "| --- | --- | --- | --- | --- |",
             *[f"| {t['setting']} | {t['repeat']} | {t['teacher_s']:.2f} | {t['student_s']:.2f} | "
               f"{t['speedup']:.2f}x |" for t in timings], "",
             f"- student FID <= {FID_RATIO}x the teacher's DPM-Solver++ 20-step FID: "
             f"{'met' if student_fid <= FID_RATIO * reference else 'NOT met'} ({student_fid / reference:.2f}x)",
             f"- sampling >= {SPEEDUP:g}x faster in every setting: "
             f"{'met' if min(t['speedup'] for t in timings) >= SPEEDUP else 'NOT met'} "
             f"(least {min(t['speedup'] for t in timings):.2f}x)", ""]
    return lines + all_numbers([{"fid": scores, "timings": timings, "distilled_from": taught}])


def held_out_windows(model: gl.Model) -> torch.Tensor:
    """WINDOWS windows of the model's context from the last tenth of the corpus (its held-out tail)."""
    text = gl.load_data("shakespeare").values
    tokens = model.codec.encode(text[-len(text) // 10:])
    window = model.ema_net.context_length + 1
    return torch.stack([tokens[i * window:(i + 1) * window] for i in range(min(WINDOWS, len(tokens) // window))])


def held_out_loss(model: gl.Model, windows: torch.Tensor) -> float:
    with torch.no_grad():
        return -model.ema_net.log_prob(windows).mean().item() / (windows.shape[1] - 1)


def text_section(args: argparse.Namespace, runs: Path) -> list[str]:
    if args.text_teacher:
        teacher = gl.Model.load(args.text_teacher)
    else:
        log(f"text teacher: training for {args.text_teacher_minutes:g} minutes")
        teacher = gl.Model("autoregressive").fit("shakespeare", minutes=args.text_teacher_minutes, out=runs / "text",
                                                 progress=False, threads=1, device="cpu")
    kd_options = {name: value for name, value in (("temperature", args.temperature), ("soft_weight", args.soft_weight))
                  if value is not None}
    windows = held_out_windows(teacher)
    results = []
    for seed in range(args.repeats):
        started = time.perf_counter()
        distilled = teacher.distill(out=runs / f"kd-{seed}", minutes=args.student_minutes, seed=seed,
                                    progress=False, threads=1, device="cpu", **kd_options)
        wall = time.perf_counter() - started  # reading the teacher, training, writing the run
        config = distilled.config
        scratch = gl.Model("autoregressive", n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd)
        started = time.perf_counter()
        scratch.fit("shakespeare", minutes=args.student_minutes, seed=seed, out=runs / f"scratch-{seed}",
                    progress=False, threads=1, device="cpu")
        scratch_wall = time.perf_counter() - started
        text = gl.load_data("shakespeare").values[-5000:]
        if not np.array_equal(scratch.codec.encode(text).numpy(), teacher.codec.encode(text).numpy()):
            raise SystemExit("the scratch student's tokens differ from the teacher's: the losses would not compare")
        row = {"seed": seed, "distilled": held_out_loss(distilled, windows), "scratch": held_out_loss(scratch, windows),
               "distilled_steps": distilled.record["steps_trained"], "scratch_steps": scratch.record["steps_trained"],
               "distilled_s": distilled.record["train_seconds"], "scratch_s": scratch.record["train_seconds"],
               "distilled_wall_s": wall, "scratch_wall_s": scratch_wall}
        results.append(row)
        log(f"seed {seed}: distilled {row['distilled']:.4f}, scratch {row['scratch']:.4f}")
    teacher_loss = held_out_loss(teacher, windows)
    parameters = distilled.record["distilled_from"]
    met = all(row["distilled"] < row["scratch"] for row in results)
    lines = ["## Text: knowledge distillation into a smaller transformer", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')}; teacher: the default text model, "
             f"{teacher.record['steps_trained']} steps ({teacher.record['train_seconds']:.0f} s, 1 thread), "
             f"{parameters['teacher_parameters']:,} parameters, held-out loss {teacher_loss:.4f}; students: n_layer "
             f"{config.n_layer}, n_head {config.n_head}, n_embd {config.n_embd} ({parameters['parameters']:,} "
             f"parameters) on 1 thread, each {args.student_minutes:g} minutes for its whole call (the distilled one's "
             f"reading the teacher's targets once, training and writing its run); distilled at temperature "
             f"{parameters['temperature']:g}, soft weight {parameters['soft_weight']:g}. "
             f"Held-out loss over {len(windows)} windows of {windows.shape[1] - 1} tokens from the corpus's last "
             "tenth.", "",
             "| seed | distilled loss | scratch loss | distilled steps (training s, wall s) | scratch steps (s, s) |",
             "| --- | --- | --- | --- | --- |",
             *[f"| {r['seed']} | {r['distilled']:.4f} | {r['scratch']:.4f} | {r['distilled_steps']} "
               f"({r['distilled_s']:.0f}, {r['distilled_wall_s']:.0f}) | {r['scratch_steps']} ({r['scratch_s']:.0f}, "
               f"{r['scratch_wall_s']:.0f}) |" for r in results], "",
             f"- the distilled student's held-out loss below the scratch student's, every seed: "
             f"{'met' if met else 'NOT met'} (mean {statistics.mean(r['distilled'] for r in results):.4f} against "
             f"{statistics.mean(r['scratch'] for r in results):.4f})", ""]
    return lines + all_numbers(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "seconds-long budgets")
    parser.add_argument("--only", choices=["diffusion", "text"], required=True)
    parser.add_argument("--teacher", help="diffusion: a digits run to reuse as the teacher (trained on images.py's "
                                          "train split)")
    parser.add_argument("--teacher-minutes", type=float, default=5.0)
    parser.add_argument("--distill-minutes", type=float, default=6.0)
    parser.add_argument("--text-teacher-minutes", type=float, default=5.0)
    parser.add_argument("--text-teacher", help="text: a shakespeare run to reuse as the teacher")
    parser.add_argument("--student-minutes", type=float, default=5.0)
    parser.add_argument("--temperature", type=float, help="text: the distillation's temperature (default: genloom's)")
    parser.add_argument("--soft-weight", type=float, help="text: the soft targets' share (default: genloom's)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.teacher_minutes = args.distill_minutes = args.text_teacher_minutes = args.student_minutes = 0.1
        args.repeats = 1
    os.sched_setaffinity(0, {1})
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        section = diffusion_section if args.only == "diffusion" else text_section
        lines = section(args, Path(folder))
    write_section(args.out, args.section if args.section != "main" else args.only, TITLE, lines)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
