"""CIFAR-10 from the official python-pickle batches (``cifar-10-batches-py``) or their .tar.gz archive.

A search root (see ``common.data.locate``) may be the ``cifar-10-batches-py`` folder itself, hold it, hold
the ``cifar-10-python.tar.gz`` archive (read in place, never extracted), or hold such things in a
subfolder whose name starts with ``cifar`` (e.g. Keras 3's ``cifar-10-batches-py-target``). The batches
are pickles, so they are read with an unpickler that refuses every global except the few numpy needs to
rebuild an array: a doctored batch cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from common.data.download import RemoteFile, download_file, mirror_url
from common.data.errors import DataError, one_line
from common.data.locate import (
    Candidate,
    ImageSet,
    SearchRoot,
    check_split,
    find_or_download,
    is_dir,
    is_file,
    keras_cache_dir,
)

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_BASE_URL = "https://www.cs.toronto.edu/~kriz/"
# md5: published on the CIFAR-10 page; sha256: as pinned by Keras's keras.datasets.cifar10.load_data.
CIFAR10_ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    md5="c58f30108f718f92721af3b95e74349a",
)
_BATCH_DIR = "cifar-10-batches-py"
_ARCHIVE_NAMES = (CIFAR10_ARCHIVE.name, "cifar-10-batches-py.tar.gz")  # the latter: tf.keras 2's name
_SPLIT_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_MAX_MEMBER_BYTES = 256 << 20  # an official batch is ~31 MB; refuse decompression bombs


def resolve_cifar_class(value: str | int) -> int:
    """A CIFAR-10 class as its label: "horse", "7" and 7 all give 7. Unknown or out of range: DataError."""
    valid = f"use 0-9 or one of {', '.join(CIFAR10_CLASSES)}"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in CIFAR10_CLASSES:
            return CIFAR10_CLASSES.index(text)
        if not (text.isascii() and text.isdigit()):
            raise DataError(f"unknown CIFAR-10 class {value!r}: {valid}")
        label = int(text)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        label = int(value)
    else:
        raise DataError(f"unknown CIFAR-10 class {value!r}: {valid}")
    if not 0 <= label < len(CIFAR10_CLASSES):
        raise DataError(f"CIFAR-10 class {value!r} is out of range: {valid}")
    return label


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list."""


def _latin1_encode(text: object, encoding: object = "latin1") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1"); allow exactly that.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _ForbiddenGlobal("_codecs.encode is allowed only to rebuild bytes from latin-1 text")
    return text.encode("latin-1")


# numpy's array-rebuilding function, taken from numpy itself so that both of its module spellings
# (numpy.core before 2.0, numpy._core since) map to it without importing the deprecated numpy.core.
_RECONSTRUCT = np.empty(0, dtype=np.uint8).__reduce__()[0]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"refused global {module}.{name}") from None


def _parse_batch(payload: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as (uint8 (N, 32, 32, 3) images, int64 (N,) labels)."""
    try:
        # encoding="bytes": the official files are Python 2 pickles whose str values are raw bytes.
        batch = _RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except _ForbiddenGlobal as err:
        raise DataError(
            f"{where}: unsafe or foreign pickle ({err}); only official CIFAR-10 python batches are accepted"
        ) from err
    except Exception as err:  # a broken pickle can fail in many ways; all mean "not a batch"
        raise DataError(
            f"{where}: not a readable CIFAR-10 python batch ({type(err).__name__}: {one_line(err)}); "
            "delete it and fetch it again"
        ) from err
    if not isinstance(batch, dict):
        raise DataError(f"{where}: holds a {type(batch).__name__}, expected a CIFAR-10 batch dict")
    fields = {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in fields or "labels" not in fields:
        keys = ", ".join(sorted(str(key) for key in fields)) or "none"
        raise DataError(f"{where}: has keys {keys}, expected 'data' and 'labels' (is this CIFAR-10?)")
    data = fields["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' is {shape}, expected uint8 of shape (N, 3072)")
    try:
        labels = np.asarray(fields["labels"])
    except (ValueError, TypeError) as err:
        raise DataError(f"{where}: 'labels' is not a list of integers ({one_line(err)})") from err
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise DataError(f"{where}: 'labels' is {labels.dtype} {labels.shape}, expected a list of integers")
    if len(labels) != len(data):
        raise DataError(f"{where}: {len(data)} images but {len(labels)} labels; the batch is corrupt")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{where}: labels outside 0..9; the batch is corrupt or not CIFAR-10")
    # Each row is 1024 red, 1024 green, 1024 blue values, each plane row-major: NCHW -> NHWC.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or one_line(err)}") from err


def _read_archive(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The members ``names`` of a CIFAR-10 tar archive, read in one pass without extracting anything."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                pure = PurePosixPath(member.name)
                if pure.is_absolute() or ".." in pure.parts:
                    raise DataError(f"{path}: unsafe member path {member.name!r}; not the CIFAR-10 archive")
                parts = [part for part in pure.parts if part != "."]
                if not parts or parts[-1] not in wanted or parts[:-1] not in ([], [_BATCH_DIR]):
                    continue
                if not member.isfile() or member.size > _MAX_MEMBER_BYTES:
                    raise DataError(f"{path}: member {member.name!r} is not a plain batch file")
                stream = archive.extractfile(member)
                if stream is None:
                    raise DataError(f"{path}: member {member.name!r} cannot be read")
                found[parts[-1]] = stream.read()
    except DataError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: corrupt or truncated archive ({one_line(err)}); delete it and fetch it again"
        ) from err
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(
            f"{path}: lacks {_BATCH_DIR}/{', '.join(missing)}; "
            "not the CIFAR-10 python archive, fetch it again"
        )
    return found


def _assemble(
    batches: list[tuple[np.ndarray, np.ndarray]], label: int | None, source: str, split: str
) -> ImageSet:
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    if label is not None:
        keep = labels == label
        if not keep.any():
            raise DataError(
                f"{source}: no {CIFAR10_CLASSES[label]} images (class {label}) in the {split} split"
            )
        images, labels = images[keep], labels[keep]
    return ImageSet(
        images=np.ascontiguousarray(images), labels=labels, class_names=CIFAR10_CLASSES, source=source
    )


def _from_folder(directory: Path, split: str, label: int | None) -> ImageSet:
    batches = [
        _parse_batch(_read_file(directory / name), str(directory / name)) for name in _SPLIT_FILES[split]
    ]
    return _assemble(batches, label, str(directory.resolve()), split)


def _from_archive(path: Path, split: str, label: int | None) -> ImageSet:
    names = _SPLIT_FILES[split]
    members = _read_archive(path, names)
    batches = [_parse_batch(members[name], f"{path}:{_BATCH_DIR}/{name}") for name in names]
    return _assemble(batches, label, str(path.resolve()), split)


def _find_in(directory: Path, split: str, label: int | None, notes: list[str]) -> ImageSet | None:
    """Load from ``directory`` (a batches folder, its parent, or an archive's folder) if it has the split."""
    for folder in (directory, directory / _BATCH_DIR):
        present = [name for name in _SPLIT_FILES[split] if is_file(folder / name)]
        if len(present) == len(_SPLIT_FILES[split]):
            return _from_folder(folder, split, label)
        if present:
            missing = [name for name in _SPLIT_FILES[split] if name not in present]
            notes.append(f"{folder} lacks {', '.join(missing)}")
    for name in _ARCHIVE_NAMES:
        if is_file(directory / name):
            return _from_archive(directory / name, split, label)
    return None


def _how_to_provide() -> str:
    cache = keras_cache_dir()
    return (
        f"put {CIFAR10_ARCHIVE.name} (from {CIFAR10_BASE_URL}) or its extracted {_BATCH_DIR} folder "
        f"into {cache} or a folder passed as --data-dir (or set $DCGAN_DATA_DIR)"
    )


def _candidates(split: str, label: int | None, root: SearchRoot) -> list[Candidate]:
    try:
        children = sorted(p for p in root.path.iterdir() if p.name.startswith("cifar") and is_dir(p))
    except OSError:  # absent or unreadable: nothing to look into
        children = []
    return [
        Candidate(directory, partial(_find_in, directory, split, label))
        for directory in [root.path, *children]
    ]


def _download(split: str, label: int | None) -> Callable[[], ImageSet]:
    dest = keras_cache_dir() / CIFAR10_ARCHIVE.name
    download_file(
        mirror_url(CIFAR10_BASE_URL, CIFAR10_ARCHIVE.name),
        dest,
        CIFAR10_ARCHIVE.sha256,
        CIFAR10_ARCHIVE.md5,
    )
    return partial(_from_archive, dest, split, label)


def load_cifar10(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    label: int | None = None,
) -> ImageSet:
    """Load CIFAR-10 ``split`` ("train" or "test") as uint8 (N, 32, 32, 3) images.

    ``label``: None for all classes, else only that class (an int 0-9 or anything resolve_cifar_class
    takes). The first search root holding the split wins; with ``download`` and nothing found, the
    official archive is downloaded with pinned checksums into the Keras cache. Raises DataError.
    """
    check_split(split)
    label = None if label is None else resolve_cifar_class(label)
    return find_or_download(
        f"CIFAR-10 {split}",
        data_dir,
        candidates=partial(_candidates, split, label),
        how_to_provide=_how_to_provide,
        download=partial(_download, split, label),
        download_allowed=download,
    )
