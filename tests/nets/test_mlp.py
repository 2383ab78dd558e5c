import pytest
import torch

from genloom.data.table_layout import TableLayout
from genloom.layout import Span
from genloom.nets.mlp import TableDenoiser
from genloom.nets.unet import timestep_embedding

SPANS = (Span("continuous", 1), Span("continuous", 1), Span("category", 3))


def row_by_row(denoiser: TableDenoiser, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None):
    """The denoiser's answer as its docstring defines it: each row's embedding concatenated to it, through the MLP."""
    embedding = denoiser.time(timestep_embedding(t, denoiser.embedding_dim))
    if denoiser.label is not None and labels is not None:
        embedding = embedding + denoiser.label(labels)
    if denoiser.condition is not None:
        embedding = embedding + denoiser.condition(labels)
    return denoiser.net(x, embedding)


def gradients(denoiser: TableDenoiser, answer: torch.Tensor) -> dict[str, torch.Tensor]:
    denoiser.zero_grad()
    answer.square().sum().backward()
    return {name: torch.zeros_like(parameter) if parameter.grad is None else parameter.grad.clone()
            for name, parameter in denoiser.named_parameters()}  # none: the answer does not use it


@pytest.mark.parametrize("steps", ["one for all rows", "one per row"])
@pytest.mark.parametrize("given", ["nothing", "a class", "no class to a class-conditional one", "condition columns"])
def test_the_denoiser_shares_the_embeddings_work_and_answers_as_row_by_row(steps, given):
    torch.manual_seed(0)
    classes = 4 if "class" in given else 0
    conditions = 3 if given == "condition columns" else 0
    layout = TableLayout((5,), spans=SPANS, num_classes=classes, condition_width=conditions)
    denoiser = TableDenoiser(layout, width=4, num_classes=classes)
    x = torch.randn(64, 5)
    t = torch.full((64,), 500) if steps == "one for all rows" else torch.randint(0, 1000, (64,))
    labels = {"nothing": None, "a class": torch.randint(0, 5, (64,)), "no class to a class-conditional one": None,
              "condition columns": torch.randn(64, 3)}[given]
    expected = row_by_row(denoiser, x, t, labels)
    for training in (True, False):  # the per-row path of training, the shared one of sampling on a CPU
        answer = denoiser.train(training)(x, t, labels)
        assert torch.allclose(answer, expected, atol=1e-5)
        for name, gradient in gradients(denoiser, answer).items():
            assert torch.allclose(gradient, gradients(denoiser, row_by_row(denoiser, x, t, labels))[name], atol=1e-4)
    # the shares are each row's: another step or label changes the answer
    assert (denoiser.eval()(x, (t + 250) % 1000, labels) - expected).abs().max() > 1e-2
    if given == "a class":
        assert (denoiser(x, t, (labels + 1) % 5) - expected).abs().max() > 1e-2
