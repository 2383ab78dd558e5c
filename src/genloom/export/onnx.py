"""ONNX export: a run's network (a VAE's decoder, a GAN's generator, a diffusion model's denoiser, an
autoregressive transformer with its key/value cache) as an ONNX graph, its linear layers optionally int8, and
`OnnxModel`, which samples with ONNX Runtime running that graph in the network's place. genloom's own sampling
code drives it (the samplers and guidance, a table's multinomial steps and Gumbel draws, token sampling, the
codec's decoding), so an exported model makes the samples its run makes, from the same seeds; only the
network's arithmetic moves to ONNX Runtime."""
from __future__ import annotations

import inspect
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..data.codec import codec_class
from ..data.table_codec import TabularCodec
from ..errors import GenloomError
from ..extras import require
from ..files import atomic_files
from ..model import Model
from ..nets.translation import Translator
from ..nets.transformer import Transformer
from ..runs.folder import build_networks
from ..runs.record import read_json

NETWORKS = {"vae": ("decoder",), "gan": ("generator",), "wgan-gp": ("generator",), "stylegan": ("generator",),
            "diffusion": ("denoiser",), "autoregressive": ("net",), "latent-diffusion": ("prior.denoiser", "decoder"),
            "vq-vae": ("prior.net", "decoder"), "cyclegan": ("translators.1", "translators.0")}
# family: the networks exported (their paths in the family's modules); a CycleGAN's into B first, then into A
FORMAT = "genloom-onnx"
OPSET = 18
# dynamic quantisation of the linear layers (int8 weights, activations on the fly) and of embedding lookups
INT8_OPERATORS = ["MatMul", "Gemm", "Gather"]


def decode_of(path: Path) -> Path:
    """model.decode.onnx beside model.onnx: a table codec's decode, encoded rows in and columns out."""
    return path.with_name(path.stem + ".decode.onnx")


def rows_of(path: Path) -> Path:
    """model.rows.onnx beside model.onnx: a table generator on ONNX Runtime alone, draws in and columns out."""
    return path.with_name(path.stem + ".rows.onnx")


def part_file(path: Path, parts: tuple[str, ...], part: str) -> Path:
    """Where a network of the export goes: the first at `path`, others beside it (model.decoder.onnx)."""
    return path if part == parts[0] else path.with_name(f"{path.stem}.{part}.onnx")


def sidecar_of(path: Path) -> Path:
    """model.onnx.json beside model.onnx: the run's record and codec, which sampling needs besides the graph."""
    return path.with_name(path.name + ".json")


def rest_of(path: Path) -> Path:
    """model.onnx.safetensors: the family's weights outside the exported network (a label embedding, a
    table GAN's category frequencies), which genloom's sampling code uses around it."""
    return path.with_name(path.name + ".safetensors")


class GivenArguments(nn.Module):
    """The network called with only the arguments a run passes it: an ONNX graph has no optional inputs, so the
    positions that are None (no labels for an unconditional model) stay None."""

    def __init__(self, network: nn.Module, given: list[bool]):
        super().__init__()
        self.network, self.given = network, given

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        supplied = iter(tensors)
        return self.network(*[next(supplied) if given else None for given in self.given])


@dataclass(frozen=True)
class Graph:
    """What torch.onnx.export traces: a module, example arguments, the graph's input and output names with their
    free axes, and what OnnxModel needs to run it in the network's place (`about`)."""

    module: nn.Module
    args: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    free_axes: dict[str, dict[int, str]]
    about: dict[str, Any]


def network_arguments(model: Model, network: nn.Module) -> tuple[Any, ...]:
    """The arguments the network receives when the model samples (two examples, seed 0): the graph's inputs."""
    seen: list[tuple[tuple, dict]] = []
    handle = network.register_forward_pre_hook(lambda module, args, kwargs: seen.append((args, kwargs)),
                                               with_kwargs=True)
    try:
        model.sample(2, seed=0, progress=False)
    finally:
        handle.remove()
    args, kwargs = seen[0]
    if kwargs or not all(arg is None or isinstance(arg, (torch.Tensor, float)) for arg in args):
        raise GenloomError(f"the {model.family_name} network takes arguments that are not tensors; it has no ONNX "
                           "export")
    # out of inference mode, to trace; a number (StyleGAN's truncation) becomes a scalar input of the graph
    return tuple(None if arg is None else torch.tensor(arg) if isinstance(arg, float) else arg.clone() for arg in args)


def called_graph(model: Model, network: nn.Module) -> Graph:
    """A network called once per sampling step: its inputs are the tensors it receives while the run samples."""
    args = network_arguments(model, network)
    given = [arg is not None for arg in args]
    supplied = tuple(arg for arg in args if arg is not None)
    names = [name for name, arg in zip(inspect.signature(network.forward).parameters, args) if arg is not None]
    batched = [name for name, arg in zip(names, supplied) if arg.dim() > 0]  # not a scalar such as a truncation
    return Graph(GivenArguments(network, given), supplied, names, ["output"],
                 {name: {0: "batch"} for name in [*batched, "output"]}, {"graph": "call", "given": given})


class PastCache:
    """The transformer's key/value cache as an exported step sees it: the past as input tensors (blocks, batch,
    heads, past, head_dim), each block's keys and values with the new ones appended kept for the outputs, and
    every query's view written as a mask (the graph serves any number of new tokens after any past)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        self.past_keys, self.past_values = keys, values
        self.length = keys.shape[3]
        self.padding = None  # the exported step continues rows of one length
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def extend(self, block: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys.append(torch.cat([self.past_keys[block], keys], dim=2))
        self.values.append(torch.cat([self.past_values[block], values], dim=2))
        return self.keys[-1], self.values[-1]

    def visible(self, length: int, device: torch.device) -> tuple[torch.Tensor, bool]:
        positions = torch.arange(length, device=device) + self.length
        return torch.arange(self.length + length, device=device)[None, :] <= positions[:, None], False


class DecoderStep(nn.Module):
    """Tokens and the past keys and values in; logits and the keys and values with the new tokens' out."""

    def __init__(self, net: Transformer):
        super().__init__()
        self.net = net

    def forward(self, tokens: torch.Tensor, past_keys: torch.Tensor,
                past_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cache = PastCache(past_keys, past_values)
        logits = self.net(tokens, cache)
        return logits, torch.stack(cache.keys), torch.stack(cache.values)


def decoder_graph(model: Model, network: Transformer) -> Graph:
    """A transformer with its cache as inputs and outputs: one graph for the prompt and for each new token."""
    blocks, heads = len(network.h), network.h[0].attn.n_head
    shape = {"blocks": blocks, "heads": heads, "head_dim": network.wte.embedding_dim // heads,
             "vocab": network.wte.num_embeddings, "block_size": network.block_size}
    past = torch.zeros(blocks, 2, heads, 3, shape["head_dim"])
    tokens = torch.randint(network.wte.num_embeddings, (2, 2))
    cached = {1: "batch", 3: "length"}
    return Graph(DecoderStep(network), (tokens, past, past.clone()), ["tokens", "past_keys", "past_values"],
                 ["logits", "keys", "values"],
                 {"tokens": {0: "batch", 1: "new"}, "logits": {0: "batch", 1: "new"}, "past_keys": cached,
                  "past_values": cached, "keys": cached, "values": cached}, {"graph": "decoder", **shape})


def image_graph(model: Model, network: nn.Module) -> Graph:
    """A network of images to images (a CycleGAN's translator, which sampling calls in one direction only)."""
    images = torch.zeros(2, *model.codec.layout.shape)
    return Graph(network, (images,), ["images"], ["output"], {"images": {0: "batch"}, "output": {0: "batch"}},
                 {"graph": "call", "given": [True]})


GRAPHS: dict[type, Callable[[Model, Any], Graph]] = {Transformer: decoder_graph, Translator: image_graph}
# others: called_graph


class GivenDraws(nn.Module):
    """A family's sampling with every draw an input: noise (N, latent) and uniforms (N, the family's draws and then
    the decode's); out come the encoded rows and the decode's share of the uniforms."""

    def __init__(self, family: nn.Module):
        super().__init__()
        self.family, self.family_draws = family, family.uniform_draws

    def forward(self, noise: torch.Tensor, uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.family.sample_given(noise, uniforms[:, :self.family_draws]), uniforms[:, self.family_draws:]


def standalone_refusal(model: Model) -> str | None:
    """Why a table run has no generator that runs without genloom, or None if it has one."""
    if hasattr(model.ema_net, "sample_given"):
        return None
    return (f"the {model.family_name} family samples in steps that genloom's code drives: sample it with OnnxModel, "
            "or run the decode graph on rows you make")


def write_table_graphs(model: Model, path: Path, decode_path: Path, rows_path: Path,
                       quantise: Callable[[Path], None]) -> dict[str, Any]:
    """A table run's codec's decode graph, and where the family samples in one call the whole generator (noise and
    uniforms in, columns out), written at the temporary paths given; what the sidecar says of them (the names
    they take beside `path`)."""
    from . import table_graph  # onnx, which the export extra installs

    codec, family = model.codec, model.ema_net
    clash = table_graph.name_clash(codec)
    if clash:
        return {"decode": None, "rows": None, "rows_refusal": clash}
    decode_path.write_bytes(table_graph.decode_graph(codec).SerializeToString())
    about = {"decode": decode_of(path).name, "rows": None, "rows_refusal": standalone_refusal(model)}
    if about["rows_refusal"]:
        return about
    draws = family.uniform_draws + table_graph.draws_needed(codec)
    device = next(family.parameters()).device
    arguments = (torch.zeros(2, family.config.latent_dim, device=device), torch.rand(2, draws, device=device))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(GivenDraws(family), arguments, str(rows_path),
                          input_names=[table_graph.NOISE, table_graph.UNIFORMS],
                          output_names=[table_graph.MADE_ROWS, table_graph.MADE_DRAWS],
                          opset_version=table_graph.OPSET, dynamo=False,
                          dynamic_axes={table_graph.NOISE: {0: "rows"}, table_graph.UNIFORMS: {0: "rows"}})
    quantise(rows_path)
    table_graph.decode_outputs(rows_path, codec)
    inputs = [table_graph.NOISE, table_graph.UNIFORMS] + [table_graph.FIRST] * table_graph.needs_first_row(codec)
    return {**about, "rows": rows_of(path).name, "inputs": inputs, "noise": family.config.latent_dim,
            "uniforms": draws}


def quantise_int8(path: Path) -> None:
    """Rewrite an ONNX graph with int8 linear layers and embeddings (dynamic quantisation)."""
    quantization = require("onnxruntime.quantization", "export", "int8 export")
    full = path.with_name(path.name + ".fp32")
    path.rename(full)
    logging.disable(logging.WARNING)  # its advice to pre-process the graph for static quantisation
    try:
        quantization.quantize_dynamic(str(full), str(path), op_types_to_quantize=INT8_OPERATORS,
                                      weight_type=quantization.QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
        full.unlink()


def export_onnx(model: Model, path: str | Path, int8: bool = False) -> Path:
    """Write the run's networks as ONNX graphs, the first at `path`, others beside it (batch size free), fp32 or
    with int8 linear layers, the record and codec beside them (path + .json), the family's other weights (path +
    .safetensors) and for a table its decode and standalone generator graphs; the files are written together or not
    at all."""
    parts = NETWORKS.get(model.family_name)
    if parts is None:
        raise GenloomError(f"family '{model.family_name}' has no ONNX export; these have: {', '.join(NETWORKS)}")
    require("onnx", "export", "ONNX export")
    if model.ema_net is None:
        raise GenloomError("this model has not been trained yet: fit it (or load a run) before exporting it")
    path = Path(path)
    quantise = quantise_int8 if int8 else (lambda onnx_file: None)
    graphs = {}
    for part in parts:
        network = model.ema_net.get_submodule(part).eval()
        if getattr(network, "export_refusal", None):
            raise GenloomError(f"the {model.family_name} network has no ONNX export: {network.export_refusal}")
        graphs[part] = GRAPHS.get(type(network), called_graph)(model, network)
    files = [path, rest_of(path), sidecar_of(path), decode_of(path), rows_of(path),
             *[part_file(path, parts, part) for part in parts[1:]]]
    with atomic_files(files) as (network_file, rest_file, sidecar_file, decode_file, rows_file, *others):
        for (part, graph), target in zip(graphs.items(), [network_file, *others]):
            with torch.no_grad(), warnings.catch_warnings():
                # the tracer's notes on Python-side constants and its deprecations: the parity tests check the graph
                warnings.simplefilter("ignore")
                torch.onnx.export(graph.module, graph.args, str(target), input_names=graph.inputs,
                                  output_names=graph.outputs, opset_version=OPSET, dynamo=False,
                                  dynamic_axes=graph.free_axes)
            quantise(target)
        table = (write_table_graphs(model, path, decode_file, rows_file, quantise)
                 if isinstance(model.codec, TabularCodec) else None)
        rest = {name: tensor.detach().cpu().contiguous() for name, tensor in model.ema_net.state_dict().items()
                if not name.startswith(tuple(f"{part}." for part in parts))}
        save_file(rest, str(rest_file))
        about = {"format": FORMAT, "genloom": __version__, "network": parts[0], **graphs[parts[0]].about,  # as before
                 "parts": {part: {"file": part_file(path, parts, part).name, **graph.about}
                           for part, graph in graphs.items()},
                 "int8": int8, "record": model.record, "codec": model.codec.to_json(), "table": table}
        sidecar_file.write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
    return path


def table_note(path: Path) -> str | None:
    """What a table export wrote beside its network, in a sentence; None for other data."""
    about = read_json(sidecar_of(path), "an ONNX export", "write one with genloom export RUN --format onnx")
    table = about.get("table")  # none in exports older than the table graphs
    if table is None:
        return None
    if table["decode"] is None:
        return f"no table graphs: {table['rows_refusal']}"
    decode = f"{decode_of(path).name} decodes encoded rows into columns"
    if table["rows"] is None:
        return f"{decode}; no generator that runs without genloom: {table['rows_refusal']}"
    first = ", first_row (the first row's number, for new ids)" if "first_row" in table["inputs"] else ""
    return (f"{decode}; {rows_of(path).name} is the whole table generator on ONNX Runtime alone: noise (rows, "
            f"{table['noise']}) standard normal, uniforms (rows, {table['uniforms']}) in [0, 1){first} in, a column "
            "per output out")


class OnnxNetwork(nn.Module):
    """An ONNX Runtime session where a PyTorch network was: the same calls, tensors in and out."""

    def __init__(self, session: Any, about: dict[str, Any]):
        super().__init__()
        self.session = session
        # families ask a network's parameters for its device: ONNX Runtime runs on the CPU
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, *args: torch.Tensor | float | None) -> torch.Tensor:
        given = [torch.as_tensor(arg, dtype=torch.float32) if isinstance(arg, float) else arg for arg in args
                 if arg is not None]
        feeds = {spec.name: tensor.detach().cpu().numpy() for spec, tensor in zip(self.session.get_inputs(), given)}
        return torch.from_numpy(self.session.run(None, feeds)[0])


class OnnxCache:
    """The key/value cache of an OnnxDecoder: the arrays its last step returned, and the tokens they hold."""

    def __init__(self, about: dict[str, Any], batch: int):
        self.keys = np.zeros((about["blocks"], batch, about["heads"], 0, about["head_dim"]), np.float32)
        self.values = self.keys
        self.length = 0


class OnnxDecoder(nn.Module):
    """An exported transformer on ONNX Runtime where the Transformer was: forward(tokens, cache) and new_cache,
    the calls the autoregressive family makes."""

    def __init__(self, session: Any, about: dict[str, Any]):
        super().__init__()
        self.session, self.about, self.block_size = session, about, about["block_size"]
        # the family reads the vocabulary's size and the device from the embedding: a table of width 0 tells both
        self.wte = nn.Embedding(about["vocab"], 0)

    def new_cache(self, batch: int, padding: torch.Tensor | None = None) -> OnnxCache:
        if padding is not None:
            raise GenloomError("an exported decoder continues prompts of one token length together; group them "
                               "by length")
        return OnnxCache(self.about, batch)

    def forward(self, tokens: torch.Tensor, cache: OnnxCache | None = None) -> torch.Tensor:
        past = cache or OnnxCache(self.about, len(tokens))
        if past.length + tokens.shape[1] > self.block_size:
            raise GenloomError(f"{past.length + tokens.shape[1]} tokens exceed the model's context of "
                               f"{self.block_size}")
        feeds = {"tokens": tokens.cpu().numpy(), "past_keys": past.keys, "past_values": past.values}
        logits, past.keys, past.values = self.session.run(None, feeds)
        past.length += tokens.shape[1]
        return torch.from_numpy(logits)


RUNTIMES: dict[str, type[nn.Module]] = {"call": OnnxNetwork, "decoder": OnnxDecoder}  # by Graph.about["graph"]


def _session(runtime: Any, path: Path, options: Any) -> Any:
    """An ONNX Runtime session on the CPU for the graph at `path`, or a one-line error."""
    if not path.is_file():
        raise GenloomError(f"{path} is missing: an export of this family writes it beside the others; export it again")
    try:
        return runtime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own error classes, one per kind of damage
        reason = " ".join(str(error).split())[:200]
        raise GenloomError(f"{path} is not a readable ONNX graph ({reason}); export it again") from None


class OnnxModel:
    """A model exported by `genloom export --format onnx`: sample(...) as Model.sample, the network on ONNX Runtime
    (`threads`: its intra-op threads; default: ONNX Runtime's)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        runtime = require("onnxruntime", "export", "OnnxModel")
        path = Path(path)
        if not all(part.is_file() for part in (path, sidecar_of(path), rest_of(path))):
            raise GenloomError(f"{path} is not an ONNX model genloom exported (it needs {path.name}, "
                               f"{sidecar_of(path).name} and {rest_of(path).name}); write one with genloom export RUN "
                               f"--format onnx -o {path}")
        about = read_json(sidecar_of(path), "an ONNX export", "write one with genloom export RUN --format onnx")
        if about.get("format") != FORMAT:
            raise GenloomError(f"{sidecar_of(path)} does not describe a genloom ONNX export")
        record = about["record"]
        codec = codec_class(record["codec"]).from_json(about["codec"])
        config, _, net = build_networks(record, codec)
        parts = about.get("parts") or {about["network"]: {"file": path.name, **about}}  # exports of one network
        missing = net.load_state_dict(load_file(rest_of(path)), strict=False).missing_keys
        lacking = [name for name in missing if not name.startswith(tuple(f"{part}." for part in parts))]
        if lacking:
            raise GenloomError(f"{rest_of(path)} lacks weights the model needs ({lacking[0]}); export it again")
        options = runtime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        for part, graph in parts.items():  # by the name given now (a renamed export), not the one written
            session = _session(runtime, part_file(path, tuple(parts), part), options)
            owner, _, name = part.rpartition(".")
            setattr(net.get_submodule(owner), name, RUNTIMES[graph.get("graph", "call")](session, graph))
        self.model = Model(record["family"])
        self.model.config, self.model.codec, self.model.record = config, codec, record
        self.model.net = self.model.ema_net = net
        self.int8 = bool(about["int8"])

    def sample(self, n: int, *, seed: int = 0, labels: Any = None, **options: Any) -> Any:
        """n samples, as the run's Model.sample makes them (the same options; no progress bar)."""
        return self.model.sample(n, seed=seed, labels=labels, progress=False, **options)

    def sample_to(self, path: str | Path, n: int, *, seed: int = 0, **options: Any) -> Path:
        """n samples written to a file, as Model.sample_to (shards too)."""
        return self.model.sample_to(path, n, seed=seed, progress=False, **options)

    def translate_to(self, path: str | Path, images: Any, *, to: str | int = "B") -> Path:
        """A CycleGAN run's translations of `images` into domain `to`, written as Model.translate_to writes them."""
        return self.model.translate_to(path, images, to=to, progress=False)

    def generate(self, prompt: str = "", **options: Any) -> str:
        """A text run's continuation of `prompt`, as Model.generate makes it (the same options)."""
        return self.model.generate(prompt, **options)
