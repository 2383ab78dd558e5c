"""Next-state prediction on a system with two outcomes (benchmarks/bouncing_ball.py: a ball that meets a ridge rolls
off to the left or to the right at random): genloom's conditional diffusion, `gl.Model("diffusion",
condition_on=["x", "v", "action"])`, and its conditional VAE (`gl.Model("vae", condition_on=...)`), against two
peers trained for the same seconds on one thread: an MLP
regressor (mean squared error: it predicts the mean of the outcomes) and a mixture-density network (Bishop 1994;
five diagonal Gaussians), both written here in torch with the diffusion model's input scaling.

Measured on held-out data from the same simulator:
- one-step error: RMSE of one predicted next state against the one the simulator took (a mean predictor is made
  for this number; a sampler pays for the spread of the outcomes);
- distribution match: at 100 held-out states whose next step meets the ridge (two outcomes) and at 100 elsewhere
  (one), the energy distance between 100 next states of the model and 100 of the simulator, averaged; and the
  share of the two-outcome states where the model puts a fifth of its samples or more on each side ("both
  modes");
- open-loop rollouts: from 50 start states, 20 rollouts each of 50 steps under the same actions, every step fed
  the model's own previous state; the energy distance between the models' and the simulator's states after 50
  steps (pooled over the starts), and the share of rollouts that ever cross the ridge; every model's states are
  held to the track and to speeds the data has (the simulator's own walls).

Target (issue 23): at the two-outcome states, genloom's energy distance <= 0.5 x the regressor's.

Usage (one core, nothing else running; about 20 minutes):
  .venv/bin/python benchmarks/dynamics.py --threads 1
  .venv/bin/python benchmarks/dynamics.py --quick --out /tmp/dynamics.md     (a smoke run)
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

import genloom as gl
from bouncing_ball import NEXT, RIDGE, ROLL_OFF, STATE, WALL, actions, initial_states, step, transitions
from shared_parts import all_numbers, log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "dynamics.md"
GIVEN = [*STATE, "action"]
GENLOOM_FAMILIES = ("diffusion", "vae")
TARGET_RATIO = 0.5
SAMPLES_PER_STATE, STATES = 100, 100
STARTS, ROLLOUTS, HORIZON = 50, 20, 50
SPEED_LIMIT = 1.5  # the training transitions' speeds stay within 1.05


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| between two samples of points (Székely & Rizzo): 0 for one distribution."""
    from scipy.spatial.distance import cdist

    return float(2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean())


class Scaled:
    """Standard scores of the inputs and outputs, fitted on the training transitions."""

    def __init__(self, frame: pd.DataFrame):
        self.mean_in, self.std_in = frame[GIVEN].mean().to_numpy(), frame[GIVEN].std().to_numpy()
        self.mean_out, self.std_out = frame[NEXT].mean().to_numpy(), frame[NEXT].std().to_numpy()

    def inputs(self, frame: pd.DataFrame) -> torch.Tensor:
        return torch.tensor((frame[GIVEN].to_numpy() - self.mean_in) / self.std_in, dtype=torch.float32)

    def outputs(self, frame: pd.DataFrame) -> torch.Tensor:
        return torch.tensor((frame[NEXT].to_numpy() - self.mean_out) / self.std_out, dtype=torch.float32)

    def unscaled(self, y: torch.Tensor) -> np.ndarray:
        return y.detach().numpy() * self.std_out + self.mean_out


def trunk(outputs: int) -> nn.Module:
    return nn.Sequential(nn.Linear(len(GIVEN), 256), nn.SiLU(), nn.Linear(256, 256), nn.SiLU(),
                         nn.Linear(256, 256), nn.SiLU(), nn.Linear(256, outputs))


class Regressor:
    """An MLP trained on the mean squared error: it predicts E[next state | state, action]."""

    def __init__(self, scaled: Scaled):
        self.scaled, self.net = scaled, trunk(len(NEXT))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.net(x) - y).square().mean()

    def predict(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            return self.scaled.unscaled(self.net(self.scaled.inputs(frame)))


class MixtureDensity:
    """A mixture-density network: K diagonal Gaussians over the next state, their weights, means and spreads from
    an MLP, trained on the negative log-likelihood; samples come from the mixture."""

    components = 5

    def __init__(self, scaled: Scaled):
        self.scaled, self.dims = scaled, len(NEXT)
        self.net = trunk(self.components * (1 + 2 * self.dims))

    def _mixture(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(x)
        k, d = self.components, self.dims
        logits, means, log_std = out[:, :k], out[:, k:k + k * d], out[:, k + k * d:]
        return logits, means.view(-1, k, d), log_std.view(-1, k, d).clamp(-7, 3)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, means, log_std = self._mixture(x)
        per_component = torch.distributions.Normal(means, log_std.exp()).log_prob(y[:, None]).sum(-1)
        return -torch.logsumexp(torch.log_softmax(logits, -1) + per_component, -1).mean()

    def predict(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            logits, means, log_std = self._mixture(self.scaled.inputs(frame))
            generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
            chosen = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
            rows = torch.arange(len(chosen))
            noise = torch.randn(means[rows, chosen].shape, generator=generator)
            return self.scaled.unscaled(means[rows, chosen] + log_std[rows, chosen].exp() * noise)


def train_peer(peer: Regressor | MixtureDensity, frame: pd.DataFrame, seconds: float) -> int:
    """Adam on minibatches of 256 for `seconds`, gradients clipped to norm 1 (as genloom's loop clips them; an
    unclipped MDN blew up in one of two runs); the number of steps taken."""
    x, y = peer.scaled.inputs(frame), peer.scaled.outputs(frame)
    optimizer = torch.optim.Adam(peer.net.parameters(), lr=1e-3)
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        batch = torch.randint(len(x), (256,))
        loss = peer.loss(x[batch], y[batch])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(peer.net.parameters(), 1.0)
        optimizer.step()
        steps += 1
    return steps


class Genloom:
    """A genloom family given the state and action columns, trained by its own fit."""

    def __init__(self, family: str, frame: pd.DataFrame, seconds: float, threads: int):
        self.model = gl.Model(family, condition_on=GIVEN).fit(frame, minutes=seconds / 60, threads=threads,
                                                              progress=False)
        self.steps = self.model.record["steps_trained"]

    def predict(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        made = self.model.sample(conditions=frame[GIVEN], seed=int(rng.integers(2**31)), progress=False)
        return made[NEXT].to_numpy()


def simulated(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """The simulator's own next states for the rows' states and actions."""
    return np.stack(step(frame.x.to_numpy(), frame.v.to_numpy(), frame.action.to_numpy(), rng), axis=1)


def distribution_scores(predict, states: pd.DataFrame, rng: np.random.Generator) -> tuple[float, float]:
    """Mean energy distance to the simulator's next states over `states`, and the share of them where the model
    puts a fifth of its samples or more on each side of the ridge."""
    repeated = states.loc[states.index.repeat(SAMPLES_PER_STATE)].reset_index(drop=True)
    made, true = predict(repeated, rng), simulated(repeated, rng)
    distances, both = [], []
    for i in range(len(states)):
        rows = slice(i * SAMPLES_PER_STATE, (i + 1) * SAMPLES_PER_STATE)
        distances.append(energy_distance(made[rows], true[rows]))
        left = (made[rows, 0] < 0).mean()
        both.append(0.2 <= left <= 0.8)
    return float(np.mean(distances)), float(np.mean(both))


def rollouts(predict, starts: tuple[np.ndarray, np.ndarray], pushes: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """(STARTS * ROLLOUTS, HORIZON + 1, 2) states of open-loop rollouts: each start ROLLOUTS times under its own
    pushes, every step from the model's previous output, held to the track and the training data's speeds (a
    model's state outside them would only be extrapolation, which runs away in a few steps)."""
    x, v = (np.repeat(part, ROLLOUTS) for part in starts)
    path = [np.stack([x, v], axis=1)]
    for t in range(HORIZON):
        frame = pd.DataFrame({"x": x, "v": v, "action": np.repeat(pushes[:, t], ROLLOUTS)})
        x, v = predict(frame, rng).T
        x, v = np.clip(x, -WALL, WALL), np.clip(v, -SPEED_LIMIT, SPEED_LIMIT)
        path.append(np.stack([x, v], axis=1))
    return np.stack(path, axis=1)


def two_outcome_states(test: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """STATES held-out states whose next step meets the ridge on every one of 20 tries (two outcomes), and STATES
    whose next step never does (one)."""
    candidates = test[GIVEN].reset_index(drop=True)
    tries = np.stack([np.abs(simulated(candidates, rng)[:, 0]) for _ in range(20)])
    on_ridge = np.isclose(tries, ROLL_OFF).all(0)
    never = ~np.isclose(tries, ROLL_OFF).any(0)
    return candidates[on_ridge].iloc[:STATES], candidates[never].iloc[:STATES]


def rollout_figure(paths: dict[str, np.ndarray], path: Path) -> None:
    """x over time from the first start state: the simulator's rollouts beside each model's."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3 * len(paths), 2.6))
    axes = figure.subplots(1, len(paths), sharey=True)
    for axis, (name, states) in zip(axes, paths.items()):
        for rollout in states[:ROLLOUTS]:
            axis.plot(rollout[:, 0], color="tab:blue", alpha=0.4, linewidth=0.8)
        axis.axhspan(-RIDGE, RIDGE, color="0.85")
        axis.set_ylim(-WALL, WALL)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("step")
    axes[0].set_ylabel("x (the ridge shaded)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_arguments(parser, RESULTS, "100 episodes, 20 s a model")
    parser.add_argument("--episodes", type=int, default=1000, help="training trajectories of 50 steps")
    parser.add_argument("--seconds", type=float, default=180, help="training time of each model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    episodes, seconds = (100, 20) if args.quick else (args.episodes, args.seconds)
    train, test = transitions(episodes, seed=0), transitions(200, seed=1)
    log(f"{len(train):,} training transitions, {np.isclose(np.abs(train.next_x), ROLL_OFF).mean():.1%} of them "
        "onto the ridge")
    scaled = Scaled(train)
    torch.manual_seed(0)
    models, steps = {}, {}
    for family in GENLOOM_FAMILIES:
        models[f"genloom {family}"] = Genloom(family, train, seconds, args.threads)
        steps[f"genloom {family}"] = models[f"genloom {family}"].steps
    for name, peer in (("MLP regressor", Regressor(scaled)), ("mixture-density network", MixtureDensity(scaled))):
        steps[name] = train_peer(peer, train, seconds)
        models[name] = peer
    rng = np.random.default_rng(2)
    forked, single = two_outcome_states(test, rng)
    starts = initial_states(STARTS, np.random.default_rng(3))
    pushes = actions(STARTS, HORIZON, np.random.default_rng(4))
    true_paths = rollouts(simulated, starts, pushes, np.random.default_rng(5))
    rows, paths = [], {"simulator": true_paths}
    for name, model in models.items():
        rng = np.random.default_rng(6)
        error = float(np.sqrt(((model.predict(test, rng) - test[NEXT].to_numpy()) ** 2).mean()))
        forked_distance, both = distribution_scores(model.predict, forked, rng)
        single_distance, _ = distribution_scores(model.predict, single, rng)
        paths[name] = rollouts(model.predict, starts, pushes, rng)
        final = energy_distance(paths[name][:, -1], true_paths[:, -1])
        crossed = float((np.sign(paths[name][:, :, 0]) != np.sign(paths[name][:, :1, 0])).any(1).mean())
        rows.append({"model": name, "steps": steps[name], "one_step_rmse": error, "energy_two_outcomes":
                     forked_distance, "both_modes": both, "energy_one_outcome": single_distance,
                     "rollout_energy_50": final, "rollouts_crossing": crossed})
        log(f"{name}: {rows[-1]}")
    true_crossed = float((np.sign(true_paths[:, :, 0]) != np.sign(true_paths[:, :1, 0])).any(1).mean())
    picture = args.out.with_name(f"{args.out.stem}-rollouts.png")
    rollout_figure(paths, picture)
    by_model = {row["model"]: row for row in rows}
    ratios = {family: by_model[f"genloom {family}"]["energy_two_outcomes"] /
              by_model["MLP regressor"]["energy_two_outcomes"] for family in GENLOOM_FAMILIES}
    best = min(ratios, key=ratios.get)
    body = [f"Run {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, {args.threads} "
            f"thread(s), {len(train):,} training transitions, {seconds:g} s of training each: "
            f"`{shlex.join([Path(sys.executable).name, *sys.argv])}`.", "",
            "| model | steps | one-step RMSE | energy distance, two outcomes | both modes | energy distance, one "
            "outcome | rollouts: energy distance at step 50 | rollouts crossing the ridge |",
            "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        body.append(f"| {row['model']} | {row['steps']} | {row['one_step_rmse']:.3f} | "
                    f"{row['energy_two_outcomes']:.4f} | {row['both_modes']:.2f} | {row['energy_one_outcome']:.4f} | "
                    f"{row['rollout_energy_50']:.4g} | {row['rollouts_crossing']:.2f} |")
    body += [f"| simulator | | | 0 | 1.00 | 0 | 0 | {true_crossed:.2f} |", "",
             f"Target: energy distance at the two-outcome states <= {TARGET_RATIO} x the regressor's: "
             f"{'met' if ratios[best] <= TARGET_RATIO else 'not met'} "
             f"({', '.join(f'{family} {ratio:.2f}x' for family, ratio in ratios.items())}).", "",
             f"x over 50 steps from one start state, the simulator's rollouts and each model's: `{picture.name}`.",
             "", *all_numbers(rows)]
    write_section(args.out, args.section, "Dynamics: next-state prediction with two outcomes", body)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
