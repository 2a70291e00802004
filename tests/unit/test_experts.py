"""Imitation experts (snnrun.rl.experts): hand-derived actions, the registry's errors, and the
expert's labels recorded by rollouts."""

from __future__ import annotations

import types

import numpy as np
import pytest

from snnrun.config.validate import ConfigError
from snnrun.rl.experts import BALL_X, BALL_Y, FIRE, LEFT, NOOP, PADDLE_X, RIGHT, make_expert


def fake_atari(ball_x: int, ball_y: int, paddle_x: int, game: str = "ALE/Breakout-v5"):
    """An object shaped like a gymnasium Atari env as far as the expert looks:
    ``env.spec.id`` and ``env.unwrapped.ale.getRAM()``."""
    ram = np.zeros(128, dtype=np.uint8)
    ram[BALL_X], ram[BALL_Y], ram[PADDLE_X] = ball_x, ball_y, paddle_x
    ale = types.SimpleNamespace(getRAM=lambda: ram.copy())
    return types.SimpleNamespace(spec=types.SimpleNamespace(id=game), unwrapped=types.SimpleNamespace(ale=ale))


def test_breakout_expert_serves_then_tracks_the_ball():
    """offset 14, deadzone 4: d = ball_x - (paddle_x + 14); RIGHT if d > 4, LEFT if d < -4."""
    expert = make_expert({"kind": "breakout_ram", "offset": 14.0, "deadzone": 4.0})
    envs = [fake_atari(100, 0, 50),    # no ball in play -> FIRE
            fake_atari(100, 150, 50),  # d = 36 -> RIGHT
            fake_atari(100, 150, 120),  # d = -34 -> LEFT
            fake_atari(100, 150, 86),  # d = 0 -> NOOP
            fake_atari(100, 150, 82),  # d = 4 (at the deadzone) -> NOOP
            fake_atari(100, 150, 81)]  # d = 5 -> RIGHT
    obs = np.zeros((len(envs), 6400), np.float32)  # the expert ignores the frame
    assert expert(obs, envs).tolist() == [FIRE, RIGHT, LEFT, NOOP, NOOP, RIGHT]


def test_breakout_expert_refuses_other_games():
    expert = make_expert({"kind": "breakout_ram"})
    env = types.SimpleNamespace(spec=types.SimpleNamespace(id="CartPole-v1"), unwrapped=object())
    with pytest.raises(ValueError, match="breakout_ram reads Atari Breakout's RAM, got CartPole-v1"):
        expert(np.zeros((1, 4)), [env])
    with pytest.raises(ValueError, match="got ALE/Pong-v5"):  # another game's RAM means something else
        expert(np.zeros((1, 4)), [fake_atari(1, 1, 1, game="ALE/Pong-v5")])


def test_linear_expert_is_the_sign_of_the_gain_product():
    expert = make_expert({"kind": "linear", "gains": [1.0, -2.0]})
    obs = np.array([[3.0, 1.0, 9.0], [1.0, 1.0, 9.0], [0.0, 0.0, 0.0]])  # 1, -1, 0 (third feature: gain 0)
    assert expert(obs, [None] * 3).tolist() == [1, 0, 0]


@pytest.mark.parametrize("cfg, path, message", [
    ({"kind": "breakout"}, "transfer.expert.kind", "did you mean 'breakout_ram'"),
    ({"kind": "breakout_ram", "offset": 14, "dead_zone": 2}, "transfer.expert.dead_zone", "did you mean 'deadzone'"),
    ({"kind": "breakout_ram", "deadzone": -1}, "transfer.expert.deadzone", "must be >= 0"),
    ({"kind": "linear", "gains": [0.0]}, "transfer.expert.gains", "non-zero"),
    ({"gains": [1.0]}, "transfer.expert.kind", "missing"),
])
def test_bad_expert_config_names_the_key(cfg, path, message):
    with pytest.raises(ConfigError) as err:
        make_expert(cfg)
    assert str(err.value).startswith(path) and message in str(err.value), str(err.value)


def test_rollout_records_the_experts_labels_where_actions_were_taken():
    gym = pytest.importorskip("gymnasium")
    from snnrun.rl.transfer_ann import rollout

    expert = make_expert({"kind": "linear", "gains": [0.1, 0.2, 1.0, 0.5]})
    always_left = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    ro = rollout(always_left, lambda: gym.make("CartPole-v1"), [0, 1], record_states=True, expert=expert)
    assert ro.lengths.sum() == len(ro.states) == len(ro.labels)
    assert ro.returns.tolist() == ro.lengths.tolist()  # CartPole pays 1 per step
    # the labels are the expert's actions on the recorded (true) states, not the policy's
    assert ro.labels.tolist() == expert(ro.states.astype(np.float64), [None] * len(ro.states)).tolist()
    assert 0 < ro.labels.mean() < 1
