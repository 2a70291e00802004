"""Re-evaluate a trained Diehl & Cook-style checkpoint with a different Ai -> Ae inhibition
at test time (learning off): labels from the first N_ASSIGN training images, accuracy on the
first N_TEST test images, once per profile.

    SNNRUN_DATA_DIR=../shared/data python experiments/analysis/test_time_inhibition.py \\
        outputs/increasing_inhibition/<run>/checkpoint.pt 5000 2000 as-trained 25,25 12,17

A profile ``near,far`` sets grid neighbours to ``near`` growing linearly with grid distance
to ``far`` for the farthest pair (``x,x``: uniform); ``as-trained`` keeps the checkpoint's.
"""

from __future__ import annotations

import os
import sys

import torch

from snnrun.build import build_encoder, build_network
from snnrun.core.connections.base import grid_distance_weights
from snnrun.core.simulate import make_simulator
from snnrun.run.classify import load_data
from snnrun.run.job import validate
from snnrun.run.unsupervised import UnsupervisedRunner


def main(ckpt_path: str, n_assign: int, n_test: int, profiles: list[str]) -> None:
    torch.set_num_threads(1)
    ck = torch.load(ckpt_path, weights_only=False)
    raw = dict(ck["config"])
    raw["data"] = dict(raw["data"], n_train=n_assign, n_test=n_test, root=os.environ.get("SNNRUN_DATA_DIR", raw["data"].get("root")))
    raw["train"] = dict(raw["train"], progress=False, plots=False, assign_pass=True, assign_n=None, readout_eval=False)
    cfg, raw = validate(raw)
    net = build_network(cfg.network, dt_ms=cfg.dt_ms, device="cpu", seed=cfg.seed)
    net.load_state_dict(ck["network"])
    data = load_data(cfg)
    sim = make_simulator(net, [cfg.train.exc_population], cfg.backend)
    conn = net.connections["Ai_Ae"]
    trained = conn.w.detach().clone()
    ramp = grid_distance_weights(tuple(trained.shape), 0.0, 1.0)  # 0 for neighbours .. 1 for the farthest pair
    runner = UnsupervisedRunner(cfg, net, build_encoder(cfg.encoder, dt_ms=cfg.dt_ms), sim, data,
                                lambda metrics, step: None)
    for profile in profiles:
        with torch.no_grad():
            if profile == "as-trained":
                conn.w.copy_(trained)
            else:
                near, far = map(float, profile.split(","))
                conn.w.copy_(torch.where(trained != 0, near + (far - near) * ramp, torch.zeros_like(trained)))
        torch.manual_seed(1)
        net.reset_state()
        runner.assign()  # labels from the learning-off pass over the N_ASSIGN training images
        result = runner.test()
        m = result["metrics"]
        print(f"{profile}: test accuracy {100 * m['test_accuracy']:.2f} % / {100 * m['test_accuracy_proportion']:.2f} % "
              f"(all activity / proportion), {result['counts'].sum(1).float().mean():.1f} spikes per image", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
