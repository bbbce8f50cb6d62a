"""The loaded-data record (ImageSet), where data sets are looked for, and the search-or-download flow.

Search roots, in order: the caller's ``data_dir``, ``$DCGAN_DATA_DIR``, then the Keras cache
(``$KERAS_HOME/datasets`` when KERAS_HOME is set, else ``~/.keras/datasets``), which is also where
downloads go so that Keras and this project share one copy. A download happens only when the user named
no place (neither ``data_dir`` nor ``$DCGAN_DATA_DIR``): a wrong path must not turn into a download
elsewhere. Each loader says which folders under a root to look in and how to read them;
``find_or_download`` does the rest the same way for every data set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from common.data.errors import DataError

DATA_DIR_ENV = "DCGAN_DATA_DIR"
SPLITS = ("train", "test")


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarray fields with == is ambiguous
class ImageSet:
    """Images with their labels, ready for training.

    images: uint8 (N, H, W, C); labels: int64 (N,) indexing class_names; source: where the data came from;
    record: what config.json keeps about it beyond that (an image folder's count, checksum, skipped files).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    record: dict | None = None

    def __post_init__(self) -> None:
        # Loaders already validate their files; this guards against a loader bug handing on bad arrays.
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise DataError(f"{self.source}: images must be a uint8 array of shape (N, H, W, C)")
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != images.shape[:1]:
            raise DataError(
                f"{self.source}: labels must be an int64 array of shape ({images.shape[0]},), "
                f"got {getattr(labels, 'dtype', type(labels).__name__)} {getattr(labels, 'shape', '')}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise DataError(f"{self.source}: labels must lie in 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class SearchRoot:
    """One place to look for data. ``explicit`` roots were named by the caller for this very data set."""

    label: str
    path: Path
    explicit: bool = False


def keras_cache_dir() -> Path:
    """Keras's dataset cache: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets"


def search_roots(data_dir: str | os.PathLike | None) -> list[SearchRoot]:
    """The roots to search, in order. A ``data_dir`` or ``$DCGAN_DATA_DIR`` that is not a folder is an
    error, not a skip: a mistyped path would otherwise fall through to another copy, or a download."""
    roots: list[SearchRoot] = []
    if data_dir is not None and str(data_dir) != "":
        path = Path(data_dir).expanduser()
        if not is_dir(path):
            raise DataError(
                f"data_dir {path} is not a folder: check the path, or leave it out to search defaults"
            )
        roots.append(SearchRoot("data_dir", path, explicit=True))
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        path = Path(env_dir).expanduser()
        if not is_dir(path):
            raise DataError(
                f"${DATA_DIR_ENV} names {path}, which is not a folder: check it, or unset it to search the "
                "defaults"
            )
        roots.append(SearchRoot(f"${DATA_DIR_ENV}", path))
    roots.append(SearchRoot("Keras cache", keras_cache_dir()))
    return roots


def is_file(path: Path) -> bool:
    """Path.is_file that treats an unreadable location (e.g. permission denied) as absent."""
    try:
        return path.is_file()
    except OSError:
        return False


def is_dir(path: Path) -> bool:
    """Path.is_dir that treats an unreadable location (e.g. permission denied) as absent."""
    try:
        return path.is_dir()
    except OSError:
        return False


def check_split(split: str) -> str:
    """Validate a split name ("train" or "test")."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return split


def describe_searched(places: list[Path], notes: list[str] | None = None) -> str:
    """One-line list of the folders looked at, with notes on incomplete sets found on the way."""
    unique = list(dict.fromkeys(str(p) for p in places))
    text = "searched: " + (", ".join(unique) if unique else "nothing")
    if os.environ.get(DATA_DIR_ENV) is None:
        text += f" (${DATA_DIR_ENV} not set)"
    if notes:
        text += "; " + "; ".join(dict.fromkeys(notes))
    return text


@dataclass(frozen=True)
class Candidate:
    """A folder to look in and how: ``find(notes)`` loads the data set from ``folder``, or returns None
    (appending to ``notes`` why a partial set found there does not count)."""

    folder: Path
    find: Callable[[list[str]], ImageSet | None]


def find_or_download(
    label: str,
    data_dir: str | os.PathLike | None,
    candidates: Callable[[SearchRoot], Iterable[Candidate]],
    how_to_provide: Callable[[], str],
    download: Callable[[], Callable[[], ImageSet]],
    download_allowed: bool,
    fallbacks: Iterable[Candidate] = (),
) -> ImageSet:
    """The first data set found in ``candidates(root)`` for each of ``search_roots(data_dir)`` in turn, then
    in ``fallbacks``; else, if ``download_allowed``, the downloaded one. Raises DataError.

    ``label`` names what was looked for in the not-found message (e.g. "CIFAR-10 train").
    ``download()`` fetches the files and returns the function that reads them: a DataError from fetching
    gets the places searched and ``how_to_provide()`` appended, one from that returned function does not.
    """
    searched: list[Path] = []
    notes: list[str] = []
    # Lazy: a root's candidates are listed only once the roots before it have been searched.
    per_root = (candidate for root in search_roots(data_dir) for candidate in candidates(root))
    for candidate in chain(per_root, fallbacks):
        searched.append(candidate.folder)
        found = candidate.find(notes)
        if found is not None:
            return found
    where = describe_searched(searched, notes)
    if not download_allowed:
        raise DataError(f"{label} files not found ({where}); {how_to_provide()}, or allow downloading")
    given = {"--data-dir": data_dir, f"${DATA_DIR_ENV}": os.environ.get(DATA_DIR_ENV)}
    named = [flag for flag, place in given.items() if place not in (None, "")]
    if named:  # the user said where the data is: a download elsewhere would hide a wrong path
        raise DataError(
            f"{label} files not found ({where}); {how_to_provide()}; nothing is downloaded while "
            f"{' and '.join(named)} name where the data is (leave {' and '.join(named)} out to download)"
        )
    try:
        read = download()
    except DataError as err:
        raise DataError(f"{err} ({where}); {how_to_provide()}") from err
    return read()
