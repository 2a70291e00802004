"""Image data sets (MNIST, Fashion-MNIST, CIFAR-10) as plain tensors, through torchvision.

:func:`load_dataset` returns ``(images [N, C, H, W] float in [0, 1], labels [N] long)``.

Where the files live:

* ``root`` (default :func:`default_root`: ``$SNNRUN_DATA_DIR``, else ``./data``) holds the data in
  torchvision's layout: ``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``,
  ``cifar-10-python.tar.gz`` or ``cifar-10-batches-py/``.
* torchvision unpacks the archives next to themselves.  When the data set's folder under
  ``root`` is not writable (a shared, read-only copy), its files are first mirrored into a
  cache folder (``$SNNRUN_CACHE_DIR``, else ``~/.cache/snnrun/data``) in the same layout, and
  everything is unpacked and loaded there; nothing is ever written under a read-only ``root``.
* After the first load, the split is saved as ``uint8`` tensors (``snnrun-train.pt`` /
  ``snnrun-test.pt``) in the data set's folder of the writable location, so later loads take
  well under a second.  Delete those files to rebuild them from the raw data.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import uuid
import zlib
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["DatasetError", "default_root", "cache_dir", "load_dataset", "DATASETS"]

_CACHE_VERSION = 1
_LUMA = (0.299, 0.587, 0.114)


class DatasetError(ValueError):
    """A data set is missing and could not be downloaded (a one-line message saying where to put it)."""


@dataclass(frozen=True)
class _Spec:
    name: str  # snnrun's name ("mnist")
    kind: str  # "idx" (MNIST family: <root>/<folder>/raw/*.gz) or "cifar" (<root>/<folder>/ + tarball)
    folder: str  # the data set's folder under root
    hint: str  # what the user should put under root
    archive: str = ""  # cifar: the tarball beside the folder

    def torchvision_class(self):
        import torchvision.datasets as tvd

        return {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[self.name]


DATASETS: dict[str, _Spec] = {
    "mnist": _Spec("mnist", "idx", "MNIST", "MNIST/raw/*.gz"),
    "fashion_mnist": _Spec("fashion_mnist", "idx", "FashionMNIST", "FashionMNIST/raw/*.gz"),
    "cifar10": _Spec("cifar10", "cifar", "cifar-10-batches-py", "cifar-10-python.tar.gz or cifar-10-batches-py/",
                     archive="cifar-10-python.tar.gz"),
}


def default_root() -> str:
    """The data root: environment variable ``SNNRUN_DATA_DIR`` if set (and not empty), else ``./data``."""
    return os.environ.get("SNNRUN_DATA_DIR") or "./data"


def cache_dir() -> str:
    """Where read-only roots are mirrored: ``SNNRUN_CACHE_DIR`` if set, else ``~/.cache/snnrun/data``."""
    return os.environ.get("SNNRUN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "snnrun", "data")


def load_dataset(name: str, root: Optional[str] = None, train: bool = True, n: Optional[int] = None,
                 download: bool = True, grayscale: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the first ``n`` samples of a split of an image data set.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"`` (case-insensitive; ``-`` works as ``_``).
        root: folder holding the data in torchvision's layout; ``None`` means :func:`default_root`.
        train: the training split if true, else the test split.
        n: how many samples, taken from the start of the split; ``None`` means all of them.
        download: let torchvision download missing files (into ``root``, or into the cache
            folder when ``root`` is read-only).
        grayscale: CIFAR-10 only: convert to one luma channel (0.299 R + 0.587 G + 0.114 B)
            instead of returning three colour channels.  MNIST and Fashion-MNIST are always
            one channel.

    Returns:
        ``(images, labels)``: images ``float32`` in ``[0, 1]``, labels ``int64`` class indices.

    Shapes:
        images: ``[N, C, H, W]``: ``[N, 1, 28, 28]`` for MNIST / Fashion-MNIST, ``[N, 1, 32, 32]``
        or ``[N, 3, 32, 32]`` for CIFAR-10.  labels: ``[N]``.

    Raises:
        ValueError: unknown ``name``, bad ``n``, or ``n`` larger than the split.
        DatasetError: the data set is not under ``root`` and could not be downloaded.
    """
    spec = _spec(name)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be None or a non-negative integer, got {n!r}")
    root = default_root() if root is None else os.fspath(root)
    split = "train" if train else "test"

    images, labels = _load_split(spec, root, split, download)
    size = int(labels.shape[0])
    if n is not None and n > size:
        raise ValueError(f"n={n} is larger than the {spec.name} {split} split ({size} samples)")
    if n is not None:
        images, labels = images[:n], labels[:n]
    images = images.float().div_(255.0)
    if spec.kind == "cifar" and grayscale:
        weights = torch.tensor(_LUMA, dtype=images.dtype).view(1, 3, 1, 1)
        images = (images * weights).sum(dim=1, keepdim=True).clamp_(0.0, 1.0)
    return images, labels.clone()


# --------------------------------------------------------------------------- internals
def _spec(name: str) -> _Spec:
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[key]


def _load_split(spec: _Spec, root: str, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]`` of a whole split."""
    _check_root(root)
    source_folder = os.path.join(root, spec.folder)
    cached = _read_tensor_cache(source_folder, split)  # may be there even in a read-only root
    if cached is not None:
        return cached

    if _writable(source_folder) and (spec.kind != "idx" or _writable(os.path.join(source_folder, "raw"))):
        work_root = root
    else:
        work_root = cache_dir()
        if not _has_files(spec, root) and not download:
            raise _missing(spec, root, "download=False")
        cached = _read_tensor_cache(os.path.join(work_root, spec.folder), split)
        if cached is not None:
            return cached
        try:
            _mirror(spec, root, work_root)
        except OSError as e:
            raise _missing(spec, root, f"could not copy it to the cache folder {work_root!r}: {e}") from e

    work_folder = os.path.join(work_root, spec.folder)
    _unpack(spec, work_root, root)
    if spec.kind == "idx":
        for stem in IDX_FILES[split]:
            _check_idx(os.path.join(work_root, spec.folder, "raw", stem), root)

    had_files = _has_files(spec, work_root)
    try:
        ds = spec.torchvision_class()(work_root, train=(split == "train"), download=download)
    except (RuntimeError, OSError) as e:  # urllib's URLError is an OSError
        if download:
            reason = f"download failed: {_last_line(e)}"
        elif had_files:
            reason = "its files are incomplete or corrupted, and download=False"
        else:
            reason = "download=False"
        raise _missing(spec, root, reason) from e
    except Exception as e:  # files present but not parseable (e.g. ValueError from a bad header)
        raise DatasetError(f"dataset {spec.name!r} under {os.path.abspath(root)!r} is unreadable "
                           f"({type(e).__name__}: {_last_line(e)}); delete or replace its files") from e

    if spec.kind == "idx":
        images = ds.data.unsqueeze(1).contiguous()
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
    else:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
    _check_pairs(spec, work_folder, split, images, labels)
    _write_tensor_cache(work_folder, split, images, labels)
    return images, labels


def _check_pairs(spec: _Spec, folder: str, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    """One label per image: a label file of another length (a mixed-up or truncated
    file) would train on misaligned pairs."""
    if len(images) != len(labels):
        raise DatasetError(f"dataset {spec.name!r} ({split}) under {os.path.abspath(folder)!r}: {len(images)} images "
                           f"but {len(labels)} labels; replace the label file (or delete the folder to download again)")


def _missing(spec: _Spec, root: str, reason: str) -> DatasetError:
    reason = " ".join(str(reason).split())
    return DatasetError(
        f"dataset {spec.name!r} not found under {os.path.abspath(root)!r} and could not be downloaded ({reason}); "
        f"set data.root or SNNRUN_DATA_DIR to a folder holding {spec.hint}"
    )


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _writable(path: str) -> bool:
    """Whether ``path`` (or, if it does not exist yet, its nearest existing parent) can be written.

    ``os.access`` alone says yes to root even for folders whose mode has no write bit, so a
    folder whose mode has no write bit at all counts as read-only too.
    """
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    if not os.path.isdir(path):
        return False
    mode = os.stat(path).st_mode
    return os.access(path, os.W_OK | os.X_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _has_files(spec: _Spec, root: str) -> bool:
    folder = os.path.join(root, spec.folder)
    if spec.kind == "idx":
        raw = os.path.join(folder, "raw")
        return os.path.isdir(raw) and any(os.path.isfile(os.path.join(raw, f)) for f in os.listdir(raw))
    return os.path.isfile(os.path.join(root, spec.archive)) or os.path.isdir(folder)


def _tmp_name(path: str) -> str:
    """A unique sibling of ``path`` to write first and rename onto it (safe with parallel runs)."""
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _copy(src: str, dst: str) -> None:
    """Copy a file unless ``dst`` already has the same size; atomic (temp file, then rename)."""
    if os.path.isfile(dst) and os.path.getsize(dst) == os.path.getsize(src):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = _tmp_name(dst)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _mirror(spec: _Spec, root: str, work_root: str) -> None:
    """Copy a data set's files from a read-only ``root`` into ``work_root`` (same layout)."""
    if spec.kind == "idx":
        src, dst = os.path.join(root, spec.folder, "raw"), os.path.join(work_root, spec.folder, "raw")
        if not os.path.isdir(src):
            return
        names = [f for f in sorted(os.listdir(src)) if os.path.isfile(os.path.join(src, f))]
        for f in names:
            # the .gz files; an unpacked file only when its .gz is not there
            if f.endswith(".gz") or f + ".gz" not in names:
                _copy(os.path.join(src, f), os.path.join(dst, f))
        return
    archive = os.path.join(root, spec.archive)
    if os.path.isfile(archive):
        _copy(archive, os.path.join(work_root, spec.archive))
    folder = os.path.join(root, spec.folder)
    if os.path.isdir(folder):
        for f in sorted(os.listdir(folder)):
            if os.path.isfile(os.path.join(folder, f)) and not f.startswith("snnrun-"):
                _copy(os.path.join(folder, f), os.path.join(work_root, spec.folder, f))


def _check_root(root: str) -> None:
    """``data.root`` is a folder this process can read (or does not exist yet)."""
    if not os.path.exists(root):
        return
    if not os.path.isdir(root):
        raise DatasetError(f"data.root {os.path.abspath(root)!r} is a file, not a folder; set data.root "
                           "(or SNNRUN_DATA_DIR) to the folder holding the data sets")
    try:
        os.listdir(root)
    except PermissionError:
        raise DatasetError(f"data.root {os.path.abspath(root)!r} cannot be read (permission denied)") from None


# the unpacked IDX files of each split (MNIST and Fashion-MNIST)
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _where(path: str, root: str) -> str:
    """``path``, and the read-only root it was copied from when it is in the cache."""
    path = os.path.abspath(path)
    return repr(path) if path.startswith(os.path.abspath(root) + os.sep) else f"{path!r} (copied from under {os.path.abspath(root)!r})"


def _check_idx(path: str, root: str) -> None:
    """An unpacked IDX file (if present) is whole: its header's magic and dimensions give
    its exact size (``4 + 4 * ndim + prod(dims)`` bytes of uint8 data)."""
    if not os.path.isfile(path):
        return
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
        ndim = head[3] if len(head) == 4 and head[:3] == b"\x00\x00\x08" else 0
        dims = f.read(4 * ndim)
    if ndim == 0 or len(dims) != 4 * ndim:
        raise DatasetError(f"data file {_where(path, root)} is not an IDX file of bytes (bad header); "
                           "delete it to unpack or download it again")
    expected = 4 + 4 * ndim
    n = 1
    for k in range(ndim):
        n *= int.from_bytes(dims[4 * k:4 * k + 4], "big")
    expected += n
    if size != expected:
        raise DatasetError(f"data file {_where(path, root)} is truncated or corrupt ({size} bytes, its header says "
                           f"{expected}); delete it to unpack or download it again")


def _unpack(spec: _Spec, work_root: str, root: str) -> None:
    """Unpack archives that are present but not yet unpacked, so ``download=False`` works too;
    a truncated or corrupt archive is named (deleting it lets torchvision download it again)."""
    if spec.kind == "idx":
        raw = os.path.join(work_root, spec.folder, "raw")
        if not os.path.isdir(raw):
            return
        for f in os.listdir(raw):
            target = os.path.join(raw, f[:-3])
            if f.endswith(".gz") and not os.path.exists(target):
                tmp = _tmp_name(target)
                try:
                    with gzip.open(os.path.join(raw, f), "rb") as fin, open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout, 1 << 20)
                    os.replace(tmp, target)
                except (EOFError, gzip.BadGzipFile, zlib.error) as e:
                    raise DatasetError(f"data file {_where(os.path.join(raw, f), root)} is truncated or corrupt "
                                       f"({_last_line(e)}); delete it to download it again, or replace it") from None
                finally:
                    if os.path.exists(tmp):
                        os.remove(tmp)
        return
    archive = os.path.join(work_root, spec.archive)
    if os.path.isfile(archive) and not os.path.isdir(os.path.join(work_root, spec.folder)):
        from torchvision.datasets.utils import extract_archive

        extract_archive(archive, work_root)


def _cache_path(folder: str, split: str) -> str:
    return os.path.join(folder, f"snnrun-{split}.pt")


def _read_tensor_cache(folder: str, split: str) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    path = _cache_path(folder, split)
    if not os.path.isfile(path):
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if blob.get("version") != _CACHE_VERSION:
            return None
        images, labels = blob["images"], blob["labels"]
        if images.dtype != torch.uint8 or images.dim() != 4 or labels.shape != (images.shape[0],):
            return None
        return images, labels
    except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
        return None


def _write_tensor_cache(folder: str, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = _tmp_name(_cache_path(folder, split))
        try:
            torch.save({"version": _CACHE_VERSION, "images": images, "labels": labels}, tmp)
            os.replace(tmp, _cache_path(folder, split))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:
        warnings.warn(f"could not save the tensor cache in {folder!r} ({e}); later loads will be slower")
