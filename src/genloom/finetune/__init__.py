"""LoRA fine-tuning of a trained network, on new data as it was trained (`sft`), on preference pairs by DPO
(`dpo`), or toward a reward by PPO (`ppo`, finetune/ppo.py): the base weights stay frozen, and the run folder
written holds only the adapter (runs/adapter.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data.codec import Codec
from ..data.dataset import Dataset
from ..data.preferences import PreferencePair
from ..errors import GenloomError
from ..families.base import Family
from ..families.preference import PreferenceTuning
from ..files import check_writable
from ..options import checked_value, whole_number
from ..nets.lora import DEFAULT_TARGETS, add_lora, has_lora_targets, lora_state_dict
from ..runs.adapter import write_adapter
from ..runs.record import CONFIG_FILE
from ..runs.resume import check_free_folder
from ..train.batches import split_validation
from ..train.config import TrainConfig
from ..train.device import resolve_device
from ..train.loop import BEST_FILE, STATE_FILE, Trainer


# next-token loss on new data; direct preference optimisation on preference pairs; PPO toward a reward model
# learnt from preference pairs (or toward a reward function: reward.py)
OBJECTIVES = ("sft", "dpo", "ppo")
PPO_STATE = "ppo-state.pt"  # what a PPO run writes after each round to go on from it (finetune/ppo.py)


@dataclass(frozen=True)
class LoRASettings:
    rank: int = 8          # of the update B·A
    alpha: float = 16.0    # the update is scaled by alpha / rank

    def check(self) -> None:
        whole_number("LoRA rank", self.rank)
        checked_value("LoRA alpha", self.alpha, float, {"above": 0})


def check_adapter_base(net: Family, record: dict[str, Any], base_run: Path | None, out: Path,
                       lora: LoRASettings, resume: bool = False) -> None:
    """Refuse, before any data is read: impossible LoRA settings, a family without the layers LoRA adapts, a model
    that is an adapter already or is not saved as a run (the adapter refers to it), and an output folder that
    holds a run (unless a PPO run there is resumed) or cannot be written."""
    lora.check()
    if "adapter" in record:
        raise GenloomError("this model already carries a LoRA adapter; fine-tune its base run, or save the "
                           "merged model (model.save / a new run) and fine-tune that")
    if not has_lora_targets(net):
        raise GenloomError(f"fine-tuning supports autoregressive runs (text, or tables and images as tokens), whose "
                           f"transformer has layers named {', '.join(DEFAULT_TARGETS)}; this run's family is "
                           f"{net.name}")
    if base_run is None or not (base_run / CONFIG_FILE).exists():
        raise GenloomError("the adapter must refer to a saved genloom run; save the model first "
                           "(model.save(folder)) and fine-tune the saved run")
    if not resume:
        check_free_folder(out, "pass resume=True (CLI: --resume) to go on with the PPO run there, or "
                          if (out / PPO_STATE).exists() else "")
    elif not (out / PPO_STATE).exists():
        raise GenloomError(f"{out} holds no PPO run to resume ({PPO_STATE} is missing); only PPO runs resume: "
                           "start it without resume (CLI: --resume)")
    check_writable(out, folder=True)


def check_resumable(objective: str, resume: bool) -> None:
    """Only a PPO run goes on from where it stopped (finetune/ppo.py keeps its state after each round)."""
    if resume and objective != "ppo":
        raise GenloomError(f"resume goes on with a PPO run; {objective} fine-tuning starts again from the base run: "
                           "drop resume (CLI: --resume)")


def adapted_copy(base_net: Family, lora: LoRASettings, seed: int) -> Family:
    """A copy of `base_net` whose LoRA adapters (only) will train, drawn from `seed`: the same adapters whatever
    ran before in the process, so a tuning repeats and a resumed one matches."""
    net = type(base_net)(base_net.layout, base_net.config)
    net.load_state_dict(base_net.state_dict())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        add_lora(net, lora.rank, lora.alpha)
    return net


def trained_family(family: Family, x: torch.Tensor, config: TrainConfig, out: Path) -> Trainer:
    """`family` trained on x (a share held out) into `out`, which keeps nothing of it but what is written after."""
    (train_part, _), held_out = split_validation(x, None, config.val_fraction)
    trainer = Trainer(family, train_part, None, config, out, resolve_device(config.device), held_out,
                      prepare=False)  # keep the base statistics
    out.mkdir(parents=True, exist_ok=True)
    trainer.fit()
    for whole_model in (STATE_FILE, BEST_FILE):  # these hold every weight; the adapter is all we keep
        (out / whole_model).unlink(missing_ok=True)
    return trainer


def written_adapter(out: Path, base_run: Path, adapted: Family, trainer: Trainer, config: TrainConfig,
                    lora: LoRASettings, settings: dict[str, Any]) -> dict[str, Any]:
    """The adapter of `adapted` written to `out`; its record, with `settings` (what it trained on, how)."""
    return write_adapter(out, base_run, lora_state_dict(adapted), {
        "rank": lora.rank, "alpha": lora.alpha, "targets": list(DEFAULT_TARGETS), "steps_trained": trainer.step,
        "best_val_loss": trainer.best_val_loss, "train": asdict(config), **settings})


def train_adapter(base_net: Family, codec: Codec, base_run: Path, data: Dataset, config: TrainConfig, out: Path,
                  lora: LoRASettings) -> tuple[Family, Family, dict[str, Any]]:
    """Train LoRA adapters on a copy of `base_net` (the saved run at `base_run`) on new data, as it was trained;
    write the adapter to `out`. Returns the adapted network, its weight average and the adapter's record."""
    if data.kind != codec.kind:
        raise GenloomError(f"the base model learnt {codec.kind} data; fine-tune it on {codec.kind}, not {data.kind}")
    trainer = trained_family(adapted_copy(base_net, lora, config.seed), codec.encode(data.values), config, out)
    adapter = written_adapter(out, base_run, trainer.ema.module, trainer, config, lora, {
        "data": {"name": data.name, "kind": data.kind, "examples": len(data), "source": data.source,
                 "personal_data": data.personal_data}})  # its own, never the base run's
    return trainer.family, trainer.ema.module, adapter


def encoded_preferences(base_net: Family, codec: Codec, pairs: Sequence[PreferencePair],
                        read_after: bool = False) -> torch.Tensor:
    """The pairs as PreferenceTuning.encode_pairs lays them out; a pair longer than the model's context (one token
    more where the state after its last token is read: `read_after`) is a one-line error."""
    if not hasattr(base_net, "sequence_log_prob"):
        raise GenloomError(f"preference tuning adapts autoregressive runs; this run's family is {base_net.name}")
    examples = [(*codec.preference_example(pair.prompt, pair.chosen),
                 *codec.preference_example(pair.prompt, pair.rejected)) for pair in pairs]
    context = base_net.context_length
    longest = max(len(part) for example in examples for part in example) - (0 if read_after else 1)
    if context is not None and longest > context:
        raise GenloomError(f"a preference pair is {longest} tokens (prompt and response); this model's context is "
                           f"{context}: shorten the pairs")
    return PreferenceTuning.encode_pairs(examples)


def train_preference_adapter(base_net: Family, codec: Codec, base_run: Path, pairs: Sequence[PreferencePair],
                             source: str, config: TrainConfig, out: Path, lora: LoRASettings,
                             beta: float) -> tuple[Family, Family, dict[str, Any]]:
    """Train LoRA adapters on a copy of `base_net` by DPO on preference `pairs` (read from `source`), against the
    unadapted model; write the adapter to `out`. Returns as train_adapter."""
    checked_value("beta", beta, float, {"above": 0})
    encoded = encoded_preferences(base_net, codec, pairs)
    trainer = trained_family(PreferenceTuning(adapted_copy(base_net, lora, config.seed), beta), encoded, config, out)
    adapter = written_adapter(out, base_run, trainer.ema.module.policy, trainer, config, lora, {
        "objective": "dpo", "beta": beta, "preferences": {"source": source, "pairs": len(pairs)}})
    return trainer.family.policy, trainer.ema.module.policy, adapter
