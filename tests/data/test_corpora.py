import json

import pytest

import genloom as gl


def test_builtin_shakespeare_is_nanogpts_corpus():
    data = gl.load_data("shakespeare")
    assert data.kind == "text" and len(data) == 1_115_394 and data.values.startswith("First Citizen:")


def test_txt_file_folder_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    assert gl.load_data(tmp_path / "a.txt").values == "alpha\n"
    assert gl.load_data(tmp_path).values == "alpha\n\n\nbeta\n"
    (tmp_path / "c.jsonl").write_text(json.dumps({"body": "one"}) + "\n\n" + json.dumps({"body": "two"}) + "\n")
    assert gl.load_data(tmp_path / "c.jsonl", text_field="body").values == "one\n\ntwo"


def test_non_utf8_names_the_byte_offset(tmp_path):
    (tmp_path / "x.txt").write_bytes("café".encode("utf-8") + b" \xff\xfe rest")
    with pytest.raises(gl.GenloomError, match=r"not valid utf-8: byte 0xff at offset 6; .*--encoding.*--errors replace"):
        gl.load_data(tmp_path / "x.txt")
    assert gl.load_data(tmp_path / "x.txt", errors="replace").values == "café \ufffd\ufffd rest"
    assert gl.load_data(tmp_path / "x.txt", encoding="latin-1").values.endswith("ÿþ rest")
    with pytest.raises(gl.GenloomError, match="unknown text encoding 'klingon'"):
        gl.load_data(tmp_path / "x.txt", encoding="klingon")


@pytest.mark.parametrize("content, message", [
    ("", "holds no text"),
    ("  \n\n ", "holds no text"),
])
def test_empty_corpus(tmp_path, content, message):
    (tmp_path / "e.txt").write_text(content)
    with pytest.raises(gl.GenloomError, match=message):
        gl.load_data(tmp_path / "e.txt")


def test_bad_jsonl(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(gl.GenloomError, match="b.jsonl, line 2: not JSON"):
        gl.load_data(tmp_path / "b.jsonl")
    (tmp_path / "f.jsonl").write_text('{"body": "ok"}\n')
    with pytest.raises(gl.GenloomError, match="line 1: no text field 'text'"):
        gl.load_data(tmp_path / "f.jsonl")
