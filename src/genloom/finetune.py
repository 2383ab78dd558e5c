"""LoRA fine-tuning of a trained run on new data; the run folder written holds only the adapter."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .data import load_data
from .errors import GenloomError
from .families import family_class
from .files import atomic_path, write_json
from .model import Model
from .nets.lora import DEFAULT_TARGETS, add_lora, lora_state_dict
from .train import STATE_FILE, Trainer, resolve_device
from .train.loop import BEST_FILE
from .train.batches import split_validation

ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter.json", "adapter.safetensors"


def finetune(model: Model, data: Any, *, out: str | Path, rank: int = 8, alpha: float = 16.0,
             steps: int | None = None, minutes: float | None = None, epochs: float | None = None,
             **train_options: Any) -> Model:
    """Train LoRA adapters of `model` on `data` (base weights frozen); write only the adapter to `out`."""
    model._require_fitted()
    if "adapter" in model.record:
        raise GenloomError("this model already carries a LoRA adapter; fine-tune its base run, or save the "
                           "merged model (model.save / a new run) and fine-tune that")
    if model.run_dir is None or not (model.run_dir / "config.json").exists():
        raise GenloomError("the adapter must refer to a saved genloom run; save the model first "
                           "(model.save(folder)) and fine-tune the saved run")
    out = Path(out)
    if (out / ADAPTER_CONFIG).exists() or (out / "config.json").exists():
        raise GenloomError(f"{out} already holds a run; choose another output folder")
    if rank < 1 or not alpha > 0:
        raise GenloomError(f"LoRA needs rank >= 1 and alpha > 0; got rank={rank}, alpha={alpha}")
    dataset = load_data(data)
    if dataset.kind != model.codec.name:
        raise GenloomError(f"the base model learnt {model.codec.name}; fine-tune it on {model.codec.name}, "
                           f"not {dataset.kind}")
    budget = {k: v for k, v in {"steps": steps, "minutes": minutes, "epochs": epochs}.items() if v is not None}
    defaults = family_class(model.family_name).defaults_for(dataset.kind)
    config = model._train_config(defaults, None, budget, train_options)
    device = resolve_device(config.device)
    net = model.ema_net.__class__(model.codec.layout, model.config)
    net.load_state_dict(model.ema_net.state_dict())
    if add_lora(net, rank, alpha) == 0:
        raise GenloomError(f"family '{model.family_name}' has no layers named {', '.join(DEFAULT_TARGETS)} to adapt")
    x = model.codec.encode(dataset.values)
    (x, _), validation = split_validation(x, None, config.val_fraction)
    trainer = Trainer(net, x, None, config, out, device, validation, prepare=False)  # keep the base statistics
    out.mkdir(parents=True, exist_ok=True)
    trainer.fit()
    for whole_model in (STATE_FILE, BEST_FILE):  # these hold every weight; the adapter is all we keep
        (out / whole_model).unlink(missing_ok=True)
    with atomic_path(out / ADAPTER_WEIGHTS) as tmp:
        save_file(lora_state_dict(trainer.ema.module), str(tmp))
    write_json(out / ADAPTER_CONFIG, {"base": str(model.run_dir.resolve()), "rank": rank, "alpha": alpha,
                                      "targets": list(DEFAULT_TARGETS), "data": dataset.name,
                                      "steps_trained": trainer.step, "best_val_loss": trainer.best_val_loss})
    model.net, model.ema_net = trainer.family, trainer.ema.module
    model.run_dir = out
    return model


def load_adapter(path: str | Path, device: str = "cpu") -> Model:
    """The base run named in adapter.json, with the adapter's LoRA layers added and loaded."""
    path = Path(path)
    try:
        adapter = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        weights = load_file(path / ADAPTER_WEIGHTS)
    except (OSError, json.JSONDecodeError, SafetensorError) as error:
        raise GenloomError(f"{path} is not a readable LoRA adapter ({error})") from None
    model = Model.load(adapter["base"], device=device)
    for net in (model.net, model.ema_net):
        add_lora(net, adapter["rank"], adapter["alpha"], tuple(adapter["targets"]))
        missing = set(weights) - set(net.state_dict())
        if missing:
            raise GenloomError(f"{path}: the adapter does not fit its base run ({sorted(missing)[:3]} ...)")
        net.load_state_dict(weights, strict=False)
    model.record = {**model.record, "adapter": adapter}
    model.run_dir = path
    return model
