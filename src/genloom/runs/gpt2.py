"""Reading Hugging Face GPT-2 checkpoints (config.json + model.safetensors + tokenizer.json) as genloom runs.

Our transformer uses GPT-2's module names, so the mapping is a prefix and a transpose: GPT-2 stores its
linear layers as Conv1D, with weights (in, out) where torch.nn.Linear has (out, in). Writing them is in
export/gpt2.py.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from .. import __version__
from ..data.text_codec import TextCodec
from ..errors import GenloomError
from ..train.config import TrainConfig
from .folder import LoadedRun, build_networks
from .record import CONFIG_FILE, read_json

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
IGNORED = ("attn.bias", "attn.masked_bias")  # causal-mask buffers of older transformers versions (not c_attn.bias)


def read_gpt2(path: Path, device: str = "cpu") -> LoadedRun:
    """An autoregressive model with the weights and tokenizer of a local GPT-2-format checkpoint."""
    config = read_json(path / CONFIG_FILE, "a GPT-2 checkpoint")
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
              "codec": "text", "train": asdict(TrainConfig()),
              "data": {"name": f"GPT-2 checkpoint {path.name}", "kind": "text", "examples": 0, "shape": [],
                       "classes": 0, "source": {}},
              "steps_trained": 0, "imported_from": str(path.resolve())}
    family_options, net, ema_net = build_networks(record, codec, device)
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
    for each in (net, ema_net):
        try:
            each.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise GenloomError(f"{path} does not match its config.json ({' '.join(str(error).split())[:300]})") from None
    return LoadedRun(record, codec, family_options, net, ema_net, path)
