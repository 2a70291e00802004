"""Event data sets through tonic: fixtures written in tonic's on-disk formats (N-MNIST .bin,
SHD .h5, DVS Gesture .npy) read back through load_events, binned by the ``events`` encoder
(an event at t lands in step floor(t / dt), checked by hand and against tonic's ToFrame)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from snnrun.build import build_encoder
from snnrun.config.validate import ConfigError
from snnrun.core.encoders import EventBatch
from snnrun.integrations.datasets import DatasetError
from snnrun.integrations.event_files import nmnist_path, write_nmnist_bin
from snnrun.integrations.events import is_event_dataset, load_events
from snnrun.run.classify import load_data

tonic = pytest.importorskip("tonic")

# (label, x, y, t_us, p) per recording: hand-made, so positions and steps are known
TRAIN = [
    (3, [0, 33, 5], [1, 2, 33], [0, 1499, 70000], [0, 1, 1]),
    (1, [7, 7, 7], [4, 4, 4], [100, 900, 1000], [1, 1, 0]),  # two events of one neuron in step 0
    (3, [2], [3], [(1 << 16) + 5], [0]),  # t above 2**16 (uses byte 2's low bits)
]
TEST = [(9, [1, 2], [1, 2], [10, 20], [0, 1])]


def pos(x, y, p, H=34, W=34):
    return (p * H + y) * W + x


@pytest.fixture()
def nmnist_root(tmp_path):
    for train, recs in ((True, TRAIN), (False, TEST)):
        for i, (label, x, y, t, p) in enumerate(recs):
            write_nmnist_bin(nmnist_path(str(tmp_path), train, label, i), x, y, t, p)
    return tmp_path


def test_events_bin_at_floor_t_over_dt_by_hand():
    enc = build_encoder({"kind": "events", "time_ms": 1.5}, dt_ms=0.5)  # T = 3 steps of 500 µs
    batch = EventBatch(torch.tensor([0, 0, 0, 0, 1, 1, 1]), torch.tensor([4, 4, 2, 4, 0, 4, 4]),
                       torch.tensor([0, 499, 500, 1499, 999, 1500, 2000]), torch.Size([2, 1, 1, 5]))
    out = enc(batch)
    assert out.shape == (3, 2, 1, 1, 5) and out.dtype == torch.bool
    # (step, sample, pos): 0->0, 499->0 (same neuron: merged), 500->1, 1499->2, 999->1, 1500 and
    # 2000 late (one neuron twice: late, not merged)
    assert sorted(map(tuple, out.reshape(3, 2, 5).nonzero().tolist())) == [(0, 0, 4), (1, 0, 2), (1, 1, 0), (2, 0, 4)]
    assert enc.stats() == {"input_events": 7.0, "input_events_late_fraction": 2 / 7, "input_events_merged_fraction": 1 / 7}


def test_events_with_dt_not_a_whole_number_of_microseconds():
    enc = build_encoder({"kind": "events", "time_ms": 1.0}, dt_ms=1 / 3)  # 333.33 µs per step
    steps = enc.steps(torch.tensor([0, 333, 334, 666, 667, 999]))
    assert steps.tolist() == [0, 0, 1, 1, 2, 2]


def test_events_encoder_refuses_images():
    enc = build_encoder({"kind": "events", "time_ms": 10.0}, dt_ms=1.0)
    with pytest.raises(ValueError, match="events encoder: it bins recorded events.*got Tensor"):
        enc(torch.zeros(1, 1, 28, 28))


# tonic lists the fixture's files by folder: 1/00001, 3/00000, 3/00002
TONIC_ORDER = [TRAIN[1], TRAIN[0], TRAIN[2]]


def test_nmnist_fixture_reads_back_through_tonic(nmnist_root):
    data, labels, n_classes = load_events("nmnist", str(nmnist_root), train=True, download=False)
    assert n_classes == 10 and data.shape == (3, 2, 34, 34)
    # recordings come in a fixed permutation of tonic's (class-by-class) list, labels paired
    assert data.index.tolist() == np.random.default_rng(0).permutation(3).tolist()
    recs = [TONIC_ORDER[i] for i in data.index]
    assert labels.tolist() == [r[0] for r in recs]
    k = [r[0] for r in recs].index(1)  # the recording with two events of one neuron in step 0
    first = [i for i in range(3) if i != k][0]
    batch = data[torch.tensor([k, first])].to("cpu")
    assert batch.shape == (2, 2, 34, 34)
    _, x, y, t, p = recs[first]
    assert batch.sample.tolist() == [0, 0, 0] + [1] * len(t)
    assert batch.pos.tolist() == [pos(7, 4, 1), pos(7, 4, 1), pos(7, 4, 0)] + [pos(*e) for e in zip(x, y, p)]
    assert batch.t_us.tolist() == [100, 900, 1000] + t
    j = [r[3] for r in recs].index(TRAIN[0][3])
    spikes = build_encoder({"kind": "events", "time_ms": 80.0}, dt_ms=1.0)(data[j:j + 1].to())
    assert spikes.shape == (80, 1, 2, 34, 34)
    assert sorted(map(tuple, spikes[:, 0].nonzero().tolist())) == [(0, 0, 1, 0), (1, 1, 2, 33), (70, 1, 33, 5)]
    late = [r[3] for r in recs].index(TRAIN[2][3])
    assert data[late:late + 1].to().t_us.tolist() == [(1 << 16) + 5]
    test, test_labels, _ = load_events("nmnist", str(nmnist_root), train=False, download=False)
    assert test_labels.tolist() == [9] and len(test) == 1


def test_binning_equals_tonics_toframe_clipped_to_one_spike(nmnist_root):
    from tonic.transforms import ToFrame

    data, _, _ = load_events("nmnist", str(nmnist_root), train=True, download=False)
    enc = build_encoder({"kind": "events", "time_ms": 80.0}, dt_ms=0.5)
    for i in range(len(data)):
        events = data.dataset[int(data.index[i])][0]
        frames = ToFrame(sensor_size=(34, 34, 2), time_window=500, start_time=0, end_time=80000,
                         include_incomplete=True)(events)[:160]
        ours = enc(data[i:i + 1].to())[:, 0]
        assert ours.shape == (160, 2, 34, 34) and frames.shape[1:] == (2, 34, 34) and frames.sum() > 0
        assert np.array_equal(ours.numpy(), frames > 0)


def test_missing_dataset_is_one_line_naming_folder_and_download(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_events("nmnist", str(tmp_path), train=True, download=False)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "NMNIST") in msg and "data.download=false" in msg
    assert "train.zip" in msg and "Mendeley" in msg


def test_corrupt_recording_names_the_file(tmp_path):
    write_nmnist_bin(nmnist_path(str(tmp_path), True, 2, 0), [50], [1], [0], [0])  # x = 50 on a 34-wide sensor
    data, _, _ = load_events("nmnist", str(tmp_path), train=True, download=False)
    with pytest.raises(DatasetError, match=r"nmnist recording 0 \(.*00000.bin\): event x values in \[50, 50\], outside"):
        data.to()


def test_names_and_sizes(nmnist_root):
    assert is_event_dataset("nmnist") and is_event_dataset("N-MNIST".replace("N-", "n")) and is_event_dataset("POKERDVS")
    assert not is_event_dataset("mnist") and not is_event_dataset("cifar10")
    with pytest.raises(DatasetError, match="unknown dataset 'nope'.*any tonic.datasets class by name"):
        load_events("nope", str(nmnist_root))
    with pytest.raises(ValueError, match="n=4 is larger than the nmnist train split \\(3 recordings\\)"):
        load_events("nmnist", str(nmnist_root), n=4, download=False)
    data, labels, _ = load_events("nmnist", str(nmnist_root), n=2, download=False)
    # a subset is the first n of the fixed permutation (tonic lists class by class), labels paired
    keep = np.random.default_rng(0).permutation(3)[:2]
    assert len(data) == 2 and labels.tolist() == [TONIC_ORDER[k][0] for k in keep]
    assert data.to().t_us.tolist() == [t for k in keep for t in TONIC_ORDER[k][3]]


def test_shd_fixture_in_tonics_hdf5_format(tmp_path):
    h5py = pytest.importorskip("h5py")
    (tmp_path / "SHD").mkdir()
    for split, n in (("train", 3), ("test", 1)):
        with h5py.File(tmp_path / "SHD" / f"shd_{split}.h5", "w") as f:
            vf, vu = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
            times, units = f.create_dataset("spikes/times", (n,), dtype=vf), f.create_dataset("spikes/units", (n,), dtype=vu)
            for i in range(n):
                times[i] = np.array([0.0005, 0.0125 + i * 0.001], np.float32)  # seconds
                units[i] = np.array([699, 3 + i], np.uint16)
            f["labels"] = np.arange(n, dtype=np.uint16) + 17
            f["extra/keys"] = np.array([f"k{i}".encode() for i in range(20)])
            f["extra/speaker"] = np.zeros(n, np.uint16)
    data, labels, n_classes = load_events("shd", str(tmp_path), train=True, download=False)
    assert data.shape == (3, 1, 1, 700) and n_classes == 20
    assert labels.tolist() == [17 + i for i in data.index]  # the file's labels, in the fixed permutation
    k = data.index.tolist().index(1)
    batch = data[k:k + 1].to()
    assert batch.pos.tolist() == [699, 4] and batch.t_us.tolist() == [500, 13500]
    spikes = build_encoder({"kind": "events", "time_ms": 20.0}, dt_ms=1.0)(batch)
    assert sorted(map(tuple, spikes.reshape(20, 700).nonzero().tolist())) == [(0, 699), (13, 4)]


def test_dvs_gesture_fixture_in_tonics_npy_format(tmp_path):
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent"
    folder.mkdir(parents=True)
    np.save(folder / "4.npy", np.array([[127, 0, 1, 2.5], [3, 5, 0, 10.0]]))  # x, y, p, t in ms
    data, labels, n_classes = load_events("dvs_gesture", str(tmp_path), train=True, download=False)
    assert data.shape == (1, 2, 128, 128) and labels.tolist() == [4] and n_classes == 11
    batch = data.to()
    assert batch.pos.tolist() == [pos(127, 0, 1, 128, 128), pos(3, 5, 0, 128, 128)] and batch.t_us.tolist() == [2500, 10000]


def _cfg(**over):
    cfg = OmegaConf.create({"data": {"name": "nmnist", "root": "", "n_train": None, "n_test": None, "download": False,
                                     "grayscale": True},
                            "encoder": {"kind": "events", "time_ms": 10.0}, "train": {"min_spikes": 0, "test": True}})
    return OmegaConf.merge(cfg, OmegaConf.create(over))


def test_load_data_pairs_event_data_with_the_events_encoder(nmnist_root):
    data = load_data(_cfg(data={"root": str(nmnist_root)}))
    assert data["n_classes"] == 10 and len(data["train"][0]) == 3 and data["test"][1].tolist() == [9]
    no_test = load_data(_cfg(data={"root": str(nmnist_root), "n_test": 0}))
    assert len(no_test["test"][0]) == 0 and no_test["test"][0].shape == (0, 2, 34, 34)
    with pytest.raises(ConfigError, match="encoder.kind: 'poisson' cannot encode data.name=nmnist: event data sets need"):
        load_data(_cfg(encoder={"kind": "poisson"}))
    with pytest.raises(ConfigError, match="encoder.kind: 'events' cannot encode data.name=mnist"):
        load_data(_cfg(data={"name": "mnist"}))
    with pytest.raises(ConfigError, match="train.min_spikes: .*set train.min_spikes=0 for event data"):
        load_data(_cfg(train={"min_spikes": 5}))
    with pytest.raises(DatasetError, match=r"unknown dataset 'nmnst' \(did you mean 'nmnist'\?\)"):
        load_data(_cfg(data={"name": "nmnst"}))  # a typo is named as one, not as an encoder mismatch
