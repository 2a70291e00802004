"""Live plots (snnrun.run.live): the images' layout and the time budget."""

from __future__ import annotations

import time

import numpy as np

from snnrun.run import live


class FakeTracker:
    run_id = "r"

    def __init__(self):
        self.images, self.metrics = [], {}

    def last_step(self, key):
        return -1

    def log_image(self, image, key, step):
        self.images.append((key, step, image.shape))

    def log_metrics(self, metrics, step=None):
        self.metrics.update(metrics)


def test_receptive_fields_are_tiled_without_empty_rows():
    w = np.zeros((784, 50), dtype=np.float32)
    w[:, 9] = 1.0  # neuron 9: row 1, column 1 of a 7 x 8 grid
    img = live.receptive_fields(w, (28, 28))
    assert img.shape == (7 * 29 - 1, 8 * 29 - 1, 3) and img.dtype == np.uint8
    hot = np.argwhere((img != 255).any(-1))  # hot_r: 0 is white, the largest weight is dark
    assert hot.min(0).tolist() == [29, 29] and hot.max(0).tolist() == [29 + 27, 29 + 27]


def test_assignments_colour_each_neuron_by_its_class():
    img = live.assignments(np.array([0, 1, 1, 3]), cell=2)
    assert img.shape == (4, 4, 3)  # 2 x 2 cells of 2 px
    assert (img[0, 2] == img[2, 0]).all()  # cells (0, 1) and (1, 0): both class 1
    assert not (img[0, 0] == img[0, 2]).all() and not (img[0, 0] == img[2, 2]).all()  # class 0 vs 1 vs 3
    assert (live.assignments(np.array([0, 1, 2]), cell=1)[1, 1] == 255).all()  # 3 neurons on 2 x 2: one empty cell


def test_the_budget_thins_expensive_plots_and_says_so(caplog):
    caplog.set_level("INFO", logger="snnrun")
    tr = FakeTracker()
    lp = live.LivePlots(tr, enabled=True, budget=0.10)

    def draw():
        time.sleep(0.02)
        return {"x": np.zeros((2, 2, 3), np.uint8)}

    t_end = time.perf_counter() + 0.6
    step = 0
    while time.perf_counter() < t_end:  # an interval every 10 ms of "training"
        step += 1
        lp.maybe(step, draw)
        time.sleep(0.01)
    lp.report()
    assert 0 < lp.logged < step and lp.logged + lp.skipped == step
    assert tr.metrics["live_plots_fraction"] <= 0.10 + 0.02 / 0.6  # within budget, give or take one draw
    assert f"live plots: {lp.logged} of {step} update intervals logged" in caplog.text


def test_assignment_colours_for_more_than_ten_classes():
    """SHD has 20 classes: every class gets its own colour, unassigned (-1) stays white."""
    import numpy as np

    from snnrun.run.live import assignments, palette

    colours = palette(20)
    assert colours.shape == (20, 3) and len({tuple(c) for c in colours}) == 20
    assert palette(10)[0].tolist() == [31, 119, 180]  # matplotlib's tab10 up to 10 classes
    img = assignments(np.array([19, -1, 0, 12]), 20, cell=1)
    assert img.shape == (2, 2, 3)
    assert img[0, 0].tolist() == colours[19].tolist() and img[0, 1].tolist() == [255, 255, 255]
    assert img[1, 1].tolist() == colours[12].tolist()
