import pytest
import torch

import genloom as gl
from genloom.families.configs import TokenSampling
from genloom.families import token_batch
from genloom.families.token_batch import TokenBatch
from tests.families.conftest import tiny_transformer, token_prompt

GREEDY = TokenSampling(temperature=0)


def _alone(net, prompt: torch.Tensor, limit: int) -> list[int]:
    with torch.no_grad():
        return [int(t) for t in TokenBatch(net, GREEDY, torch.Generator()).join(prompt, limit)]


def test_one_row_draws_what_generate_draws_with_the_same_generator(text_run):
    model = gl.load(text_run)
    family, prompt = model.ema_net, model.codec.encode("ROMEO:")
    sampling = TokenSampling(temperature=0.9, top_k=20)
    made = family.generate(prompt[None], 40, sampling, torch.Generator().manual_seed(3))
    wanted = [int(t) for t in made]
    batch = family.token_batch(sampling, torch.Generator().manual_seed(3))
    assert [int(t) for t in batch.join(prompt, 40)] == wanted


def test_rows_read_in_turn_advance_the_batch_together_and_leave_when_done():
    """Reading a row with no token waiting runs one step for every row; the others' tokens wait. A row that runs
    out, or whose reader closes it, leaves at the next step. Greedy rows, joined at different steps past the
    context, are what each gives alone."""
    net = tiny_transformer(rope=True)
    batch = TokenBatch(net, GREEDY, torch.Generator())
    first = batch.join(token_prompt(4, 1), 30)
    with torch.no_grad():
        head = [int(next(first)) for _ in range(3)]
        second, third = batch.join(token_prompt(20, 2), 25), batch.join(token_prompt(1, 3), 5)
        assert batch.rows == 3
        rest = {"second": [], "third": []}
        for _ in range(5):
            rest["second"].append(int(next(second)))
        third_tokens = [int(t) for t in third]  # its five were made while the second was read
        assert batch.rows == 2
        second.close()
        tail = [int(t) for t in first]
    assert batch.rows == 0
    assert head + tail == _alone(net, token_prompt(4, 1), 30)
    assert rest["second"] == _alone(net, token_prompt(20, 2), 5)
    assert third_tokens == _alone(net, token_prompt(1, 3), 5)


def test_a_batch_emptied_starts_again_with_the_next_row():
    net = tiny_transformer(rope=False)
    batch = TokenBatch(net, GREEDY, torch.Generator())
    with torch.no_grad():
        assert len(list(batch.join(token_prompt(3, 1), 4))) == 4 and batch.rows == 0
        assert [int(t) for t in batch.join(token_prompt(6, 2), 7)] == _alone(net, token_prompt(6, 2), 7)


@pytest.mark.parametrize("limit", [0, -1])
def test_a_row_of_no_tokens_is_refused_by_the_text_batch(text_run, limit):
    with pytest.raises(gl.GenloomError, match="max_tokens must be a whole number of at least 1"):
        gl.load(text_run).text_batch().join("ROMEO:", limit)


def test_a_row_closed_before_it_is_read_leaves_the_batch(text_run):
    """A server's client that leaves before its first token: its stream is closed unread, and its row goes."""
    model = gl.load(text_run)
    batch = model.text_batch(temperature=0)
    staying, leaving = batch.join("ROMEO:", max_tokens=12), batch.join("JULIET:", max_tokens=200)
    leaving.close()
    assert batch.rows == 1
    assert "".join(staying) == model.generate("ROMEO:", max_tokens=12, temperature=0) and batch.rows == 0


def test_a_long_prompt_joined_is_penalised_for_all_of_its_tokens():
    """A repetition penalty looks at the whole prompt, not only the window the cache keeps: a prompt longer than
    the context, joined to a running batch, draws what it draws alone."""
    net = tiny_transformer(rope=True)
    sampling = TokenSampling(temperature=0, repetition_penalty=3.0)
    with torch.no_grad():
        alone = [int(t) for t in TokenBatch(net, sampling, torch.Generator()).join(token_prompt(30, 5), 8)]
        batch = TokenBatch(net, sampling, torch.Generator())
        first = batch.join(token_prompt(3, 1), 20)
        next(first)
        joined = [int(t) for t in batch.join(token_prompt(30, 5), 8)]
    assert joined == alone


def test_a_failed_step_fails_every_row_after_it(monkeypatch):
    """A step that fails after the network ran leaves the cache a token ahead of the columns: no row may go on."""
    net = tiny_transformer(rope=False)
    batch = TokenBatch(net, TokenSampling(), torch.Generator())
    first, second = batch.join(token_prompt(3, 1), 5), batch.join(token_prompt(4, 2), 5)
    next(first)
    monkeypatch.setattr(token_batch, "draw_next", lambda *args: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(RuntimeError, match="out of memory"):
        next(first)
    monkeypatch.undo()
    next(second)  # its first token was made by the step before the failure
    with pytest.raises(RuntimeError, match="out of memory"):
        next(second)
