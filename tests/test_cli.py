"""The `genloom` command, run as a user would: in a subprocess, checking output and exit codes (refusals, which stop
before any work, run in this process)."""
import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import genloom as gl
from genloom.cli import main
from tests.conftest import QUIET, TINY_VAE, write_images

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def genloom(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "genloom.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=ENV, timeout=240)


def in_process(*args):
    """The command run in this process (no interpreter start): for the refusals, which end before any work."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_user_error(result, message):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genloom: error: "), result.stderr
    assert message in lines[0], lines[0]


def test_train_info_sample(tmp_path):
    out = tmp_path / "run"
    trained = genloom("train", "digits", "--family", "vae", "--steps", 20, "--out", out, "--batch-size", 32,
                      "--latent-dim", 4, "--width", 8, "--conditional", "--device", "cpu", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "trained vae on digits for 20 steps" in trained.stdout and "final: elbo" in trained.stdout
    assert json.loads((out / "config.json").read_text())["family_options"]["latent_dim"] == 4

    info = genloom("info", out)
    assert info.returncode == 0 and re.search(r"family\s+vae", info.stdout)
    assert re.search(r"steps trained\s+20\n", info.stdout) and "model.safetensors" in info.stdout
    assert json.loads(genloom("info", out, "--json").stdout)["steps_trained"] == 20

    sampled = genloom("sample", out, "-n", 9, "-o", tmp_path / "grid.png", "--labels", "3", "--seed", 1)
    assert sampled.returncode == 0, sampled.stderr
    assert Image.open(tmp_path / "grid.png").size[0] > 8 * 3
    genloom("sample", out, "-n", 5, "-o", tmp_path / "a.npy", "--seed", 2)
    genloom("sample", out, "-n", 5, "-o", tmp_path / "b.npy", "--seed", 2)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_train_sample_and_evaluate_molecules(tmp_path, molecule_run):
    out = tmp_path / "moses-gpt"
    trained = genloom("train", "moses", "--family", "autoregressive", "--steps", 2, "--batch-size", 8, "--n-layer",
                      1, "--n-embd", 16, "--out", out, "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "trained autoregressive on moses for 2 steps" in trained.stdout
    assert json.loads((out / "codec.json").read_text())["tokenizer"] == "smiles"
    assert Image.open(out / "samples" / "final.png").size == (8 * 200, 6 * 200)  # 48 molecules drawn

    sampled = genloom("sample", molecule_run, "-n", 5, "--seed", 3, cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    assert len((tmp_path / "samples.smi").read_text().splitlines()) == 5  # SMILES, one a line, by default
    free = genloom("sample", molecule_run, "-n", 5, "--seed", 3, "--no-grammar", "-o", "free.smi", cwd=tmp_path)
    assert free.returncode == 0, free.stderr
    assert (tmp_path / "free.smi").read_text() == "\n".join(
        gl.load(molecule_run).sample(5, seed=3, progress=False, grammar=False)) + "\n"


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["info"]])
def test_help(command):
    result = genloom(*command, "--help")
    assert result.returncode == 0 and "usage: genloom" in result.stdout


def test_help_lists_options():
    text = genloom("train", "--help").stdout
    for flag in ("--minutes", "--steps", "--epochs", "--resume", "--device", "--beta", "--latent-dim", "--lr"):
        assert flag in text


def _bad_folder(tmp_path, kind):
    folder = tmp_path / kind
    if kind == "empty":
        folder.mkdir()
    elif kind == "corrupt":
        write_images(folder, [(8, 8)] * 2)
        (folder / "x.png").write_bytes(b"garbage")
    elif kind == "sizes":
        write_images(folder, [(8, 8), (9, 9)])
    return folder


@pytest.mark.parametrize("args, message", [
    (lambda p: [_bad_folder(p, "empty")], "no images found"),
    (lambda p: [_bad_folder(p, "corrupt")], "x.png is not a readable image"),
    (lambda p: [_bad_folder(p, "sizes")], "images differ in size"),
    (lambda p: ["cifar"], "built-in ones: adult, breast_cancer, diabetes, digits"),
    (lambda p: [p / "missing.npz"], "no file, folder or built-in data set named"),
    (lambda p: ["digits", "--minutes", 0], "minutes must be greater than 0"),
    (lambda p: ["digits", "--minutes", -2], "minutes must be greater than 0"),
    (lambda p: ["digits", "--device", "cuda"] if not _has_cuda() else ["digits", "--device", "tpu"], "device"),
    (lambda p: ["digits", "--conditional", "--image-size", "0"], "image size 0 is impossible"),
    (lambda p: [_unlabelled(p), "--family", "gan", "--conditional"], "conditional gan needs labelled data"),
    (lambda p: ["digits", "--family", "diffusion", "--image-size", "7", "--depth", "1"],
     "the U-Net cannot halve 7x7 images 1 time(s)"),
    (lambda p: ["digits", "--family", "autoregressive", "--levels", "1"], "levels (K) must be a power of 2"),
    (lambda p: ["shakespeare", "--family", "autoregressive", "--optimizer", "sgd"],
     "argument --optimizer: invalid choice: 'sgd' (choose from 'adamw', 'muon')"),
    (lambda p: ["digits", "--family", "gan", "--loss", "hinge"], "invalid choice: 'hinge' (choose from 'non-saturating', 'wasserstein-gp')"),
])
def test_train_bad_input(tmp_path, args, message):
    out = tmp_path / "run"
    assert_user_error(in_process("train", *args(tmp_path), "--out", out, "--steps", 1, "--quiet"), message)
    assert not out.exists()


def _unlabelled(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((10, 8, 8), dtype=np.uint8))
    return tmp_path / "images.npy"


def _has_cuda():
    import torch
    return torch.cuda.is_available()


def test_sample_bad_input(tmp_path):
    assert_user_error(in_process("sample", tmp_path), "is not a genloom run (no config.json)")
    assert_user_error(in_process("info", tmp_path / "nope"), "is not a folder")


def test_sample_count_and_labels_errors(trained_run, tmp_path):
    assert_user_error(in_process("sample", trained_run, "-n", 0, "-o", tmp_path / "g.png"), "n must be a whole number")
    assert_user_error(in_process("sample", trained_run, "--labels", "eleven", "-o", tmp_path / "g.png"),
                      "unknown label 'eleven'")
    assert not (tmp_path / "g.png").exists()


def test_diffusion_train_and_sample_with_each_sampler(tmp_path):
    out = tmp_path / "run"
    trained = genloom("train", "digits", "--family", "diffusion", "--steps", 3, "--out", out, "--width", 8,
                      "--timesteps", 50, "--conditional", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "trained diffusion on digits for 3 steps" in trained.stdout and "denoising_loss" in trained.stdout
    for options in (["--sampler", "ddpm"], ["--sampler", "ddim", "--steps", 10, "--eta", 0.5],
                    ["--steps", 5, "--guidance", 3, "--labels", 1, 2]):
        sampled = genloom("sample", out, "-n", 2, "-o", tmp_path / "s.npy", *options)
        assert sampled.returncode == 0, sampled.stderr
        assert np.load(tmp_path / "s.npy").shape == (2, 8, 8, 1)
    assert_user_error(in_process("sample", out, "--sampler", "ddim", "--steps", 51, "-o", tmp_path / "x.png"),
                      "sampler steps must lie in 1..50; got 51")
    assert_user_error(in_process("sample", out, "--temperature", 0.5, "-o", tmp_path / "x.png"),
                      "unknown sampling option 'temperature' for family 'diffusion'")
    assert not (tmp_path / "x.png").exists()


def test_guidance_needs_a_conditional_model(tmp_path):
    out = tmp_path / "run"
    genloom("train", "digits", "--family", "diffusion", "--steps", 1, "--out", out, "--width", 8, "--quiet")
    assert_user_error(in_process("sample", out, "--guidance", 2, "-o", tmp_path / "x.png"),
                      "guidance needs a conditional model")


def test_sampling_options_need_a_family_that_takes_them(trained_run, tmp_path):
    assert_user_error(in_process("sample", trained_run, "--sampler", "ddim", "-o", tmp_path / "x.png"),
                      "family 'vae' takes no sampling options")


def test_resume_needs_out():
    assert_user_error(in_process("train", "--resume"), "--resume needs --out")


def test_text_train_generate_evaluate(tmp_path):
    out = tmp_path / "gpt"
    trained = genloom("train", "shakespeare", "--family", "autoregressive", "--steps", 30, "--n-layer", 1,
                      "--n-embd", 32, "--block-size", 32, "--tokenizer", "bpe", "--vocab-size", 300, "--out", out,
                      "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert "final: val_loss" in trained.stdout and (out / "tokenizer.json").exists()
    generated = genloom("generate", out, "--prompt", "ROMEO:", "--max-tokens", 20, "--temperature", 0.8,
                        "--top-k", 40, "--top-p", 0.9, "--repetition-penalty", 1.1, "--seed", 3)
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.startswith("ROMEO:") and len(generated.stdout) > len("ROMEO:") + 5
    again = genloom("generate", out, "--prompt", "ROMEO:", "--max-tokens", 20, "--temperature", 0.8,
                    "--top-k", 40, "--top-p", 0.9, "--repetition-penalty", 1.1, "--seed", 3, "--no-cache")
    assert again.stdout == generated.stdout
    evaluated = genloom("evaluate", out, "--samples", 3)
    assert evaluated.returncode == 0 and re.search(r"perplexity\s+\d", evaluated.stdout), evaluated.stderr


def test_generate_streams_tokens_as_they_come(text_run):
    process = subprocess.Popen([sys.executable, "-m", "genloom.cli", "generate", text_run, "--max-tokens", "2000"],
                               stdout=subprocess.PIPE, env=ENV)
    first = process.stdout.read(20)  # arrives long before the 2,000 tokens are done
    still_running = process.poll() is None
    process.kill()
    process.wait()
    assert len(first) == 20 and still_running


def test_a_watermarked_generation_is_found_by_its_key_only(text_run, tmp_path, capsys):
    from genloom.cli import main

    assert main(["generate", text_run, "--max-tokens", "200", "--watermark-key", "k1"]) == 0
    (tmp_path / "marked.txt").write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["generate", text_run, "--max-tokens", "200"]) == 0
    (tmp_path / "plain.txt").write_text(capsys.readouterr().out, encoding="utf-8")
    for name, key, verdict in [("marked", "k1", "watermarked: z = "), ("marked", "k2", "not watermarked: z = "),
                               ("plain", "k1", "not watermarked: z = ")]:
        assert main(["detect-watermark", str(tmp_path / f"{name}.txt"), "--key", key, "--run", text_run]) == 0
        assert capsys.readouterr().out.startswith(verdict)


def test_watermark_input_errors_are_one_line(text_run, tmp_path, capsys):
    from genloom.cli import main

    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    for args, message in [
        (["generate", text_run, "--watermark-key", ""], "the watermark key is empty"),
        (["detect-watermark", str(tmp_path / "binary.txt"), "--key", "k", "--run", text_run], "is not UTF-8 text"),
        (["detect-watermark", str(tmp_path / "none.txt"), "--key", "k", "--run", text_run], "does not exist"),
    ]:
        assert main(args) == 2
        error = capsys.readouterr().err
        assert error.startswith("genloom: error: ") and message in error and error.count("\n") == 1


@pytest.fixture(scope="module")
def run64(tmp_path_factory) -> str:
    """A tiny VAE on 64x64 pictures: big enough to carry the image watermark."""
    import genloom as gl

    folder = tmp_path_factory.mktemp("pictures")
    write_images(folder, [(64, 64)] * 8)
    out = tmp_path_factory.mktemp("runs") / "pictures-vae"
    gl.Model("vae", **TINY_VAE).fit(str(folder), steps=2, out=out, batch_size=4, **QUIET)
    return str(out)


def test_sampled_images_carry_the_runs_watermark_unless_asked_not_to(run64, tmp_path, capsys):
    import genloom as gl
    from genloom.cli import main

    assert main(["sample", run64, "-n", "3", "-o", str(tmp_path / "grid.png"), "--quiet"]) == 0
    assert main(["sample", run64, "-n", "3", "-o", str(tmp_path / "plain.png"), "--quiet", "--no-watermark"]) == 0
    assert main(["sample", run64, "-n", "3", "-o", str(tmp_path / "folder"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["detect-watermark", str(tmp_path / "grid.png"), "--run", run64]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(f"image {i}: watermarked" in lines[i] and f"image {i}; the tag of run" in lines[i]
               for i in range(3)) and lines[3] == "3 of 3 images watermarked"
    assert main(["detect-watermark", str(tmp_path / "plain.png")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 of 3 images watermarked"
    # one image of a folder, saved as a JPEG: still found, with its index; sample() marks what sample_to does
    image = Image.open(tmp_path / "folder" / "000002.png")
    image.convert("RGB").save(tmp_path / "copy.jpg", quality=75)
    assert main(["detect-watermark", str(tmp_path / "copy.jpg"), "--run", str(tmp_path / "other-run")]) == 0
    assert "image 2; not the tag of run other-run" in capsys.readouterr().out
    assert np.array_equal(gl.load(run64).sample(3, seed=0, progress=False)[2], np.asarray(image))


def test_image_watermark_errors_are_one_line(run64, trained_run, tmp_path, capsys):
    from genloom.cli import main

    (tmp_path / "story.txt").write_text("once upon a time", encoding="utf-8")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "tiny.png")
    for args, message in [
        (["sample", trained_run, "-n", "2", "-o", str(tmp_path / "d.png"), "--watermark"], "too small to watermark"),
        (["detect-watermark", str(tmp_path / "story.txt")], "give --key KEY --run RUN"),
        (["detect-watermark", str(tmp_path / "tiny.png")], "too small to carry a watermark"),
        (["detect-watermark", str(tmp_path / "tiny.png"), "--key", "k"], "--key is for text"),
    ]:
        assert main(args) == 2
        error = capsys.readouterr().err
        assert error.startswith("genloom: error: ") and message in error and error.count("\n") == 1


def test_generate_prints_what_the_api_returns(text_run):
    import genloom as gl
    expected = gl.load(text_run).generate("ROMEO:", max_tokens=60, temperature=0.8, seed=3, stop=["\n\n", "e t"])
    result = genloom("generate", text_run, "--prompt", "ROMEO:", "--max-tokens", 60, "--temperature", 0.8,
                     "--seed", 3, "--stop", "\n\n", "--stop", "e t")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ROMEO:" + expected + "\n"


def test_finetune_command(text_run, tmp_path):
    corpus = tmp_path / "new.txt"
    corpus.write_text(gl_text()[:20_000])
    result = genloom("finetune", text_run, corpus, "--out", tmp_path / "lora", "--steps", 5, "--rank", 2, "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "lora" / "adapter.safetensors").exists()
    assert genloom("generate", tmp_path / "lora", "--max-tokens", 5).returncode == 0


def test_finetune_by_preferences_and_toward_a_molecule_property(text_run, molecule_run, tmp_path):
    pairs = tmp_path / "prefs.jsonl"
    pairs.write_text('{"prompt": "ROMEO:", "chosen": " Good night", "rejected": " qz"}\n' * 8, encoding="utf-8")
    tuned = in_process("finetune", text_run, pairs, "--objective", "dpo", "--out", tmp_path / "dpo", "--steps", 2,
                       "--quiet")
    assert tuned.returncode == 0, tuned.stderr
    assert "by DPO on 8 preference pairs" in tuned.stdout
    toward = in_process("finetune", molecule_run, "--reward", "QED", "--pairs", 100, "--steps", 2, "--objective",
                        "dpo", "--out", tmp_path / "qed", "--quiet")
    assert toward.returncode == 0, toward.stderr
    assert json.loads((tmp_path / "qed" / "adapter.json").read_text())["objective"] == "dpo"


def test_finetune_by_ppo_on_preferences_and_toward_a_molecule_property(text_run, molecule_run, tmp_path):
    pairs = tmp_path / "prefs.jsonl"
    pairs.write_text('{"prompt": "ROMEO:", "chosen": " Good night", "rejected": " qz"}\n' * 8, encoding="utf-8")
    tuned = in_process("finetune", text_run, pairs, "--objective", "ppo", "--out", tmp_path / "ppo", "--steps", 5,
                       "--rounds", 2, "--rollouts", 8, "--response-tokens", 8, "--quiet")
    assert tuned.returncode == 0, tuned.stderr
    assert "by PPO toward a reward model learnt from 8 preference pairs (2 rounds; last round's mean reward" in \
        tuned.stdout
    assert json.loads((tmp_path / "ppo" / "adapter.json").read_text())["ppo"]["rollouts"] == 8
    toward = in_process("finetune", molecule_run, "--reward", "QED", "--rounds", 2, "--rollouts", 8, "--out",
                        tmp_path / "qed", "--quiet")
    assert toward.returncode == 0, toward.stderr
    assert "by PPO toward QED (2 rounds" in toward.stdout


def gl_text():
    import genloom as gl
    return gl.load_data("shakespeare").values


@pytest.mark.parametrize("args, message", [
    (["--prompt", "ROMEO\u20ac"], "characters not in the model's vocabulary: '\u20ac'"),
    (["--max-tokens", 0], "max_tokens must be a whole number of at least 1"),
    (["--temperature", -1], "temperature must be at least 0; got -1.0"),
    (["--top-p", 0], "top_p must lie in (0, 1]"),
    (["--top-p", 1.2], "top_p must lie in (0, 1]"),
])
def test_generate_bad_input(text_run, args, message):
    assert_user_error(in_process("generate", text_run, *args), message)


def test_generate_needs_a_text_model(trained_run):
    assert_user_error(in_process("generate", trained_run), "family 'vae' has no generate")


@pytest.mark.parametrize("content, extra, message", [
    (b"", [], "holds no text"),
    (b"too short", [], "not more than one block"),
    (b"caf\xc3\xa9 \xff bytes", [], "byte 0xff at offset 6"),
])
def test_train_text_bad_input(tmp_path, content, extra, message):
    (tmp_path / "c.txt").write_bytes(content)
    out = tmp_path / "run"
    result = genloom("train", tmp_path / "c.txt", "--family", "autoregressive", "--steps", 1, "--out", out, *extra)
    assert_user_error(result, message)
    assert not out.exists()


def test_errors_replace_reads_bad_bytes(tmp_path):
    (tmp_path / "c.txt").write_bytes(("some text " * 200).encode() + b"\xff")
    result = genloom("train", tmp_path / "c.txt", "--family", "autoregressive", "--steps", 2, "--n-layer", 1,
                     "--n-embd", 16, "--block-size", 16, "--errors", "replace", "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr


def test_evaluate_with_a_missing_inception_file(trained_run, tmp_path):
    assert_user_error(in_process("evaluate", trained_run, "--inception-weights", tmp_path / "nope.pth"), "nope.pth")


def test_a_table_trains_and_samples_to_csv(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({"kind": rng.choice(["a", "b"], 200), "value": rng.normal(0, 1, 200),
                  "side": rng.choice(["left", "right"], 200), "shade": rng.choice(["dark", "light"], 200)}
                 ).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "run"
    trained = genloom("train", tmp_path / "t.csv", "--family", "vae", "--steps", 5, "--target", "kind", "--out", out,
                      "--quiet")
    assert trained.returncode == 0, trained.stderr
    evaluated = genloom("evaluate", out, "--protected", "side", "--protected", "shade")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "quality" in evaluated.stdout and "utility_synthetic" in evaluated.stdout
    assert "membership_auc_domias" in evaluated.stdout
    figures = json.loads((out / "config.json").read_text())["figures"]
    assert "evaluation/columns.png" in figures and "evaluation/membership.png" in figures
    card, page = (out / "MODEL_CARD.md").read_text(), (out / "report.html").read_text()
    for score in ("membership_auc_distance", "membership_auc_domias", "parity_difference_side_synthetic",
                  "equalized_odds_difference_shade_real"):  # the privacy and fairness figures, in both
        assert score in card and score in page
    # the loss curve and the four evaluation figures
    assert page.count("data:image/svg+xml") == 1 and page.count("data:image/png") >= 4
    sampled = genloom("sample", out, "-n", 7, cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    rows = pd.read_csv(tmp_path / "samples.csv")
    assert rows.shape == (7, 4) and set(rows["kind"]) <= {"a", "b"}
    conditioned = genloom("sample", out, "-n", 5, "--condition", "kind=b", "-o", tmp_path / "b.csv")
    assert conditioned.returncode == 0, conditioned.stderr
    assert (pd.read_csv(tmp_path / "b.csv")["kind"] == "b").all()  # bad conditions: tests/test_catalogue.py


def test_every_option_says_what_it_does_and_lists_its_choices():
    from genloom.cli import build_parser
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command").choices
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"genloom {name} {action.option_strings or action.dest} has no help"
    text = genloom("train", "--help").stdout
    assert "{adamw,muon}" in text and "{linear,cosine}" in text and "{non-saturating,wasserstein-gp}" in text


def test_help_starts_without_torch():
    """The command's start-up imports nothing heavy: --help is answered before torch would have loaded."""
    code = "import sys; from genloom.cli import main; main(['train', '--help'])"
    result = subprocess.run([sys.executable, "-c", code + "; print('torch' in sys.modules, file=sys.stderr)"],
                            capture_output=True, text=True)
    assert "usage: genloom train" in result.stdout and result.stderr.strip().endswith("False")


def test_a_table_with_a_quarter_minute_gets_a_family_chosen_and_is_done_within_it(tmp_path):
    """The README's command (with a quarter of its minute), on a table the package does not ship, timed as the user
    times it."""
    penguins = Path(__file__).resolve().parents[2] / "shared" / "data" / "tables" / "penguins.csv"
    started = time.perf_counter()
    trained = genloom("train", penguins, "--target", "species", "--minutes", 0.25, "--out", tmp_path / "run",
                      "--quiet")
    seconds = time.perf_counter() - started
    assert trained.returncode == 0, trained.stderr
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["family_choice"]["family"] == record["family"] == "autoregressive"  # 15 s: ~75 passes
    assert "family auto: autoregressive (344 rows and about" in trained.stdout
    assert seconds <= 15 * 1.05 and record["fit_seconds"] <= 15


def test_serve_refuses_a_port_in_use(trained_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = genloom("serve", trained_run, "--port", taken.getsockname()[1])
    assert result.returncode == 2 and result.stderr.startswith("genloom: error: cannot listen on 127.0.0.1:")


def test_serve_answers_until_stopped(trained_run):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "genloom.cli", "serve", trained_run, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert "serving 1 run (digits-vae) on http://127.0.0.1:" in server.stdout.readline()
        deadline, answer = time.time() + 30, None
        while answer is None and time.time() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/runs", timeout=5).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert [run["name"] for run in answer["runs"]] == ["digits-vae"]
    finally:
        server.terminate()
        server.wait(10)


def test_interpolate_writes_a_strip_and_edit_writes_moved_examples(trained_run, tmp_path):
    strip = tmp_path / "strip.png"
    result = genloom("interpolate", trained_run, "--from", "seed:0", "--to", "5", "--data", "digits", "--label", "7",
                     "--steps", "6", "-o", strip)
    assert result.returncode == 0, result.stderr
    width, height = Image.open(strip).size
    assert width > 4 * height  # six tiles in one row
    edited = tmp_path / "edited.npy"
    result = genloom("edit", trained_run, "--data", "digits", "--from-label", "1", "--to-label", "7", "--index", "1",
                     "11", "--scale", "0.5", "-o", edited)
    assert result.returncode == 0, result.stderr
    assert np.load(edited).shape == (2, 8, 8, 1) and "wrote 2 examples moved 0.5x from 1 toward 7" in result.stdout


def test_anomaly_fit_then_score_flags_rows_in_their_order(tmp_path):
    data = np.load(Path(__file__).resolve().parents[2] / "shared" / "data" / "anomaly" / "thyroid.npz")
    x, y = data["x"], data["y"].ravel()
    columns = [f"f{i}" for i in range(x.shape[1])]
    pd.DataFrame(x[y == 0][:1500], columns=columns).to_csv(tmp_path / "normal.csv", index=False)
    new = np.concatenate([x[y == 0][1500:1600], x[y == 1][:20]])
    pd.DataFrame(new, columns=columns).to_csv(tmp_path / "new.csv", index=False)
    fit = genloom("anomaly", "fit", tmp_path / "normal.csv", "--steps", "150", "--contamination", "0.05",
                  "--out", tmp_path / "run")
    assert fit.returncode == 0, fit.stderr
    scored = genloom("anomaly", "score", tmp_path / "run", tmp_path / "new.csv", "-o", tmp_path / "scores.csv")
    assert scored.returncode == 0, scored.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["row", "score", "anomaly"] and list(scores.row) == list(range(120))
    assert scores.anomaly[100:].mean() > 3 * scores.anomaly[:100].mean()  # the last 20 rows are the anomalies


def test_interpolate_a_diffusion_run_between_examples(tmp_path):
    run = tmp_path / "diffusion"
    trained = genloom("train", "digits", "--family", "diffusion", "--steps", 3, "--out", run, "--width", 8, "--quiet")
    assert trained.returncode == 0, trained.stderr
    strip = tmp_path / "strip.npy"
    result = genloom("interpolate", run, "--from", "0", "--to", "seed:1", "--data", "digits", "--steps", "3",
                     "-o", strip)
    assert result.returncode == 0, result.stderr
    assert np.load(strip).shape == (3, 8, 8, 1)


def test_train_with_a_property_then_optimize_writes_designed_rows(tmp_path):
    run = tmp_path / "run"
    trained = genloom("train", "diabetes", "--family", "vae", "--property", "target", "--steps", "300", "--quiet",
                      "--out", run)
    assert trained.returncode == 0, trained.stderr
    designed = {}
    for way in ("--maximize", "--minimize"):
        output = tmp_path / f"{way[2:]}.csv"
        result = genloom("optimize", run, way, "target", "-n", "6", "-o", output)
        assert result.returncode == 0, result.stderr
        assert re.search(rf"designed 6 rows toward a {'higher' if way == '--maximize' else 'lower'} 'target'", result.stdout)
        designed[way] = pd.read_csv(output)
    assert list(designed["--maximize"].columns) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
                                                    "target"]
    assert designed["--maximize"]["target"].is_monotonic_decreasing
    # body mass index rises with disease progression in this data: designs toward it move bmi the same way
    assert designed["--maximize"]["bmi"].mean() > designed["--minimize"]["bmi"].mean()
    assert designed["--maximize"]["target"].mean() > designed["--minimize"]["target"].mean()


def test_augment_writes_the_balanced_table_and_says_how_made_rows_are_marked(tmp_path):
    rng = np.random.default_rng(0)
    label = np.array(["common"] * 90 + ["rare"] * 10)
    pd.DataFrame({"size": np.where(label == "rare", 5.0, 0.0) + rng.normal(0, 1, 100), "label": label}).to_csv(
        tmp_path / "t.csv", index=False)
    result = genloom("augment", tmp_path / "t.csv", "--target", "label", "--balance", "--family", "vae", "--steps", "30",
                     "--quiet", "-o", tmp_path / "a.csv")
    assert result.returncode == 0, result.stderr
    assert "added 80 of rare; 180 examples in all; written to" in result.stdout
    assert "(the column 'synthetic' marks the rows made: drop it to use them alike)" in result.stdout
    written = pd.read_csv(tmp_path / "a.csv")
    assert (written["label"].value_counts() == 90).all() and written["synthetic"].sum() == 80


def test_augment_without_a_ratio_checks_how_many_to_add_on_held_out_rows(tmp_path):
    rng = np.random.default_rng(0)
    label = np.array(["common"] * 90 + ["rare"] * 10)
    pd.DataFrame({"size": np.where(label == "rare", 5.0, 0.0) + rng.normal(0, 1, 100), "label": label}).to_csv(
        tmp_path / "t.csv", index=False)
    result = in_process("augment", tmp_path / "t.csv", "--target", "label", "--family", "vae", "--steps", "30",
                        "--quiet", "-o", tmp_path / "a.csv")
    assert result.returncode == 0, result.stderr
    assert re.search(r"(did best on|did alike on|told no amount from another).*; the model learnt from the other "
                     r"three quarters", result.stdout), result.stdout
    added = re.match(r"added (\d+) of rare|added nothing", result.stdout)
    written = pd.read_csv(tmp_path / "a.csv")
    assert written["synthetic"].sum() == int(added.group(1) or 0) and len(written) == 100 + int(added.group(1) or 0)
    assert "a gradient-boosted judge's rare-class AUPRC: none " in result.stdout


def test_a_molecule_vae_with_a_property_designs_molecules_into_a_table(tmp_path):
    molecules = tmp_path / "mols.smi"
    molecules.write_text("".join(f"{smiles}\n" for smiles in gl_data("moses-test")[:600]), encoding="utf-8")
    trained = in_process("train", molecules, "--family", "vae", "--property", "weight", "--width", 8, "--steps", 30,
                         "--quiet", "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    result = in_process("optimize", tmp_path / "run", "--maximize", "weight", "-n", 5, "-o", tmp_path / "d.csv")
    assert result.returncode == 0, result.stderr
    assert re.search(r"designed 5 rows toward a higher 'weight' \(RDKit's value: mean [\d.]+, best [\d.]+\)",
                     result.stdout)
    designed = pd.read_csv(tmp_path / "d.csv")
    assert list(designed.columns) == ["smiles", "weight", "weight (the model's estimate)"] and len(designed) == 5
    assert len(gl_data_read(tmp_path / "d.csv")) == 5  # a molecule table load_data reads back


def gl_data(name):
    import genloom as gl
    return gl.load_data(name).values


def gl_data_read(path):
    import genloom as gl
    return gl.load_data(path).values


def test_recordings_train_into_wav_samples_and_a_report_that_plays_them(tones, tmp_path):
    import soundfile

    out = tmp_path / "run"
    result = genloom("train", tones, "--family", "diffusion", "--width", 8, "--conditional", "--steps", 3,
                     "--mels", 16, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    wavs = sorted((out / "samples" / "final").glob("*.wav"))
    assert len(wavs) == 16 and soundfile.info(wavs[0]).samplerate == 8000
    assert (out / "samples" / "final.png").exists()
    assert (out / "report.html").read_text().count("<audio controls") == 8
    result = genloom("sample", out, "-n", 3, "--labels", "low", "-o", tmp_path / "low.wav")
    assert result.returncode == 0, result.stderr
    assert soundfile.info(tmp_path / "low.wav").frames == 3 * 2048 + 2 * 2000  # three recordings, two gaps
    resumed = genloom("train", "--resume", "--out", out, "--steps", 4, "--quiet")  # the final WAVs are replaced
    assert resumed.returncode == 0, resumed.stderr
    assert len(list((out / "samples" / "final").glob("*.wav"))) == 16


def test_a_table_trains_given_columns_and_samples_one_row_for_each_row_given(tmp_path):
    from tests.conftest import forked_transitions

    forked_transitions(400).to_csv(tmp_path / "transitions.csv", index=False)
    pd.DataFrame({"x": [0.0, 0.5, -0.5], "action": [0.0, 1.0, -1.0]}).to_csv(tmp_path / "states.csv", index=False)
    result = genloom("train", tmp_path / "transitions.csv", "--family", "diffusion", "--condition-on", "x", "action",
                     "--steps", 3, "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["family_options"]["condition_on"] == ["x",
                                                                                                          "action"]
    result = genloom("sample", tmp_path / "run", "--conditions", tmp_path / "states.csv", "-o", tmp_path / "next.csv")
    assert result.returncode == 0, result.stderr
    assert "wrote 3 samples, one for each row of" in result.stdout
    made = pd.read_csv(tmp_path / "next.csv")
    assert list(made.columns) == ["next_x"] and len(made) == 3
