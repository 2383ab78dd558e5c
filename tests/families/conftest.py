"""Helpers shared by the tests of the token rows and batches: a tiny transformer whose next token depends on its
whole window, and seeded prompts."""
import torch

from genloom.data.text_layout import TextLayout
from genloom.nets import build_backbone

TOKEN_LAYOUT = TextLayout((), vocab_size=40)
CONTEXT = 12


def tiny_transformer(rope: bool):
    torch.manual_seed(0)
    net = build_backbone("causal", TOKEN_LAYOUT, n_layer=2, n_head=2, n_embd=16, block_size=CONTEXT,
                         rope=rope).eval()
    with torch.no_grad():  # large weights: the next token then depends on the whole window, so a wrong one shows
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    return net


def token_prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(TOKEN_LAYOUT.vocab_size, (length,), generator=torch.Generator().manual_seed(seed))
