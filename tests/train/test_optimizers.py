import pytest
import torch

import genloom as gl
from genloom.families.autoregressive import Autoregressive
from genloom.families.configs import AutoregressiveConfig
from genloom.data.text_layout import TextLayout
from genloom.nets.lora import add_lora
from genloom.train.config import TrainConfig
from genloom.train.loop import Trainer, read_metrics
from genloom.train.muon import Muon
from genloom.train.optimizers import Chained, build_optimizer, hidden_matrices
from tests.conftest import QUIET, TINY_GPT

LAYOUT = TextLayout((), vocab_size=20, start_token=3)


def _gpt() -> Autoregressive:
    torch.manual_seed(0)
    return Autoregressive(LAYOUT, AutoregressiveConfig(**TINY_GPT))


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    gpt = _gpt()
    names = {id(p): n for n, p in gpt.named_parameters()}
    hidden = hidden_matrices(gpt)
    assert sorted(names[i] for i in hidden) == sorted(
        f"net.h.{layer}.{part}.weight" for layer in range(2)
        for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"))
    optimizer = build_optimizer(gpt, list(gpt.parameters()), TrainConfig(optimizer="muon", lr=1e-3, muon_lr=0.05))
    assert isinstance(optimizer, Chained) and isinstance(optimizer.parts["muon"], Muon)
    muon_params = {id(p) for g in optimizer.parts["muon"].param_groups for p in g["params"]}
    adamw_params = {id(p) for g in optimizer.parts["adamw"].param_groups for p in g["params"]}
    assert muon_params == hidden and adamw_params == set(names) - hidden  # the tied embedding/head with AdamW
    assert [g["initial_lr"] for g in optimizer.param_groups] == [1e-3, 1e-3, 0.05]


def test_muon_needs_a_network_that_names_its_hidden_matrices(tmp_path):
    with pytest.raises(gl.GenloomError, match="optimizer 'muon' needs a network that names its hidden matrices "
                                              r"\(the transformer\); family 'gan' has none: use --optimizer adamw"):
        gl.Model("gan", latent_dim=4, width=8).fit("digits", steps=1, optimizer="muon", out=tmp_path / "r", **QUIET)
    assert not (tmp_path / "r").exists()


def test_a_resumed_run_takes_new_rates_but_not_a_new_optimizer(tmp_path):
    flat = dict(warmup_steps=0, min_lr_ratio=1.0, **QUIET)
    gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=2, out=tmp_path / "r", **flat)
    gl.Model("autoregressive").fit(out=tmp_path / "r", resume=True, steps=4, lr=5e-4, muon_lr=0.01, **QUIET)
    state = torch.load(tmp_path / "r" / "trainer.pt", weights_only=True)["optimizers"]["model"]
    assert state["adamw"]["param_groups"][0]["lr"] == pytest.approx(5e-4)
    assert state["muon"]["param_groups"][0]["lr"] == pytest.approx(0.01)
    with pytest.raises(gl.GenloomError, match="the run trained with optimizer 'muon'; resume it with the same one"):
        gl.Model("autoregressive").fit(out=tmp_path / "r", resume=True, steps=6, optimizer="adamw", **QUIET)


def test_adamw_decays_matrices_only():
    gpt = _gpt()
    optimizer = build_optimizer(gpt, list(gpt.parameters()), TrainConfig(weight_decay=0.1))
    assert isinstance(optimizer, torch.optim.AdamW)
    for group in optimizer.param_groups:
        assert all(p.dim() == (2 if group["weight_decay"] else 1) for p in group["params"])


def test_lora_adapters_train_with_adamw_alone():
    gpt = _gpt()
    add_lora(gpt, rank=2, alpha=4.0)
    trainable = [p for p in gpt.parameters() if p.requires_grad]
    optimizer = build_optimizer(gpt, trainable, TrainConfig(optimizer="muon"))
    assert isinstance(optimizer, torch.optim.AdamW) and trainable
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in trainable}


def test_schedule_scales_each_optimizer_from_its_own_rate(tmp_path):
    model = gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=3, warmup_steps=10, min_lr_ratio=1.0, lr=1e-3,
                                                       muon_lr=0.04, log_every=1, out=tmp_path / "r", **QUIET)
    state = torch.load(tmp_path / "r" / "trainer.pt", weights_only=True)["optimizers"]["model"]
    assert set(state) == {"adamw", "muon"}
    assert state["muon"]["param_groups"][0]["lr"] == pytest.approx(0.04 * 3 / 10)  # warm-up of the third step
    assert state["adamw"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 3 / 10)
    assert [m["lr"] for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "lr" in m][-1] == pytest.approx(3e-4)
    assert model.record["train"]["optimizer"] == "muon"  # the default for text


def test_muon_trains_the_hidden_matrices_and_lowers_the_loss(tmp_path):
    """That Muon beats AdamW in time is measured in benchmarks/text.py; here, that it trains at all."""
    model = gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=60, log_every=10, eval_every=1000,
                                                       out=tmp_path / "r", **QUIET)
    untrained = _gpt().state_dict()
    trained = model.net.state_dict()
    assert not torch.allclose(trained["net.h.0.mlp.c_fc.weight"], untrained["net.h.0.mlp.c_fc.weight"])
    losses = [m["loss"] for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "loss" in m]
    assert losses[-1] < losses[0] - 0.5  # from about log(65) = 4.2


def test_other_kinds_keep_adamw(tmp_path):
    model = gl.Model("autoregressive", n_layer=1, n_embd=16, levels=4).fit("digits", steps=1, out=tmp_path / "r",
                                                                           **QUIET)
    assert model.record["train"]["optimizer"] == "adamw"


@pytest.mark.parametrize("options, message", [
    ({"optimizer": "sgd"}, "optimizer must be one of adamw, muon; got 'sgd'"),
    ({"muon_lr": 0.0}, "muon_lr must be greater than 0; got 0.0"),
])
def test_impossible_optimizer_settings(options, message):
    with pytest.raises(gl.GenloomError, match=message):
        TrainConfig(**options)


def test_the_trainers_loss_scaling_drives_both_optimisers_and_skips_overflowing_steps(tmp_path):
    """fp16's path: the Trainer's own update with its GradScaler forced on (it is on only for fp16 on CUDA):
    a scaled step equals an unscaled one, and a step whose gradients overflow changes nothing and halves the
    scale."""
    tokens = torch.randint(20, (400,))

    def trained(name: str, scale: float | None, overflow: bool = False) -> Trainer:
        gpt = _gpt()
        if overflow:
            gpt.net.wte.weight.register_hook(lambda grad: torch.full_like(grad, float("inf")))
        config = TrainConfig(optimizer="muon", steps=1, warmup_steps=0, batch_size=4, val_fraction=0, progress=False)
        (tmp_path / name).mkdir()
        trainer = Trainer(gpt, tokens, None, config, tmp_path / name, torch.device("cpu"))
        if scale is not None:
            trainer.scaler = torch.amp.GradScaler("cpu", init_scale=scale)
        trainer.fit()
        return trainer

    start = _gpt().state_dict()
    plain, scaled = trained("plain", None).family.state_dict(), trained("scaled", 1024.0).family.state_dict()
    assert all(torch.allclose(plain[k], scaled[k], atol=1e-6) for k in plain)
    for name in ("net.h.0.mlp.c_fc.weight", "net.wte.weight"):  # Muon's matrices and AdamW's embedding moved
        assert not torch.equal(plain[name], start[name])
    skipped = trained("skipped", 1024.0, overflow=True)
    assert all(torch.equal(skipped.family.state_dict()[k], start[k]) for k in start)
    assert skipped.scaler.get_scale() == 512.0 and skipped.step == 1
