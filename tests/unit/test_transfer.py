"""ANN -> SNN policy transfer (snnrun.rl.transfer): hand-derived spike counts, scale
normalisation, the tie rule, config validation, and a tiny end-to-end run on CartPole.

Engine order per step (network.py): connections deliver the spikes of the previous step,
then populations integrate.  So with the observation injected from step 0, the first
hidden layer receives its weighted input at steps 1 .. T-1 (T-1 steps) and its bias at
every step 0 .. T-1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")

from snnrun.core import Network, SpikeCounter
from snnrun.core.registry import ParamError
from snnrun.rl.experts import make_expert
from snnrun.rl.transfer import (
    MLPPolicy,
    SpikingPolicy,
    TransferConfig,
    converted_parameters,
    data_based_scales,
    decide,
    make_if_population,
    rollout,
    run_transfer,
)


def hand_mlp(weights: list[list[list[float]]], biases: list[list[float]] | None = None) -> MLPPolicy:
    """An MLPPolicy (obs_scale 1) with the given weights ``[out, in]`` per layer."""
    sizes = [len(weights[0][0])] + [len(w) for w in weights]
    net = MLPPolicy(sizes[0], sizes[1:-1], sizes[-1])
    with torch.no_grad():
        for k, layer in enumerate(net.layers):
            layer.weight.copy_(torch.tensor(weights[k]))
            layer.bias.copy_(torch.tensor(biases[k]) if biases else torch.zeros(len(weights[k])))
    return net


# --------------------------------------------------------------------------- single neurons
CURRENTS = [0.0, 0.125, 0.375, 0.5, 0.75, 1.0]  # exact in binary: v stays exact


def if_counts(reset: str, T: int) -> list[int]:
    net = Network(dt_ms=1.0)
    net.add_population("N", make_if_population(len(CURRENTS), reset, 1.0))
    counter = SpikeCounter(["N"])
    cur = torch.tensor(CURRENTS).expand(T, 1, len(CURRENTS)).contiguous()
    net.run({"N": cur}, recorders=[counter])
    return counter.get("N")[0].tolist()


def test_if_reset_by_subtraction_fires_floor_T_I_over_theta():
    """Threshold 1, reset by subtraction: v_t = t I - n_t with n_t = floor(t I) (the invariant
    holds because a spike removes exactly the threshold), so T steps give floor(T I) spikes:
    the rate equals the ReLU activation I to within 1/T."""
    T = 32
    assert if_counts("subtract", T) == [math.floor(T * i) for i in CURRENTS] == [0, 4, 12, 16, 24, 32]


def test_if_reset_to_zero_quantises_the_rate():
    """The engine's stock `if` (reset to 0 drops the charge above threshold): one spike every
    ceil(1 / I) steps, floor(T / ceil(1 / I)) spikes -- 10 instead of 12 for I = 0.375."""
    T = 32
    expected = [0 if i == 0 else T // math.ceil(1 / i) for i in CURRENTS]
    assert if_counts("zero", T) == expected == [0, 4, 10, 16, 16, 32]


# --------------------------------------------------------------------------- converted network
def test_first_layer_rate_equals_relu_activation():
    """obs (2) -> h1 = relu(W1 obs) with W1 = [[1, 0], [0, 1], [0.6, 0], [-1, 0]], no bias,
    scales 1: h1 gets the constant current a = W1 obs for T-1 steps (one step of transmission),
    so counts are floor((T-1) relu(a)) exactly, and |count / T - relu(a)| <= (1 + a) / T."""
    W1 = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.0], [-1.0, 0.0]]
    ann = hand_mlp([W1, [[1.0, 0, 0, 0]] * 2, [[1.0, 0.0], [0.0, 1.0]]])
    obs = np.array([[0.5, -0.25]], dtype=np.float32)
    T = 33
    counts, _ = SpikingPolicy(ann, [1.0, 1.0, 1.0], T).run(obs)
    a = torch.relu(torch.tensor(W1) @ torch.tensor(obs[0])).tolist()  # [0.5, 0, 0.3, 0]
    expected = [math.floor((T - 1) * x + 1e-6) for x in a]
    assert counts["h1"][0].tolist() == expected == [16, 0, 9, 0]
    for c, x in zip(expected, a):
        assert abs(c / T - x) <= (1 + x) / T


@pytest.mark.parametrize("depth", [1, 3])
def test_any_number_of_hidden_layers_converts(depth):
    """obs (1) -> depth hidden layers of one unit (h1 = relu(0.5 x), then identity) -> out
    [h, -h].  Layer k receives h_{k-1}'s spikes one step later, so with scales 1 and x = 1
    h1 fires floor(0.5 (T-1)) times and each later layer (input current 1 per incoming spike,
    threshold 1) repeats its input's spikes one step later."""
    W = [[[0.5]]] + [[[1.0]]] * (depth - 1) + [[[1.0], [-1.0]]]
    ann = hand_mlp(W)
    T = 41
    snn = SpikingPolicy(ann, [1.0] * (depth + 1), T)
    assert list(snn.net.populations) == [f"h{k + 1}" for k in range(depth)] + ["out"]
    assert list(snn.net.connections) == [f"fc{k + 2}" for k in range(depth)]
    counts, _ = snn.run(np.array([[1.0]], dtype=np.float32))
    # h1 crosses threshold at steps 2, 4, ..., 40 (v += 0.5 from step 1): 20 spikes
    assert counts["h1"][0].tolist() == [20]
    # h2: h1's spikes at 2 .. 38 arrive at 3 .. 39 (the one of step 40 would arrive at 41 > T-1): 19;
    # h3: h2's spikes at 3 .. 39 arrive at 4 .. 40: 19
    expected = {2: 19, 3: 19}
    for k in range(2, depth + 1):
        assert counts[f"h{k}"][0].tolist() == [expected[k]]
    assert counts["out"][0, 1] == 0 and counts["out"][0, 0] > 0
    assert snn.act(np.array([[1.0]], dtype=np.float32)).tolist() == [0]


def test_decide_tie_rule():
    counts = torch.tensor([[3, 5], [4, 4], [4, 4], [0, 0], [2, 2]])
    v = torch.tensor([[0.9, 0.0], [0.2, 0.7], [0.8, 0.1], [-3.0, -1.0], [0.5, 0.5]])
    # counts decide; on a count tie the larger membrane potential; then the lower index
    assert decide(counts, v).tolist() == [1, 1, 0, 1, 0]


# --------------------------------------------------------------------------- scale factors
def scale_net() -> MLPPolicy:
    """h1 = relu(2x), h2 = relu(3 h1) = relu(6x), out = [h2, -h2] (bias 0)."""
    return hand_mlp([[[2.0]], [[3.0]], [[1.0], [-1.0]]])


def test_data_based_scales_put_the_max_activation_at_one():
    states = torch.tensor([[-1.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    ann = scale_net()
    # positive activations: h1 = 2..10, h2 = 6..30, out = {6..30 (unit 0), 6 (unit 1 at x=-1)}
    scales = data_based_scales(ann, states, percentile=100.0)
    assert scales == pytest.approx([10.0, 30.0, 30.0])
    with torch.no_grad():
        acts = ann.activations(states)
    for a, lam in zip(acts, scales):
        assert float(a.max()) / lam == pytest.approx(1.0)
    # the median of the positive h1 activations {2, 4, 6, 8, 10} is 6
    assert data_based_scales(ann, states, percentile=50.0)[0] == pytest.approx(6.0)
    # W'_l = W_l^T lambda_{l-1} / lambda_l: 2 / 10, 3 * 10 / 30, [1, -1] * 30 / 30
    (w1, _), (w2, _), (w3, _) = converted_parameters(ann, scales)
    assert w1.flatten().tolist() == pytest.approx([0.2])
    assert w2.flatten().tolist() == pytest.approx([1.0])
    assert w3.flatten().tolist() == pytest.approx([1.0, -1.0]) and tuple(w3.shape) == (1, 2)


def test_normalised_network_fires_at_most_once_per_step_at_the_max_input():
    """With percentile-100 scales the largest normalised activation is 1: the h1 neuron at
    x = 5 gets current 1 at steps 1 .. T-1, so it fires T-1 times."""
    ann = scale_net()
    scales = data_based_scales(ann, torch.tensor([[1.0], [5.0]]), percentile=100.0)
    T = 20
    counts, _ = SpikingPolicy(ann, scales, T).run(np.array([[5.0], [1.0]], dtype=np.float32))
    assert counts["h1"][:, 0].tolist() == [T - 1, math.floor((T - 1) * 0.2 + 1e-6)]


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("hidden", []),
    ("hidden", [32, 0]),
    ("obs_norm", "minmax"),
    ("threads", 0),
    ("expert", {"gains": [1.0]}),
    ("time_steps", 0),
    ("eval_episodes", 0),
    ("reset", "to_rest"),
    ("percentile", 0.0),
    ("percentile", 101.0),
    ("search_grid", [1.0, -0.5]),
    ("noise_levels", [0.1, -0.1]),
    ("dropout_probs", [0.2, 1.5]),
    ("dt_ms", 0.0),
    ("lr", 0.0),
    ("explore_eps", 1.0),
    ("dagger_iters", -1),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ParamError) as err:
        TransferConfig(**{field: value})
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")


def test_default_config_is_valid():
    cfg = TransferConfig()
    assert cfg.eval_episodes == 100 and len(cfg.hidden) == 2 and cfg.reset == "subtract"


# --------------------------------------------------------------------------- end to end
def make_env():
    return gym.make("CartPole-v1", max_episode_steps=200)


TINY = {"hidden": [16, 16], "bc_episodes": 3, "dagger_iters": 1, "dagger_episodes": 3, "epochs": 10, "time_steps": 24,
            "norm_episodes": 2, "search_grid": [0.7], "search_episodes": 2, "agreement_states": 300, "eval_episodes": 4,
            "noise_levels": [0.0, 2.0], "dropout_probs": [0.3], "robust_episodes": 2}


@pytest.fixture(scope="module")
def tiny_run():
    torch.set_num_threads(1)
    logged: list[tuple[dict, object]] = []
    res = run_transfer(TransferConfig(**TINY), make_env, 0, lambda m, step: logged.append((dict(m), step)))
    return res, logged


def test_run_transfer_returns_metrics_figure_and_networks(tiny_run):
    res, logged = tiny_run
    m = res["metrics"]
    keys = ["ann_mean_return", "snn_mean_return", "snn_to_ann_ratio", "scale_layer1", "scale_layer2", "scale_layer3",
            "ann_return_noise_0", "snn_return_noise_0", "ann_return_noise_2", "snn_return_noise_2",
            "ann_return_dropout_0.3", "snn_return_dropout_0.3"]
    for k in keys:
        assert k in m and isinstance(m[k], float) and math.isfinite(m[k]), k
    assert all(isinstance(v, float) for v in m.values())
    assert res["scales"] == [m["scale_layer1"], m["scale_layer2"], m["scale_layer3"]]
    assert m["snn_to_ann_ratio"] == pytest.approx(m["snn_mean_return"] / m["ann_mean_return"])
    assert isinstance(res["ann"], torch.nn.Module)
    # h1 -> h2 -> out in the engine; fc1 (obs -> h1) is the policy's input projection
    assert isinstance(res["snn"], Network) and set(res["snn"].connections) == {"fc2", "fc3"}
    assert tuple(res["snn_policy"].w_in.shape) == (4, 16)
    assert len(res["figure"].axes) == 2
    # training curve logged per iteration with a step, the final metrics with step None
    train_steps = [step for metrics, step in logged if "train_loss" in metrics]
    assert train_steps == [0, 1]
    assert logged[-1][1] is None and logged[-1][0] == m


def test_ann_beats_a_random_policy(tiny_run):
    res, _ = tiny_run
    seeds = list(range(TINY["eval_episodes"]))
    rng = np.random.default_rng(0)
    random_ret = rollout(lambda obs: rng.integers(0, 2, len(obs)), make_env, seeds).returns
    assert res["metrics"]["ann_mean_return"] > random_ret.mean() + 50
    assert res["metrics"]["ann_mean_return"] >= 150


def test_snn_output_counts_rank_actions_like_the_ann(tiny_run):
    """Strongly tilted / falling poles: the expert, the ANN's outputs and the SNN's output
    spike counts all agree on the push direction (strictly, no tie)."""
    res = tiny_run[0]
    ann, snn = res["ann"], res["snn_policy"]
    obs = np.array([[0.0, 0.0, 0.15, 0.5], [0.0, 0.0, -0.15, -0.5], [0.0, 0.0, 0.1, 1.0], [0.0, 0.0, -0.1, -1.0],
                    [0.5, 0.0, 0.12, 0.0], [-0.5, 0.0, -0.12, 0.0]], dtype=np.float32)
    with torch.no_grad():
        logits = ann(torch.as_tensor(obs))
    counts, _ = snn.run(obs)
    ann_rank = torch.sign(logits[:, 1] - logits[:, 0])
    snn_rank = torch.sign(counts["out"][:, 1] - counts["out"][:, 0]).to(ann_rank.dtype)
    expert_actions = make_expert(TransferConfig().expert)(obs, [None] * len(obs))
    expert = torch.as_tensor(expert_actions * 2 - 1).to(ann_rank.dtype)
    assert ann_rank.tolist() == expert.tolist() == [1, -1, 1, -1, 1, -1]
    assert snn_rank.tolist() == ann_rank.tolist()
    assert snn.act(obs).tolist() == ann.act(obs).tolist()


def test_standard_error_by_hand():
    """[1, 2, 3]: sample std 1, so s.e. 1 / sqrt(3); one episode has none."""
    from snnrun.rl.transfer import standard_error, summarise

    assert standard_error(np.array([1.0, 2.0, 3.0])) == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(standard_error(np.array([5.0])))
    assert summarise("ann", np.array([1.0, 2.0, 3.0])) == pytest.approx(
        {"ann_mean_return": 2.0, "ann_se_return": 1 / math.sqrt(3), "ann_std_return": math.sqrt(2 / 3), "ann_min_return": 1.0})
