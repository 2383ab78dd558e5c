"""ONNX export: ONNX Runtime's network against PyTorch's on the same inputs, the samples an export makes against
its run's, int8's size and error, and the refusals."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import genloom as gl
from genloom.cli import main
from genloom.export import OnnxModel, export_onnx
from genloom.export.onnx import NETWORKS, network_arguments, sidecar_of
from tests.conftest import QUIET, TINY_VAE
from tests.families.test_latent import TINY_LD, TINY_VQ

TINY_LATENT = {"latent-diffusion": TINY_LD, "vq-vae": TINY_VQ}


@pytest.fixture(scope="module")
def table_vae():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(10, 3, 600), "weight": rng.gamma(2, 5, 600),
                          "colour": rng.choice(["red", "green", "blue", "grey"], 600, p=[0.4, 0.3, 0.2, 0.1])})
    return gl.Model("vae", latent_dim=4, width=64).fit(frame, steps=60, **QUIET)


@pytest.fixture(scope="module")
def image_runs():
    return {"vae": gl.Model("vae", conditional=True, **TINY_VAE).fit("digits", steps=5, **QUIET),
            "gan": gl.Model("gan", latent_dim=8, width=8).fit("digits", steps=3, **QUIET),
            "stylegan": gl.Model("stylegan", latent_dim=8, width=8, mapping_layers=2).fit("digits", steps=3, **QUIET),
            "diffusion": gl.Model("diffusion", width=8, timesteps=50, conditional=True).fit("digits", steps=3,
                                                                                             **QUIET)}


@pytest.mark.parametrize("family", ["vae", "gan", "stylegan", "diffusion"])
def test_onnx_runtime_computes_the_network_pytorch_computes(image_runs, tmp_path, family):
    model = image_runs[family]
    path = export_onnx(model, tmp_path / "model.onnx")
    exported = OnnxModel(path)
    part = json.loads(sidecar_of(path).read_text())["network"]
    args = network_arguments(model, getattr(model.ema_net, part))
    batch = tuple(arg if arg is None or arg.dim() == 0 else arg.repeat(5, *[1] * (arg.dim() - 1))
                  for arg in args)  # another batch size (a scalar stays: StyleGAN's truncation)
    with torch.no_grad():
        theirs = getattr(model.ema_net, part)(*batch)
    ours = getattr(exported.model.ema_net, part)(*batch)
    assert ours.shape == theirs.shape and (ours - theirs.cpu()).abs().max() < 1e-4  # the run may be on a GPU
    made, again = model.sample(40, seed=7, progress=False), exported.sample(40, seed=7)
    assert np.abs(made.astype(int) - again.astype(int)).max() <= 1 and (made == again).mean() > 0.99


@pytest.mark.parametrize("family, files", [("latent-diffusion", ["latent.onnx", "latent.decoder.onnx"]),
                                           ("vq-vae", ["latent.onnx", "latent.decoder.onnx"])])
def test_a_latent_family_exports_its_prior_and_its_decoder_and_samples_the_runs_images(tmp_path, family, files):
    model = gl.Model(family, autoencoder_share=0.5, **TINY_LATENT[family]).fit("digits", steps=8, **QUIET)
    path = export_onnx(model, tmp_path / "latent.onnx")
    about = json.loads(sidecar_of(path).read_text())
    assert [part["file"] for part in about["parts"].values()] == files
    exported = OnnxModel(path)
    assert not any(isinstance(module, torch.nn.Conv2d) for module in exported.model.ema_net.decoder.modules())
    made, again = model.sample(30, seed=4, progress=False), exported.sample(30, seed=4)
    assert np.abs(made.astype(int) - again.astype(int)).max() <= 1 and (made == again).mean() > 0.99
    for name in files:  # renamed together, an export still loads under its new name
        (tmp_path / name).rename(tmp_path / name.replace("latent", "moved"))
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"latent.onnx{suffix}").rename(tmp_path / f"moved.onnx{suffix}")
    assert np.array_equal(OnnxModel(tmp_path / "moved.onnx").sample(30, seed=4), again)
    (tmp_path / "moved.decoder.onnx").unlink()
    with pytest.raises(gl.GenloomError, match="moved.decoder.onnx is missing: an export of this family writes it"):
        OnnxModel(tmp_path / "moved.onnx")


def test_an_export_of_one_network_written_before_parts_still_loads(image_runs, tmp_path):
    path = export_onnx(image_runs["vae"], tmp_path / "old.onnx")
    about = json.loads(sidecar_of(path).read_text())
    del about["parts"]  # the sidecar as genloom wrote it when an export had one network
    sidecar_of(path).write_text(json.dumps(about))
    made = image_runs["vae"].sample(8, seed=1, labels=[2], progress=False)
    assert np.abs(OnnxModel(path).sample(8, seed=1, labels=[2]).astype(int) - made.astype(int)).max() <= 1


def test_a_cyclegan_exports_both_translators_and_translates_as_its_run(digits, tmp_path):
    np.save(tmp_path / "plain.npy", digits.values[:300])
    np.save(tmp_path / "inverted.npy", 255 - digits.values[300:600])
    model = gl.Model("cyclegan", target_data=str(tmp_path / "inverted.npy"), width=8, blocks=2).fit(
        tmp_path / "plain.npy", steps=3, **QUIET)
    exported = OnnxModel(export_onnx(model, tmp_path / "cycle.onnx"))
    assert (tmp_path / "cycle.translators.0.onnx").is_file()
    for domain in ("A", "B"):
        ours = exported.translate_to(tmp_path / f"onnx-{domain}.npy", digits.values[600:640], to=domain)
        theirs = model.translate_to(tmp_path / f"torch-{domain}.npy", digits.values[600:640], to=domain, progress=False)
        made, again = np.load(theirs), np.load(ours)
        assert np.abs(made.astype(int) - again.astype(int)).max() <= 1 and (made == again).mean() > 0.99


def test_a_stylegan_export_takes_the_truncation_as_an_input(image_runs, tmp_path):
    model = image_runs["stylegan"]
    exported = OnnxModel(export_onnx(model, tmp_path / "style.onnx"))
    assert [spec.name for spec in exported.model.ema_net.generator.session.get_inputs()] == ["z", "truncation"]
    for truncation in (0.0, 0.6):
        made = model.sample(16, seed=3, truncation=truncation, progress=False)
        again = exported.sample(16, seed=3, truncation=truncation)
        assert np.abs(made.astype(int) - again.astype(int)).max() <= 1
    average = exported.sample(4, seed=0, truncation=0.0)
    assert (average == average[:1]).all()  # at 0 every code gives the average style's image


def test_a_table_export_samples_the_runs_rows_and_int8_is_smaller_and_close(table_vae, tmp_path):
    full = export_onnx(table_vae, tmp_path / "rows.onnx")
    small = export_onnx(table_vae, tmp_path / "rows-int8.onnx", int8=True)
    assert small.stat().st_size <= 0.35 * full.stat().st_size
    rows, exported = table_vae.sample(2000, seed=1, progress=False), OnnxModel(full).sample(2000, seed=1)
    assert list(exported.columns) == list(rows.columns)
    assert (exported["colour"] == rows["colour"]).mean() > 0.99
    assert np.allclose(exported["size"], rows["size"], atol=1e-3)
    quantised = OnnxModel(small, threads=1).sample(2000, seed=1)
    error = (quantised["size"] - rows["size"]).abs().mean()
    assert 0 < error < 0.1 * rows["size"].std()  # int8 weights: not the same numbers, but near them
    assert quantised["colour"].value_counts(normalize=True)["red"] == pytest.approx(
        rows["colour"].value_counts(normalize=True)["red"], abs=0.05)


def test_the_command_line_exports_and_the_export_writes_shards(trained_run, tmp_path, capsys):
    path = tmp_path / "digits.onnx"
    assert main(["export", trained_run, "--format", "onnx", "-o", str(path)]) == 0
    assert f"wrote an ONNX model to {path}" in capsys.readouterr().out
    exported = OnnxModel(path)
    whole = exported.sample(1200, seed=2, labels=[3])
    parts = [exported.model.sample(1200, seed=2, labels=[3], shard=(i, 2), progress=False) for i in range(2)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_a_transformer_export_computes_with_its_cache_what_pytorch_does(text_run, tmp_path):
    """One graph serves a prompt of any length and each next token after any past (its cache as inputs and
    outputs); logits match PyTorch's at another batch size, with and without the cache, and generation (which
    rebuilds the cache when the 32-token context fills) writes the same text for the same seed."""
    model = gl.load(text_run)
    exported = OnnxModel(export_onnx(model, tmp_path / "gpt.onnx"))
    theirs_net, ours_net = model.ema_net.net.eval(), exported.model.ema_net.net
    tokens = torch.randint(theirs_net.wte.num_embeddings, (3, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours_net(tokens) - theirs_net(tokens)).abs().max() < 1e-4
        theirs_cache, ours_cache = theirs_net.new_cache(3), ours_net.new_cache(3)
        steps = [(0, 5), *[(t, t + 1) for t in range(5, 24)]]
        gaps = [(ours_net(tokens[:, a:b], ours_cache) - theirs_net(tokens[:, a:b], theirs_cache)).abs().max()
                for a, b in steps]
    assert max(gaps) < 1e-4 and ours_cache.length == 24
    assert exported.generate("ROMEO:", max_tokens=80, seed=3) == model.generate("ROMEO:", max_tokens=80, seed=3)
    with pytest.raises(gl.GenloomError, match="continues prompts of one token length together"):
        ["".join(stream) for stream in exported.model.generate_many(["ROMEO:", "O"], max_tokens=[4, 4],
                                                                      stops=[[], []])]
    with pytest.raises(gl.GenloomError, match="prompts join a running batch on the PyTorch transformer only"):
        exported.model.text_batch()


def test_an_int8_transformer_is_smaller_and_scores_text_near_the_full_one(text_run, tmp_path):
    model = gl.load(text_run)
    full = export_onnx(model, tmp_path / "gpt.onnx")
    small = export_onnx(model, tmp_path / "gpt-int8.onnx", int8=True)
    assert small.stat().st_size < 0.7 * full.stat().st_size  # a tiny model: the graph's own bytes weigh
    windows = model.codec.encode("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 2)[:33][None]
    losses = [-OnnxModel(path).model.ema_net.log_prob(windows).item() / 32 for path in (full, small)]
    with torch.no_grad():
        reference = -model.ema_net.log_prob(windows).item() / 32
    assert losses[0] == pytest.approx(reference, abs=1e-4)
    assert 0 < abs(losses[1] - losses[0]) < 0.05 * losses[0]  # quantised: near, not the same


@pytest.mark.parametrize("argv, message", [
    (lambda run, tmp: ["export", run, "--gpt2", str(tmp / "hf"), "--int8"],
     "--int8 quantises an ONNX export (--format onnx)"),
    (lambda run, tmp: ["export", run, "--format", "onnx"], "say what to write: --format onnx -o model.onnx"),
])
def test_exports_that_cannot_be_made_are_refused_in_one_line(text_run, tmp_path, capsys, argv, message):
    assert main(argv(text_run, tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_quantum_generator_is_refused_by_name(tmp_path):
    pytest.importorskip("pennylane")
    model = gl.Model("gan", backbone="quantum", qubits=4, circuit_depth=1).fit("digits", steps=1, **QUIET)
    with pytest.raises(gl.GenloomError, match="has no ONNX export: its circuits run in PennyLane's simulator, .*: "
                                              "sample with genloom"):
        export_onnx(model, tmp_path / "q.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_wavenet_is_refused_by_name(tones, tmp_path):
    model = gl.Model("autoregressive", backbone="wavenet", wavenet_layers=3, n_embd=8).fit(
        tones, steps=1, codec_options={"representation": "waveform", "length": 64}, **QUIET)
    with pytest.raises(gl.GenloomError, match="the autoregressive network has no ONNX export: its sampling feeds "
                                              "each layer's ring"):
        export_onnx(model, tmp_path / "w.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_molecule_vae_with_an_autoregressive_decoder_is_refused_by_name(tmp_path):
    path = tmp_path / "m.smi"
    path.write_text("CCO\nc1ccccc1O\nCC(=O)N\n", encoding="utf-8")
    model = gl.Model("vae", decoder="autoregressive", width=4).fit(path, steps=1, **QUIET)
    with pytest.raises(gl.GenloomError, match="the vae network has no ONNX export: its decoder writes a molecule "
                                              "token by token"):
        export_onnx(model, tmp_path / "v.onnx")
    assert not (tmp_path / "v.onnx").exists()


def test_an_onnx_model_needs_its_description(trained_run, tmp_path, monkeypatch):
    with pytest.raises(gl.GenloomError, match="is not an ONNX model genloom exported"):
        OnnxModel(tmp_path / "nowhere.onnx")
    path = export_onnx(gl.load(trained_run), tmp_path / "m.onnx")
    path.write_bytes(b"not a graph")
    with pytest.raises(gl.GenloomError, match="m.onnx is not a readable ONNX graph .*; export it again"):
        OnnxModel(path)
    sidecar_of(path).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(gl.GenloomError, match="does not describe a genloom ONNX export"):
        OnnxModel(path)
    with pytest.raises(gl.GenloomError, match="has not been trained yet"):
        export_onnx(gl.Model("vae"), tmp_path / "n.onnx")
    monkeypatch.delitem(NETWORKS, "cyclegan")  # every family has an export: one without, as a new one would be
    with pytest.raises(gl.GenloomError, match="family 'cyclegan' has no ONNX export; these have: vae, gan, wgan-gp, "
                                              "stylegan, diffusion, autoregressive, latent-diffusion, vq-vae"):
        export_onnx(gl.Model("cyclegan"), tmp_path / "c.onnx")
