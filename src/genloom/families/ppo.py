"""PPO for a sequence model tuned from feedback (Schulman et al. 2017; Ziegler et al. 2019; Ouyang et al. 2022):
the policy is the model with LoRA adapters, a value head reads its hidden states, a frozen copy of the model is
the reference, and each sampled sequence earns its reward at its last token less a per-token KL penalty to the
reference. Advantages by GAE; the clipped surrogate for the policy, a clipped squared error for the values.

Written here rather than taken from TRL: TRL's PPO trainer needs a transformers model and its tokenizer; this is
one loss over genloom's own transformer and its LoRA, with tensors for sequences as the codec encodes them."""
from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import torch
from torch import nn

from .base import Family
from .configs import PPOSettings


@dataclass(frozen=True)
class Rollouts:
    """Sampled sequences and what PPO keeps of them, per token of token_log_probs' alignment (B, T)."""

    ids: torch.Tensor            # the sequences, as the codec encodes them
    response: torch.Tensor       # the codec's mask of the sampled tokens (a prompt's are not)
    mask: torch.Tensor           # that mask aligned with the log-probabilities
    log_probs: torch.Tensor      # under the policy that drew them
    values: torch.Tensor         # the value head's, then
    advantages: torch.Tensor     # GAE, whitened over the batch's sampled tokens
    returns: torch.Tensor        # advantages (before whitening) + values: the value head's targets
    kl: torch.Tensor             # (B,) log pi - log ref summed over each sequence's sampled tokens

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, index: torch.Tensor) -> Rollouts:
        """The rollouts at `index` (a minibatch)."""
        return Rollouts(**{field.name: getattr(self, field.name)[index] for field in fields(self)})


def generalised_advantages(rewards: torch.Tensor, values: torch.Tensor, lam: float) -> torch.Tensor:
    """GAE with gamma = 1 (Schulman et al. 2016): A_t = delta_t + lam * A_(t+1), delta_t = r_t + V_(t+1) - V_t,
    over (B, T) tensors that are zero outside the sampled tokens (so the value after the last one is 0)."""
    advantages = torch.zeros_like(rewards)
    following = torch.zeros_like(rewards[:, 0])
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    for t in reversed(range(rewards.shape[1])):
        following = rewards[:, t] + next_values[:, t] - values[:, t] + lam * following
        advantages[:, t] = following
    return advantages


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1)


class PPOObjective(nn.Module):
    """The policy (its adapters train), its value head (trains) and the frozen reference."""

    def __init__(self, policy: Family, settings: PPOSettings):
        super().__init__()
        self.reference = copy.deepcopy(policy).requires_grad_(False).eval()  # before the adapters train
        self.policy, self.settings = policy, settings
        self.value_head = nn.Linear(policy.config.n_embd, 1)
        nn.init.zeros_(self.value_head.weight), nn.init.zeros_(self.value_head.bias)

    @torch.no_grad()
    def rollouts(self, ids: torch.Tensor, response: torch.Tensor, rewards: torch.Tensor) -> Rollouts:
        """What PPO needs of sequences `ids` whose `response` tokens the policy drew and that earned `rewards`
        (B,): the reward at the last sampled token, minus kl_coef * (log pi - log ref) at every sampled token.
        The rewards are standardised over the batch first (as TRL's and OpenRLHF's reward normalisation), so
        that kl_coef means the same for a reward that spans 0.01 as for one that spans 100."""
        log_probs, mask, hidden = self.policy.token_log_probs(ids, response)
        reference, _, _ = self.reference.token_log_probs(ids, response)
        mask = mask.float()
        values = self.value_head(hidden).squeeze(-1) * mask
        kl = (log_probs - reference) * mask
        token_rewards = -self.settings.kl_coef * kl
        last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(1)
        rewards = rewards.to(token_rewards)
        token_rewards[torch.arange(len(ids)), last] += (rewards - rewards.mean()) / rewards.std().clamp_min(1e-8)
        advantages = generalised_advantages(token_rewards, values, self.settings.gae_lambda)
        mean = masked_mean(advantages, mask)
        spread = masked_mean((advantages - mean).pow(2), mask).sqrt().clamp_min(1e-8)
        return Rollouts(ids, response, mask, log_probs, values, (advantages - mean) / spread * mask,
                        advantages + values, kl.sum(1))

    def loss(self, batch: Rollouts) -> tuple[torch.Tensor, dict[str, float]]:
        """The clipped surrogate plus value_coef times the clipped value error, over the batch's sampled tokens."""
        clip = self.settings.clip_range
        log_probs, _, hidden = self.policy.token_log_probs(batch.ids, batch.response)
        ratio = (log_probs - batch.log_probs).exp()
        surrogate = torch.max(-batch.advantages * ratio, -batch.advantages * ratio.clamp(1 - clip, 1 + clip))
        values = self.value_head(hidden).squeeze(-1)
        clipped = batch.values + (values - batch.values).clamp(-clip, clip)
        value_error = 0.5 * torch.max((values - batch.returns).pow(2), (clipped - batch.returns).pow(2))
        policy_loss = masked_mean(surrogate, batch.mask)
        value_loss = masked_mean(value_error, batch.mask)
        numbers = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                   "clip_fraction": masked_mean(((ratio - 1).abs() > clip).float(), batch.mask).item()}
        return policy_loss + self.settings.value_coef * value_loss, numbers
