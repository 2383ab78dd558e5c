"""The HTTP app: genloom's own endpoints (runs, samples, scores, interpolation, reports), the OpenAI-compatible
text endpoints and the studio page, behind the API key, the body cap and the inference slots."""
from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import GenloomError
from .batching import Pools, fresh_seed, split
from .catalogue import DamagedRun, RunCatalogue, UnknownRun
from .limits import ApiError, GuardMiddleware, InferenceSlots, error_body
from .media import MEDIA
from .openai_api import add_openai_routes
from .schemas import InterpolateRequest, SampleRequest, ScoreRequest
from .settings import ServeSettings
from .text_decoding import TextDecoder

STATUS_OF = {UnknownRun: 404, DamagedRun: 503}  # any other GenloomError is the request's fault: 400


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(status, message), status, headers, media_type="application/json")


def _validation_message(error: RequestValidationError) -> str:
    """pydantic's first complaint as one line: where in the request, and what is wrong."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "the request body"
    return f"{where}: {first.get('msg', 'invalid')}" + (f" (and {len(error.errors()) - 1} more)"
                                                        if len(error.errors()) > 1 else "")


def create_app(catalogue: RunCatalogue, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The server's app, answering for the runs of `catalogue` within `settings`' limits."""
    slots = InferenceSlots(settings.max_concurrency, settings.timeout_seconds)
    sample_pools = Pools(slots, settings.max_samples * settings.max_concurrency) if settings.batching else None
    text_decoder = TextDecoder(slots, settings.batching, settings.max_tokens * settings.max_concurrency)

    app = FastAPI(title="genloom", version=__version__,
                  description="Samples, scores and completions from trained genloom runs.")
    app.state.slots = slots  # tests look at it
    app.add_middleware(GuardMiddleware, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origin:
        app.add_middleware(CORSMiddleware, allow_origins=[settings.cors_origin], allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return _error(error.status, error.message, error.headers)

    @app.exception_handler(GenloomError)
    async def genloom_error(request: Request, error: GenloomError) -> Response:
        return _error(STATUS_OF.get(type(error), 400), str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return _error(422, _validation_message(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    def model_of(name: str) -> tuple[Any, Any]:
        """The run's model (loaded now if need be: call on a worker thread) and its data kind's media."""
        model = catalogue.model(name)
        return model, MEDIA[model.codec.kind]

    def checked_count(n: int) -> None:
        if n > settings.max_samples:
            raise ApiError(400, f"n is {n}; this server makes at most {settings.max_samples} samples a request "
                                "(--max-samples)")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def studio() -> HTMLResponse:
        return HTMLResponse(resources.files(__package__).joinpath("studio", "index.html").read_text("utf-8"))

    @app.get("/studio/{asset}", include_in_schema=False)
    def studio_asset(asset: str) -> Response:
        types = {"studio.js": "text/javascript", "studio.css": "text/css"}
        if asset not in types:
            raise ApiError(404, f"no studio file {asset!r}")
        return Response(resources.files(__package__).joinpath("studio", asset).read_bytes(), media_type=types[asset])

    @app.get("/healthz", tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness: the runs served and those in memory."""
        pooling = ({"samples": sample_pools.counts(), "text": text_decoder.batches.counts()} if settings.batching
                   else None)
        return {"status": "ok", "runs": len(catalogue.names()), "loaded": catalogue.loaded(), "busy": slots.busy,
                "batching": pooling}

    @app.get("/v1/runs", tags=["runs"])
    def list_runs() -> dict[str, Any]:
        """Every served run: name, family, data kind and final metrics (a damaged run says what is wrong)."""
        return {"runs": [catalogue.summary(name).as_json() for name in catalogue.names()]}

    @app.get("/v1/runs/{name}", tags=["runs"])
    async def describe_run(name: str) -> dict[str, Any]:
        """A run's summary and what a client may ask of it: labels, columns, sampling options, formats."""
        summary = catalogue.summary(name)
        if summary.problem:
            raise DamagedRun(f"run {name!r} cannot be read: {summary.problem}")
        model, media = await asyncio.to_thread(model_of, name)
        return {**summary.as_json(), **model.describe(), "formats": list(media.formats)}

    @app.get("/v1/runs/{name}/report", response_class=HTMLResponse, tags=["runs"])
    def report(name: str) -> HTMLResponse:
        """The run's report.html."""
        path = catalogue.path(name) / "report.html"
        if not path.is_file():
            raise ApiError(404, f"run {name!r} has no report.html; `genloom evaluate` writes one")
        return HTMLResponse(path.read_text("utf-8"))

    @app.post("/v1/runs/{name}/samples", tags=["runs"])
    async def samples(name: str, request: SampleRequest) -> Response:
        """n new samples, in the format asked for (images: a PNG grid by default; tables: CSV; text: JSON).
        Requests without a seed that arrive together are drawn in one pass (unless --no-batching)."""
        checked_count(request.n)
        model, media = await asyncio.to_thread(model_of, name)
        write = media.formats[media.format(request.format, model.codec.kind)]  # checked before any work

        def draw(n: int, seed: int) -> Any:
            return model.sample(n, seed=seed, labels=request.labels, conditions=request.conditions, progress=False,
                                watermark=request.watermark, **request.sampling_options())

        if request.seed is None and sample_pools is not None and not isinstance(request.labels, list):
            made = await sample_pools.add(f"{name} {request.drawn_alike()}", request.n, request.n,
                                          lambda sizes: split(draw(sum(sizes), fresh_seed()), sizes))
        else:
            seed = fresh_seed() if request.seed is None else request.seed
            made = await slots.run(lambda: draw(request.n, seed))
        provenance = model.provenance(watermark=request.watermark, seed=request.seed, samples=request.n,
                                      request=f"POST /v1/runs/{name}/samples")
        body = await asyncio.to_thread(write, made, provenance)
        return Response(body.content, media_type=body.media_type, headers=body.headers)

    @app.post("/v1/runs/{name}/interpolate", tags=["runs"])
    async def interpolate(name: str, request: InterpolateRequest) -> Response:
        """Samples along the path between the latent codes of two seeds (families with a latent space)."""
        def walk() -> Any:
            model, media = model_of(name)
            write = media.formats[media.format(request.format, model.codec.kind)]
            frames = model.interpolate(request.from_seed, request.to_seed, request.frames, method=request.method,
                                       labels=request.labels)
            return write(frames, model.provenance(interpolation=request.model_dump(exclude={"format"}),
                                                  request=f"POST /v1/runs/{name}/interpolate"))

        body = await slots.run(walk)
        return Response(body.content, media_type=body.media_type, headers=body.headers)

    detectors: WeakKeyDictionary = WeakKeyDictionary()  # an anomaly detector's run: its detector, while loaded

    @app.post("/v1/runs/{name}/score", tags=["runs"])
    async def score(name: str, request: ScoreRequest) -> dict[str, Any]:
        """Each posted example's anomaly score: the higher, the less like the training data. Where the family has
        a likelihood, it is the negated log-likelihood in nats (a VAE: its lower bound, the ELBO), given too; a
        diffusion model's is its denoising error averaged over noise levels, and its log_likelihood null. A run that
        `genloom anomaly fit` wrote answers with its detector's score and flags (1 past its threshold)."""
        checked_count(len(request.examples))

        def scores() -> dict[str, Any]:
            model, media = model_of(name)
            tools = model.ema_net.tools
            if not {"log_prob", "anomaly_score"} & tools:  # before reading examples it cannot score
                raise ApiError(400, f"family '{model.family_name}' has neither a likelihood nor an anomaly score: "
                                    f"run {name!r} cannot score examples")
            examples = media.read_examples(request.examples, model.codec)
            if "anomaly" in model.record:
                from ..anomaly import AnomalyDetector  # scikit-learn: slow to import, wanted by detectors' runs only

                detector = detectors.get(model) or detectors.setdefault(model, AnomalyDetector.of(model))
                made = detector.decision_function(examples)
                return {"log_likelihood": None, "anomaly_score": made.tolist(), "unit": "detector score",
                        "anomaly": (made > detector.threshold_).astype(int).tolist(), "threshold": detector.threshold_}
            if "log_prob" not in tools:
                made = model.anomaly_scores(examples, labels=request.labels, seed=request.seed).tolist()
                return {"log_likelihood": None, "anomaly_score": made, "unit": "denoising error"}
            values = model.log_prob(examples, labels=request.labels, seed=request.seed).tolist()
            return {"log_likelihood": values, "anomaly_score": [-value for value in values], "unit": "nats"}

        return await slots.run(scores)

    add_openai_routes(app, catalogue, text_decoder, settings)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:  # logged by uvicorn; never a traceback out
        return JSONResponse({"error": {"message": f"internal error: {type(error).__name__}", "type": "server_error",
                                       "code": 500}}, 500)

    return app
