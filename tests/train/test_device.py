"""Devices and mixed precision. The CUDA paths carry the `gpu` marker: they are skipped without a GPU and run on
one with `pytest -m gpu` (bf16 autocast, fp16 with loss scaling, samples equal across devices)."""
import numpy as np
import pytest
import torch

import genloom as gl
from genloom.families.vae import VAE
from genloom.train import device as devices
from genloom.train.device import autocast, autocast_dtype, resolve_device
from genloom.train.loop import read_metrics
from tests.conftest import QUIET, TINY_GPT, TINY_VAE


def test_auto_picks_what_the_machine_has_and_a_missing_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(gl.GenloomError, match="--device cuda was asked for but this machine has no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(gl.GenloomError, match="unknown device 'tpu'; use auto, cpu or cuda"):
        resolve_device("tpu")


def test_the_cpu_trains_in_full_precision():
    assert autocast_dtype(torch.device("cpu")) is None
    with autocast(torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.gpu
def test_cuda_trains_in_reduced_precision_and_samples_as_the_cpu_does(tmp_path):
    """bf16 (or fp16) autocast on the GPU trains; a seed gives the same samples on the GPU as on the CPU, since
    all randomness of sampling comes from a CPU generator (equal up to float rounding)."""
    assert autocast_dtype(torch.device("cuda")) in (torch.bfloat16, torch.float16)
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=30, device="cuda", out=tmp_path / "r", **QUIET)
    losses = [m["loss"] for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "loss" in m]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    on_gpu = model.sample(16, seed=3)
    on_cpu = gl.load(tmp_path / "r", device="cpu").sample(16, seed=3)
    assert np.abs(on_gpu.astype(int) - on_cpu.astype(int)).max() <= 2  # 8-bit pixels, rounding apart


@pytest.mark.gpu
def test_fp16_scales_the_loss_and_trains_text_with_muon_and_adamw(tmp_path, monkeypatch):
    """The fp16 path (GPUs without bf16): the loop's GradScaler is on, and Muon + AdamW still lower the loss."""
    monkeypatch.setattr(devices, "autocast_dtype", lambda device: torch.float16 if device.type == "cuda" else None)
    monkeypatch.setattr("genloom.train.loop.autocast_dtype", devices.autocast_dtype)
    gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=40, device="cuda", log_every=5,
                                               out=tmp_path / "r", **QUIET)
    state = torch.load(tmp_path / "r" / "trainer.pt", weights_only=True)
    assert state["scaler"]  # a GradScaler that was enabled keeps its scale in the checkpoint
    losses = [m["loss"] for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "loss" in m]
    assert losses[-1] < losses[0] - 0.3


@pytest.mark.gpu
def test_a_cuda_run_resumes_on_the_cpu(tmp_path):
    gl.Model("diffusion", width=8, timesteps=50).fit("digits", steps=4, device="cuda", out=tmp_path / "r", **QUIET)
    images = gl.load(tmp_path / "r", device="cpu").sample(2, seed=0, steps=5)
    assert images.shape == (2, 8, 8, 1)
    again = gl.Model("diffusion").fit(out=tmp_path / "r", resume=True, steps=6, device="cpu", **QUIET)
    assert again.record["steps_trained"] == 6


def test_threads_default_to_the_cores_of_the_affinity_mask_and_are_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    before = torch.get_num_threads()
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=1, out=tmp_path / "one", **QUIET)
    assert model.record["train"]["threads"] == 1 and torch.get_num_threads() == before  # restored after fit
    seen = []
    monkeypatch.setattr(devices.torch, "set_num_threads", lambda n: seen.append(n))
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=1, threads=3, out=tmp_path / "three", **QUIET)
    assert model.record["train"]["threads"] == 3 and seen[0] == 3
    assert "3 threads on 1 available core(s) oversubscribe them" in capsys.readouterr().err


def test_the_familys_preparation_runs_on_the_runs_threads(tmp_path, monkeypatch):
    """A distillation reads its teacher in prepare: that is the run's work, on the threads it was given."""
    seen = []
    monkeypatch.setattr(VAE, "prepare", lambda self, x, labels=None: seen.append(torch.get_num_threads()))
    gl.Model("vae", **TINY_VAE).fit("digits", steps=1, threads=1, out=tmp_path / "one", **QUIET)
    gl.Model("vae", **TINY_VAE).fit("digits", steps=1, threads=3, out=tmp_path / "three", **QUIET)
    assert seen == [1, 3]
