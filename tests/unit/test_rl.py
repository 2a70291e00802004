"""Reinforcement learning pieces on hand-made inputs: the receptive-field encoder, Atari
frame preprocessing, the action decoder, the env loop on fake environments of known
dynamics, and the sign of reward-modulated learning on a two-armed task."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from snnrun.build import build_encoder, build_network
from snnrun.config.validate import ConfigError, from_dict
from snnrun.core.simulate import make_simulator
from snnrun.rl.decode import ActionDecoder, DecoderConfig
from snnrun.rl.envs import EnvConfig, make_env, preprocess_frame
from snnrun.rl.runner import RLConfig, RLRunner


# ---------------------------------------------------------------- encoder
def test_receptive_field_probabilities_by_hand():
    """Two features, 5 fields each over [-1, 1] (spacing 0.5, sigma 0.5): x = 0 sits on
    field 2 (p = rate dt / 1000 = 0.2) and half a spacing... one spacing from fields 1, 3
    (p = 0.2 exp(-1/2)); x = 3 is beyond the range and drives the edge field 4 only."""
    enc = build_encoder({"kind": "receptive_field", "time_ms": 10.0, "n_per_dim": 5, "low": [-1.0, -1.0],
                         "high": [1.0, 1.0], "max_rate": 200.0}, dt_ms=1.0)
    p = enc.probability(torch.tensor([[0.0, 3.0]])).view(2, 5)
    e1, e4 = 0.2 * math.exp(-0.5), 0.2 * math.exp(-0.5 * 16)
    torch.testing.assert_close(p[0], torch.tensor([0.2 * math.exp(-2.0), e1, 0.2, e1, 0.2 * math.exp(-2.0)]))
    assert p[1, 4].item() == pytest.approx(0.2) and p[1, 0].item() == pytest.approx(e4 ** 1, abs=1e-9)
    assert enc.out_shape((2,)) == (10,)
    spikes = enc(torch.tensor([[0.0, 3.0]]))
    assert spikes.shape == (10, 1, 10) and spikes.dtype == torch.bool
    g = torch.Generator().manual_seed(0)
    rate = enc.encode(torch.zeros(20000, 2), g).float().mean((0, 1)).view(2, 5)[0, 2]
    assert rate.item() == pytest.approx(0.2, abs=0.005)


@pytest.mark.parametrize("bad,field", [({"low": [0.0], "high": [0.0, 1.0]}, "high"), ({"low": [1.0], "high": [0.0]}, "high"),
                                       ({"n_per_dim": 1}, "n_per_dim"), ({"width": 0.0}, "width")])
def test_receptive_field_rejects_bad_config(bad, field):
    with pytest.raises(ConfigError, match=rf"encoder\.{field}"):
        build_encoder({"kind": "receptive_field", **bad})


def test_receptive_field_feature_count_mismatch_is_named():
    enc = build_encoder({"kind": "receptive_field", "low": [0.0, 0.0], "high": [1.0, 1.0]})
    with pytest.raises(ValueError, match="3 features"):
        enc(torch.zeros(1, 3))


# ---------------------------------------------------------------- Atari frames
def test_preprocess_frame_gray_crop_and_block_mean():
    """A 210 x 160 RGB frame, white in the field's top-left 4 x 4 block (rows 34-37), gray
    level 0.299 R + 0.587 G + 0.114 B: downsampled 2x2 (160 -> 80) the first 2 x 2 output
    pixels are 1, everything else 0; the score rows above row 34 are cropped away."""
    f = np.zeros((210, 160, 3), np.uint8)
    f[34:38, 0:4] = 255
    f[0:34] = 255  # score area: ignored
    out = preprocess_frame(f, 80, (34, 194))
    assert out.shape == (80, 80)
    assert np.allclose(out[:2, :2], 1.0, atol=1e-5) and out.sum() == pytest.approx(4.0, abs=1e-4)
    red = np.zeros((210, 160, 3), np.uint8)
    red[..., 0] = 255
    assert preprocess_frame(red, 80)[5, 5] == pytest.approx(0.299, abs=1e-6)


def test_preprocess_frame_column_crop_resamples_the_kept_area():
    """Rows 93-193 and columns 8-151 (101 x 144 screen pixels) onto 80 x 80: output row i takes
    the screen rows r with (r - 93) * 80 // 101 == i, column j the columns c with
    (c - 8) * 80 // 144 == j; a white wall outside the columns vanishes, and a white 4 x 2 block
    at rows 93-96, columns 8-9 lands in output rows 0-2 (screen rows 93-94 -> 0, 95 -> 1,
    96 -> 2, while output row 2 gets no other screen row) of output column 0 (columns 8-9 -> 0),
    all exactly 1."""
    f = np.zeros((210, 160), np.uint8)
    f[:, 0:8] = 255  # left wall: cropped away
    f[93:97, 8:10] = 255
    out = preprocess_frame(f, 80, (93, 194), (8, 152))
    rows = (np.arange(101) * 80) // 101
    cols = (np.arange(144) * 80) // 144
    expected = np.zeros((80, 80))
    for i in range(80):
        for j in range(80):
            expected[i, j] = f[93:194, 8:152][np.ix_(rows == i, cols == j)].mean() / 255.0
    assert np.allclose(out, expected, atol=1e-6)
    assert out[:3, 0].tolist() == [1.0, 1.0, 1.0] and out.sum() == 3.0


@pytest.mark.parametrize("override, message", [
    ({"crop_cols": [170, 200]}, "env.crop_cols: [170, 200] goes past the screen's 160 columns"),
    ({"crop": [100, 300]}, "env.crop: [100, 300] goes past the screen's 210 rows"),
    ({"crop_cols": [0, 40]}, "env.crop_cols: [0, 40] keeps 40, fewer than env.frame_size (80)"),
])
def test_atari_crop_outside_the_screen_or_too_small_is_refused(override, message):
    pytest.importorskip("ale_py")
    from snnrun.config.validate import ConfigError

    with pytest.raises(ConfigError) as err:
        make_env(EnvConfig(id="ALE/Breakout-v5", preprocess="atari", **override))
    assert str(err.value).startswith(message)


def test_atari_wrapper_frame_difference():
    pytest.importorskip("ale_py")
    env = make_env(EnvConfig(id="ALE/Breakout-v5", preprocess="atari"))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 80, 80) and obs.dtype == np.float32 and obs.max() == 0.0  # no previous frame
    moved = 0.0
    for _ in range(30):
        obs, *_ = env.step(1)  # FIRE: the ball starts moving
        assert 0.0 <= obs.min() and obs.max() <= 1.0
        moved += float(obs.sum())
    assert moved > 0
    env.close()


# ---------------------------------------------------------------- decoder
def test_decoder_most_active_group_and_ties():
    rng = np.random.default_rng(0)
    dec = ActionDecoder(DecoderConfig(), n_actions=3, n_outputs=6, rng=rng)
    assert dec(torch.tensor([[0, 1, 5, 0, 2, 2]])) == 1  # groups: 1, 5, 4
    picks = {dec(torch.tensor([[3, 0, 1, 2, 0, 0]])) for _ in range(50)}  # tie 3 / 3 / 0
    assert picks == {0, 1}
    picks = {dec(torch.zeros(1, 6, dtype=torch.int32)) for _ in range(100)}  # silence: uniform
    assert picks == {0, 1, 2}
    np.testing.assert_allclose(dec.probs, [1 / 3] * 3)
    with pytest.raises(ValueError, match="equal action groups"):
        ActionDecoder(DecoderConfig(), 3, 7, rng)


def test_decoder_softmax_probabilities_and_epsilon_schedule():
    rng = np.random.default_rng(1)
    dec = ActionDecoder(DecoderConfig(kind="softmax", temperature=2.0), 2, 2, rng)
    n = 4000
    ones = sum(dec(torch.tensor([[0, 2]])) for _ in range(n))
    p1 = 1 / (1 + math.exp(-1.0))  # softmax([0, 2] / 2)
    assert dec.probs[1] == pytest.approx(p1)
    assert ones / n == pytest.approx(p1, abs=0.03)
    assert dec(torch.tensor([[0, 2]]), explore=False) == 1  # greedy when not exploring
    eps = ActionDecoder(DecoderConfig(epsilon=1.0, epsilon_final=0.0, epsilon_episodes=10), 2, 2, rng)
    eps.set_episode(5)
    assert eps.epsilon == pytest.approx(0.5)
    eps.set_episode(0)
    assert {eps(torch.tensor([[9, 0]])) for _ in range(60)} == {0, 1}  # epsilon 1: random
    eps.set_episode(20)
    assert {eps(torch.tensor([[9, 0]])) for _ in range(20)} == {0}


# ---------------------------------------------------------------- fake environments
class CountdownEnv(gym.Env):
    """Known dynamics: observation = steps left; reward 1 per step; terminates after
    ``length`` steps whatever the actions (or is truncated at ``truncate``)."""

    def __init__(self, length: int = 7, truncate: int | None = None, n_actions: int = 2):
        self.length, self.truncate = length, truncate
        self.observation_space = gym.spaces.Box(0.0, float(length), (1,), np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.actions: list[int] = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.length], np.float32), {}

    def step(self, action):
        self.actions.append(int(action))
        self.t += 1
        term = self.t >= self.length
        trunc = self.truncate is not None and self.t >= self.truncate and not term
        return np.array([self.length - self.t], np.float32), 1.0, term, trunc, {}


class TwoArmedEnv(gym.Env):
    """One-step episodes: action 1 pays +1, action 0 pays -1; constant observation."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([0.5], np.float32), {}

    def step(self, action):
        return np.array([0.5], np.float32), 1.0 if action == 1 else -1.0, True, False, {}


def _agent(env, rule: dict, weight: Any = 3.0, backend: str = "torch", **rl):
    net = build_network({"populations": {"X": {"kind": "input", "n": 5},
                                         "Out": {"kind": "lif", "n": 2 * 4, "v_rest_mv": -65.0, "v_reset_mv": -65.0,
                                                 "v_thresh_mv": -52.0, "tau_mem_ms": 20.0, "refrac_ms": 2.0}},
                         "connections": {"X_Out": {"kind": "dense", "source": "X", "target": "Out", "weight": weight,
                                                   "wmin": -8.0, "wmax": 8.0, "learning": rule}}}, seed=0)
    enc = build_encoder({"kind": "receptive_field", "time_ms": 20.0, "n_per_dim": 5, "low": [0.0],
                         "high": [float(env.observation_space.high[0])], "max_rate": 300.0})
    logged = []
    cfg = RLConfig(**{"progress": False, "random_episodes": 3, **rl})
    runner = RLRunner(cfg, env, net, enc, make_simulator(net, ["Out"], backend), seed=0,
                      log=lambda m, s: logged.append((s, dict(m))), save=lambda: None)
    return runner, net, logged


def test_env_loop_on_fake_env_of_known_length():
    env = CountdownEnv(length=7)
    runner, net, logged = _agent(env, {"kind": "mstdp", "nu": 0.0}, episodes=4)
    runner.train()
    p = runner.progress
    assert p.returns == [7.0] * 4 and p.lengths == [7] * 4 and p.env_steps == 28 and p.episode == 4
    assert p.random_mean_return == 7.0
    per_episode = [m for s, m in logged if s is not None]
    assert [m["episode_return"] for m in per_episode] == [7.0] * 4
    final = next(m for s, m in logged if s is None and "mean_return_last100" in m)
    assert final["mean_return_last100"] == 7.0 and final["return_over_random"] == 1.0
    assert len(env.actions) == 3 * 7 + 4 * 7  # random baseline + training


def test_truncated_episode_of_constant_reward_changes_nothing():
    """reward_mode return: a truncated episode is continued by its mean reward / (1 - gamma),
    so every G_t is equal, the normalised advantage is 0: no update."""
    env = CountdownEnv(length=100, truncate=6)
    runner, net, _ = _agent(env, {"kind": "mstdp", "nu": 0.5, "a_minus": 0.0}, episodes=2, random_episodes=0)
    w0 = net.connections["X_Out"].w.clone()
    runner.train()
    assert runner.progress.lengths == [6, 6]
    assert torch.equal(net.connections["X_Out"].w, w0)


@pytest.mark.parametrize("mode", ["return", "episode", "step"])
def test_reward_modulation_moves_weights_toward_the_paying_arm(mode):
    """Two-armed task: after training, the weights onto action 1's group (paid) rose
    relative to action 0's, and the greedy policy picks arm 1."""
    env = TwoArmedEnv()
    rule = {"kind": "mstdp", "nu": 0.02, "a_minus": 0.0}
    extra: dict = {"return_baseline": "running"} if mode == "return" else {}
    if mode == "step":
        # the reward arrives during the next presentation (an eligibility trace carries the choice),
        # and nothing breaks the symmetry of the two groups but their initial weights
        rule = {"kind": "mstdpet", "nu": 0.02, "a_minus": 0.0, "tau_e_ms": 40.0}
        extra = {"weight": {"dist": "uniform", "low": 1.0, "high": 2.0}}
    runner, net, _ = _agent(env, rule, episodes=150, reward_mode=mode, random_episodes=0, **extra)
    w0 = net.connections["X_Out"].w.clone()
    runner.train()
    dw = net.connections["X_Out"].w - w0
    pref = (dw[:, 4:].sum() - dw[:, :4].sum()).item()
    assert pref > 0.5, f"{mode}: weights did not move toward arm 1 ({pref})"
    if mode != "step":
        greedy = [runner.episode(1000 + i, learn=False, explore=False)[0] for i in range(20)]
        assert np.mean(greedy) >= 0.9


def test_rl_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"rl\.reward_mode"):
        from_dict(RLConfig, {"reward_mode": "sometimes"}, "rl")
    with pytest.raises(ConfigError, match=r"rl\.decoder\.temperature"):
        from_dict(RLConfig, {"decoder": {"temperature": 0}}, "rl")
    with pytest.raises(ConfigError, match=r"env\.id.*did you mean 'CartPole-v1'"):
        make_env(EnvConfig(id="CartPol-v1"))


@pytest.mark.parametrize("mode", ["return", "episode", "step"])
def test_rl_runner_on_the_fused_kernel_learns_the_same_weights_as_on_torch(mode):
    """Same seed, same environment: the fused kernel makes the same random choices as the
    torch step (models.rng) and applies the same eligibility, so the weights are equal."""
    rule = {"kind": "mstdp", "nu": 0.02, "a_minus": 0.0}
    extra: dict = {"return_baseline": "running"} if mode == "return" else {}
    if mode == "step":
        rule = {"kind": "mstdpet", "nu": 0.02, "a_minus": 0.0, "tau_e_ms": 40.0}
        extra = {"weight": {"dist": "uniform", "low": 1.0, "high": 2.0}}
    weights = []
    for backend in ("torch", "numba"):
        torch.manual_seed(0)
        runner, net, _ = _agent(TwoArmedEnv(), rule, episodes=30, reward_mode=mode, random_episodes=0,
                                backend=backend, **extra)
        assert runner.sim.backend == backend
        runner.train()
        weights.append(net.connections["X_Out"].w.clone())
    assert torch.equal(weights[0], weights[1])
