import pytest
import torch

from genloom.data.table_layout import TableLayout
from genloom.layout import Span
from genloom.nets.mlp import TableDenoiser
from genloom.nets.unet import timestep_embedding

SPANS = (Span("continuous", 1), Span("continuous", 1), Span("category", 3))


def row_by_row(denoiser: TableDenoiser, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None):
    """The denoiser's answer computed as its docstring says, each row's embedding through the whole MLP."""
    embedding = denoiser.time(timestep_embedding(t, denoiser.embedding_dim))
    if denoiser.label is not None:
        embedding = embedding + denoiser.label(labels)
    if denoiser.condition is not None:
        embedding = embedding + denoiser.condition(labels)
    return denoiser.net(x, embedding)


@pytest.mark.parametrize("steps", ["one for all rows", "one per row"])
@pytest.mark.parametrize("given", ["nothing", "a class", "condition columns"])
def test_the_denoiser_shares_the_embeddings_work_and_answers_as_row_by_row(steps, given):
    torch.manual_seed(0)
    layout = TableLayout((5,), spans=SPANS, num_classes=4 if given == "a class" else 0,
                         condition_width=3 if given == "condition columns" else 0)
    denoiser = TableDenoiser(layout, width=4, num_classes=layout.num_classes).eval()
    x = torch.randn(64, 5)
    t = torch.full((64,), 500) if steps == "one for all rows" else torch.randint(0, 1000, (64,))
    labels = {"nothing": None, "a class": torch.randint(0, 5, (64,)),
              "condition columns": torch.randn(64, 3)}[given]
    expected = row_by_row(denoiser, x, t, labels)
    assert torch.allclose(denoiser(x, t, labels), expected, atol=1e-5)
    # the shares are per row: another row's t or label would change the answer
    other = denoiser(x, (t + 250) % 1000, labels)
    assert (other - expected).abs().max() > 1e-2
