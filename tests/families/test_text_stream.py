"""Generated tokens become text as they come, without ever taking a piece back."""
import torch

import genloom as gl
from genloom.data.text_codec import TextCodec
from genloom.families.text_stream import SharedTokens, TextStream, stop_prefix_length


def _pieces(codec, text, stop=()):
    tokens = (torch.tensor([i]) for i in codec.encode(text).tolist())
    return list(TextStream(tokens, codec.decode, codec.end_token, list(stop)))


def test_stop_strings_never_leak_into_the_text():
    codec = TextCodec().fit(gl.Dataset("text", "hello JULIET: ROMEO:\n\nxyz", "t"))
    pieces = _pieces(codec, "hel\n\nROMEO: h", ["\n\n"])
    assert "".join(pieces) == "hel" and all("\n" not in p for p in pieces)
    assert "".join(_pieces(codec, "hello JULIET: h", ["JULIET:", "xyz"])) == "hello "
    assert "".join(_pieces(codec, "hello JUL", ["JULIET:"])) == "hello JUL"  # flushed at the end
    assert _pieces(codec, "hello") == ["h", "e", "l", "l", "o"]  # without stop strings, a piece per token


def test_streaming_bpe_waits_for_whole_characters():
    codec = TextCodec("bpe", vocab_size=260).fit(gl.Dataset("text", "abc " * 50, "t"))
    pieces = _pieces(codec, "ab東京 c")
    assert "".join(pieces) == "ab東京 c" and not any("\ufffd" in p for p in pieces)


def test_generation_ends_at_the_end_token():
    codec = TextCodec().fit(gl.Dataset("text", "abcx", "t"))
    end = int(codec.encode("x")[0])  # as <|endoftext|> ends a GPT-2 generation
    tokens = (torch.tensor([i]) for i in codec.encode("abxcc").tolist())
    assert "".join(TextStream(tokens, codec.decode, end, [])) == "ab"


def test_a_stream_reports_its_tokens_and_why_it_ended():
    codec = TextCodec().fit(gl.Dataset("text", "abcx", "t"))
    end = int(codec.encode("x")[0])

    def stream(text, stop=()):
        tokens = (torch.tensor([i]) for i in codec.encode(text).tolist())
        finished = TextStream(tokens, codec.decode, end, list(stop))
        return "".join(finished), finished.tokens_generated, finished.finish_reason

    assert stream("abc") == ("abc", 3, "length")  # ran out of tokens: max_tokens reached
    assert stream("abxcc") == ("ab", 3, "stop")  # the end token counts as generated
    assert stream("abcab", stop=["ca"]) == ("ab", 4, "stop")


def test_the_held_back_text_is_the_longest_start_of_a_stop_string():
    assert stop_prefix_length("hello JUL", ["JULIET:"]) == 3
    assert stop_prefix_length("hello", ["JULIET:"]) == 0
    assert stop_prefix_length("ab", ["b", "abc"]) == 2


def test_shared_tokens_advance_the_batch_only_when_a_row_needs_it():
    made = []

    def batch():
        for step in range(4):
            made.append(step)
            yield torch.tensor([10 + step, 20 + step])

    shared = SharedTokens(batch(), rows=2)
    first, second = shared.row(0, limit=4), shared.row(1, limit=2)
    assert int(next(first)) == 10 and made == [0]
    assert [int(t) for t in second] == [20, 21] and made == [0, 1]  # row 1's second token made the second step
    assert [int(t) for t in first] == [11, 12, 13] and made == [0, 1, 2, 3]


def test_a_stream_decodes_each_token_once_and_ends_with_the_whole_decode():
    """Byte-level ids in any order, broken characters included: the pieces join to the decode of all the ids, and
    only the tokens since the text last ended on a whole character are decoded again (not every token so far)."""
    codec = TextCodec("bpe", vocab_size=300).fit(gl.Dataset("text", "abc 東京 déjà vu " * 40, "t"))
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = torch.randint(300, (60,), generator=generator).tolist()
        decoded_lengths = []

        def decode(part, lengths=decoded_lengths):
            lengths.append(len(part))
            return codec.decode(part)
        pieces = list(TextStream((torch.tensor([i]) for i in ids), decode, None, []))
        assert "".join(pieces) == codec.decode(ids)
        assert max(decoded_lengths) < 20  # broken characters hold a few tokens back, not all 60 (seeded)
    long_text = "déjà vu 東京 " * 40
    lengths = []
    list(TextStream((torch.tensor([i]) for i in codec.encode(long_text).tolist()),
                    lambda part: lengths.append(len(part)) or codec.decode(part), None, []))
    assert max(lengths) <= 3


def test_a_stream_that_stops_or_is_closed_closes_its_tokens():
    """A stop string, the end token or close(): the generator of tokens is closed at once (a row of a running
    batch then leaves it), not when the stream is collected."""
    codec = TextCodec().fit(gl.Dataset("text", "hello JULIET:", "t"))
    closed = []

    def tokens(text):
        try:
            yield from (torch.tensor([i]) for i in codec.encode(text).tolist())
        finally:
            closed.append(text)

    stopped = TextStream(tokens("hel:lo"), codec.decode, codec.end_token, [":"])
    assert "".join(stopped) == "hel" and closed == ["hel:lo"]
    reading = TextStream(tokens("hello"), codec.decode, codec.end_token, [])
    assert next(reading) == "h" and closed == ["hel:lo"]
    reading.close()
    assert closed == ["hel:lo", "hello"] and next(reading, None) is None
