"""A feature whose extra is missing says which `pip install` brings it, in one line."""
import sys

import pytest

from genloom.cli import main
from genloom.errors import GenloomError
from genloom.extras import require


def test_an_installed_module_is_returned():
    assert require("json", "none", "json").dumps([1]) == "[1]"


def test_a_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(GenloomError, match=r"^genloom serve needs the serve extra \(fastapi is missing\): "
                                           r"pip install 'genloom\[serve\]'$"):
        require("fastapi", "serve", "genloom serve")


def test_serve_without_its_extra_is_one_line(monkeypatch, capsys, trained_run):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", trained_run]) == 2
    assert capsys.readouterr().err == ("genloom: error: genloom serve needs the serve extra (uvicorn is missing): "
                                       "pip install 'genloom[serve]'\n")
