import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import genloom as gl
from genloom.data.molecules import canonical
from genloom.families.latent_paths import seed_code
from tests.conftest import QUIET, TINY_VAE, forked_transitions, scripted_validations

PENGUINS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tables" / "penguins.csv"


def test_run_folder_holds_everything_the_design_lists(trained_run):
    files = {p.name for p in Path(trained_run).iterdir()}
    assert files >= {"config.json", "codec.json", "model.safetensors", "ema.safetensors", "trainer.pt",
                     "metrics.jsonl", "samples", "report.html", "loss_curve.svg", "MODEL_CARD.md"}
    config = json.loads((Path(trained_run) / "config.json").read_text())
    assert config["family"] == "vae" and config["steps_trained"] == 30
    assert config["data"]["name"] == "digits" and config["family_options"]["conditional"] is True
    assert "elbo" in config["final_metrics"]


def test_same_seed_same_samples_after_save_and_load(trained_run, tmp_path):
    model = gl.load(trained_run)
    first = model.sample(16, seed=7)
    assert first.shape == (16, 8, 8, 1) and first.dtype == np.uint8
    assert np.array_equal(first, gl.load(trained_run).sample(16, seed=7))
    assert not np.array_equal(first, model.sample(16, seed=8))
    model.save(tmp_path / "copy")
    assert np.array_equal(first, gl.load(tmp_path / "copy").sample(16, seed=7))
    assert (tmp_path / "copy" / "metrics.jsonl").exists()


def test_fit_returns_a_model_that_samples_like_its_saved_run(tmp_path):
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=5, batch_size=16, **QUIET)
    saved = model.save(tmp_path / "run")
    assert np.array_equal(model.sample(4, seed=0), gl.load(saved).sample(4, seed=0))


@pytest.mark.parametrize("family, options", [
    ("gan", {"latent_dim": 4, "width": 8, "spectral_norm": True}),
    ("wgan-gp", {"latent_dim": 4, "width": 8}),
    ("diffusion", {"width": 8, "timesteps": 50}),
    ("autoregressive", {"n_layer": 1, "n_embd": 16, "levels": 4}),
])
def test_every_family_trains_conditionally_on_images_and_reloads_identically(family, options, tmp_path):
    model = gl.Model(family, conditional=True, **options).fit("digits", steps=3, out=tmp_path / "r", batch_size=8,
                                                             **QUIET)
    first = model.sample(5, seed=3, labels=[7])
    assert first.shape == (5, 8, 8, 1) and first.dtype == np.uint8
    assert np.array_equal(first, gl.load(tmp_path / "r").sample(5, seed=3, labels=[7]))
    assert (tmp_path / "r" / "samples" / "final.png").exists() and (tmp_path / "r" / "report.html").exists()


def test_sampling_options_reach_only_families_that_take_them(trained_run):
    with pytest.raises(gl.GenloomError, match="family 'vae' takes no sampling options; got 'steps'"):
        gl.load(trained_run).sample(2, steps=5)


def test_conditional_sampling_by_class_name_and_id(trained_run):
    model = gl.load(trained_run)
    assert model.sample(3, labels="7").shape == (3, 8, 8, 1)
    assert np.array_equal(model.sample(3, labels=["7", "7", "7"]), model.sample(3, labels=7))
    with pytest.raises(gl.GenloomError, match="2 labels for 3 examples"):
        model.sample(3, labels=[1, 2])


def test_latent_tools(trained_run, digits):
    model = gl.load(trained_run)
    z = model.encode(digits.values[:5], labels=digits.labels[:5])
    assert z.shape == (5, 4)
    assert model.decode(z, labels=digits.labels[:5]).shape == (5, 8, 8, 1)
    elbo = model.log_prob(digits.values[:5], labels=digits.labels[:5])
    with torch.no_grad():  # the family's bound on the encoded images, with the seed's noise
        bound = model.ema_net.log_prob(model.codec.encode(digits.values[:5]), torch.from_numpy(digits.labels[:5]),
                                       torch.Generator().manual_seed(0))
    np.testing.assert_allclose(elbo, bound.numpy(), rtol=1e-6)
    assert np.array_equal(elbo, model.log_prob(digits.values[:5], labels=digits.labels[:5]))  # seeded
    with pytest.raises(gl.GenloomError, match="conditional: pass the labels"):
        model.encode(digits.values[:5])


def test_a_text_model_scores_each_text(text_run):
    """Shakespeare's own words are likelier under a model trained on him than the same letters reversed, and a
    list scores each text as alone."""
    model = gl.load(text_run)
    text = "ROMEO:\nWhat is the matter, sir?"
    scores = model.log_prob([text, text[::-1]])
    assert scores.shape == (2,) and scores[0] > scores[1] + 10
    assert scores[0] == pytest.approx(model.log_prob(text)[0], abs=1e-4)


def test_prompts_continue_together(text_run):
    """Greedy rows of one batch are what each prompt gives alone, prompts of different lengths among them; each
    row keeps its own stops and max_tokens."""
    model = gl.load(text_run)
    prompts, limits, stops = ["ROMEO:", "JULIET", "KING: ", "", "O, w"], [10, 20, 5, 12, 8], [[], ["e"], [], [], []]
    streams = model.generate_many(prompts, max_tokens=limits, stops=stops, temperature=0)
    texts = ["".join(stream) for stream in streams]
    assert texts == [model.generate(p, max_tokens=k, stop=s, temperature=0) for p, k, s in zip(prompts, limits, stops)]
    assert [stream.tokens_generated for stream in streams][::2] == [10, 5, 8]
    with pytest.raises(gl.GenloomError, match="no prompts to continue"):
        model.generate_many([], max_tokens=[], stops=[])


def test_prompts_join_a_text_batch_while_it_decodes(text_run, trained_run):
    """Continuous batching: a prompt joining after others have made tokens gets, greedy, what it gets alone, with
    its own stops and max_tokens; the rows made together cost one forward pass a step."""
    model = gl.load(text_run)
    batch = model.text_batch(temperature=0)
    first = batch.join("ROMEO:", max_tokens=30)
    head = "".join(next(first) for _ in range(4))
    later = [batch.join(prompt, max_tokens=k, stop=s) for prompt, k, s in [("KING RICHARD: ", 12, ["e"]), ("", 9, [])]]
    texts = [head + "".join(first)] + ["".join(stream) for stream in later]
    assert texts == [model.generate("ROMEO:", max_tokens=30, temperature=0),
                     model.generate("KING RICHARD: ", max_tokens=12, stop="e", temperature=0),
                     model.generate("", max_tokens=9, temperature=0)]
    assert batch.rows == 0
    with pytest.raises(gl.GenloomError, match="family 'vae' has no generate; families with one: autoregressive"):
        gl.load(trained_run).text_batch()


def test_prompts_of_different_lengths_continuing_past_the_context_keep_their_own_window(text_run):
    """Past the context the cache is rebuilt from a row's last half context, when that row's own window fills:
    a short row beside a long one keeps what it keeps alone. Weights jolted so that the next token depends on the
    whole window (the trained tiny model repeats itself whatever it sees)."""
    model = gl.load(text_run)
    torch.manual_seed(0)
    with torch.no_grad():
        for weight in model.ema_net.parameters():
            weight.add_(torch.randn_like(weight) * 0.3)
    context = model.ema_net.context_length
    prompts, limits = ["JULIET", "O", "First Citizen:\nBefore we proceed"], [2 * context, 2 * context, 3]
    streams = model.generate_many(prompts, max_tokens=limits, stops=[[], [], []], temperature=0)
    assert ["".join(stream) for stream in streams] == [model.generate(p, max_tokens=k, temperature=0)
                                                       for p, k in zip(prompts, limits)]


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_sample_count_must_be_positive(trained_run, n):
    with pytest.raises(gl.GenloomError, match="n must be a whole number of at least 1"):
        gl.load(trained_run).sample(n)


def test_labels_on_an_unconditional_model(tmp_path):
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=2, out=tmp_path / "r", **QUIET)
    with pytest.raises(gl.GenloomError, match="not conditional"):
        model.sample(2, labels=[1, 2])


def test_unfitted_model_says_so():
    with pytest.raises(gl.GenloomError, match="has not been trained yet"):
        gl.Model("vae").sample(2)


def test_loading_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(gl.GenloomError, match="is not a genloom run \\(no config.json\\)"):
        gl.load(tmp_path)
    with pytest.raises(gl.GenloomError, match="is not a folder"):
        gl.load(tmp_path / "missing")


def test_loading_a_run_of_an_unknown_family(trained_run, tmp_path):
    copy = shutil.copytree(trained_run, tmp_path / "run")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "family": "flow"}))
    with pytest.raises(gl.GenloomError, match="unknown family 'flow'; known families: autoregressive, cyclegan, diffusion, gan, "
                       "latent-diffusion, stylegan, vae, vq-vae, wgan-gp"):
        gl.load(copy)


def test_resuming_a_run_of_another_family(trained_run, tmp_path):
    copy = shutil.copytree(trained_run, tmp_path / "run")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "family": "diffusion"}))
    with pytest.raises(gl.GenloomError, match="trained with family 'diffusion', not 'vae'"):
        gl.Model("vae").fit(out=copy, resume=True)


def test_weights_that_do_not_fit_are_refused(trained_run, tmp_path):
    copy = shutil.copytree(trained_run, tmp_path / "run")
    config = json.loads((copy / "config.json").read_text())
    config["family_options"]["latent_dim"] = 9
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(gl.GenloomError, match=r"the weights in model.safetensors do not fit the model that config.json "
                                              r"and codec.json describe \(image data of 1x8x8\): encoder.head.0.weight "
                                              r"is 32x272 in the file, 72x272 for that model; were config.json"):
        gl.load(copy)


def test_existing_run_is_not_overwritten(trained_run):
    before = (Path(trained_run) / "config.json").read_text()
    with pytest.raises(gl.GenloomError, match=r"already holds a run \(or what is left of one: config.json, model.safetensors, trainer.pt, "
                                                 r"metrics.jsonl\); pass resume=True"):
        gl.Model("vae").fit("digits", out=trained_run, steps=1)
    assert (Path(trained_run) / "config.json").read_text() == before


def test_bad_data_leaves_no_run_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(gl.GenloomError, match="no images found"):
        gl.Model("vae").fit(tmp_path / "empty", out=tmp_path / "run", steps=1)
    with pytest.raises(gl.GenloomError, match="needs labelled data"):
        gl.Model("vae", conditional=True).fit(_unlabelled(tmp_path), out=tmp_path / "run", steps=1)
    assert not (tmp_path / "run").exists()


def _unlabelled(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8), dtype=np.uint8))
    return tmp_path / "x.npy"


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / "config.json").write_text("[1, 2]"), "is not a genloom run config"),
    (lambda run: (run / "config.json").write_text("{broken"), r"config.json is damaged \(JSONDecodeError"),
    (lambda run: (run / "codec.json").write_text("{}"), "codec.json is damaged"),
    (lambda run: (run / "model.safetensors").write_bytes(b"nonsense"), "model.safetensors cannot be read"),
    (lambda run: (run / "model.safetensors").unlink(), "training did not finish"),
])
def test_damaged_runs_give_one_line_errors(trained_run, tmp_path, damage, message):
    copy = shutil.copytree(trained_run, tmp_path / "run")
    damage(copy)
    with pytest.raises(gl.GenloomError, match=message) as error:
        gl.load(copy)
    assert "\n" not in str(error.value)


def test_generate_options_through_the_api(text_run):
    model = gl.load(text_run)
    plain = model.generate("ROMEO:", max_tokens=80, seed=1)
    assert len(plain) == 80 and plain == model.generate("ROMEO:", max_tokens=80, seed=1)
    assert model.generate("ROMEO:", max_tokens=80, seed=2) != plain
    assert "".join(model.generate("ROMEO:", max_tokens=80, seed=1, stream=True)) == plain
    stopped = model.generate("ROMEO:", max_tokens=80, seed=1, stop=plain[20:22])
    assert stopped == plain[:plain.index(plain[20:22])]
    greedy = model.generate("ROMEO:", max_tokens=40, temperature=0)
    assert greedy == model.generate("ROMEO:", max_tokens=40, temperature=0, seed=5)  # no randomness left
    for seed in (1, 2):  # sampling with one candidate left is greedy, whatever the seed
        assert model.generate("ROMEO:", max_tokens=40, top_k=1, seed=seed) == greedy
        assert model.generate("ROMEO:", max_tokens=40, top_p=1e-6, seed=seed) == greedy
    # a strong penalty on tokens already in the text makes greedy decoding repeat itself less
    penalised = model.generate("ROMEO:", max_tokens=40, temperature=0, repetition_penalty=5.0)
    assert len(set(penalised)) > len(set(greedy))


@pytest.mark.parametrize("options, message", [
    ({"max_tokens": -3}, "max_tokens must be a whole number of at least 1; got -3"),
    ({"top_p": -0.5}, "top_p must lie in (0, 1]"),
    ({"temperature": -0.1}, "temperature must be at least 0"),
])
def test_impossible_generation_options(text_run, options, message):
    with pytest.raises(gl.GenloomError, match=re.escape(message)):
        gl.load(text_run).generate("ROMEO:", **options)


def test_unknown_codec_option_is_named(tmp_path):
    with pytest.raises(gl.GenloomError, match="unknown codec option for text data"):
        gl.Model("autoregressive").fit("shakespeare", codec_options={"alphabet": "abc"}, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


TABLE_FAMILIES = {"gan": {"latent_dim": 8, "width": 8}, "wgan-gp": {"latent_dim": 8, "width": 8},
                  "vae": TINY_VAE, "diffusion": {"width": 8, "timesteps": 100},
                  "autoregressive": {"n_layer": 1, "n_embd": 32, "n_head": 2, "bins": 8}}


@pytest.mark.parametrize("family", TABLE_FAMILIES)
def test_every_family_learns_a_table_and_reloads_it(family, tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "blue"], 600, p=[0.8, 0.2])
    frame = pd.DataFrame({"colour": colour, "size": np.where(colour == "red", 10.0, 50.0) + rng.normal(0, 1, 600),
                          "count": rng.integers(0, 5, 600)})
    model = gl.Model(family, **TABLE_FAMILIES[family]).fit(frame, steps=200, batch_size=100, out=tmp_path / "r",
                                                           **QUIET)
    rows = model.sample(400, seed=0)
    assert list(rows.columns) == ["colour", "size", "count"] and rows["count"].dtype == np.int64
    assert set(rows["colour"]) == {"red", "blue"} and 0.6 < (rows["colour"] == "red").mean() < 0.95
    assert rows["size"].between(frame["size"].min(), frame["size"].max()).all()
    assert rows.loc[rows["colour"] == "red", "size"].mean() < rows.loc[rows["colour"] == "blue", "size"].mean()
    pd.testing.assert_frame_equal(gl.load(tmp_path / "r").sample(50, seed=3), model.sample(50, seed=3))


@pytest.mark.parametrize("suffix", [".npy", ".png"])
def test_sample_to_writes_what_sample_returns(trained_run, tmp_path, suffix, monkeypatch):
    import genloom.families.drawing
    import genloom.model
    assert genloom.model.FILE_CHUNK % genloom.families.drawing.SAMPLE_BATCH == 0  # chunks of whole batches
    monkeypatch.setattr(genloom.families.drawing, "SAMPLE_BATCH", 4)
    monkeypatch.setattr(genloom.model, "FILE_CHUNK", 8)  # several chunks for a few samples
    model = gl.load(trained_run)
    model.sample_to(tmp_path / f"s{suffix}", 20, seed=4, labels="5", progress=False)
    expected = model.sample(20, seed=4, labels="5")
    if suffix == ".npy":
        assert np.array_equal(np.load(tmp_path / "s.npy"), expected)
    else:
        from PIL import Image

        from genloom.data.images import image_grid
        assert np.array_equal(np.asarray(Image.open(tmp_path / "s.png")), np.asarray(image_grid(expected)))


def test_sample_to_writes_tables_and_texts_in_chunks(text_run, tmp_path, monkeypatch):
    import pandas as pd

    import genloom.families.drawing
    import genloom.model
    monkeypatch.setattr(genloom.families.drawing, "SAMPLE_BATCH", 2)
    monkeypatch.setattr(genloom.model, "FILE_CHUNK", 4)
    texts = gl.load(text_run)
    texts.sample_to(tmp_path / "t.jsonl", 7, seed=1, progress=False)
    assert [json.loads(line)["text"] for line in (tmp_path / "t.jsonl").read_text().splitlines()] == texts.sample(7, seed=1)
    frame = pd.DataFrame({"size": np.linspace(0, 1, 200), "colour": ["red", "blue"] * 100})
    rows = gl.Model("vae", latent_dim=2, width=4).fit(frame, steps=2, progress=False)
    rows.sample_to(tmp_path / "r.csv", 10, seed=2, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.csv"), rows.sample(10, seed=2), check_dtype=False)


def test_a_batch_larger_than_the_data_is_recorded_as_used(tmp_path, capsys):
    data = gl.Dataset("image", gl.load_data("digits").values[:50], "fifty")
    model = gl.Model("vae", **TINY_VAE).fit(data, steps=2, batch_size=1_000_000_000, out=tmp_path / "r", progress=False)
    assert model.record["train"]["batch_size"] == 45  # 50 less the tenth held out
    assert "batch_size 1,000,000,000 is more than the 45 training examples; training with batches of 45" in \
        capsys.readouterr().err


def test_long_sampling_shows_its_progress(trained_run, capsys, monkeypatch):
    import genloom.families.drawing
    monkeypatch.setattr(genloom.families.drawing, "tqdm", lambda **options: _Bar(**options))
    gl.load(trained_run).sample(1200, seed=0)
    assert _Bar.last["total"] == 3 and _Bar.last["desc"] == "sampling" and _Bar.updates == 3  # three batches
    gl.load(trained_run).sample(5, seed=0, progress=False)
    assert _Bar.last["disable"]


class _Bar:
    """Stands for tqdm: records how the bar was made and how often it moved."""

    last: dict = {}
    updates = 0

    def __init__(self, **options):
        _Bar.last, _Bar.updates = options, 0

    def update(self, n=1):
        _Bar.updates += n

    def __enter__(self):
        return self

    def __exit__(self, *error):
        return False


def test_one_label_for_many_samples_is_made_per_chunk(trained_run, tmp_path, monkeypatch):
    """`sample -n 1000000000 --labels 3` must not allocate a billion labels before the first chunk."""
    import genloom.families.drawing as drawing
    import genloom.model
    sizes, original = [], drawing.label_tensor
    monkeypatch.setattr(drawing, "label_tensor", lambda net, ids, n: sizes.append(n) or original(net, ids, n))
    monkeypatch.setattr(drawing, "SAMPLE_BATCH", 5)
    monkeypatch.setattr(genloom.model, "FILE_CHUNK", 10)
    gl.load(trained_run).sample_to(tmp_path / "s.npy", 35, labels="3", progress=False)
    assert max(sizes) <= 10 and np.load(tmp_path / "s.npy").shape == (35, 8, 8, 1)


# -- the latent space: interpolation and attribute vectors ------------------------------------------------------
@pytest.fixture(scope="module")
def digits_vae(tmp_path_factory):
    """An unconditional VAE trained long enough (300 steps, ~5 s) for its latent space to mean something."""
    return gl.Model("vae", latent_dim=8, width=16).fit("digits", steps=300, batch_size=64, progress=False,
                                                       out=tmp_path_factory.mktemp("latent") / "vae")


def test_interpolation_between_examples_starts_and_ends_at_their_reconstructions(digits_vae, digits):
    a, b = digits.values[0], digits.values[1]
    path = digits_vae.interpolate(a, b, 5)
    assert path.shape == (5, 8, 8, 1)
    assert np.array_equal(path[0], digits_vae.decode(digits_vae.encode(a[None]))[0])

    def distance(x, y):
        return np.abs(x.astype(float) - y.astype(float)).mean()

    assert distance(path[0], a) < 0.3 * distance(path[0], b) and distance(path[-1], b) < 0.3 * distance(path[-1], a)
    by_seed = digits_vae.interpolate(0, 1, 3, method="lerp")
    assert np.array_equal(by_seed[0], digits_vae.sample(1, seed=0, progress=False)[0])  # a seed's end: its sample


def test_an_attribute_vector_moves_a_classifiers_prediction(digits_vae, digits):
    """Ones moved along the 1 -> 7 direction look like sevens to a classifier trained on the real digits; moved
    the other way, less like sevens than their reconstructions."""
    from sklearn.linear_model import LogisticRegression

    flat = digits.values.reshape(len(digits.values), -1) / 255
    classifier = LogisticRegression(max_iter=2000).fit(flat, digits.labels)
    seven = list(classifier.classes_).index(7)

    def sevenness(images):
        return classifier.predict_proba(images.reshape(len(images), -1) / 255)[:, seven].mean()

    vector = digits_vae.attribute_vector(digits, from_label="1", to_label="7")
    ones = digits.values[digits.labels == 1][:40]
    reconstructed = sevenness(digits_vae.decode(digits_vae.encode(ones)))
    assert sevenness(digits_vae.edit(ones, vector, 1.0)) > reconstructed + 0.5
    assert sevenness(digits_vae.edit(ones, vector, -1.0)) <= reconstructed
    with pytest.raises(gl.GenloomError, match="no examples of 'eleven' in the data"):
        digits_vae.attribute_vector(digits, from_label="1", to_label="eleven")


def test_table_rows_interpolate_and_edit_by_a_columns_values(tmp_path):
    rows = pd.read_csv(PENGUINS).dropna().reset_index(drop=True)
    model = gl.Model("vae", latent_dim=8).fit(rows, steps=150, progress=False, out=tmp_path / "penguins")
    path = model.interpolate(rows.iloc[0].to_dict(), rows.iloc[-1].to_dict(), 4)
    assert list(path.columns) == list(rows.columns) and len(path) == 4
    adelie = rows[rows.species == "Adelie"].head(20)
    vector = model.attribute_vector(rows, from_label="Adelie", to_label="Gentoo", labels="species")
    assert (model.edit(adelie, vector).species == "Gentoo").mean() > (model.decode(model.encode(adelie)).species
                                                                      == "Gentoo").mean() + 0.5
    with pytest.raises(gl.GenloomError, match="name the column whose values mark the classes"):
        model.attribute_vector(rows, from_label="Adelie", to_label="Gentoo", labels="wings")


# -- latent spaces of every shape: the GAN's inversion, a diffusion model's noise -------------------------------------
def test_a_family_without_a_latent_says_which_families_have_one(text_run):
    model = gl.load(text_run)
    for call in (lambda: model.encode(["to be"]), lambda: model.decode(np.zeros((1, 4))),
                 lambda: model.interpolate(0, 1)):
        with pytest.raises(gl.GenloomError) as error:
            call()
        message = str(error.value)
        assert re.fullmatch(r"family 'autoregressive' has no (encode|decode); families with one: "
                            r"vae, gan, wgan-gp, stylegan, diffusion", message)


def test_a_diffusion_run_encodes_to_noise_interpolates_and_edits(tmp_path, digits):
    model = gl.Model("diffusion", width=8, timesteps=50).fit(digits.values[:32], steps=20, batch_size=16,
                                                             out=tmp_path / "r", **QUIET)
    z = model.encode(digits.values[:3])
    assert z.shape == (3, 1, 8, 8) and model.ema_net.latent_shape == (1, 8, 8)
    a, b = digits.values[0], digits.values[1]
    path = model.interpolate(a, b, 4)
    assert path.shape == (4, 8, 8, 1)
    assert np.array_equal(path[0], model.decode(model.encode(a[None]))[0])
    assert np.array_equal(path[-1], model.decode(model.encode(b[None]))[0])
    by_seed = gl.load(tmp_path / "r").interpolate(0, 1, 3)
    assert np.array_equal(by_seed[0], model.decode(seed_code(0, (1, 8, 8))[None].numpy())[0])
    moved = model.edit(digits.values[:2], np.ones((1, 8, 8), dtype=np.float32), 0.5)  # one code-shaped direction
    assert np.array_equal(moved, model.decode(model.encode(digits.values[:2]) + 0.5))
    with pytest.raises(gl.GenloomError, match=r"must be finite numbers of shape \(N, 1, 8, 8\); got \(2, 8\)"):
        model.decode(np.zeros((2, 8)))


def test_a_gan_run_interpolates_from_seeds_and_examples(digits):
    model = gl.Model("gan", latent_dim=4, width=8).fit("digits", steps=10, batch_size=32, **QUIET)
    by_seed = model.interpolate(3, 4, 3)
    assert np.array_equal(by_seed[0], model.sample(1, seed=3, progress=False)[0])  # a seed's end: its sample
    assert np.array_equal(by_seed[-1], model.sample(1, seed=4, progress=False)[0])
    path = model.interpolate(digits.values[0], digits.values[1], 3)
    assert np.array_equal(path[0], model.decode(model.encode(digits.values[:1]))[0])


def _design_table(n=400, seed=0):
    """y rises with a and b; colour says nothing of it."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    return pd.DataFrame({"a": a, "b": b, "colour": rng.choice(["red", "blue"], n),
                         "y": 2 * a + b + rng.normal(0, 0.1, n)})


@pytest.fixture(scope="module")
def design_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("design") / "run"
    model = gl.Model("vae", property="y", **TINY_VAE).fit(_design_table(), steps=400, out=out, batch_size=64,
                                                           **QUIET)
    return model, out


def test_optimize_designs_rows_whose_columns_raise_or_lower_the_property(design_run):
    model, out = design_run
    frame = _design_table()
    implied = frame["a"] * 2 + frame["b"]  # what the columns other than y say of it
    assert model.record["final_metrics"]["property_r2"] > 0.5  # predicted from a and b, not read off y
    higher = model.optimize("y", n=40)
    lower = model.optimize("y", n=40, maximize=False)
    unguided = model.sample(200, seed=0, progress=False)
    assert (2 * higher["a"] + higher["b"]).mean() > implied.quantile(0.8) > (2 * unguided["a"] + unguided["b"]).mean()
    assert (2 * lower["a"] + lower["b"]).mean() < implied.quantile(0.2)
    assert higher["y"].is_monotonic_decreasing and lower["y"].is_monotonic_increasing  # best first
    # y is the head's estimate from each designed row's a and b, not a value pinned to the top of y's range
    assert np.corrcoef(higher["y"], 2 * higher["a"] + higher["b"])[0, 1] > 0.7
    assert len(higher.drop_duplicates()) == 40  # n different rows, not one optimum n times
    near_prior = model.optimize("y", n=40, prior_weight=2.0)
    assert near_prior["y"].mean() < higher["y"].mean()  # a stronger pull to the prior, a smaller push
    pd.testing.assert_frame_equal(gl.load(out).optimize(n=5, seed=3), model.optimize(n=5, seed=3))


def test_optimize_refuses_what_it_cannot_design(design_run, tmp_path):
    model, _ = design_run
    with pytest.raises(gl.GenloomError, match="this run's property head predicts 'y', not 'a'; train a run with "
                                              "property='a'"):
        model.optimize("a")
    with pytest.raises(gl.GenloomError, match="n must be a whole number of at least 1; got 0"):
        model.optimize(n=0)
    with pytest.raises(gl.GenloomError, match="prior_weight must be a number of 0 or more; got -1"):
        model.optimize(prior_weight=-1)
    plain = gl.Model("vae", **TINY_VAE).fit(_design_table(), steps=2, **QUIET)
    with pytest.raises(gl.GenloomError, match="this run has no property head; train one with property='y'"):
        plain.optimize("y")
    with pytest.raises(gl.GenloomError, match="family 'autoregressive' has no design; families with one: vae"):
        gl.Model("autoregressive", n_layer=1, n_embd=16, n_head=2).fit(_design_table(), steps=2, **QUIET).optimize("y")
    with pytest.raises(gl.GenloomError, match="unknown codec option for image data: 'property'"):
        gl.Model("vae", property="y", **TINY_VAE).fit("digits", steps=2, **QUIET)


def test_fair_balanced_rows_share_the_positive_rate_where_plain_ones_do_not(biased_table_run, tmp_path):
    from genloom.cli import main

    def gap(rows):
        rates = (rows.income == "high").groupby(rows.sex).mean()
        return rates.max() - rates.min()
    model = gl.load(biased_table_run)
    plain = model.sample(1000, seed=0, progress=False)
    balanced = model.sample(1000, seed=0, fair_balance="sex", progress=False)  # the target on record: income
    sizes = balanced.sex.value_counts()
    assert gap(plain) > 0.1  # the model learnt part of its data's bias
    assert gap(balanced) <= 0.5 / sizes["F"] + 0.5 / sizes["M"]  # each group within half a row of the common rate
    assert (sizes / 1000 - plain.sex.value_counts(normalize=True)).abs().max() < 0.03  # each keeps its share
    assert main(["sample", biased_table_run, "-n", "1000", "--fair-balance", "sex", "--positive", "high", "-o",
                 str(tmp_path / "fair.csv"), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fair.csv"), balanced, check_dtype=False)
    provenance = json.loads((tmp_path / "fair.csv.provenance.json").read_text())
    assert provenance["fair_balance"] == "sex" and provenance["positive"] == "high"


@pytest.fixture(scope="module")
def moses_thousand(tmp_path_factory):
    path = tmp_path_factory.mktemp("moses") / "mols.smi"
    path.write_text("".join(f"{smiles}\n" for smiles in gl.load_data("moses-test").values[:1000]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def weight_designer(moses_thousand, tmp_path_factory) -> tuple[gl.Model, Path]:
    """A molecule VAE with a head for the weight and the parallel decoder, trained 300 steps, and its saved run;
    treat both as read-only."""
    out = tmp_path_factory.mktemp("runs") / "weight-vae"
    model = gl.Model("vae", property="weight", width=8, decoder="parallel").fit(moses_thousand, steps=300, out=out,
                                                                                 **QUIET)
    return model, out


def test_a_molecule_vae_designs_molecules_toward_a_property_it_predicts(weight_designer):
    model, run = weight_designer
    assert model.codec.tokenizer == "selfies" and model.ema_net.config.latent_dim == 64  # the molecule defaults
    assert model.record["final_metrics"]["property_r2"] > 0.5  # measured: 0.8
    drawn = model.sample(100, seed=0, progress=False)
    assert np.mean([canonical(smiles) is not None for smiles in drawn]) > 0.95  # SELFIES: molecules all
    higher, lower = model.optimize("weight", n=40), model.optimize("weight", n=40, maximize=False)
    estimate = "weight (the model's estimate)"
    assert list(higher.columns) == ["smiles", "weight", estimate]
    assert higher["weight"].is_monotonic_decreasing and lower["weight"].is_monotonic_increasing  # RDKit's, best first
    assert higher[estimate].mean() > lower[estimate].mean() + 20  # measured: 319 and 282
    assert higher["weight"].mean() > lower["weight"].mean() + 40  # RDKit's weights too (measured: 484 and 392)
    pd.testing.assert_frame_equal(gl.load(run).optimize("weight", n=5, seed=3), model.optimize("weight", n=5, seed=3))
    with pytest.raises(gl.GenloomError, match="temperature draws an autoregressive decoder's tokens; this VAE "
                                              "decodes each design to its mean"):
        model.optimize("weight", n=5, temperature=0.5)


def test_a_molecule_vae_saved_before_the_autoregressive_decoder_loads_as_it_was(moses_thousand, tmp_path):
    model = gl.Model("vae", width=4, decoder="parallel").fit(moses_thousand, steps=2, out=tmp_path / "run", **QUIET)
    config_file = tmp_path / "run" / "config.json"
    record = json.loads(config_file.read_text())
    for option in ("decoder", "kl_warmup", "word_dropout", "free_bits"):  # what such a run's record lacks
        del record["family_options"][option]
    config_file.write_text(json.dumps(record))
    loaded = gl.load(tmp_path / "run")
    assert loaded.ema_net.config.decoder == "parallel" and loaded.ema_net.config.kl_warmup == 0
    assert loaded.sample(5, seed=2, progress=False) == model.sample(5, seed=2, progress=False)


def test_the_default_molecule_vae_reads_its_tokens_and_draws_its_designs(moses_thousand, weight_designer, tmp_path):
    parallel = weight_designer[0]  # the same molecules, steps and head, each token decoded on its own
    model = gl.Model("vae", property="weight", width=8).fit(moses_thousand, steps=300, out=tmp_path / "run", **QUIET)
    config = model.ema_net.config
    assert (config.decoder, config.kl_warmup) == ("autoregressive", 0.3)  # the molecule defaults
    # held out, reading the tokens before each one explains the molecules far better (measured: -66 against -79 nats)
    assert model.record["final_metrics"]["elbo"] > parallel.record["final_metrics"]["elbo"] + 6
    cool, warm = (model.optimize("weight", n=200, temperature=t) for t in (0.3, 1.0))
    assert len(cool) == 200 and cool["smiles"].nunique() < warm["smiles"].nunique()  # a cooler draw repeats more
    pd.testing.assert_frame_equal(gl.load(tmp_path / "run").optimize("weight", n=5, seed=3, temperature=0.5),
                                  model.optimize("weight", n=5, seed=3, temperature=0.5))


# -- signals -------------------------------------------------------------------------------------


def _low_share(wave, rate=8000, split_hz=800):
    """The share of a recording's energy below `split_hz`: near 1 for the low tone (300 Hz), near 0 for the high."""
    energy = np.abs(np.fft.rfft(wave)) ** 2
    return energy[:int(split_hz * len(wave) / rate)].sum() / energy.sum()


def test_a_conditional_diffusion_model_says_each_tone_at_its_pitch(signal_run):
    model = gl.load(signal_run)
    samples = model.sample(20, labels=["low"] * 10 + ["high"] * 10, seed=3, progress=False)
    assert samples.rate == 8000 and {len(wave) for wave in samples.waves} == {2048}
    shares = np.array([_low_share(wave) for wave in samples.waves])
    assert (shares[:10] > 0.5).mean() >= 0.8 and (shares[10:] < 0.5).mean() >= 0.8
    untrained = gl.Model("diffusion", width=8, timesteps=100, conditional=True).fit(
        model.record["data"]["source"]["source"], steps=1, codec_options={"mels": 16}, progress=False)
    noise = untrained.sample(20, labels=["low"] * 20, seed=3, progress=False)
    assert (np.array([_low_share(wave) for wave in noise.waves]) > 0.5).mean() < 0.5  # untrained: not the tone


@pytest.mark.parametrize("family, options", [("vae", {"latent_dim": 4, "width": 8}),
                                             ("gan", {"latent_dim": 8, "width": 8}),
                                             ("autoregressive", {"n_layer": 1, "n_embd": 32, "n_head": 2})])
def test_every_family_trains_on_recordings_and_samples_them_at_their_rate(tones, family, options):
    model = gl.Model(family, conditional=True, **options).fit(tones, steps=2, batch_size=8, codec_options={"mels": 8},
                                                              progress=False)
    samples = model.sample(3, labels="low", progress=False)
    assert len(samples) == 3 and samples.rate == 8000 and samples.waves[0].shape == (2048,)


def test_the_vaes_loss_falls_on_waveforms(tones, tmp_path):
    gl.Model("vae", latent_dim=4, width=8).fit(tones, steps=40, batch_size=16, lr=1e-2, out=tmp_path / "run",
                                               log_every=5, codec_options={"representation": "waveform"},
                                               progress=False)
    losses = [line["loss"] for line in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
              if "loss" in line]
    assert losses[-1] < 0.5 * losses[0]


# -- next-state prediction (condition_on) --------------------------------------------------------------


def test_a_model_given_the_state_makes_both_outcomes_of_a_fork_and_the_one_elsewhere(dynamics_run):
    model = gl.load(dynamics_run)
    states = pd.DataFrame({"x": [0.0] * 200 + [0.7] * 200, "action": [0.0] * 200 + [1.0] * 200})
    made = model.sample(conditions=states, seed=1, progress=False)
    assert list(made.columns) == ["next_x"] and len(made) == 400
    fork, free = made.next_x[:200].to_numpy(), made.next_x[200:].to_numpy()
    left, right = (np.abs(fork + 0.8) < 0.3).mean(), (np.abs(fork - 0.8) < 0.3).mean()
    assert left > 0.3 and right > 0.3 and left + right > 0.8  # both modes, little between them
    assert abs(free.mean() - 0.8) < 0.1 and free.std() < 0.15  # 0.7 + a tenth of the action, one mode


def test_sampling_a_model_given_rows_needs_them_one_row_each(dynamics_run, trained_run):
    model = gl.load(dynamics_run)
    with pytest.raises(gl.GenloomError, match=r"pass them, one row per sample \(conditions=<a DataFrame"):
        model.sample(5, progress=False)
    with pytest.raises(gl.GenloomError, match="n is 5 but the conditions hold 2 rows: one sample is made for each"):
        model.sample(5, conditions=pd.DataFrame({"x": [0, 1], "action": [0, 0]}), progress=False)
    with pytest.raises(gl.GenloomError, match="the conditions lack column 'action'; this model generates next_x "
                                              "given x, action"):
        model.sample(conditions=pd.DataFrame({"x": [0.0]}), progress=False)
    assert len(model.sample(4, conditions={"x": 0.0, "action": 0.5}, progress=False)) == 4  # one row, repeated
    with pytest.raises(gl.GenloomError, match="a table of conditions is for a model trained with condition_on"):
        gl.load(trained_run).sample(2, conditions=pd.DataFrame({"x": [0]}), progress=False)
    with pytest.raises(gl.GenloomError, match="the conditions hold no rows: give one row for each sample"):
        model.sample(conditions=pd.DataFrame({"x": [], "action": []}), progress=False)
    with pytest.raises(gl.GenloomError, match="labels and fair_balance do not apply: leave them out"):
        model.sample(conditions={"x": 0.0, "action": 0.5}, labels=[1], progress=False)
    with pytest.raises(gl.GenloomError, match="conditions are a DataFrame of the given columns .*; got list"):
        model.sample(conditions=[0.0, 0.5], progress=False)
    with pytest.raises(gl.GenloomError, match="the conditions do not make a table"):
        model.sample(conditions={"x": [0.0, 1.0], "action": [0.5]}, progress=False)
    with pytest.raises(gl.GenloomError, match="this model generates rows given the values of other columns"):
        model.encode(pd.DataFrame({"next_x": [0.1]}))  # its latent tools need the given columns too


def test_only_a_family_that_reads_given_columns_takes_them(tmp_path):
    with pytest.raises(gl.GenloomError, match="family 'gan' cannot be given columns \\(condition_on\\); families "
                                              "that can: vae, diffusion"):
        gl.Model("gan").fit(forked_transitions(200), steps=1, codec_options={"condition_on": ["x"]}, progress=False)
    with pytest.raises(gl.GenloomError, match="a vae given columns \\(condition_on\\) is conditioned on them, not on "
                                              "class labels: drop --conditional"):
        gl.Model("vae", condition_on=["x"], conditional=True).fit(forked_transitions(200), steps=1, progress=False)


def test_a_vae_given_the_state_makes_both_outcomes_of_a_fork_and_the_one_elsewhere():
    """A conditional VAE of next_x given (x, action): its code picks the side of the fork."""
    model = gl.Model("vae", condition_on=["x", "action"]).fit(forked_transitions(), steps=600, lr=3e-3, **QUIET)
    states = pd.DataFrame({"x": [0.0] * 200 + [0.7] * 200, "action": [0.0] * 200 + [1.0] * 200})
    made = model.sample(conditions=states, seed=1, progress=False)
    fork, free = made.next_x[:200].to_numpy(), made.next_x[200:].to_numpy()
    left, right = (np.abs(fork + 0.8) < 0.3).mean(), (np.abs(fork - 0.8) < 0.3).mean()
    assert left > 0.2 and right > 0.2
    assert abs(free.mean() - 0.8) < 0.15 and free.std() < 0.1  # a marginal (conditions unread) spreads to 0.5
    with pytest.raises(gl.GenloomError, match="this model generates rows given the values of other columns"):
        model.sample(3, progress=False)


def test_evaluating_a_model_given_rows_scores_them_with_the_rows_they_were_made_for(dynamics_run, tmp_path):
    run = shutil.copytree(dynamics_run, tmp_path / "run")
    scores = gl.evaluate(gl.load(run), forked_transitions(), progress=False)  # in-memory data: given again
    # the rows made for the training rows' states, judged with those states: near the real rows' own quality
    assert scores["quality"] > scores["quality_real_train"] - 0.05 and scores["detection_auc"] < 0.7


def test_a_table_run_keeps_the_weights_of_its_best_validation(tmp_path, monkeypatch, capsys):
    from safetensors.torch import load_file

    from genloom.cli import main
    from genloom.families.vae import VAE

    scripted_validations(monkeypatch, VAE)  # the first validation (step 10) is the best
    main(["train", str(PENGUINS), "--family", "vae", "--steps", "40", "--eval-every", "10", "--eval-batches", "1",
          "--latent-dim", "4", "--width", "8", "--out", str(tmp_path / "r"), "--quiet"])
    kept = "the weights of step 10, the best validation loss (1; the last 4)"
    assert f"sampling from {kept}" in capsys.readouterr().out
    assert gl.load(tmp_path / "r").record["best_weights"] == kept
    assert kept in (tmp_path / "r" / "report.html").read_text()
    written, best = (load_file(tmp_path / "r" / name) for name in ("ema.safetensors", "best.safetensors"))
    assert written.keys() == best.keys() and all(torch.equal(written[k], best[k]) for k in best)
