"""MNIST and Fashion-MNIST: the official IDX files (gzipped or not) or Keras's ``mnist.npz``.

Where files are looked for, per search root (see ``common.data.locate``):
- the ``data_dir`` argument: the files directly in it, or in a ``mnist/`` (MNIST) or ``fashion_mnist/`` /
  ``fashion-mnist/`` (Fashion-MNIST) subfolder;
- ``$DCGAN_DATA_DIR``: those data-set subfolders, and MNIST IDX files (or ``mnist.npz``) straight in it; IDX
  files straight in it are not taken for Fashion-MNIST (the names are MNIST's too), and the message says so;
- the Keras cache: only those data-set subfolders (plus ``mnist.npz`` at the top), because it serves
  several data sets and MNIST and Fashion-MNIST IDX files share names;
- Fashion-MNIST only: where Debian's ``dataset-fashion-mnist`` package installs it;
- else a download into the Keras cache, where Keras itself would put it.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from common.data.download import RemoteFile, download_file, mirror_url
from common.data.errors import DataError, one_line
from common.data.locate import (
    DATA_DIR_ENV,
    Candidate,
    ImageSet,
    SearchRoot,
    check_split,
    find_or_download,
    is_dir,
    is_file,
    keras_cache_dir,
)

MNIST_DATASETS = ("mnist", "fashion_mnist")
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}  # fmt: skip
_PRETTY = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
_SUBDIRS = {"mnist": ("mnist",), "fashion_mnist": ("fashion_mnist", "fashion-mnist")}
_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGE_SHAPE = (28, 28)

# `dpkg -L dataset-fashion-mnist` (Debian 12/13): the four IDX .gz files. Debian recompressed them, so
# their bytes differ from the published archives and the download checksums below do not apply to them.
DEBIAN_FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# sha256 as pinned by Keras's own keras.datasets.mnist.load_data.
MNIST_NPZ = RemoteFile("mnist.npz", sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
# Keras downloads Fashion-MNIST unpinned from its bucket, which holds Zalando's published files (same sizes).
# md5: Zalando's README. sha256: of the files with those md5s, as published by several independent projects
# and checked here by rebuilding the published archives bit for bit from the Debian package's contents.
FASHION_MNIST_FILES = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        md5="25c81989df183df01b3e8a0aad5dffbe",
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        md5="bef4ecab320f06d8554ea6380940ec79",
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        md5="bb300cfdad3c16e7a12a480ee83cd310",
    ),
)


def _read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped if its name ends in .gz."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    # BadGzipFile (bad header, CRC/length check) is an OSError, so it must be caught before OSError.
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({one_line(err)}); delete it and fetch it again"
        ) from err
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or one_line(err)}") from err


def read_idx(path: str | os.PathLike, kind: str) -> np.ndarray:
    """Read an IDX ``kind`` ("images": N x 28 x 28, or "labels": N) file as uint8, validating it fully."""
    path = Path(path)
    ndim = 3 if kind == "images" else 1
    expected_magic = 0x0800 + ndim  # 2051 for images, 2049 for labels: unsigned bytes, ndim dimensions
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX {kind} file; fetch it again")
    magic = int.from_bytes(data[:4], "big")
    if data[:2] == b"\0\0" and data[2] != 0x08:
        raise DataError(
            f"{path}: IDX element type 0x{data[2]:02x} is not supported, expected 0x08 (unsigned byte)"
        )
    if magic != expected_magic:
        other = {2051: "an IDX images file", 2049: "an IDX labels file"}.get(magic, "not an IDX file")
        raise DataError(
            f"{path}: magic number {magic} ({other}), expected {expected_magic} for IDX {kind}; "
            "check the file names or fetch the file again"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes); delete it and fetch it again")
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    if kind == "images" and dims[1:] != _IMAGE_SHAPE:
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28 (MNIST-style data only)")
    if dims[0] == 0:
        raise DataError(f"{path}: the header declares 0 {kind}; fetch the file again")
    size = math.prod(dims)
    payload = len(data) - header_size
    if payload < size:
        raise DataError(
            f"{path}: truncated: the header declares {dims[0]} {kind} ({size} bytes) but only {payload} "
            "bytes follow; delete it and fetch it again"
        )
    if payload > size:
        raise DataError(
            f"{path}: {payload - size} unexpected bytes after the {dims[0]} {kind} the header declares; "
            "the file is corrupt, fetch it again"
        )
    # A copy, so the arrays are writable (np.frombuffer over bytes is read-only).
    return np.frombuffer(data, dtype=np.uint8, count=size, offset=header_size).reshape(dims).copy()


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = labels[(labels < 0) | (labels > 9)][0]
        raise DataError(f"{where}: label {bad} is outside 0..9; the file is corrupt or not MNIST-style data")
    return labels.astype(np.int64)


def _load_idx_pair(images_path: Path, labels_path: Path, dataset: str) -> ImageSet:
    images = read_idx(images_path, "images")
    labels = read_idx(labels_path, "labels")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path.name} holds {len(labels)} labels: "
            "the two files do not belong together, replace both"
        )
    return ImageSet(
        images=images[..., np.newaxis],
        labels=_check_labels(labels, str(labels_path)),
        class_names=CLASS_NAMES[dataset],
        source=str(images_path.parent.resolve()),
    )


def _load_npz(path: Path, split: str, dataset: str) -> ImageSet:
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        # allow_pickle=False: an .npz must hold plain arrays, never objects that run code when loaded.
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an .npz archive; expected Keras's mnist.npz")
            missing = [key for key in (x_key, y_key) if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing {', '.join(missing)} (has {', '.join(archive.files) or 'nothing'}); "
                    "expected Keras's mnist.npz with x_train, y_train, x_test, y_test"
                )
            images, labels = archive[x_key], archive[y_key]
    except DataError:
        raise
    except Exception as err:  # zip, zlib and .npy format errors all mean the same to the user
        raise DataError(
            f"{path}: not a readable .npz archive ({type(err).__name__}: {one_line(err)}); "
            "delete it and fetch it again"
        ) from err
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[1:3] != _IMAGE_SHAPE:
        raise DataError(f"{path}: {x_key} is {images.dtype} {images.shape}, expected uint8 (N, 28, 28)")
    if images.ndim == 4 and images.shape[3] != 1:
        raise DataError(f"{path}: {x_key} has {images.shape[3]} channels, expected 1")
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != images.shape[:1]:
        raise DataError(
            f"{path}: {y_key} is {labels.dtype} {labels.shape}, "
            f"expected integers of shape ({images.shape[0]},)"
        )
    if images.shape[0] == 0:
        raise DataError(f"{path}: {x_key} holds no images; fetch the file again")
    return ImageSet(
        images=np.ascontiguousarray(images.reshape(images.shape[:3] + (1,))),
        labels=_check_labels(labels, f"{path} {y_key}"),
        class_names=CLASS_NAMES[dataset],
        source=str(path.resolve()),
    )


def _pick(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):  # the uncompressed file first: it is faster to read
        if is_file(directory / name):
            return directory / name
    return None


def _find_in_dir(
    directory: Path, dataset: str, split: str, notes: list[str], idx: bool = True
) -> ImageSet | None:
    """Load ``split`` from ``directory`` if it holds a complete set; None (with a note if partial) if not."""
    if not is_dir(directory):
        return None
    if idx:
        images_stem, labels_stem = _IDX_STEMS[split]
        images_path, labels_path = _pick(directory, images_stem), _pick(directory, labels_stem)
        if images_path and labels_path:
            return _load_idx_pair(images_path, labels_path, dataset)
        if images_path or labels_path:
            missing = labels_stem if images_path else images_stem
            notes.append(f"{directory} lacks {missing}[.gz]")
    if dataset == "mnist" and is_file(directory / MNIST_NPZ.name):
        return _load_npz(directory / MNIST_NPZ.name, split, dataset)
    return None


def _how_to_provide(dataset: str) -> str:
    cache = keras_cache_dir()
    names = ", ".join(stem + ".gz" for pair in _IDX_STEMS.values() for stem in pair)
    if dataset == "mnist":
        return (
            f"put Keras's mnist.npz into {cache}, or the four MNIST IDX files ({names}; gzipped or not) "
            f"into {cache / 'mnist'} or a folder passed as --data-dir (or set $DCGAN_DATA_DIR)"
        )
    return (
        "run `apt-get install dataset-fashion-mnist`, or put the four Fashion-MNIST IDX files "
        f"({names}) into {cache / 'fashion-mnist'} or a folder passed as --data-dir (or set $DCGAN_DATA_DIR)"
    )


def _ambiguous_top_level(directory: Path, notes: list[str]) -> None:
    """For Fashion-MNIST: IDX files straight in $DCGAN_DATA_DIR are not read, and the message says why."""
    if any(_pick(directory, stem) for pair in _IDX_STEMS.values() for stem in pair):
        notes.append(
            f"{directory} (${DATA_DIR_ENV}) holds IDX files at its top, which are taken as MNIST's (the two "
            f"data sets' files share names): for Fashion-MNIST put them in {directory / 'fashion_mnist'} or "
            "pass the folder as --data-dir"
        )
    return None


def _candidates(dataset: str, split: str, root: SearchRoot) -> list[Candidate]:
    # IDX files straight in a root are read when the user named the folder for this data set (--data-dir)
    # or, for MNIST, set $DCGAN_DATA_DIR to it (as the README says). The Keras cache's top level is
    # shared with other data sets, and MNIST and Fashion-MNIST IDX files have the same names: only Keras's
    # unambiguous mnist.npz is taken from there.
    from_env = root.label == f"${DATA_DIR_ENV}"
    top_level_idx = root.explicit or (from_env and dataset == "mnist")
    folders = [(root.path, top_level_idx)] + [(root.path / sub, True) for sub in _SUBDIRS[dataset]]
    candidates = [
        Candidate(directory, partial(_find_in_dir, directory, dataset, split, idx=idx))
        for directory, idx in folders
        if idx or dataset == "mnist"
    ]
    if from_env and dataset != "mnist":
        candidates.append(Candidate(root.path, partial(_ambiguous_top_level, root.path)))
    return candidates


def _download(dataset: str, split: str) -> Callable[[], ImageSet]:
    # The fresh files are read here, not by the returned function: an error reading them, too, gets the
    # places searched and how to provide the files appended (see find_or_download).
    cache = keras_cache_dir()
    if dataset == "mnist":
        dest = cache / MNIST_NPZ.name
        download_file(mirror_url(KERAS_BASE_URL, MNIST_NPZ.name), dest, sha256=MNIST_NPZ.sha256)
        found = _load_npz(dest, split, dataset)
        return lambda: found
    dest_dir = cache / "fashion-mnist"  # Keras's own cache folder for Fashion-MNIST
    for remote in FASHION_MNIST_FILES:
        if not is_file(dest_dir / remote.name):
            download_file(
                mirror_url(KERAS_BASE_URL, remote.name), dest_dir / remote.name, remote.sha256, remote.md5
            )
    fashion = _find_in_dir(dest_dir, dataset, split, [])
    if fashion is None:  # only if the folder changed under us
        raise DataError(f"{dest_dir}: downloaded Fashion-MNIST files vanished; try again")
    return lambda: fashion


def load_mnist(
    dataset: str = "mnist",
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> ImageSet:
    """Load MNIST or Fashion-MNIST ``split`` ("train" or "test") as uint8 (N, 28, 28, 1) images.

    The first place holding a complete set wins (see the module docstring); with ``download`` and nothing
    found, the files are downloaded with pinned checksums into the Keras cache. Raises DataError.
    """
    name = str(dataset).strip().lower().replace("-", "_")
    if name not in MNIST_DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: use one of {', '.join(MNIST_DATASETS)}")
    check_split(split)
    debian = [
        Candidate(directory, partial(_find_in_dir, directory, name, split))
        for directory in (DEBIAN_FASHION_MNIST_DIRS if name == "fashion_mnist" else ())
    ]
    return find_or_download(
        f"{_PRETTY[name]} {split}",
        data_dir,
        candidates=partial(_candidates, name, split),
        how_to_provide=partial(_how_to_provide, name),
        download=partial(_download, name, split),
        download_allowed=download,
        fallbacks=debian,
    )
