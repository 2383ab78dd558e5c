"""What a server allows: where it listens, who may call it, and how much one request or all of them may ask."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import GenloomError
from ..families.watermark import watermark_of

LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class ServeSettings:
    """The limits of one server; each is a `genloom serve` flag of the same name."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_loaded: int = 4             # runs kept in memory; the least recently used is dropped
    max_concurrency: int = 4        # inference requests at once; more are answered 429
    max_samples: int = 1024         # n of one sample request (or of texts in one completion request)
    max_tokens: int = 2048          # tokens one completion may generate
    max_body_bytes: int = 16 << 20  # a larger request body is answered 413
    timeout_seconds: float = 120.0  # a request still computing after this is answered 504
    cors_origin: str | None = None  # the one origin browsers may call from; none: same origin only
    batching: bool = True           # unseeded sample requests that arrive together are drawn in one pass
    threads: int | None = None      # torch threads of one inference; none: the cores shared out among the slots
    watermark_key: str | None = None  # completions marked with this key unless a request names its own

    def __post_init__(self) -> None:
        for name in ("port", "max_loaded", "max_concurrency", "max_samples", "max_tokens", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise GenloomError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise GenloomError(f"--threads must be at least 1; got {self.threads}")
        if self.timeout_seconds <= 0:
            raise GenloomError(f"--timeout must be positive; got {self.timeout_seconds}")
        watermark_of(self.watermark_key)  # an empty key is refused as the sampler refuses it
        if self.api_key is not None and not self.api_key.strip():
            raise GenloomError("the API key is empty; give a key, or none to serve on loopback only")
        if not is_loopback(self.host) and self.api_key is None:
            raise GenloomError(f"--host {self.host} lets other machines in; give --api-key KEY (or GENLOOM_API_KEY) "
                               "to serve beyond this machine, or leave --host at 127.0.0.1")


def is_loopback(host: str) -> bool:
    """Whether `host` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def inference_threads(settings: ServeSettings, cores: int) -> int:
    """Torch threads for one inference: as asked, or the `cores` shared out among the inference slots. A server
    runs requests side by side; each with every core's thread pool would have them fight over the cores (on
    this 2-core machine a lone stream through the server ran 6-9 points further behind `model.generate` with
    two threads than with one)."""
    return settings.threads or max(1, cores // settings.max_concurrency)
