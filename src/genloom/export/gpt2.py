"""Writing a genloom text model as a Hugging Face GPT-2 checkpoint that transformers' GPT2LMHeadModel reads
(reading one is in runs/gpt2.py, with the name mapping both use)."""
from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from ..errors import GenloomError
from ..files import atomic_path, write_json, write_text
from ..model import Model
from ..nets.lora import merge_lora
from ..runs.gpt2 import CONV1D


def save_gpt2(model: Model, path: str | Path) -> Path:
    """Write `model` as a GPT-2 checkpoint: config.json, model.safetensors and tokenizer.json."""
    options = model.record["family_options"]
    if model.family_name != "autoregressive" or not options["bias"] or options["rope"]:
        raise GenloomError("only GPT-2-shaped models export: an autoregressive model trained with --bias --no-rope")
    if model.codec.kind != "text" or model.codec.tokenizer != "bpe":
        raise GenloomError("GPT-2 checkpoints carry a BPE tokenizer; train a text model with --tokenizer bpe to export")
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
        "bos_token_id": model.codec.end_token, "eos_token_id": model.codec.end_token,
        "torch_dtype": str(state["transformer.wte.weight"].dtype).split(".")[-1]})
    for name, text in model.codec.files().items():
        write_text(path / name, text)
    return path
