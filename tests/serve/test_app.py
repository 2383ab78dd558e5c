"""genloom's own endpoints: what a run is, its samples in each format (the same samples the Python API gives for
the seed), scores, interpolation, the studio page, and a one-line JSON error with the right status for each
kind of bad request."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient
import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import genloom as gl
from genloom.errors import GenloomError
from genloom.serve.app import create_app
from genloom.serve.catalogue import RunCatalogue
from genloom.serve.media import MEDIA

from .conftest import client_of, penguins


def test_runs_are_listed_and_described(client):
    runs = {run["name"]: run for run in client.get("/v1/runs").json()["runs"]}
    assert {name: (run["family"], run["kind"]) for name, run in runs.items()} == {
        "digits": ("vae", "image"), "shakespeare": ("autoregressive", "text"), "penguins": ("vae", "table"),
        "diffusion": ("diffusion", "image")}
    assert "elbo" in runs["digits"]["final_metrics"]
    digits = client.get("/v1/runs/digits").json()
    assert digits["labels"] == [str(d) for d in range(10)] and digits["conditional"] and "decode" in digits["tools"]
    assert client.get("/v1/runs/penguins").json()["conditions"]["species"] == ["Adelie", "Gentoo", "Chinstrap"]
    assert client.get("/healthz").json()["status"] == "ok"


def _png_pixels(data: bytes) -> np.ndarray:
    array = np.asarray(Image.open(io.BytesIO(data)))
    return array[..., None] if array.ndim == 2 else array


def test_image_samples_are_the_seeds_samples_in_every_format(client, served):
    expected = gl.load(served / "digits").sample(5, seed=3, labels="7", progress=False)
    grid = client.post("/v1/runs/digits/samples", json={"n": 5, "seed": 3, "labels": "7"})
    assert grid.headers["content-type"] == "image/png" and Image.open(io.BytesIO(grid.content)).size[0] > 8 * 2
    archive = client.post("/v1/runs/digits/samples", json={"n": 5, "seed": 3, "labels": "7", "format": "zip"})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        assert len(opened.namelist()) == 5
        assert np.array_equal(np.stack([_png_pixels(opened.read(name)) for name in opened.namelist()]), expected)
    listed = client.post("/v1/runs/digits/samples", json={"n": 5, "seed": 3, "labels": "7", "format": "json"}).json()
    assert np.array_equal(np.stack([_png_pixels(base64.b64decode(image)) for image in listed["images"]]), expected)


def test_table_and_text_samples_are_the_seeds_samples(client, served):
    expected = gl.load(served / "penguins").sample(20, seed=1, progress=False)
    csv = client.post("/v1/runs/penguins/samples", json={"n": 20, "seed": 1})
    assert csv.headers["content-type"].startswith("text/csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv.text)), expected, check_dtype=False)
    rows = client.post("/v1/runs/penguins/samples", json={"n": 20, "seed": 1, "format": "json"}).json()["rows"]
    pd.testing.assert_frame_equal(pd.DataFrame(rows), expected, check_dtype=False)
    gentoo = client.post("/v1/runs/penguins/samples", json={"n": 5, "conditions": {"species": "Gentoo"},
                                                             "format": "json"}).json()["rows"]
    assert {row["species"] for row in gentoo} == {"Gentoo"}
    texts = client.post("/v1/runs/shakespeare/samples", json={"n": 2, "seed": 4, "temperature": 0.8}).json()
    assert texts["texts"] == gl.load(served / "shakespeare").sample(2, seed=4, temperature=0.8, progress=False)


def test_every_sample_body_carries_its_provenance(client, served, tmp_path):
    """JSON bodies hold a provenance field whose digest `genloom provenance` checks; a CSV's is in a header; each
    PNG (grid or one of many) carries its chunk."""
    from genloom.data.provenance import check_provenance

    texts = client.post("/v1/runs/shakespeare/samples", json={"n": 2, "seed": 4}).json()
    record = texts["provenance"]
    assert (record["run"], record["family"], record["seed"], record["samples"]) == (
        "shakespeare", "autoregressive", 4, 2)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    assert check_provenance(tmp_path / "texts.json") == (record, True)
    texts["texts"][0] += "!"
    (tmp_path / "edited.json").write_text(json.dumps(texts))
    assert check_provenance(tmp_path / "edited.json") == (record, False)
    rows = client.post("/v1/runs/penguins/samples", json={"n": 3, "seed": 1, "format": "json"}).json()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    assert check_provenance(tmp_path / "rows.json")[1]
    csv = client.post("/v1/runs/penguins/samples", json={"n": 3, "seed": 1})
    assert json.loads(csv.headers["genloom-provenance"])["content_sha256"] == hashlib.sha256(csv.content).hexdigest()
    grid = client.post("/v1/runs/digits/samples", json={"n": 3, "seed": 3})
    (tmp_path / "grid.png").write_bytes(grid.content)
    assert check_provenance(tmp_path / "grid.png")[0]["grid"] == {"images": 3, "tile": [8, 8]}
    archive = client.post("/v1/runs/digits/samples", json={"n": 2, "seed": 3, "format": "zip"})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        (tmp_path / "one.png").write_bytes(opened.read(opened.namelist()[1]))
    assert check_provenance(tmp_path / "one.png")[0]["index"] == 1


def test_scores_are_the_models_log_likelihoods(client, served):
    rows = penguins().head(4)
    scored = client.post("/v1/runs/penguins/score", json={"examples": rows.to_dict(orient="records")}).json()
    np.testing.assert_allclose(scored["log_likelihood"], gl.load(served / "penguins").log_prob(rows), rtol=1e-5)
    assert scored["anomaly_score"] == [-value for value in scored["log_likelihood"]]
    images = gl.load_data("digits").values[:3]
    scored = client.post("/v1/runs/digits/score", json={"examples": _png_base64(images), "labels": [1, 2, 3]}).json()
    np.testing.assert_allclose(scored["log_likelihood"],
                               gl.load(served / "digits").log_prob(images, labels=[1, 2, 3]), rtol=1e-5)
    texts = ["ROMEO: good", "zzzzqqqq"]
    scored = client.post("/v1/runs/shakespeare/score", json={"examples": texts}).json()
    np.testing.assert_allclose(scored["log_likelihood"], gl.load(served / "shakespeare").log_prob(texts), rtol=1e-5)


def _png_base64(images: np.ndarray) -> list[str]:
    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buffer, format="PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return encoded


def test_a_diffusion_run_scores_by_its_denoising_error(client, served):
    images = gl.load_data("digits").values[:3]
    scored = client.post("/v1/runs/diffusion/score", json={"examples": _png_base64(images), "seed": 4}).json()
    assert scored["log_likelihood"] is None and scored["unit"] == "denoising error"
    np.testing.assert_allclose(scored["anomaly_score"],
                               gl.load(served / "diffusion").anomaly_scores(images, seed=4), rtol=1e-5)


def test_an_anomaly_detectors_run_answers_with_its_score_and_flags(tmp_path):
    rows = penguins()[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]]
    fitted = gl.AnomalyDetector(steps=20, contamination=0.1).fit(rows.iloc[:200], out=tmp_path / "detector")
    strange = pd.concat([rows.iloc[200:204], rows.iloc[[0]] * 3], ignore_index=True)  # a penguin three times too big
    with client_of(RunCatalogue([tmp_path])) as detector:
        scored = detector.post("/v1/runs/detector/score", json={"examples": strange.to_dict(orient="records")}).json()
    np.testing.assert_allclose(scored["anomaly_score"], fitted.decision_function(strange), rtol=1e-5)
    assert scored["anomaly"] == fitted.predict(strange).tolist() and scored["anomaly"][-1] == 1
    assert scored["threshold"] == fitted.threshold_ and scored["unit"] == "detector score"


def test_a_family_with_neither_likelihood_nor_anomaly_score_cannot_score(tmp_path):
    gl.Model("gan").fit("digits", steps=2, batch_size=16, out=tmp_path / "gan", progress=False)
    with client_of(RunCatalogue([tmp_path])) as gan:
        answer = gan.post("/v1/runs/gan/score", json={"examples": ["x"]})
    assert answer.status_code == 400 and answer.json()["error"]["message"] == (
        "family 'gan' has neither a likelihood nor an anomaly score: run 'gan' cannot score examples")


def test_interpolation_walks_between_two_seeds(client, served):
    frames = client.post("/v1/runs/digits/interpolate",
                         json={"from_seed": 0, "to_seed": 5, "frames": 4, "labels": "2", "format": "json"}).json()
    pixels = np.stack([_png_pixels(base64.b64decode(image)) for image in frames["images"]])
    assert np.array_equal(pixels, gl.load(served / "digits").interpolate(0, 5, 4, labels="2"))
    assert not np.array_equal(pixels[0], pixels[-1])


def test_the_studio_page_and_its_files_come_from_the_server_alone(client):
    page = client.get("/")
    assert page.status_code == 200 and "genloom studio" in page.text
    for asset in re.findall(r'(?:src|href)="(/studio/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200
        assert not re.search(r"https?://", client.get(asset).text)  # nothing fetched from a CDN
    assert client.get("/docs").status_code == 200 and "/v1/runs/{name}/samples" in client.get("/openapi.json").text


def test_the_report_is_served(client):
    assert "<html" in client.get("/v1/runs/digits/report").text.lower()


BAD_REQUESTS = [
    ("unknown run", "post", "/v1/runs/nobody/samples", {}, 404, "no run named 'nobody' is served"),
    ("n = 0", "post", "/v1/runs/digits/samples", {"n": 0}, 422, "n: Input should be greater than or equal to 1"),
    ("negative n", "post", "/v1/runs/digits/samples", {"n": -2}, 422, "n: Input should be greater than or equal"),
    ("n over the limit", "post", "/v1/runs/digits/samples", {"n": 5000}, 400, "at most 1024 samples a request"),
    ("a wrong type", "post", "/v1/runs/digits/samples", {"seed": "x"}, 422, "seed: Input should be a valid integer"),
    ("an unknown field", "post", "/v1/runs/digits/samples", {"samplr": "ddim"}, 422, "samplr: Extra inputs"),
    ("an unknown label", "post", "/v1/runs/digits/samples", {"labels": "cat"}, 400, "unknown label 'cat'"),
    ("labels for a table", "post", "/v1/runs/penguins/samples", {"labels": 1}, 400, "table models take no labels"),
    ("a condition on an unknown column", "post", "/v1/runs/penguins/samples", {"conditions": {"wings": "2"}}, 400,
     "unknown column 'wings' in the conditions"),
    ("a condition on an unknown value", "post", "/v1/runs/penguins/samples", {"conditions": {"species": "Emperor"}},
     400, "Emperor"),
    ("guidance on an unconditional run", "post", "/v1/runs/diffusion/samples", {"guidance": 3, "steps": 2}, 400,
     "guidance needs a conditional model"),
    ("a sampling option of another family", "post", "/v1/runs/digits/samples", {"temperature": 0.5}, 400,
     "family 'vae' takes no sampling options"),
    ("a format of another kind", "post", "/v1/runs/digits/samples", {"format": "csv"}, 400,
     "format 'csv' does not fit image samples; choose png, zip, json"),
    ("text completion of an image run", "post", "/v1/completions", {"model": "digits", "prompt": "a"}, 400,
     "run 'digits' makes image data; the completion endpoints serve text runs"),
    ("chat with an image run", "post", "/v1/chat/completions",
     {"model": "digits", "messages": [{"role": "user", "content": "a"}]}, 400, "makes image data"),
    ("an image that is not one", "post", "/v1/runs/digits/score", {"examples": ["bm90IGEgcG5n"], "labels": 1},
     400, "examples[0] is not a base64-encoded PNG or JPEG image"),
    ("a table row of other columns", "post", "/v1/runs/penguins/score", {"examples": [{"wings": 2}]}, 400,
     "the table lacks column 'species'"),
    ("no examples", "post", "/v1/runs/penguins/score", {"examples": []}, 422, "examples: List should have at least"),
    ("interpolating a family without a latent space", "post", "/v1/runs/shakespeare/interpolate", {}, 400,
     "family 'autoregressive' has no decode"),
    ("a text longer than the context", "post", "/v1/runs/shakespeare/score", {"examples": ["a" * 500]}, 400,
     "this model scores texts of 1 to 32 tokens"),
    ("max_tokens over the limit", "post", "/v1/completions", {"model": "shakespeare", "max_tokens": 10 ** 6}, 400,
     "generates at most 2048 (--max-tokens)"),
    ("a character the model never saw", "post", "/v1/completions", {"model": "shakespeare", "prompt": "\u20ac"},
     400, "characters not in the model's vocabulary"),
    ("an unknown route", "get", "/v2/nothing", None, 404, "Not Found"),
    ("a report of an unknown run", "get", "/v1/runs/nobody/report", None, 404, "no run named 'nobody'"),
]


@pytest.mark.parametrize("case, method, path, body, status, message", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_one_line_error(client, case, method, path, body, status, message):
    response = client.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and "\n" not in error["message"] and error["code"] == status


def test_invalid_json_is_a_422(client):
    response = client.post("/v1/runs/digits/samples", content=b"{n: 1", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["error"]["message"]


def test_a_body_over_the_limit_is_a_413(served):
    client = client_of(RunCatalogue([served]), max_body_bytes=1000)
    response = client.post("/v1/runs/penguins/score", json={"examples": ["x" * 2000]})
    assert response.status_code == 413 and "limit of 1,000 bytes" in response.json()["error"]["message"]
    chunked = client.post("/v1/runs/penguins/score", content=iter([b'{"examples": ["', b"x" * 2000, b'"]}']),
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413  # no content-length: counted as it arrives


def test_the_api_key_guards_v1_only(served):
    client = client_of(RunCatalogue([served]), api_key="sesame")
    assert client.get("/v1/runs").status_code == 401
    assert client.get("/v1/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "API key" in client.get("/v1/runs", headers={"X-API-Key": "sesam"}).json()["error"]["message"]
    assert client.get("/v1/runs", headers={"Authorization": "Bearer sesame"}).status_code == 200
    assert client.get("/v1/runs", headers={"X-API-Key": "sesame"}).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/").status_code == 200


def test_a_full_server_answers_429_with_retry_after(served):
    client = client_of(RunCatalogue([served]), max_concurrency=1)
    client.app.state.slots.take()  # the one slot is busy
    response = client.post("/v1/runs/digits/samples", json={"n": 1, "seed": 0})  # seeded: drawn alone, not pooled
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert "busy with 1 requests" in response.json()["error"]["message"]
    client.app.state.slots.give_back()
    assert client.post("/v1/runs/digits/samples", json={"n": 1, "seed": 0}).status_code == 200


def test_a_slow_request_is_a_504_and_its_slot_comes_back(served):
    client = client_of(RunCatalogue([served]), timeout_seconds=0.01)
    response = client.post("/v1/runs/diffusion/samples", json={"n": 64, "steps": 50, "sampler": "ddpm"})
    assert response.status_code == 504 and "--timeout" in response.json()["error"]["message"]
    deadline = time.time() + 60
    while client.app.state.slots.busy and time.time() < deadline:
        time.sleep(0.05)
    assert client.app.state.slots.busy == 0


def test_a_damaged_run_is_a_503_naming_it(served, tmp_path):
    shutil.copytree(served / "digits", tmp_path / "broken")
    (tmp_path / "broken" / "ema.safetensors").write_bytes(b"not tensors")
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"not tensors")
    shutil.copytree(served / "penguins", tmp_path / "unreadable")
    (tmp_path / "unreadable" / "config.json").write_text("{")
    client = client_of(RunCatalogue([tmp_path]))
    response = client.post("/v1/runs/broken/samples", json={"n": 1})
    assert response.status_code == 503 and "run 'broken' cannot be loaded" in response.json()["error"]["message"]
    listed = {run["name"]: run for run in client.get("/v1/runs").json()["runs"]}
    assert "damaged" in listed["unreadable"]["problem"]
    assert client.get("/v1/runs/unreadable").status_code == 503


def test_cors_only_for_the_origin_given(served):
    origin = {"Origin": "https://app.example"}
    assert "access-control-allow-origin" not in client_of(RunCatalogue([served])).get("/v1/runs", headers=origin).headers
    allowed = client_of(RunCatalogue([served]), cors_origin="https://app.example").get("/v1/runs", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"


def test_unseeded_requests_that_arrive_together_are_drawn_in_one_pass(live_server):
    """Eight clients at once: every one gets its own n samples, drawn in fewer passes than requests; a seeded
    request keeps its promise and is drawn alone."""
    before = httpx.get(f"{live_server}/healthz").json()["batching"]["samples"]

    def ask(n: int) -> list[dict]:
        response = httpx.post(f"{live_server}/v1/runs/penguins/samples", json={"n": n, "format": "json"}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["rows"]

    with ThreadPoolExecutor(8) as clients:
        answers = list(clients.map(ask, [1, 2, 3, 4, 5, 6, 7, 8]))
    assert [len(rows) for rows in answers] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert len({json.dumps(rows[0]) for rows in answers}) > 1  # not one row handed to everyone
    after = httpx.get(f"{live_server}/healthz").json()["batching"]["samples"]
    assert after["requests"] - before["requests"] == 8 and after["pools"] - before["pools"] < 8
    httpx.post(f"{live_server}/v1/runs/penguins/samples", json={"n": 3, "seed": 2}, timeout=60)
    assert httpx.get(f"{live_server}/healthz").json()["batching"]["samples"]["requests"] == after["requests"]


def test_molecule_samples_are_smiles_with_their_provenance(molecule_run):
    with TestClient(create_app(RunCatalogue([molecule_run]))) as molecules:
        name = Path(molecule_run).name
        expected = gl.load(molecule_run).sample(6, seed=2, progress=False)
        listed = molecules.post(f"/v1/runs/{name}/samples", json={"n": 6, "seed": 2}).json()
        assert listed["molecules"] == expected and listed["provenance"]["seed"] == 2
        lines = molecules.post(f"/v1/runs/{name}/samples", json={"n": 6, "seed": 2, "format": "smi"})
        assert lines.text.splitlines() == expected
        record = json.loads(lines.headers["genloom-provenance"])
        assert record["content_sha256"] == hashlib.sha256(lines.content).hexdigest()
        scores = molecules.post(f"/v1/runs/{name}/score", json={"examples": ["CCO", "c1ccccc1O"]}).json()
        np.testing.assert_allclose(scores["log_likelihood"], gl.load(molecule_run).log_prob(["CCO", "c1ccccc1O"]),
                                   atol=1e-3)
        wrong = molecules.post(f"/v1/runs/{name}/samples", json={"n": 2, "format": "png"})
        assert wrong.status_code == 400 and "choose json, smi" in wrong.text
        plain = molecules.post(f"/v1/runs/{name}/samples", json={"n": 6, "seed": 2, "epsilon": 0, "grammar": False})
        assert plain.json()["molecules"] == gl.load(molecule_run).sample(6, seed=2, progress=False, epsilon=0,
                                                                           grammar=False) != expected


def test_recordings_are_served_as_wav_files_or_their_values(signal_run):
    import soundfile

    with TestClient(create_app(RunCatalogue([signal_run]))) as client:
        name = Path(signal_run).name
        expected = gl.load(signal_run).sample(2, seed=2, labels="low", progress=False)
        values = client.post(f"/v1/runs/{name}/samples", json={"n": 2, "seed": 2, "labels": ["low"],
                                                               "format": "json"}).json()
        assert values["sample_rate"] == 8000
        np.testing.assert_allclose(values["signals"], np.stack(expected.waves), atol=1e-5)
        archive = client.post(f"/v1/runs/{name}/samples", json={"n": 2, "seed": 2, "labels": ["low"],
                                                                "format": "zip"})
        files = zipfile.ZipFile(io.BytesIO(archive.content))
        wave, rate = soundfile.read(io.BytesIO(files.read("sample-00001.wav")), dtype="float32")
        assert rate == 8000 and np.abs(wave - expected.waves[1]).max() < 1e-4
        assert json.loads(archive.headers["genloom-provenance"])["content_sha256"] == hashlib.sha256(
            archive.content).hexdigest()
    codec = gl.load(signal_run).codec  # what a scoring route reads: lists of numbers at the run's rate
    assert MEDIA["signal"].read_examples([[0.0, 0.5, -0.5]], codec).rate == 8000
    with pytest.raises(GenloomError, match="signal examples are lists of numbers, one list a signal"):
        MEDIA["signal"].read_examples(["a tone"], codec)
