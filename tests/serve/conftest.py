"""A folder of served runs, one of each data kind, and clients of an app over it."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

import genloom as gl
from genloom.serve.app import create_app
from genloom.serve.catalogue import RunCatalogue
from genloom.serve.settings import ServeSettings

from tests.conftest import QUIET, TINY_VAE

PENGUINS = Path(__file__).resolve().parents[3] / "shared" / "data" / "tables" / "penguins.csv"


def penguins() -> pd.DataFrame:
    return pd.read_csv(PENGUINS).dropna().reset_index(drop=True)


@pytest.fixture(scope="session")
def served(tmp_path_factory, trained_run, text_run) -> Path:
    """digits (a conditional VAE), shakespeare (a character GPT), penguins (a table VAE) and an unconditional
    diffusion model on digits; treat as read-only."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copytree(trained_run, folder / "digits")
    shutil.copytree(text_run, folder / "shakespeare")
    gl.Model("vae", **TINY_VAE).fit(penguins(), steps=20, out=folder / "penguins", **QUIET)
    gl.Model("diffusion", width=8).fit("digits", steps=3, batch_size=16, out=folder / "diffusion", **QUIET)
    return folder


@pytest.fixture(scope="session")
def client(served) -> TestClient:
    with TestClient(create_app(RunCatalogue([served]))) as test_client:
        yield test_client


def client_of(catalogue: RunCatalogue, **settings) -> TestClient:
    return TestClient(create_app(catalogue, ServeSettings(**settings)))


@pytest.fixture(scope="session")
def live_server(served) -> str:
    """A real server on a free loopback port, in a thread, for clients that speak HTTP themselves."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(RunCatalogue([served])), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
