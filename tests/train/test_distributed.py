"""Training in several processes (torchrun, gloo on the CPU): the same steps as one process with the same global
batch, one writer, a killed run resumed, and the launcher's and environment's errors."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import genloom as gl
from genloom.cli import main
from genloom.train.checkpoint import load_state
from genloom.train.device import available_cores
from genloom.train.distributed import Processes, processes_from_environment
from genloom.train.loop import read_metrics

GENLOOM = [sys.executable, "-m", "genloom"]
TORCHRUN = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
ENV = {key: value for key, value in os.environ.items() if key not in TORCHRUN}
two_cores = pytest.mark.skipif(available_cores() < 2, reason="two processes need two CPU cores (--nproc refuses more "
                                                              "processes than cores); this test runs on one")


def _train(out, *extra, check=True):
    done = subprocess.run([*GENLOOM, "train", *extra, "--out", str(out), "--quiet", "--device", "cpu"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _losses(out):
    return [record["loss"] for record in read_metrics(out / "metrics.jsonl") if "loss" in record]


@two_cores
def test_two_processes_take_the_steps_one_takes_with_the_same_global_batch(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i}: to be, or not to be, that is the question.\n" for i in range(400)))
    gpt = ["--family", "autoregressive", "--n-layer", "2", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
           "--dropout", "0", "--steps", "20", "--batch-size", "8", "--log-every", "1", "--eval-every", "10",
           "--checkpoint-every", "5", "--seed", "3"]
    _train(tmp_path / "one", str(corpus), *gpt)
    two = _train(tmp_path / "two", str(corpus), *gpt, "--nproc", "2")
    assert two.stdout.count("trained autoregressive") == 1  # the first process reports, the other is quiet
    one_losses, two_losses = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one_losses) == 20 and one_losses[-1] < one_losses[0]
    assert two_losses == pytest.approx(one_losses, abs=1e-4)  # Muon and AdamW on the averaged gradients
    steps = [record["step"] for record in read_metrics(tmp_path / "two" / "metrics.jsonl") if "loss" in record]
    assert steps == list(range(1, 21))  # one writer: no line twice
    one, two = (load_file(tmp_path / name / "model.safetensors") for name in ("one", "two"))
    assert all(torch.allclose(one[key], two[key], atol=1e-4) for key in one)
    record = json.loads((tmp_path / "two" / "config.json").read_text())
    assert record["train"]["threads"] == max(1, available_cores() // 2)  # two processes share the cores
    assert not any(path.name.startswith(".") or path.suffix == ".tmp" for path in (tmp_path / "two").rglob("*"))

    _train(tmp_path / "one", "--resume", "--steps", "25", "--nproc", "2")  # a one-process run goes on in two
    steps = [record["step"] for record in read_metrics(tmp_path / "one" / "metrics.jsonl") if "loss" in record]
    assert steps == list(range(1, 26))
    assert json.loads((tmp_path / "one" / "config.json").read_text())["steps_trained"] == 25


@two_cores
def test_a_killed_two_process_run_resumes_and_finishes(tmp_path):
    out = tmp_path / "run"
    command = [*GENLOOM, "train", "digits", "--family", "vae", "--latent-dim", "4", "--width", "8", "--steps", "300",
               "--batch-size", "32", "--checkpoint-every", "20", "--log-every", "5", "--quiet", "--device", "cpu",
               "--nproc", "2", "--out", str(out)]
    launcher = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # past its second checkpoint
        if any(m["step"] >= 45 for m in read_metrics(out / "metrics.jsonl")):
            break
        time.sleep(0.05)
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and both trainers, as a machine that goes down
    launcher.wait()
    killed_at = load_state(out / "trainer.pt")["step"]
    assert 40 <= killed_at < 300 and not (out / "model.safetensors").exists()
    resumed = subprocess.run([*GENLOOM, "train", "--resume", "--out", str(out), "--quiet", "--nproc", "2"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "for 300 steps" in resumed.stdout
    steps = [m["step"] for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    assert steps == list(range(5, 301, 5))  # nothing lost, nothing logged twice
    assert json.loads((out / "config.json").read_text())["steps_trained"] == 300


def test_torchruns_environment_names_the_processes_or_says_what_is_missing():
    assert processes_from_environment({}) == Processes()
    assert processes_from_environment({**TORCHRUN, "RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == Processes(1, 2, 0, 2)
    with pytest.raises(gl.GenloomError, match=r"torchrun's environment is half set \(RANK, WORLD_SIZE without "
                                              r"LOCAL_RANK, MASTER_ADDR, MASTER_PORT\); launch with torchrun"):
        processes_from_environment({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(gl.GenloomError, match="RANK 2 .* is outside WORLD_SIZE 2"):
        processes_from_environment({**TORCHRUN, "RANK": "2"})
    with pytest.raises(gl.GenloomError, match="must be whole numbers"):
        processes_from_environment({**TORCHRUN, "WORLD_SIZE": "two"})


def test_a_global_batch_must_split_evenly_over_the_processes():
    Processes(0, 2).check_batch(32)
    with pytest.raises(gl.GenloomError, match="a global batch of 33 does not split evenly over 2 processes; use a "
                                              "batch_size that is a multiple of 2"):
        Processes(0, 2).check_batch(33)
    x = torch.arange(8)
    assert Processes(1, 2).share(x, x * 10)[0].tolist() == [4, 5, 6, 7]
    assert Processes(1, 2).share(x, x * 10)[1].tolist() == [40, 50, 60, 70]


@pytest.mark.parametrize("argv, message", [
    (["--nproc", "0"], "--nproc 0: this machine has"),
    (["--nproc", "64"], "--nproc 64: this machine has"),
])
def test_the_number_of_processes_is_checked_before_any_starts(tmp_path, capsys, argv, message):
    assert main(["train", "digits", "--device", "cpu", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"genloom: error: {message}") and "give 1 to" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_half_set_environment_is_one_line_from_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "digits", "--steps", "1", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "torchrun's environment is half set (WORLD_SIZE without RANK" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@two_cores
def test_an_error_in_the_processes_is_said_once_with_exit_code_2(tmp_path):
    done = _train(tmp_path / "r", "digits", "--steps", "2", "--batch-size", "33", "--nproc", "2", check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["genloom: error: a global batch of 33 does not split evenly over 2 "
                                               "processes; use a batch_size that is a multiple of 2 (CLI: --batch-size)"]
    assert not (tmp_path / "r").exists()
