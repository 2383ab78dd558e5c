"""PPO tuning of a LoRA adapter, the loop of RLHF: rounds of drawing samples from the adapted model, scoring them
with a reward (a function of each sample, a molecule's property, or a reward model learnt from preference pairs)
and updating the adapters and a value head on them by PPO (families/ppo.py). The adapter is written after every
round, so a reward that fails half-way stops the tuning with the last good adapter kept, and with it the state that
lets `resume` go on from that round as if never stopped (removed once the last round is done)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..data.codec import Codec
from ..data.preferences import PreferencePair
from ..errors import GenloomError
from ..files import atomic_path
from ..families.base import Family
from ..families.configs import PPOSettings, TokenSampling
from ..families.ppo import PPOObjective, Rollouts
from ..families.reward_model import RewardModel
from ..nets.lora import DEFAULT_TARGETS, lora_state_dict
from ..runs.adapter import write_adapter
from ..train.checkpoint import load_state, save_state
from ..train.config import TrainConfig
from ..train.device import resolve_device, thread_count, using_threads
from . import PPO_STATE, LoRASettings, adapted_copy, encoded_preferences, trained_family


REWARD_MODEL_WEIGHTS = "trained.safetensors"  # in OUT/reward-model: the reward model's adapters and head


@dataclass(frozen=True)
class Drawn:
    """Samples of the policy: as text for a reward to read, and as the codec encodes them for PPO."""

    texts: list[str]            # the sampled responses (a molecule's SMILES)
    ids: torch.Tensor           # (B, T) the prompt's and the response's tokens, right-padded
    response: torch.Tensor      # (B, T) 1 at the sampled tokens


SequenceReward = Callable[[Drawn], torch.Tensor]  # (B,) a reward for each sample


def _first_tokens(codec: Codec, prompt: str) -> torch.Tensor:
    """The start token and the prompt's tokens, as preference_example lays a prompt out."""
    return torch.cat([torch.tensor([codec.layout.start_token]), codec.encode(prompt)])


def check_prompts(policy: Family, codec: Codec, prompts: Sequence[str], settings: PPOSettings) -> None:
    """Refuse, before anything trains, a prompt whose sampled continuation would not fit the model's context."""
    codec.check_preferences()
    context = policy.context_length
    if context is None:
        if any(prompts):
            raise GenloomError(f"this model draws whole {codec.kind} examples, without a prompt; leave the prompts "
                               "out")
        return
    for prompt in prompts or [""]:
        length = len(_first_tokens(codec, prompt)) + settings.response_tokens
        if length > context:
            raise GenloomError(f"the prompt {prompt[:40]!r} and {settings.response_tokens} response tokens make "
                               f"{length} tokens; this model's context is {context}: shorten the prompt or lower "
                               "response_tokens")


def draw(policy: Family, codec: Codec, prompts: Sequence[str], count: int, response_tokens: int,
         generator: torch.Generator, first: int = 0) -> Drawn:
    """`count` samples: whole examples where the model draws them whole (molecules), else `response_tokens`
    tokens after each prompt in turn, from the `first`-th on (rounds go on where the last one stopped). The
    sampled tokens themselves are kept, not their re-encoded text, so the likelihoods PPO weighs are of what was
    drawn."""
    if policy.context_length is None:
        ids = policy.sample(count, None, generator, TokenSampling(grammar=False)).cpu()  # on-policy: no mask
        return Drawn(codec.decode(ids), ids, torch.ones_like(ids))  # every token weighed, as DPO's
    asked = [prompts[(first + i) % len(prompts)] if prompts else "" for i in range(count)]
    device = next(policy.parameters()).device
    rows, texts = [], []
    for prompt in dict.fromkeys(asked):
        first = _first_tokens(codec, prompt).expand(asked.count(prompt), -1).to(device)
        tokens = torch.stack(list(policy.generate(first, response_tokens, TokenSampling(), generator)), dim=1)
        rows += [(row, len(first[0])) for row in torch.cat([first, tokens], dim=1).cpu()]
        texts += codec.decode(tokens)
    longest = max(len(row) for row, _ in rows)
    ids = torch.stack([F.pad(row, (0, longest - len(row))) for row, _ in rows])
    response = torch.stack([(torch.arange(longest) >= given) & (torch.arange(longest) < len(row))
                            for row, given in rows]).long()
    return Drawn(texts, ids, response)


def trained_weights(module: torch.nn.Module, trains: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The tensors of `module` that train in `trains` (itself, or the module its weight average copies): LoRA
    adapters and heads, by name."""
    training = {name for name, parameter in (trains or module).named_parameters() if parameter.requires_grad}
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()
            if name in training}


def load_trained_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Put `weights` (trained_weights of a module built the same way) back into `module`."""
    refusal = GenloomError(f"{source} does not fit this model's adapters (saved with other LoRA settings?); "
                           "resume with the rank and alpha it started with")
    if set(weights) != set(trained_weights(module)):
        raise refusal
    try:
        module.load_state_dict(weights, strict=False)
    except RuntimeError:  # a tensor of another shape: another rank
        raise refusal from None


def train_reward_model(base_net: Family, codec: Codec, pairs: Sequence[PreferencePair], config: TrainConfig,
                       out: Path, lora: LoRASettings, resume: bool = False) -> RewardModel:
    """A reward model (families/reward_model.py) on a LoRA-adapted copy of `base_net`, trained on the pairs; `out`
    keeps its training log (metrics.jsonl) and its adapters and head, which a resumed PPO run reads back
    (`resume`) instead of training it again."""
    saved = out / REWARD_MODEL_WEIGHTS
    if resume and saved.exists():
        model = RewardModel(adapted_copy(base_net, lora, config.seed)).to(resolve_device(config.device))
        load_trained_weights(model, load_file(saved), saved)
    else:
        encoded = encoded_preferences(base_net, codec, pairs, read_after=True)
        trainer = trained_family(RewardModel(adapted_copy(base_net, lora, config.seed)), encoded, config, out)
        model = trainer.ema.module
        with atomic_path(saved) as target:
            save_file(trained_weights(model, trainer.family), str(target))
    return model.requires_grad_(False).eval()


def reward_model_reward(model: RewardModel) -> SequenceReward:
    """The reward model's score of each sample."""
    def reward(drawn: Drawn) -> torch.Tensor:
        with torch.no_grad():
            device = next(model.parameters()).device
            return model.score(drawn.ids.to(device), drawn.response.to(device)).cpu()
    return reward


def checked_rewards(values: Any, count: int) -> torch.Tensor:
    """The (count,) rewards a reward gave for a round's samples, or a one-line error saying what is wrong."""
    try:
        rewards = torch.as_tensor(values, dtype=torch.float32).cpu()
    except (TypeError, ValueError, RuntimeError) as error:
        raise GenloomError(f"the reward gave {type(values).__name__}, not numbers ({str(error)[:80]}); return one "
                           "number per sample") from None
    if rewards.shape != (count,):
        raise GenloomError(f"the reward gave shape {tuple(rewards.shape)} for {count} samples; return one number per "
                           "sample")
    if not torch.isfinite(rewards).all():
        raise GenloomError(f"the reward gave {rewards[~torch.isfinite(rewards)][0].item()} for sample "
                           f"{int((~torch.isfinite(rewards)).nonzero()[0])}; return a finite number for every sample")
    return rewards


def _updated(objective: PPOObjective, optimizer: torch.optim.Optimizer, rollouts: Rollouts,
             generator: torch.Generator) -> dict[str, float]:
    """ppo_epochs passes over one round's rollouts in shuffled minibatches; the last update's numbers."""
    settings, trainable = objective.settings, optimizer.param_groups[0]["params"]
    for _ in range(settings.ppo_epochs):
        order = torch.randperm(len(rollouts), generator=generator).to(rollouts.ids.device)
        for start in range(0, len(rollouts), settings.minibatch):
            loss, numbers = objective.loss(rollouts.select(order[start:start + settings.minibatch]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
    return numbers


def _run_identity(base_run: Path, prompts: Sequence[str], settings: PPOSettings, lora: LoRASettings,
                  reward_source: dict[str, Any]) -> dict[str, Any]:
    """What a resumed PPO run must share with the run it goes on with: all but how many rounds it runs."""
    return {"base run": str(base_run.resolve()), "LoRA rank": lora.rank, "LoRA alpha": lora.alpha,
            "reward": reward_source, "prompts": list(prompts),
            **{name: value for name, value in asdict(settings).items() if name != "rounds"}}


def _resumed(out: Path, identity: dict[str, Any], rounds: int, objective: PPOObjective,
             optimizer: torch.optim.Optimizer, generator: torch.Generator) -> tuple[int, list[dict[str, float]]]:
    """Restore the state a PPO run left in `out` after its last whole round, if it is the run asked for (the same
    `identity`, at least as many `rounds`): that round's number and the history."""
    path = out / PPO_STATE  # there: check_adapter_base looked
    state = load_state(path)
    started = state["identity"]
    changed = [name for name in identity if started.get(name) != identity[name]]
    if changed:
        raise GenloomError(f"the PPO run in {out} started with {changed[0]} {started.get(changed[0])!r}, not "
                           f"{identity[changed[0]]!r}; resume it as it started (only its rounds may grow)")
    if rounds < state["rounds"] or rounds <= state["round"]:
        raise GenloomError(f"the PPO run in {out} was asked for {state['rounds']} rounds and has done "
                           f"{state['round']}; resume it with at least {max(state['rounds'], state['round'] + 1)} "
                           "(ppo={'rounds': N}, CLI: --rounds N)")
    load_trained_weights(objective, state["trained"], path)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    return state["round"], list(state["history"])


def train_ppo_adapter(base_net: Family, codec: Codec, base_run: Path, reward: SequenceReward, prompts: Sequence[str],
                      settings: PPOSettings, config: TrainConfig, out: Path, lora: LoRASettings,
                      reward_source: dict[str, Any], resume: bool = False) -> tuple[Family, Family, dict[str, Any]]:
    """Tune LoRA adapters on a copy of `base_net` (the saved run at `base_run`) toward `reward` by PPO, drawing
    after each of `prompts` in turn (none: unprompted); write the adapter to `out` after every round, and the state
    that `resume` goes on from. Returns the adapted network (twice: PPO keeps no weight average) and the adapter's
    record."""
    if not hasattr(base_net, "token_log_probs"):
        raise GenloomError(f"PPO tunes autoregressive runs; this run's family is {base_net.name}")
    check_prompts(base_net, codec, prompts, settings)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    objective = PPOObjective(adapted_copy(base_net, lora, config.seed), settings).to(device).eval()  # eval: no dropout
    trainable = [parameter for parameter in objective.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.ppo_lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    identity = _run_identity(base_run, prompts, settings, lora, reward_source)
    done, history = _resumed(out, identity, settings.rounds, objective, optimizer, generator) if resume else (0, [])
    adapter: dict[str, Any] | None = None
    bar = tqdm(total=settings.rounds, initial=done, unit="round", desc="PPO", disable=not config.progress)
    with using_threads(thread_count(config.threads)), bar:
        for number in range(done + 1, settings.rounds + 1):
            with torch.no_grad():
                drawn = draw(objective.policy, codec, prompts, settings.rollouts, settings.response_tokens, generator,
                             first=(number - 1) * settings.rollouts)
            try:
                rewards = checked_rewards(reward(drawn), len(drawn.texts))
            except GenloomError as error:
                if number == 1:
                    raise
                raise GenloomError(f"{error} (PPO stopped in round {number}; the adapter of round {number - 1} is "
                                   f"kept in {out}: go on from it with resume=True, CLI: --resume)") from None
            rollouts = objective.rollouts(drawn.ids.to(device), drawn.response.to(device), rewards)
            numbers = _updated(objective, optimizer, rollouts, generator)
            history.append({"round": number, "reward": round(rewards.float().mean().item(), 6),
                            "kl": round(rollouts.kl.mean().item(), 6), **{k: round(v, 6) for k, v in numbers.items()}})
            out.mkdir(parents=True, exist_ok=True)
            adapter = write_adapter(out, base_run, lora_state_dict(objective.policy), {
                "rank": lora.rank, "alpha": lora.alpha, "targets": list(DEFAULT_TARGETS),
                "steps_trained": number * settings.ppo_epochs * -(-settings.rollouts // settings.minibatch),
                "objective": "ppo", "ppo": asdict(settings), "reward": reward_source, "history": history,
                "train": asdict(config)})
            save_state({"round": number, "rounds": settings.rounds, "history": history, "identity": identity,
                        "trained": trained_weights(objective), "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(), "rng": torch.get_rng_state()}, out / PPO_STATE)
            bar.set_postfix(reward=f"{history[-1]['reward']:.3f}", kl=f"{history[-1]['kl']:.2f}")
            bar.update(1)
    (out / PPO_STATE).unlink()  # done: the adapter is what is kept
    return objective.policy, objective.policy, adapter
