"""The experiment zoo end to end through the CLI on small subsets of ../shared/data."""

from __future__ import annotations

import pytest

from .test_cli import artifact_paths, mlflow_runs, snnrun

pytestmark = pytest.mark.slow

SMALL = ["data.n_train=60", "data.n_test=30", "train.update_interval=30", "train.progress=false"]
TINY = ["data.n_train=20", "data.n_test=10", "train.update_interval=10", "train.progress=false"]  # tiny subsets


@pytest.mark.parametrize("experiment,extra,params", [
    ("diehl_cook_fashion", ["n_neurons=10", "train.assign_n=30"], {"data.name": "fashion_mnist"}),
    ("supervised_mnist", ["n_neurons=20", "train.assign_n=30"], {"train.supervise_current": "0.02"}),
    ("reservoir", ["n_neurons=50"], {"train.kind": "readout"}),
    ("conv_mnist", ["n_filters=4", "time_ms=100.0", "train.assign_pass=true", "train.readout_eval=true"],
     {"network.connections.X_Ae.kind": "conv2d"}),
    ("lc_snn", ["n_filters=4", "time_ms=100.0"], {"network.connections.X_Ae.kind": "local"}),
    ("increasing_inhibition", ["n_neurons=16", "train.assign_n=30"],
     {"network.connections.Ai_Ae.weight.dist": "grid_distance", "train.weight_schedule.over": "0.1"}),
])
def test_zoo_experiment_runs_and_logs(tmp_path, data_dir, experiment, extra, params):
    sizes = TINY if experiment in ("conv_mnist", "lc_snn") else SMALL
    res = snnrun([f"+experiment={experiment}", *sizes, *extra, f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", experiment)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    m = runs[0].data.metrics
    assert 0.0 <= m["test_accuracy"] <= 1.0
    if experiment == "reservoir":
        assert m["readout_train_accuracy"] > 0.5 and m["reservoir_mean_spikes"] > 0
    else:
        assert "test_accuracy_proportion" in m and "train_accuracy" in m
    if "train.readout_eval=true" in extra:
        assert 0.0 <= m["test_accuracy_readout"] <= 1.0 and m["readout_train_accuracy"] > 0.3
    p = runs[0].data.params  # sizes are params, not metrics
    assert (p["n_train"], p["n_test"]) == (("20", "10") if sizes is TINY else ("60", "30"))
    arts = artifact_paths(runs[0])
    assert {"checkpoint/checkpoint.pt", "plots/confusion.png", "plots/raster.png", "config.yaml"} <= arts
    for key, value in params.items():
        assert runs[0].data.params[key] == value, key


def test_supervision_clamps_the_label_group(tmp_path):
    """During supervised training the label's neuron group fires (train windows: assigned by
    the clamp, so the running accuracy is exact); at test no clamp is applied."""
    import torch

    from snnrun.build import build_encoder, build_network
    from snnrun.core.simulate import make_simulator
    from snnrun.run.unsupervised import UnsupervisedRunner

    class Cfg:
        class train:
            supervise_current, supervise_others, min_spikes, max_retries, rest_ms = 30.0, 0.0, 0, 0, 0.0
            exc_population, input_population = "Ae", "X"

    net = build_network({"populations": {"X": {"kind": "input", "n": 4},
                                         "Ae": {"kind": "lif", "n": 20, "refrac_ms": 2.0}},
                         "connections": {}}, seed=0)
    enc = build_encoder({"kind": "poisson", "time_ms": 20.0, "intensity": 0.0})
    runner = UnsupervisedRunner(Cfg, net, enc, make_simulator(net, ["Ae"], "torch"), {}, lambda m, s: None)
    counts = runner.present(torch.zeros(3, 4), learning=True, labels=torch.tensor([0, 7, 9]))
    fired = [set(torch.nonzero(c).flatten().tolist()) for c in counts]
    assert fired == [{0, 1}, {14, 15}, {18, 19}]  # 2 neurons per class, consecutive
    assert int(runner.present(torch.zeros(3, 4), learning=False).sum()) == 0


def test_supervision_silences_the_other_neurons(tmp_path):
    """Conductance neurons: with ``supervise_others`` > 0 every neuron fires; < 0 opens the
    others' inhibitory conductance, so only the label's group (2 neurons per class) fires."""
    import torch

    from snnrun.build import build_encoder, build_network
    from snnrun.core.simulate import make_simulator
    from snnrun.run.unsupervised import UnsupervisedRunner

    def fired(others):
        class Cfg:
            class train:
                supervise_current, supervise_others, min_spikes, max_retries, rest_ms = 2.0, others, 0, 0, 0.0
                exc_population, input_population = "Ae", "X"

        net = build_network({"populations": {"X": {"kind": "input", "n": 4},
                                             "Ae": {"kind": "lif", "n": 20, "synapse": "conductance"}},
                             "connections": {}}, seed=0)
        enc = build_encoder({"kind": "poisson", "time_ms": 50.0, "intensity": 0.0})
        runner = UnsupervisedRunner(Cfg, net, enc, make_simulator(net, ["Ae"], "auto"), {},
                                    lambda m, s: None)
        counts = runner.present(torch.zeros(2, 4), learning=True, labels=torch.tensor([3, 8]))
        return [set(torch.nonzero(c).flatten().tolist()) for c in counts]

    assert fired(2.0) == [set(range(20)), set(range(20))]
    assert fired(-2.0) == [{6, 7}, {16, 17}]


def test_readout_fits_a_separable_problem():
    """Two Gaussian blobs in 3 features (one feature constant: standardised safely) are
    separated perfectly; predict() applies the training standardisation."""
    import torch

    from snnrun.run.readout import fit_readout, predict

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(100, 3, generator=g) + torch.tensor([5.0, 0.0, 7.0]),
                   torch.randn(100, 3, generator=g) + torch.tensor([-5.0, 0.0, 7.0])])
    x[:, 2] = 7.0
    y = torch.cat([torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    ro = fit_readout(x, y, 2, epochs=200, lr=0.05, weight_decay=0.0)
    assert (predict(ro, x) == y).all()
    assert predict(ro, torch.tensor([[40.0, 0.0, 7.0], [-40.0, 0.0, 7.0]])).tolist() == [0, 1]


def test_self_organising_map_is_topographic(tmp_path, data_dir):
    """increasing_inhibition on 1,000 images, 16 neurons (4 x 4 grid), the distance profile
    kept throughout: grid neighbours' receptive fields (input weight columns) are more alike
    (cosine) than those of neurons 3 or more cells apart; the grid plot is logged."""
    import glob

    import torch

    res = snnrun(["+experiment=increasing_inhibition", "n_neurons=16", "data.n_train=1000", "data.n_test=50",
                  "train.assign_n=100", "train.weight_schedule.over=1.0", "start_inhib=0.0", "end_inhib=17.0",  # the profile throughout
                  "nu_pre=5.0e-4", "nu_post=0.05",  # 5x the preset's rates: a map within 1,000 images
                  "train.update_interval=100", "train.progress=false", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = torch.load(glob.glob(str(tmp_path / "run" / "checkpoint.pt"))[0], weights_only=False)
    w = torch.nn.functional.normalize(ckpt["network"]["connections.X_Ae.w"], dim=0)
    sim = w.T @ w
    k = torch.arange(16)
    xy = torch.stack([k // 4, k % 4], 1).float()
    d = torch.cdist(xy, xy)
    near, far = sim[d == 1].mean().item(), sim[d >= 3].mean().item()
    assert near > far + 0.05, (near, far)  # measured: 0.886 vs 0.734
    runs = mlflow_runs(tmp_path / "outputs" / "mlflow.db", "increasing_inhibition")
    assert "plots/weights.png" in artifact_paths(runs[0])
