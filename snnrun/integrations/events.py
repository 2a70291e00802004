"""Event data sets through tonic: N-MNIST, DVS Gesture, SHD, and any tonic data set by name.

:func:`load_events` returns ``(recordings, labels [N] long, n_classes)``.  ``recordings`` is an
:class:`EventData`: a lazy list of event recordings read by tonic's own readers when a batch
is needed (``data[idx].to(device)`` packs them into an
:class:`~snnrun.core.encoders.events.EventBatch`); its ``shape`` is ``(N, C, H, W)`` with
``(C, H, W) = (polarities, y, x)`` of tonic's ``sensor_size = (x, y, p)``.  The ``events``
encoder bins the batch at ``dt`` (step ``floor(t / dt)``).

Layout under ``root``: tonic's, ``<root>/<TonicClass>/...``:

* ``nmnist``: ``NMNIST/Train/<digit>/*.bin`` and ``NMNIST/Test/<digit>/*.bin`` (the unpacked
  ``train.zip`` / ``test.zip``);
* ``dvs_gesture``: ``DVSGesture/ibmGestureTrain/<user>_<lighting>/<class>.npy`` (and ``ibmGestureTest``);
* ``shd``: ``SHD/shd_train.h5`` and ``SHD/shd_test.h5``;
* any other name: ``tonic.datasets.<Name>`` (case-insensitive, ``_`` ignored), its own layout.

Found files are read as they are; tonic downloads only when they are missing and
``download`` is true.  A missing data set is one line naming the folder and the download.
"""

from __future__ import annotations

import glob
import inspect
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ..core.encoders.events import EventBatch
from .datasets import DATASETS, DatasetError, default_root

__all__ = ["EVENT_DATASETS", "EventData", "check_dataset_name", "is_event_dataset", "load_events"]


@dataclass(frozen=True)
class EventSpec:
    name: str  # snnrun's name
    tonic: str  # the tonic.datasets class
    files: dict  # split -> glob under <root>/<tonic>/ that must match at least one file
    hint: str  # what the folder must hold
    download: str  # what a download fetches


EVENT_DATASETS: dict[str, EventSpec] = {
    "nmnist": EventSpec("nmnist", "NMNIST", {"train": "Train/*/*.bin", "test": "Test/*/*.bin"},
                        "Train/<digit>/*.bin and Test/<digit>/*.bin (unpacked train.zip / test.zip)",
                        "train.zip (~800 MB) and test.zip from Mendeley Data (doi 10.17632/468j46mzdv.1)"),
    "dvs_gesture": EventSpec("dvs_gesture", "DVSGesture",
                             {"train": "ibmGestureTrain/*/*.npy", "test": "ibmGestureTest/*/*.npy"},
                             "ibmGestureTrain/ and ibmGestureTest/ (tonic's .npy conversion)",
                             "ibmGestureTrain.tar.gz (~2.3 GB) and ibmGestureTest.tar.gz from figshare"),
    "shd": EventSpec("shd", "SHD", {"train": "shd_train.h5", "test": "shd_test.h5"},
                     "shd_train.h5 and shd_test.h5", "shd_train.h5.zip (~130 MB) and shd_test.h5.zip from zenkelab.org"),
}


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def _tonic_class(name: str) -> Optional[type]:
    """``tonic.datasets.<Class>`` for a snnrun name or a tonic class name (case and ``_`` ignored)."""
    key = _key(name)
    if key in EVENT_DATASETS:
        key = EVENT_DATASETS[key].tonic.lower()
    try:
        import tonic.datasets as td
    except ImportError:
        return None
    flat = key.replace("_", "")
    for cls_name in getattr(td, "__all__", dir(td)):
        if cls_name.lower().replace("_", "") == flat:
            return getattr(td, cls_name)
    return None


def is_event_dataset(name: str) -> bool:
    """Whether ``data.name`` names an event data set (a snnrun name or any tonic data set)."""
    key = _key(name)
    if key in DATASETS:
        return False
    return key in EVENT_DATASETS or _tonic_class(key) is not None


def check_dataset_name(name: str) -> None:
    """Refuse a name that is neither an image data set nor an event data set (a typo)."""
    if _key(name) in DATASETS or is_event_dataset(name):
        return
    import difflib

    known = [*DATASETS, *EVENT_DATASETS]
    close = difflib.get_close_matches(_key(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DatasetError(f"unknown dataset {name!r}{hint}; image data sets: {', '.join(DATASETS)}; event data sets: "
                       f"{', '.join(EVENT_DATASETS)} or any tonic.datasets class by name")


def _require_tonic(name: str) -> type:
    try:
        import tonic  # noqa: F401
    except ImportError:
        raise DatasetError(f"dataset {name!r} is read through tonic, which is not installed; "
                           "pip install 'snnrun[events]' (or pip install tonic)") from None
    cls = _tonic_class(name)
    if cls is None:
        raise DatasetError(f"unknown dataset {name!r}; image data sets: {', '.join(DATASETS)}; event data sets: "
                           f"{', '.join(EVENT_DATASETS)} or any tonic.datasets class by name")
    return cls


def load_events(name: str, root: Optional[str] = None, train: bool = True, n: Optional[int] = None,
                download: bool = True) -> tuple["EventData", torch.Tensor, int]:
    """``n`` recordings (all when ``None``) of a split of an event data set (see the module docstring).

    tonic lists a split class by class, so the recordings come in the order of a fixed
    permutation of tonic's list (seed 0, whatever the run's seed) and a subset is its first
    ``n``: the same recordings in the same order on every run and machine, classes mixed.

    Returns:
        ``(recordings, labels, n_classes)``: an :class:`EventData` of shape ``(N, C, H, W)``,
        int64 labels ``[N]`` and the number of classes.

    Raises:
        DatasetError: tonic missing, the data set missing (and not downloadable), unreadable.
        ValueError: bad ``n`` or ``n`` larger than the split.
    """
    cls = _require_tonic(name)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be None or a non-negative integer, got {n!r}")
    root = default_root() if root is None else os.fspath(root)
    split = "train" if train else "test"
    spec = EVENT_DATASETS.get(_key(name))
    folder = os.path.join(root, cls.__name__)
    present = spec is not None and bool(glob.glob(os.path.join(folder, spec.files[split])))
    ds = _open(cls, spec, root, folder, split, present, download)
    sensor = _sensor(cls, ds)
    labels = _labels(ds, folder)
    if n is not None and n > len(labels):
        raise ValueError(f"n={n} is larger than the {name} {split} split ({len(labels)} recordings)")
    classes = getattr(ds, "classes", None)
    n_classes = len(classes) if classes is not None and len(classes) else int(labels.max()) + 1 if len(labels) else 0
    # tonic lists recordings class by class: a fixed permutation mixes them, for every consumer
    # of the order (a subset, the assign pass's first assign_n, data.shuffle=false)
    order = np.random.default_rng(0).permutation(len(labels))
    index = order if n is None else order[:n]
    data = EventData(ds, sensor, index, _key(name))
    return data, labels[torch.from_numpy(index)], n_classes


def _missing(name: str, folder: str, spec: Optional[EventSpec], reason: str) -> DatasetError:
    what = f"expected {spec.hint}" if spec else "in tonic's layout"
    fetch = spec.download if spec else "it"
    return DatasetError(f"dataset {name!r} not found in {os.path.abspath(folder)!r} ({what}; {reason}); "
                        f"set data.download=true to fetch {fetch}, or set data.root (SNNRUN_DATA_DIR) to the folder "
                        f"holding {os.path.basename(folder)}/")


def _open(cls: type, spec: Optional[EventSpec], root: str, folder: str, split: str, present: bool, download: bool):
    """tonic's data set object for ``split``; it downloads only when files are missing and ``download``."""
    name = spec.name if spec else cls.__name__

    def refuse(self):
        raise _missing(name, folder, spec, "data.download=false")

    attrs: dict[str, Any] = {}
    if present:  # snnrun's own check found the files: tonic's stricter one (archives, counts) is not needed
        attrs["_check_exists"] = lambda self: True
    if present or not download:
        attrs["download"] = refuse
    local = type(cls.__name__, (cls,), attrs)  # same name: tonic's folder is <root>/<class name>
    if "train" not in inspect.signature(cls.__init__).parameters:
        raise DatasetError(f"tonic dataset {cls.__name__} has no train/test split argument; snnrun reads train "
                           "and test splits (event data sets: " + ", ".join(EVENT_DATASETS) + ")")
    try:
        return local(root, train=(split == "train"))
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001 - a failed download or an unreadable file: one line
        last = " ".join(str(e).split())[:160] or type(e).__name__
        if not present:
            raise _missing(name, folder, spec, f"{'download failed: ' if download else ''}{type(e).__name__}: {last}") from e
        raise DatasetError(f"dataset {name!r} in {os.path.abspath(folder)!r} is unreadable ({type(e).__name__}: {last}); "
                           "delete or replace its files") from e


def _sensor(cls: type, ds: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` from tonic's ``sensor_size = (x, y, p)``."""
    size = getattr(ds, "sensor_size", None) or getattr(cls, "sensor_size", None)
    if size is None or len(size) != 3:
        raise DatasetError(f"tonic dataset {cls.__name__} has no fixed sensor size (x, y, p); its recordings cannot "
                           "feed one input population")
    x, y, p = (int(v) for v in size)
    return p, y, x


def _labels(ds: Any, folder: str) -> torch.Tensor:
    targets = getattr(ds, "targets", None)
    if targets is not None and len(targets) == len(ds):
        return torch.as_tensor(np.asarray(targets, dtype=np.int64))
    if hasattr(ds, "data_filename"):  # tonic's HSD family (SHD, SSC): labels in the HDF5 file
        import h5py

        with h5py.File(os.path.join(ds.location_on_system, ds.data_filename), "r") as f:
            return torch.as_tensor(np.asarray(f["labels"][:], dtype=np.int64))
    return torch.as_tensor(np.asarray([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64))


class EventData:
    """A lazy list of event recordings (see the module docstring): ``len``, ``shape``
    ``(N, C, H, W)``, indexing by slice / int / index tensor (a view), ``.to(device)`` (read
    and pack into an :class:`EventBatch`)."""

    def __init__(self, dataset: Any, sensor: tuple[int, int, int], index: np.ndarray, name: str):
        self.dataset, self.sensor, self.index, self.name = dataset, tuple(sensor), np.asarray(index, dtype=np.int64), name

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.sensor))

    def __getitem__(self, key) -> "EventData":
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        sub = self.index[key]
        return EventData(self.dataset, self.sensor, np.atleast_1d(sub), self.name)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Recording ``i`` (of this view) as ``(pos, t_us)`` int64 arrays, bounds checked."""
        j = int(self.index[i])
        events = self.dataset[j][0]
        names = events.dtype.names or ()
        C, H, W = self.sensor
        fields = {}
        for f, size in (("x", W), ("y", H), ("p", C)):
            v = np.asarray(events[f], dtype=np.int64) if f in names and size > 1 else np.zeros(len(events), np.int64)
            if len(v) and (v.min() < 0 or v.max() >= size):
                raise DatasetError(f"{self._where(j)}: event {f} values in [{v.min()}, {v.max()}], outside the "
                                   f"sensor's [0, {size}); the file is corrupt or not from this data set")
            fields[f] = v
        t = np.asarray(events["t"], dtype=np.int64)
        if len(t) and t.min() < 0:
            raise DatasetError(f"{self._where(j)}: negative event time {t.min()} µs; the file is corrupt")
        return (fields["p"] * H + fields["y"]) * W + fields["x"], t

    def _where(self, j: int) -> str:
        """Recording ``j`` of tonic's list, with its file where tonic keeps one per recording."""
        files = getattr(self.dataset, "data", None)
        return f"{self.name} recording {j}" + (f" ({files[j]})" if isinstance(files, list) and j < len(files) else "")

    def to(self, device=None, non_blocking: bool = False) -> EventBatch:
        """Read every recording of the view and pack them into one :class:`EventBatch`."""
        parts = [self.read(i) for i in range(len(self))]
        sample = np.concatenate([np.full(len(p), b, np.int64) for b, (p, _) in enumerate(parts)] or [np.zeros(0, np.int64)])
        pos = np.concatenate([p for p, _ in parts] or [np.zeros(0, np.int64)])
        t = np.concatenate([t for _, t in parts] or [np.zeros(0, np.int64)])
        batch = EventBatch(torch.from_numpy(sample), torch.from_numpy(pos), torch.from_numpy(t), self.shape)
        return batch.to(device, non_blocking=non_blocking) if device is not None else batch
