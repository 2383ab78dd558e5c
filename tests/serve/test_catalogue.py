"""Which runs a server answers for, and how it keeps them: names cannot leave the served folders, memory is
bounded, and a run rewritten on disk is loaded again."""
from __future__ import annotations

import os
import shutil

import pytest

import genloom as gl
from genloom.serve.catalogue import RunCatalogue, UnknownRun


@pytest.mark.parametrize("name", ["..", "../digits", "digits/..", "/etc", ".hidden", "di gits", ""])
def test_names_that_would_leave_the_folder_are_unknown(served, name):
    with pytest.raises(UnknownRun, match="is served"):
        RunCatalogue([served]).path(name)


def test_a_symbolic_link_out_of_the_folder_is_not_served(served, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(served / "penguins", folder / "penguins")
    os.symlink(served / "digits", folder / "elsewhere")
    catalogue = RunCatalogue([folder])
    assert catalogue.names() == ["penguins"]
    with pytest.raises(UnknownRun):
        catalogue.path("elsewhere")


def test_runs_given_one_by_one_and_runs_added_to_a_folder_later(served, tmp_path):
    (tmp_path / "later").mkdir()
    shutil.copytree(served / "shakespeare", tmp_path / "later" / "shakespeare")
    catalogue = RunCatalogue([served / "digits", tmp_path / "later"])
    assert catalogue.names() == ["digits", "shakespeare"]
    shutil.copytree(served / "penguins", tmp_path / "later" / "penguins")
    assert catalogue.names() == ["digits", "penguins", "shakespeare"] and catalogue.summary("penguins").kind == "table"


def test_loaded_runs_are_bounded_and_shared(served):
    catalogue = RunCatalogue([served], max_loaded=2)
    first = catalogue.model("digits")
    assert catalogue.model("digits") is first  # cached
    catalogue.model("penguins")
    catalogue.model("digits")  # now the most recent
    catalogue.model("shakespeare")
    assert catalogue.loaded() == ["digits", "shakespeare"]  # penguins, least recently used, was dropped


def test_a_run_rewritten_on_disk_is_loaded_again(served, tmp_path):
    shutil.copytree(served / "digits", tmp_path / "digits")
    catalogue = RunCatalogue([tmp_path])
    before = catalogue.model("digits")
    gl.load(tmp_path / "digits").save(tmp_path / "digits")  # the run written again over itself
    for name in ("model.safetensors", "ema.safetensors"):
        os.utime(tmp_path / "digits" / name, ns=(1, 10 ** 18))
    assert catalogue.model("digits") is not before


def test_two_runs_of_one_name_and_no_runs_are_errors(served, tmp_path):
    shutil.copytree(served / "penguins", tmp_path / "digits")
    with pytest.raises(gl.GenloomError, match="two runs are named 'digits'"):
        RunCatalogue([served / "digits", tmp_path / "digits"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(gl.GenloomError, match="no runs in"):
        RunCatalogue([tmp_path / "empty"])
    with pytest.raises(gl.GenloomError, match="is not a folder"):
        RunCatalogue([tmp_path / "missing"])
