"""Preference pairs: a .jsonl of prompt, chosen and rejected, and the one-line errors of files that are not one."""
import pytest

import genloom as gl
from genloom.data.preferences import PreferencePair, preference_pairs, read_preferences


def test_pairs_are_read_with_an_optional_prompt(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"prompt": "ROMEO:", "chosen": " Good night!", "rejected": " zzz"}\n\n'
                    '{"chosen": "CCO", "rejected": "C"}\n', encoding="utf-8")
    assert read_preferences(path) == [PreferencePair("ROMEO:", " Good night!", " zzz"), PreferencePair("", "CCO", "C")]


@pytest.mark.parametrize("content, message", [
    ("", "holds no preference pairs; write one {\"prompt\", \"chosen\", \"rejected\"} object per line"),
    ('{"prompt": "a", "chosen": "b"}\n', "record 1: no 'rejected' string"),
    ('{"chosen": "b", "rejected": "c"}\n{"prompt": 3, "chosen": "b", "rejected": "c"}\n', "record 2: no 'prompt'"),
    ('{"chosen": "b", "rejected": "c"}\nnot json\n', "line 2: not JSON"),
    ('["b", "c"]\n', "record 1: not an object"),
])
def test_files_that_are_not_preference_pairs_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "prefs.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(gl.GenloomError, match=message.replace("(", r"\(").replace("{", r"\{")) as error:
        read_preferences(path)
    assert "\n" not in str(error.value)


def test_preferences_must_be_a_jsonl_file(tmp_path):
    with pytest.raises(gl.GenloomError, match=r"prefs.csv: preferences are a .jsonl file"):
        read_preferences(tmp_path / "prefs.csv")
    with pytest.raises(gl.GenloomError, match="the pairs holds no preference pairs"):
        preference_pairs([], "the pairs")
