"""A ball on a track with a sharp ridge in the middle, pushed by noisy actions: a physical system whose next state
is genuinely multi-modal. Wherever a step would put the ball on the ridge it rolls off to the left or to the right
at random, an even chance each; elsewhere it moves as pushed, with a little noise, and bounces off the walls at
either end. No downloads: `python benchmarks/bouncing_ball.py --episodes 400 -o transitions.csv` writes
trajectories as transitions (x, v, action -> next_x, next_v)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DT = 0.1
RIDGE = 0.2          # half-width of the ridge at x = 0
ROLL_OFF = 0.35      # where a ball that met the ridge lands, either side
WALL = 1.0           # walls at -1 and +1
FRICTION = 0.95
PUSH = 0.5           # acceleration of a full action
VELOCITY_NOISE = 0.02
STATE, NEXT = ["x", "v"], ["next_x", "next_v"]


def step(x: np.ndarray, v: np.ndarray, action: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One step of the simulator for arrays of states and actions."""
    v = FRICTION * v + PUSH * np.clip(action, -1, 1) * DT + VELOCITY_NOISE * rng.standard_normal(len(x))
    x = x + v * DT
    on_ridge = np.abs(x) < RIDGE
    side = rng.choice([-1.0, 1.0], len(x))
    x = np.where(on_ridge, side * ROLL_OFF, x)
    v = np.where(on_ridge, side * (np.abs(v) + 0.3), v)
    bounced = np.abs(x) > WALL
    x = np.where(bounced, np.sign(x) * (2 * WALL - np.abs(x)), x)
    v = np.where(bounced, -v, v)
    return x, v


def actions(episodes: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """(episodes, steps) noisy pushes: a slowly wandering intention plus noise, in [-1, 1]."""
    intention = np.cumsum(0.3 * rng.standard_normal((episodes, steps)), axis=1)
    return np.clip(np.tanh(intention) + 0.3 * rng.standard_normal((episodes, steps)), -1, 1)


def initial_states(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(-WALL, WALL, count), rng.uniform(-0.5, 0.5, count)


def transitions(episodes: int, steps: int = 50, seed: int = 0) -> pd.DataFrame:
    """Every step of `episodes` trajectories of `steps` steps as a row: x, v, action, next_x, next_v."""
    rng = np.random.default_rng(seed)
    x, v = initial_states(episodes, rng)
    pushes = actions(episodes, steps, rng)
    rows = []
    for t in range(steps):
        next_x, next_v = step(x, v, pushes[:, t], rng)
        rows.append(pd.DataFrame({"x": x, "v": v, "action": pushes[:, t], "next_x": next_x, "next_v": next_v}))
        x, v = next_x, next_v
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=Path("transitions.csv"))
    args = parser.parse_args()
    transitions(args.episodes, args.steps, args.seed).to_csv(args.output, index=False)
    print(f"wrote {args.episodes * args.steps:,} transitions to {args.output}")


if __name__ == "__main__":
    main()
