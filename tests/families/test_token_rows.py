import pytest
import torch

from genloom.errors import GenloomError
from genloom.families.token_rows import TokenRows
from tests.families.conftest import tiny_transformer, token_prompt


class Alone:
    """A row as it goes alone: its own TokenRows, fed the same tokens."""

    def __init__(self, net, prompt: torch.Tensor):
        self.rows = TokenRows(net, prompt[None])

    def next_logits(self) -> torch.Tensor:
        return self.rows.next_logits()[0]


@pytest.mark.parametrize("rope", [True, False])
def test_rows_that_join_and_leave_get_the_logits_they_have_alone(rope):
    """Rows join between steps: prompts shorter than the columns so far, one longer (the others move right), one
    longer than the context; every row runs past the context (its window restarts at its own step); rows leave
    mid-way. At every step each row's logits are those it has alone."""
    net = tiny_transformer(rope)
    joins = {0: [(5, 1), (2, 2)], 3: [(9, 3)], 4: [(1, 4)], 7: [(30, 5)], 15: [(3, 6)]}  # step: (length, seed)
    leaves = {10: [1], 21: [0, 2]}  # step: positions of the rows leaving then
    members: list[Alone] = []
    rows = None
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for step in range(40):
            for position in leaves.get(step, []):
                keep = torch.ones(len(members), dtype=torch.bool)
                keep[position] = False
                rows.keep(keep)
                members.pop(position)
            for length, seed in joins.get(step, []):
                prompt = token_prompt(length, seed)
                if rows is None:
                    rows = TokenRows(net, prompt[None])
                else:
                    rows.join(prompt)
                members.append(Alone(net, prompt))
            logits = rows.next_logits()
            for row, member in enumerate(members):
                assert torch.allclose(logits[row], member.next_logits(), atol=1e-4), (step, row)
            token = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
            rows.append(token)
            for row, member in enumerate(members):
                member.rows.append(token[row:row + 1])
    assert len(members) == 3


def test_rows_leaving_take_their_columns_and_cache_slots_with_them():
    """Once the row with the longest prompt leaves, the filler columns and cache slots only it needed go: a batch
    that runs on while rows come and go stays as wide as its rows, not as its history."""
    net = tiny_transformer(rope=True)
    with torch.no_grad():
        rows = TokenRows(net, token_prompt(2, 0)[None])
        rows.next_logits()
        rows.append(torch.tensor([1]))
        rows.join(token_prompt(9, 1))
        assert rows.length == 9 and rows.cache.length == 8
        rows.keep(torch.tensor([True, False]))
        assert rows.length == 3 and rows.cache.length == 2 and rows.cache.padding is None
        alone = TokenRows(net, torch.cat([token_prompt(2, 0), torch.tensor([1])])[None])
        assert torch.allclose(rows.next_logits(), alone.next_logits(), atol=1e-5)


def test_columns_grow_past_the_room_given():
    net = tiny_transformer(rope=False)
    with torch.no_grad():
        rows = TokenRows(net, token_prompt(3, 0)[None], room=1)
        for token in range(5):
            rows.next_logits()
            rows.append(torch.tensor([token]))
    assert rows.history.tolist() == [token_prompt(3, 0).tolist() + [0, 1, 2, 3, 4]]


def test_prompts_of_different_lengths_need_the_cache():
    with pytest.raises(GenloomError, match="with the key/value cache only"):
        TokenRows(tiny_transformer(rope=False), torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]),
                  use_cache=False)

