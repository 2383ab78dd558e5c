"""A run killed with SIGKILL in the middle of training resumes from its last checkpoint and finishes."""
import json
import os
import signal
import subprocess
import sys
import time

from genloom.train.loop import read_metrics
from genloom.train.checkpoint import load_state

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TRAIN = [sys.executable, "-m", "genloom.cli", "train", "digits", "--steps", "300", "--checkpoint-every", "20",
         "--log-every", "5", "--latent-dim", "4", "--width", "8", "--batch-size", "32", "--quiet"]


def test_sigkill_then_resume_finishes(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([*TRAIN, "--out", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is past its second checkpoint
        if (out / "metrics.jsonl").exists() and any(m["step"] >= 45 for m in read_metrics(out / "metrics.jsonl")):
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = load_state(out / "trainer.pt")["step"]
    assert 40 <= killed_at < 300
    assert not (out / "model.safetensors").exists()  # training never got to write its final weights

    resumed = subprocess.run([sys.executable, "-m", "genloom.cli", "train", "--resume", "--out", str(out), "--quiet"],
                             env=ENV, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "for 300 steps" in resumed.stdout
    steps = [m["step"] for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    assert steps == list(range(5, 301, 5))  # nothing lost, nothing logged twice
    assert json.loads((out / "config.json").read_text())["steps_trained"] == 300
    assert (out / "model.safetensors").exists()
