"""The options of every family and of its sampler: typed records with help text and limits, light enough
(no torch) for the command line to build its flags from them. Defaults that depend on the data kind are
not here but in genloom/defaults.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import GenloomError
from ..options import Options, option

GAN_LOSSES = ("non-saturating", "wasserstein-gp")
GAN_GENERATORS = ("classical", "quantum")
# the quantum generator's state vector holds 2^qubits amplitudes per example: a batch of 64 through 6 layers
# forward and back takes 0.08 s at 8 qubits on one thread here, 0.22 s at 10, 0.67 s at 12 (35x genloom's conv
# generator), and each further qubit nearly doubles it (benchmarks/quantum.py --timings)
MAX_QUBITS = 12
NOISE_SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v")
DIFFUSION_SAMPLERS = ("ddpm", "ddim", "dpm-solver", "dpm-solver-sde")
TIMESTEP_SPACINGS = ("leading", "trailing")
GELU = ("tanh", "none")
CAUSAL_NETWORKS = ("transformer", "wavenet")
VAE_DECODERS = ("parallel", "autoregressive")
DESIGN_PRIOR_WEIGHT = 0.2  # Model.optimize's pull toward the prior, chosen on benchmarks/design.py
DESIGN_STEPS = 200         # its Langevin steps on the codes


def given_columns() -> list[str] | None:
    """The condition_on field of a family that can be given columns."""
    return option(None, "tables: columns it is given, the others it generates: p(next state | state, action) from "
                  "condition_on=[state and action columns]")


@dataclass
class VAEConfig(Options):
    latent_dim: int = option(16, "size of the latent code", min=1)
    beta: float = option(1.0, "weight of the KL term; above 1 trades reconstructions for a smoother latent space",
                         min=0)
    width: int = option(32, "channels of the first conv layer, doubled at each halving (tables: 8x units)", min=1)
    conditional: bool = option(False, "condition encoder and decoder on the class label")
    label_dim: int = option(16, "size of the label embedding (conditional)", min=1)
    importance_samples: int = option(16, "codes per example in log_prob's importance-weighted bound (1: the ELBO); "
                                     "default 1 on images", min=1)
    property: str | None = option(None, "a numerical table column, or a molecule property (QED, logP, SA, weight), "
                                  "that a head on the latent learns to predict, so that `optimize` can design rows "
                                  "or molecules that raise or lower it")
    property_weight: float = option(3.0, "weight of the property head's squared error (in standard deviations "
                                    "of the property) against the ELBO's nats", min=0)
    condition_on: list[str] | None = given_columns()
    decoder: str = option("parallel", "molecules: parallel (every token from the code at once) or autoregressive (a "
                          "GRU that reads the tokens before each one, as MOSES' VAE)", choices=VAE_DECODERS)
    word_dropout: float = option(0.0, "share of the tokens an autoregressive decoder reads that are masked in "
                                 "training, so it leans on the code (Bowman et al. 2016)", min=0, below=1)
    kl_warmup: float = option(0.0, "share of the training budget over which the KL weight rises from 0 to beta "
                              "(Bowman et al. 2016: the code is learnt before it is squeezed)", min=0, max=1)
    free_bits: float = option(0.0, "nats of KL per latent dimension left unpenalised (Kingma et al. 2016), so an "
                              "autoregressive decoder cannot leave the code unused", min=0)

    def codec_options(self) -> dict[str, Any]:
        return {**({"property": self.property} if self.property is not None else {}),
                **({"condition_on": self.condition_on} if self.condition_on is not None else {})}


@dataclass
class GANConfig(Options):
    latent_dim: int | None = option(None, "size of the generator's input noise (default 32; the quantum generator "
                                    "takes one angle per qubit)", min=1)
    width: int = option(32, "channels of the first conv layer of G and D, doubled at each halving", min=1)
    loss: str = option("non-saturating", "the adversarial loss", choices=GAN_LOSSES)
    gp_weight: float = option(10.0, "weight of the gradient penalty (wasserstein-gp)", min=0)
    r1_weight: float = option(0.0, "gamma of the R1 penalty, gamma/2 ||grad D(real)||^2 (Mescheder et al. 2018)",
                              min=0)
    d_steps: int = option(1, "discriminator updates per generator update", min=1)
    spectral_norm: bool = option(True, "spectrally normalise D's layers (and drop its group norms)")
    conditional: bool = option(False, "class-conditional G (label embedding) and D (projection)")
    label_dim: int = option(16, "size of the label embedding (conditional)", min=1)
    category_conditions: bool = option(True, "tables: CTGAN's conditional vector and training-by-sampling")
    # PacGAN: 4 for an unconditional image GAN with the non-saturating loss, whose G otherwise collapses to a few
    # digits (benchmarked), else 1; tables: 10, as CTGAN (defaults.py)
    pac: int | None = option(None, "examples the critic judges together (PacGAN); default 10 on tables, 4 for the "
                             "non-saturating loss on images, else 1", min=1)
    backbone: str = option("classical", "G's network: classical (a conv net for images, an MLP for tables) or "
                           "quantum (PennyLane circuits, the patch method; needs genloom[quantum])",
                           choices=GAN_GENERATORS)
    qubits: int | None = option(None, "quantum: qubits of each patch circuit, one of them an ancilla; a patch gives "
                                "2^(qubits - 1) of the outputs (default 5)", min=2)
    circuit_depth: int | None = option(None, "quantum: layers of RY rotations and CZ entanglers in each circuit "
                                       "(default 6)", min=1)

    def check(self) -> None:
        if self.pac not in (None, 1) and self.conditional:
            raise GenloomError("pac (PacGAN) packs examples of different classes: use it without --conditional")
        if self.backbone == "quantum":
            self._check_quantum()
        elif self.qubits is not None or self.circuit_depth is not None:
            raise GenloomError("qubits and circuit_depth shape the quantum generator: add --backbone quantum "
                               "(backbone=\"quantum\")")
        self.latent_dim = self.latent_dim or 32
        if self.pac is None:  # the family's rule where no kind's default (defaults.py) or user chose one
            self.pac = 4 if self.loss == "non-saturating" and not self.conditional else 1

    def _check_quantum(self) -> None:
        self.qubits, self.circuit_depth = self.qubits or 5, self.circuit_depth or 6
        if self.qubits > MAX_QUBITS:
            raise GenloomError(f"a {self.qubits}-qubit circuit is more than the simulator handles here (at most "
                               f"{MAX_QUBITS} qubits): use fewer; more patches then cover the outputs")
        if self.latent_dim not in (None, self.qubits):
            raise GenloomError(f"the quantum generator takes one noise angle per qubit: latent_dim must be "
                               f"{self.qubits} (the qubits), not {self.latent_dim}; leave it out")
        self.latent_dim = self.qubits


@dataclass
class WGANGPConfig(GANConfig):
    loss: str = option("wasserstein-gp", "the adversarial loss", choices=GAN_LOSSES)
    d_steps: int = option(2, "discriminator updates per generator update", min=1)
    spectral_norm: bool = option(False, "spectrally normalise D's layers (the gradient penalty already bounds it)")


@dataclass
class StyleGANConfig(GANConfig):
    """A StyleGAN2-style generator against the GAN's spectrally normalised critic: StyleGAN's own critic has R1
    instead (--r1-weight), but this smaller one, with R1 alone, drove G into its tanh's saturation on a flat
    grey image that it learns with spectral norm (tests/families/test_gan.py)."""

    latent_dim: int = option(64, "size of z and of the style w", min=1)
    mapping_layers: int = option(4, "layers of the mapping network from z to w", min=1)
    style_mixing: float = option(0.9, "share of training batches whose styles switch to a second code at a random "
                                 "resolution (style mixing)", min=0, max=1)

    def check(self) -> None:
        if self.backbone != "classical":
            raise GenloomError("stylegan has its own generator; a quantum one trains with --family gan or wgan-gp")
        super().check()


@dataclass
class StyleSampling(Options):
    truncation: float = option(1.0, "the truncation trick: pull each style towards the average style, 1 = not "
                               "at all, 0 = every sample the average", min=0, max=1)


@dataclass
class CycleGANConfig(Options):
    """Two translators between the training images (domain A) and `target_data` (domain B), with a critic each."""

    target_data: str | None = option(None, "cyclegan: the second image set (domain B): a built-in name, folder or "
                                     "array file; the training data is domain A")
    width: int = option(32, "channels of the translators' and critics' first conv layer", min=1)
    blocks: int = option(3, "residual blocks in each translator", min=1)
    cycle_weight: float = option(10.0, "weight of the cycle-consistency loss |G_BA(G_AB(a)) - a| (and back)", min=0)
    identity_weight: float = option(5.0, "weight of the identity loss |G_AB(b) - b| (and back), which keeps what "
                                    "needs no translating", min=0)
    conditional: bool = option(True, "always: the label of each image is its domain")

    def check(self) -> None:
        if not self.conditional:
            raise GenloomError("cyclegan is always conditional: the label of each image is its domain")

    def second_data(self) -> str | None:
        return self.target_data


@dataclass
class DiffusionConfig(Options):
    schedule: str = option("cosine", "noise schedule: linear (DDPM) or cosine (improved DDPM)", choices=NOISE_SCHEDULES)
    timesteps: int = option(1000, "noise levels in training", min=2)
    prediction: str = option("epsilon", "what the network predicts: the noise, or v (Salimans & Ho 2022)",
                             choices=PREDICTIONS)
    width: int = option(32, "U-Net channels at full resolution (twice that below)", min=1)
    res_blocks: int = option(1, "residual blocks per resolution", min=1)
    depth: int | None = option(None, "halvings in the U-Net (default: as many as fit, at most 3)", min=1)
    attention: bool = option(True, "self-attention at the lowest resolution")
    dropout: float = option(0.0, "dropout in the residual blocks", min=0, below=1)
    conditional: bool = option(False, "class-conditional, with classifier-free guidance at sampling")
    label_dropout: float = option(0.1, "share of training labels replaced by 'no class' (conditional)", min=0, below=1)
    sampler: str = option("dpm-solver", "the sampler used when none is asked (tables: ddpm, whose categories come "
                          "out better from 100 small steps than from 20 large ones; family auto's diffusion for a "
                          "table of numbers: dpm-solver)", choices=DIFFUSION_SAMPLERS)
    sample_steps: int | None = option(None, "its network evaluations when none are asked, at most timesteps "
                                      "(default: 20, every timestep for ddpm; tables: 100, or auto's 20)", min=1)
    guidance: float = option(1.0, "classifier-free guidance when sampling asks none, for a conditional model; 1 = "
                             "plain conditional sampling", min=0)
    timestep_spacing: str = option("leading", "where ddpm's and ddim's steps fall: leading (end at 0, as diffusers' "
                                   "default) or trailing (start at the noisiest step, as a distilled student "
                                   "samples)", choices=TIMESTEP_SPACINGS)
    condition_on: list[str] | None = given_columns()

    condition_noise: float = option(0.0, "tables given columns: the spread of Gaussian noise added to their encoded "
                                    "values in training", min=0)

    def codec_options(self) -> dict[str, list[str]]:
        return {"condition_on": self.condition_on} if self.condition_on is not None else {}


@dataclass
class DiffusionSampling(Options):
    sampler: str | None = option(None, "ddpm (ancestral), ddim, dpm-solver (DPM-Solver++ 2M) or dpm-solver-sde "
                                 "(its SDE form: fresh noise each step); default: the run's own",
                                 choices=DIFFUSION_SAMPLERS)
    steps: int | None = option(None, "network evaluations (default: the run's own)", min=1)
    eta: float = option(0.0, "DDIM's noise: 0 deterministic, 1 as DDPM", min=0)
    guidance: float | None = option(None, "classifier-free guidance scale; 1 = plain conditional sampling "
                                    "(default: the run's own)", min=0)

    def check(self) -> None:
        if self.eta != 0 and self.sampler != "ddim":
            raise GenloomError("eta applies to the ddim sampler only")


@dataclass
class AutoregressiveConfig(Options):
    n_layer: int = option(3, "transformer blocks (default: 3; text on a CPU with a budget under 5 minutes of one "
                             "thread: 2)", min=1)
    n_head: int = option(4, "attention heads", min=1)
    n_embd: int = option(128, "width of the residual stream", min=1)
    block_size: int = option(128, "context length in tokens (text)", min=1)
    dropout: float = option(0.0, "dropout", min=0, below=1)
    bias: bool = option(False, "biases in linear and LayerNorm layers (GPT-2 has them)")
    rope: bool = option(True, "rotary position embeddings instead of learned ones")
    gelu: str = option("tanh", "GELU: tanh (GPT-2's approximation) or none (exact)", choices=GELU)
    layer_norm_eps: float = option(1e-5, "LayerNorm epsilon", above=0)
    levels: int = option(16, "images: intensity levels per pixel (K, a power of 2); the context is the image")
    bins: int = option(32, "tables: quantile bins per number; the context is the row", min=2)
    conditional: bool = option(False, "images: the first token names the class")
    backbone: str = option("transformer", "the network: transformer, or wavenet (signals: dilated causal "
                           "convolutions, n_embd channels wide; the transformer's other options do not apply)",
                           choices=CAUSAL_NETWORKS)
    wavenet_layers: int | None = option(None, "wavenet: dilated layers per cycle, dilations 1, 2, 4, ... "
                                        "2^(layers - 1) (default 10, fewer where a sequence is shorter than their "
                                        "reach)", min=1, max=16)
    wavenet_cycles: int | None = option(None, "wavenet: cycles of those layers (default 2)", min=1)

    def check(self) -> None:
        if not 2 <= self.levels <= 256 or 256 % self.levels:
            raise GenloomError(f"levels (K) must be a power of 2 from 2 to 256 (equal bins of 8-bit values); "
                               f"got {self.levels}")
        if self.backbone == "wavenet":
            self.wavenet_cycles = self.wavenet_cycles or 2
        elif self.wavenet_layers is not None or self.wavenet_cycles is not None:
            raise GenloomError("wavenet_layers and wavenet_cycles shape WaveNet: add --backbone wavenet "
                               "(backbone=\"wavenet\")")
        elif self.n_embd % self.n_head or (self.rope and (self.n_embd // self.n_head) % 2):
            raise GenloomError(f"n_embd ({self.n_embd}) must split into n_head ({self.n_head}) heads "
                               "of equal, even size")


@dataclass
class AutoencoderOptions(Options):
    """The first stage of a latent family: an autoencoder that compresses images `compression` times per side,
    trained for the first share of the budget (or taken from another run) before its prior trains on the codes."""

    compression: int = option(4, "latent families: the autoencoder's downsampling per side (a power of 2)", min=2)
    autoencoder_width: int = option(16, "latent families: channels of the autoencoder's first conv layer, doubled "
                                    "at each halving", min=1)
    autoencoder_share: float = option(0.3, "latent families: share of the training budget the autoencoder trains "
                                      "before the prior starts on its latents", above=0, below=1)
    autoencoder: str | None = option(None, "latent families: a run of the same family whose trained autoencoder "
                                     "is reused, frozen; the whole budget then trains the prior")

    def check(self) -> None:
        if self.compression & (self.compression - 1):
            raise GenloomError(f"compression must be a power of 2 (2, 4, 8, ...); got {self.compression}")


@dataclass
class LatentDiffusionConfig(DiffusionConfig, AutoencoderOptions):
    """Diffusion (Rombach et al. 2022) on the latents of a KL-regularised autoencoder."""

    width: int = option(64, "U-Net channels at full resolution (twice that below)", min=1)
    # latents cannot be clipped to [-1, 1] as pixels are, and unclipped, an epsilon model's x_0 at the noisiest
    # step divides by sqrt(abar) ~ 1e-3: DPM-Solver's samples were noise; v's x_0 never divides (MNIST, 5 minutes)
    prediction: str = option("v", "what the network predicts: v (Salimans & Ho 2022), or the noise",
                             choices=PREDICTIONS)
    latent_channels: int = option(4, "channels of the autoencoder's latent grid", min=1)
    kl_weight: float = option(1e-3, "weight of the autoencoder's KL term against its mean squared error per pixel "
                              "(a little keeps the latent space smooth)", min=0)


@dataclass
class VQVAEConfig(AutoregressiveConfig, AutoencoderOptions):
    """A vector-quantised autoencoder (van den Oord et al. 2017) and a transformer prior over its code grid."""

    codebook_size: int = option(256, "codes in the codebook", min=2)
    code_dim: int = option(16, "size of each code vector", min=1)
    commitment: float = option(0.25, "weight of the commitment loss that keeps the encoder near its codes", min=0)
    codebook_decay: float = option(0.99, "decay of the codebook's moving averages (the codes learn from them, "
                                   "not from gradients)", min=0, below=1)

    def check(self) -> None:
        if self.backbone != "transformer":
            raise GenloomError("the VQ-VAE's prior is a transformer over its grid of codes; drop --backbone")
        AutoregressiveConfig.check(self)
        AutoencoderOptions.check(self)


@dataclass
class TokenSampling(Options):
    """Next-token sampling settings, in Hugging Face's order and with its semantics."""

    temperature: float = option(1.0, "0 = greedy", min=0)
    top_k: int | None = option(None, "keep the k most likely tokens", min=1)
    top_p: float = option(1.0, "keep the smallest set whose probability reaches top_p (nucleus)", above=0, max=1)
    repetition_penalty: float = option(1.0, "above 1 discourages tokens already in the text (CTRL)", above=0)
    epsilon: float = option(0.0, "drop tokens less likely than this (epsilon sampling, Hewitt et al. 2022: the tail "
                            "a model trained with cross-entropy smears over every token); molecules: 0.02", min=0,
                            below=1)
    grammar: bool = option(True, "molecules in SMILES: draw only tokens that keep the string well-formed (every "
                           "branch and ring closed, no bond without its atoms); False draws from the model as it is")


@dataclass
class DistillSettings(Options):
    """What a distilled student is (genloom/distill.py): fewer sampling steps for diffusion, a smaller network
    taught on soft targets for an autoregressive model. Left at None, a setting takes its method's default and one
    of the other method is refused."""

    steps: int | None = option(None, "diffusion: the student's sampling steps (default 4)", min=1)
    teacher_steps: int | None = option(None, "diffusion: the teacher's DDIM steps the first halving learns from, the "
                                       "student's steps times a power of 2 (default: the least at or above the "
                                       "teacher's own sampling steps)", min=2)
    n_layer: int | None = option(None, "autoregressive: the student's transformer blocks (default: half the "
                                 "teacher's, at least 1)", min=1)
    n_head: int | None = option(None, "autoregressive: the student's attention heads (default: the teacher's)", min=1)
    n_embd: int | None = option(None, "autoregressive: the student's width (default: half the teacher's)", min=1)
    temperature: float | None = option(None, "autoregressive: softmax temperature of the teacher's soft targets "
                                       "(default 1)", above=0)
    soft_weight: float | None = option(None, "autoregressive: share of the loss on the soft targets, the rest on "
                                       "the data's next tokens (default 0.5)", min=0, max=1)


@dataclass
class PPOSettings(Options):
    """PPO's settings (families/ppo.py): rounds of sampling then updating, as TRL's PPO trainer takes them."""

    rounds: int = option(30, "PPO: rounds of drawing samples, scoring them and updating on them", min=1)
    rollouts: int = option(64, "PPO: samples drawn and scored per round", min=2)
    ppo_epochs: int = option(4, "PPO: passes over each round's samples", min=1)
    minibatch: int = option(16, "PPO: samples per update", min=1)
    ppo_lr: float = option(1e-3, "PPO: learning rate of the adapters and the value head", above=0)
    kl_coef: float = option(0.05, "PPO: per-token penalty on log p_tuned - log p_base, which keeps the tuned "
                            "model near the base", min=0)
    clip_range: float = option(0.2, "PPO: how far one round may move each token's probability ratio (and "
                               "the values)", above=0)
    gae_lambda: float = option(0.95, "PPO: GAE's lambda (1: the whole return; 0: one step)", min=0, max=1)
    value_coef: float = option(0.5, "PPO: weight of the value head's error", min=0)
    response_tokens: int = option(64, "PPO on text: tokens of each sampled continuation", min=1)
