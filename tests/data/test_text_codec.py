import json

import pytest
import torch

import genloom as gl
from genloom.data.text_codec import TextCodec

CORPUS = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n" * 20


def _text(values=CORPUS):
    return gl.Dataset("text", values, "t")


def test_char_round_trip_is_exact():
    codec = TextCodec().fit(_text())
    ids = codec.encode(CORPUS)
    assert ids.dtype == torch.long and len(ids) == len(CORPUS)
    assert codec.decode(ids) == CORPUS
    assert codec.layout.vocab_size == len(set(CORPUS)) and codec.layout.kind == "text"
    assert codec.layout.start_token == codec.encode("\n").item()


def test_char_vocabulary_names_unknown_characters():
    codec = TextCodec().fit(_text())
    with pytest.raises(gl.GenloomError, match=r"characters not in the model's vocabulary: 'Z', '€'"):
        codec.encode("Z€ to be")


def test_bpe_round_trip_on_any_unicode_and_shorter_sequences():
    codec = TextCodec("bpe", vocab_size=300).fit(_text())
    text = "Whether 'tis nobler — naïve café, 東京 🙂"
    assert codec.decode(codec.encode(text)) == text
    assert len(codec.encode(CORPUS)) < len(CORPUS) / 2


def test_json_round_trip_and_tokenizer_file():
    for codec in (TextCodec().fit(_text()), TextCodec("bpe", vocab_size=280).fit(_text())):
        again = TextCodec.from_json(json.loads(json.dumps(codec.to_json())))
        assert again.layout == codec.layout
        assert torch.equal(again.encode(CORPUS[:200]), codec.encode(CORPUS[:200]))
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_str(codec.files()["tokenizer.json"])
    assert tokenizer.encode("to be").ids == codec.encode("to be").tolist()


def test_batch_decode_and_sample_files(tmp_path):
    codec = TextCodec().fit(_text())
    batch = torch.stack([codec.encode("to be"), codec.encode("or no")])
    assert codec.decode(batch) == ["to be", "or no"]
    codec.save_samples(["a b", "c\nd"], tmp_path / "s.txt")
    assert (tmp_path / "s.txt").read_text() == "a b\n\n-----\n\nc\nd\n"
    codec.save_samples(["a b"], tmp_path / "s.jsonl")
    assert json.loads((tmp_path / "s.jsonl").read_text()) == {"text": "a b"}


def test_bad_codec_options():
    with pytest.raises(gl.GenloomError, match="unknown tokenizer 'words'"):
        TextCodec("words")
    with pytest.raises(gl.GenloomError, match="more than the 256 bytes"):
        TextCodec("bpe", vocab_size=100)
    with pytest.raises(gl.GenloomError, match="take no labels"):
        TextCodec().fit(_text()).label_ids([1])
