"""Hugging Face GPT-2 checkpoints (config.json + model.safetensors + tokenizer.json) <-> genloom models.

Our transformer uses GPT-2's module names, so the mapping is a prefix and a transpose: GPT-2 stores its
linear layers as Conv1D, with weights (in, out) where torch.nn.Linear has (out, in).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..data.text_codec import TextCodec
from ..errors import GenloomError
from ..files import atomic_path, write_json, write_text
from ..model import Model
from ..nets.lora import merge_lora

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
IGNORED = ("attn.bias", "attn.masked_bias")  # causal-mask buffers of older transformers versions (not c_attn.bias)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenloomError(f"{path.parent} is not a GPT-2 checkpoint (no {path.name})") from None
    except json.JSONDecodeError as error:
        raise GenloomError(f"{path} is not valid JSON ({error})") from None


def load_gpt2(path: str | Path, device: str = "cpu") -> Model:
    """A genloom autoregressive model with the weights and tokenizer of a local GPT-2-format checkpoint."""
    path = Path(path)
    config = _read_json(path / "config.json")
    if config.get("model_type") != "gpt2":
        raise GenloomError(f"{path} holds a '{config.get('model_type')}' model; only GPT-2 checkpoints load")
    if config.get("activation_function", "gelu_new") not in GELU:
        raise GenloomError(f"GPT-2 activation '{config['activation_function']}' is not supported")
    if not (path / "tokenizer.json").exists():
        raise GenloomError(f"{path} has no tokenizer.json; save the tokenizer with it (a fast HF tokenizer)")
    missing = [key for key in ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions") if key not in config]
    unsupported = [key for key, plain in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                                          ("reorder_and_upcast_attn", False), ("tie_word_embeddings", True))
                   if config.get(key, plain) != plain]
    if missing or unsupported:
        raise GenloomError(f"{path}/config.json: {'missing ' + ', '.join(missing) if missing else ''}"
                           f"{'; ' if missing and unsupported else ''}"
                           f"{'unsupported settings ' + ', '.join(unsupported) if unsupported else ''}")
    codec = TextCodec("bpe", config["vocab_size"], bpe=(path / "tokenizer.json").read_text(encoding="utf-8"))
    options = {"n_layer": config["n_layer"], "n_head": config["n_head"], "n_embd": config["n_embd"],
               "block_size": config["n_positions"], "bias": True, "rope": False, "dropout": 0.0,
               "gelu": GELU[config.get("activation_function", "gelu_new")],
               "layer_norm_eps": config.get("layer_norm_epsilon", 1e-5)}
    record = {"genloom_version": __version__, "family": "autoregressive", "family_options": options,
              "codec": "text", "train": {"val_fraction": 0.1},
              "data": {"name": f"GPT-2 checkpoint {path.name}", "kind": "text", "examples": 0, "shape": [],
                       "classes": 0, "source": {}},
              "steps_trained": 0, "imported_from": str(path.resolve())}
    model = Model.assemble(record, codec, device)
    try:
        weights = load_file(path / "model.safetensors")
    except (FileNotFoundError, SafetensorError, OSError) as error:
        raise GenloomError(f"{path}/model.safetensors cannot be read ({error})") from None
    state = {}
    for name, tensor in weights.items():
        name = name.removeprefix("transformer.")
        if ".".join(name.split(".")[-2:]) in IGNORED or name == "lm_head.weight":  # the head is tied to wte
            continue
        state["net." + name] = tensor.t() if name.endswith(CONV1D) else tensor
    state["net.lm_head.weight"] = state["net.wte.weight"]
    for net in (model.net, model.ema_net):
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise GenloomError(f"{path} does not match its config.json ({' '.join(str(error).split())[:300]})") from None
    return model


def save_gpt2(model: Model, path: str | Path) -> Path:
    """Write `model` as a GPT-2 checkpoint that transformers' GPT2LMHeadModel.from_pretrained reads."""
    options = model.record["family_options"]
    if model.family_name != "autoregressive" or not options["bias"] or options["rope"]:
        raise GenloomError("only GPT-2-shaped models export: an autoregressive model trained with --bias --no-rope")
    if model.codec.tokenizer != "bpe":
        raise GenloomError("GPT-2 checkpoints carry a BPE tokenizer; train with --tokenizer bpe to export")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, tensor in merge_lora(model.ema_net).state_dict().items():
        name = name.removeprefix("net.")
        if name == "lm_head.weight":
            continue
        tensor = tensor.t() if name.endswith(CONV1D) else tensor
        state["transformer." + name] = tensor.detach().cpu().contiguous()
    with atomic_path(path / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_json(path / "config.json", {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": model.codec.layout.vocab_size,
        "n_positions": options["block_size"], "n_embd": options["n_embd"], "n_layer": options["n_layer"],
        "n_head": options["n_head"], "n_inner": None, "layer_norm_epsilon": options["layer_norm_eps"],
        "activation_function": "gelu_new" if options["gelu"] == "tanh" else "gelu",
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "tie_word_embeddings": True,
        "bos_token_id": model.codec.end_token, "eos_token_id": model.codec.end_token, "torch_dtype": str(state["transformer.wte.weight"].dtype).split(".")[-1]})
    for name, text in model.codec.files().items():
        write_text(path / name, text)
    return path
