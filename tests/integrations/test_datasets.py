"""Tests of snnrun.integrations.datasets.  None of them touches the network."""

from __future__ import annotations

import os
import shutil
import stat
import socket
import time
from pathlib import Path

import pytest
import torch

from snnrun.integrations import datasets
from snnrun.integrations.datasets import DatasetError, default_root, load_dataset

SHARED = Path(os.environ.get("SNNRUN_TEST_DATA", "/work/shared/data"))
MNIST_TRAIN_FIRST = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_TEST_FIRST = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
FASHION_TRAIN_FIRST = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # ankle boot, T-shirt, T-shirt, dress, ...


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh cache folder for read-only roots, so tests never write to ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("SNNRUN_CACHE_DIR", str(path))
    return path


def _need(folder: str) -> Path:
    raw = SHARED / folder / "raw"
    if not raw.is_dir() or not any(raw.glob("*.gz")):
        pytest.skip(f"no {folder} data under {SHARED}")
    return SHARED


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in root.rglob("*")}


def _read_only_copy(src: Path, dst: Path, folder: str) -> Path:
    """Copy ``src/folder/raw`` to ``dst`` and make every folder and file read-only."""
    shutil.copytree(src / folder / "raw", dst / folder / "raw")
    for p in sorted(dst.rglob("*"), reverse=True) + [dst]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    return dst


def _make_writable(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


# ----------------------------------------------------------------------------- loading
@pytest.mark.parametrize("train, first", [(True, MNIST_TRAIN_FIRST), (False, MNIST_TEST_FIRST)])
def test_mnist_from_shared_read_only_root(cache, train, first):
    root = _need("MNIST")
    images, labels = load_dataset("mnist", str(root), train=train, n=100, download=False)
    assert images.shape == (100, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (100,) and labels.dtype == torch.long
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() == 1.0
    assert labels[:10].tolist() == first
    # everything was unpacked in the cache, in torchvision's layout
    assert (cache / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()
    assert (cache / "MNIST" / f"snnrun-{'train' if train else 'test'}.pt").is_file()


def test_shared_root_is_not_modified(cache, monkeypatch):
    root = _need("MNIST")
    before = _snapshot(root)

    def no_network(*args, **kwargs):
        raise AssertionError("load_dataset tried to open a network connection")

    # download allowed, but the files are present: it must not touch the network (enforced here)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_dataset("mnist", str(root), train=True, n=10, download=False)
    load_dataset("MNIST", str(root), train=False, n=None, download=True)
    assert _snapshot(root) == before


def test_second_load_uses_tensor_cache(cache):
    root = _need("MNIST")
    first_images, first_labels = load_dataset("mnist", str(root), train=True, n=None, download=False)
    start = time.perf_counter()
    images, labels = load_dataset("mnist", str(root), train=True, n=None, download=False)
    assert time.perf_counter() - start < 1.0
    assert images.shape == (60000, 1, 28, 28)
    assert torch.equal(images, first_images) and torch.equal(labels, first_labels)
    assert torch.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_fashion_mnist_loads(cache):
    root = _need("FashionMNIST")
    images, labels = load_dataset("fashion_mnist", str(root), train=True, n=100, download=False)
    assert images.shape == (100, 1, 28, 28)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels[:10].tolist() == FASHION_TRAIN_FIRST
    _, test_labels = load_dataset("Fashion-MNIST", str(root), train=False, n=None, download=False)
    assert torch.bincount(test_labels).tolist() == [1000] * 10


def test_writable_root_is_used_in_place(cache, tmp_path):
    src = _need("MNIST")
    root = tmp_path / "data"
    shutil.copytree(src / "MNIST" / "raw", root / "MNIST" / "raw")
    _make_writable(root)  # copytree keeps the source's read-only mode bits
    _, labels = load_dataset("mnist", str(root), train=False, n=10, download=False)
    assert labels.tolist() == MNIST_TEST_FIRST
    assert (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    assert (root / "MNIST" / "snnrun-test.pt").is_file()
    assert not cache.exists()


def test_read_only_copy_goes_to_cache(cache, tmp_path):
    """Read-only by mode bits is honoured even when running as root (os.access says yes then)."""
    src = _need("MNIST")
    root = _read_only_copy(src, tmp_path / "ro", "MNIST")
    try:
        before = _snapshot(root)
        _, labels = load_dataset("mnist", str(root), train=False, n=10, download=False)
        assert labels.tolist() == MNIST_TEST_FIRST
        assert _snapshot(root) == before
        assert (cache / "MNIST" / "snnrun-test.pt").is_file()
    finally:
        _make_writable(root)


def test_default_root(monkeypatch):
    monkeypatch.delenv("SNNRUN_DATA_DIR", raising=False)
    assert default_root() == "./data"
    monkeypatch.setenv("SNNRUN_DATA_DIR", "/somewhere/data")
    assert default_root() == "/somewhere/data"


def test_cifar10_grayscale_and_colour(monkeypatch):
    """The CIFAR conversion, on a fake split (no CIFAR files in the test data)."""
    rgb = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    rgb[0, 0] = 255  # pure red
    rgb[1, 1] = 255  # pure green
    rgb[2, 2] = 255  # pure blue
    rgb[3] = 255  # white
    monkeypatch.setattr(datasets, "_load_split", lambda *a, **k: (rgb, torch.arange(4)))
    gray, labels = load_dataset("CIFAR10", "/nowhere", n=4, download=False)
    assert gray.shape == (4, 1, 32, 32) and labels.tolist() == [0, 1, 2, 3]
    expected = torch.tensor([0.299, 0.587, 0.114, 1.0])
    assert torch.allclose(gray[:, 0, 0, 0], expected, atol=1e-6)
    colour, _ = load_dataset("cifar10", "/nowhere", n=2, grayscale=False)
    assert colour.shape == (2, 3, 32, 32) and colour[0, 0].eq(1).all() and colour[0, 1:].eq(0).all()


# ------------------------------------------------------------------------------ errors
def test_missing_dataset_is_one_line_error(cache, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", str(empty), train=True, n=10, download=False)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    assert str(empty) in message and "'mnist'" in message and "download=False" in message
    assert "MNIST/raw/*.gz" in message and "SNNRUN_DATA_DIR" in message


def test_missing_dataset_in_read_only_root_writes_nothing(cache, tmp_path):
    root = tmp_path / "ro-empty"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(DatasetError, match="ro-empty"):
            load_dataset("fashion_mnist", str(root), download=False)
        assert list(root.iterdir()) == []
        assert not cache.exists()
    finally:
        root.chmod(0o755)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; choose one of: mnist, fashion_mnist, cifar10"):
        load_dataset("svhn", "/nowhere", download=False)


def test_n_larger_than_split(cache):
    root = _need("MNIST")
    with pytest.raises(ValueError, match=r"n=10001 is larger than the mnist test split \(10000 samples\)"):
        load_dataset("mnist", str(root), train=False, n=10001, download=False)


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n must be None or a non-negative integer"):
        load_dataset("mnist", "/nowhere", n=n, download=False)


# --------------------------------------------------------------- broken files, named
def _fake_mnist(root: Path, n_train: int = 30, n_test: int = 10, gz: bool = True, unpacked: bool = False) -> Path:
    """A tiny MNIST in torchvision's layout: image i is filled with the value i, label i % 10."""
    import gzip
    import struct

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        files = {f"{split}-images-idx3-ubyte": struct.pack(">IIII", 0x803, n, 28, 28) + bytes(i for i in range(n) for _ in range(784)),
                 f"{split}-labels-idx1-ubyte": struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))}
        for name, blob in files.items():
            if unpacked:
                (raw / name).write_bytes(blob)
            if gz:
                with gzip.open(raw / (name + ".gz"), "wb") as f:
                    f.write(blob)
    return raw


def test_fake_mnist_loads_as_written(cache, tmp_path):
    _fake_mnist(tmp_path / "data")
    images, labels = load_dataset("mnist", tmp_path / "data", train=True, download=False)
    assert labels.tolist() == [i % 10 for i in range(30)]
    assert images[7].mul(255).round().unique().tolist() == [7.0]


@pytest.mark.parametrize("damage, culprit", [
    ("truncated gz", "train-images-idx3-ubyte.gz"),
    ("garbage gz", "train-labels-idx1-ubyte.gz"),
    ("truncated unpacked", "train-images-idx3-ubyte'"),
    ("garbage unpacked", "train-labels-idx1-ubyte'"),
])
@pytest.mark.parametrize("download", [False, True])
def test_broken_data_file_is_named(cache, tmp_path, damage, culprit, download):
    raw = _fake_mnist(tmp_path / "data", unpacked="unpacked" in damage)
    name = culprit.strip("'")
    if damage == "truncated gz":
        blob = (raw / name).read_bytes()
        (raw / name).write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage gz":
        (raw / name).write_bytes(b"this is not gzip data at all" * 10)
    elif damage == "truncated unpacked":
        (raw / name).write_bytes((raw / name).read_bytes()[:-100])
    else:
        (raw / name).write_bytes(b"\x00\x00\x09\x01garbage")
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist", tmp_path / "data", train=True, download=download)
    msg = str(err.value)
    assert culprit in msg and str(raw) in msg and "\n" not in msg
    assert ("truncated or corrupt" in msg) or ("bad header" in msg)


def test_broken_file_in_read_only_root_names_its_origin(cache, tmp_path):
    raw = _fake_mnist(tmp_path / "data")
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    for p in [raw, raw.parent, *raw.iterdir()]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        with pytest.raises(DatasetError, match="copied from under") as err:
            load_dataset("mnist", tmp_path / "data", train=True, download=False)
        assert "train-images-idx3-ubyte.gz" in str(err.value)
    finally:
        for p in [raw, raw.parent, *raw.iterdir()]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_root_that_is_a_file_is_refused_even_with_a_cache_copy(cache, tmp_path):
    images, labels = torch.zeros(3, 1, 28, 28, dtype=torch.uint8), torch.arange(3)
    datasets._write_tensor_cache(str(cache / "MNIST"), "train", images, labels)  # what used to answer silently
    (tmp_path / "data.txt").write_text("not a folder")
    with pytest.raises(DatasetError, match=r"data.root '.*data.txt' is a file, not a folder"):
        load_dataset("mnist", tmp_path / "data.txt", train=True)


def test_unreadable_root_is_named(cache, tmp_path, monkeypatch):
    root = tmp_path / "locked"
    root.mkdir()
    real = os.listdir

    def listdir(path="."):
        if os.path.abspath(path) == str(root):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(datasets.os, "listdir", listdir)  # root ignores chmod 000; the error is the same
    with pytest.raises(DatasetError, match=r"data.root '.*locked' cannot be read \(permission denied\)"):
        load_dataset("mnist", root, train=True)
