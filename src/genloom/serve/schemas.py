"""The request bodies of the API, checked by pydantic before a route runs: a wrong type or a missing field is a
422 that names the field, and the app's OpenAPI schema at /docs documents them."""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..families.configs import DIFFUSION_SAMPLERS

Label = str | int
ConditionValue = str | int | float | bool


class Strict(BaseModel):
    """genloom's own endpoints refuse fields they do not know, so a misspelt option is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class SampleRequest(Strict):
    n: int = Field(1, ge=1, description="how many samples")
    seed: int | None = Field(None, ge=0, description="the same seed gives the samples model.sample gives for it; "
                                                     "none: fresh samples, drawn in one pass with other requests")
    labels: Label | list[Label] | None = Field(None, description="class names or ids of a conditional image run")
    conditions: dict[str, ConditionValue] | None = Field(None, description="table rows with these column values")
    sampler: str | None = Field(None, description="diffusion: " + ", ".join(DIFFUSION_SAMPLERS))
    steps: int | None = Field(None, ge=1, description="diffusion: sampling steps")
    eta: float | None = Field(None, ge=0, description="diffusion: DDIM's noise (0 deterministic, 1 DDPM-like)")
    guidance: float | None = Field(None, ge=0, description="diffusion: classifier-free guidance scale")
    temperature: float | None = Field(None, description="autoregressive: softmax temperature")
    top_k: int | None = Field(None, description="autoregressive: keep the k likeliest tokens")
    top_p: float | None = Field(None, description="autoregressive: nucleus sampling mass")
    repetition_penalty: float | None = Field(None, description="autoregressive: above 1 discourages repeats")
    epsilon: float | None = Field(None, description="autoregressive: drop tokens less likely than this")
    grammar: bool | None = Field(None, description="autoregressive on SMILES: draw only well-formed strings")
    format: str | None = Field(None, description="images: png (a grid), zip or json (base64 PNGs); tables: csv or "
                                                 "json; text: json; molecules: json or smi (SMILES, one a "
                                                 "line). Default: the first")
    watermark: bool | None = Field(None, description="images of 64x64 and more carry an invisible watermark unless "
                                                     "false; true: an error for smaller ones")

    def drawn_alike(self) -> str:
        """What requests drawn in one pass must share: everything they ask but how many, the seed and the format."""
        return json.dumps(self.model_dump(exclude={"n", "seed", "format"}), sort_keys=True)

    def sampling_options(self) -> dict[str, Any]:
        """The sampler's settings the request gives; the family checks they are its own."""
        names = ("sampler", "steps", "eta", "guidance", "temperature", "top_k", "top_p", "repetition_penalty",
                 "epsilon", "grammar")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class InterpolateRequest(Strict):
    from_seed: int = Field(0, ge=0, description="the latent code drawn with this seed starts the path")
    to_seed: int = Field(1, ge=0, description="and the one drawn with this seed ends it")
    frames: int = Field(8, ge=2, le=64, description="points along the path, both ends included")
    method: Literal["slerp", "lerp"] = Field("slerp", description="the great circle, or the straight line")
    labels: Label | list[Label] | None = Field(None, description="the class of a conditional run")
    format: str | None = None


class ScoreRequest(Strict):
    examples: list[Any] = Field(..., min_length=1, description="images as base64 PNGs, table rows as objects, "
                                                                "or texts as strings")
    labels: Label | list[Label] | None = Field(None, description="the classes of a conditional image run's images")
    seed: int = Field(0, ge=0, description="a VAE's bound and a diffusion model's denoising error use noise: the "
                                          "same seed gives the same scores")


class Watermarked(BaseModel):
    """The completion bodies' one field beyond OpenAI's."""

    watermark: str | None = Field(None, min_length=1, description="genloom's extension: a key that marks the text "
                                  "with a statistical watermark (genloom detect-watermark finds it); the server's "
                                  "--watermark-key when not given")


class CompletionRequest(Watermarked):
    """OpenAI's /v1/completions body; fields it has that genloom does not use are accepted and ignored."""

    model: str
    prompt: str | list[str] = ""
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0)
    n: int = Field(1, ge=1)
    stream: bool = False


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(Watermarked):
    """OpenAI's /v1/chat/completions body."""

    model: str
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0)
    n: int = Field(1, ge=1)
    stream: bool = False
