"""Which SMILES tokens may come next: the string's syntax (Weininger 1988) as a mask over the vocabulary, so that a
sampled molecule closes every branch and ring it opens before it ends and puts no bond where no atom is (a string
that reaches the length limit first may still hold an open one: the grammar does not look ahead).

Half the invalid strings a short-trained model writes break this syntax (an unclosed ring, an unclosed branch),
the rest break chemistry (an aromatic ring RDKit cannot kekulise, an atom past its valence), which no mask this
simple catches. Written here because neither RDKit nor the tokenizers give a next-token mask; the rules are few:

- an atom may come anywhere;
- a bond only after an atom, a ring closure or a branch mark, never first or after another bond;
- a branch opens after an atom, a ring closure or a branch's close; it closes only when one is open and its
  last token is an atom, a ring closure or another close;
- a ring closure only after an atom, a ring closure, or a bond that follows one of those, and one that closes
  a ring only two atoms after it opened;
- the end only after an atom, a ring closure or a close, with every branch and ring closed; after it, only ends.

Tokens it does not know (a dot, a wildcard) are left free."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch

ROLES = ("end", "atom", "bond", "open", "close", "ring", "other")
END, ATOM, BOND, OPEN, CLOSE, RING, OTHER = range(len(ROLES))
START = len(ROLES)  # the role of the position before the first token

ATOM_TOKEN = re.compile(r"\[[^\]]+\]|Br|Cl|[BCNOSPFIbcnosp*]")
BOND_TOKEN = re.compile(r"[=#\-\\/:~]")
RING_TOKEN = re.compile(r"%\d{2}|\d")


def smiles_role(token: str, end_token: str) -> str:
    """What a SMILES token is to the syntax: end, atom, bond, open, close, ring or other."""
    if token == end_token:
        return "end"
    for role, pattern in (("atom", ATOM_TOKEN), ("bond", BOND_TOKEN), ("ring", RING_TOKEN)):
        if pattern.fullmatch(token):
            return role
    return {"(": "open", ")": "close"}.get(token, "other")


@dataclass(frozen=True)
class SmilesGrammar:
    """The syntax over a vocabulary whose i-th token has role `roles[i]` (ROLES' names)."""

    roles: tuple[str, ...]

    def __call__(self, prefix: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(B, vocab_size): the tokens that may follow each row of `prefix` (B, t), the tokens drawn so far; ids
        past the SMILES vocabulary (class and start tokens) never may."""
        role_of = torch.tensor([ROLES.index(role) for role in self.roles], device=prefix.device)
        roles = role_of[prefix]
        batch = len(prefix)
        last = roles[:, -1] if prefix.shape[1] else torch.full((batch,), START, device=prefix.device)
        before_last = roles[:, -2] if prefix.shape[1] > 1 else torch.full((batch,), START, device=prefix.device)
        depth = (roles == OPEN).sum(1) - (roles == CLOSE).sum(1)
        ring_ids = (role_of == RING).nonzero().flatten()
        ring_marks = prefix[:, :, None] == ring_ids  # (B, t, rings)
        ring_open = ring_marks.sum(1) % 2 == 1  # opened and not yet closed
        # atoms written since each ring's last mark: a ring closes two atoms on at the soonest (none: "C11", one:
        # "C1C1" would bond two atoms twice)
        atoms_so_far = torch.cat([roles.new_zeros(batch, 1), torch.cumsum(roles == ATOM, dim=1)], dim=1)
        positions = torch.arange(1, prefix.shape[1] + 1, device=prefix.device)[:, None]
        last_mark = (ring_marks * positions).amax(1) if prefix.shape[1] else ring_open.long()
        too_soon = ring_open & (atoms_so_far[:, -1:] - atoms_so_far.gather(1, last_mark) < 2)

        def follows(*roles_: int, of: torch.Tensor = last) -> torch.Tensor:
            return torch.isin(of, torch.tensor(roles_, device=prefix.device))

        bonded = follows(ATOM, RING) | (follows(BOND) & follows(ATOM, RING, of=before_last))
        may = {
            END: follows(ATOM, RING, CLOSE) & (depth == 0) & ~ring_open.any(1),
            ATOM: torch.ones(batch, dtype=torch.bool, device=prefix.device),
            BOND: follows(ATOM, RING, OPEN, CLOSE),
            OPEN: follows(ATOM, RING, CLOSE),
            CLOSE: follows(ATOM, RING, CLOSE) & (depth > 0),
            RING: bonded,
            OTHER: torch.ones(batch, dtype=torch.bool, device=prefix.device),
        }
        allowed = torch.zeros(batch, vocab_size, dtype=torch.bool, device=prefix.device)
        allowed[:, :len(self.roles)] = torch.stack([may[ROLES.index(role)] for role in self.roles], dim=1)
        allowed[:, ring_ids] &= ~too_soon
        ended = (roles == END).any(1)  # after its end, a string is padded with more ends
        allowed[ended] = False
        allowed[ended, :len(self.roles)] = role_of == END
        return allowed


def smiles_grammar(vocabulary: Sequence[str], end_token: str) -> SmilesGrammar:
    return SmilesGrammar(tuple(smiles_role(token, end_token) for token in vocabulary))
