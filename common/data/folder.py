"""A folder of one's own images as a data set (`train --images DIR`): PNG, JPEG, BMP and GIF files, read
recursively, converted once to the module's image shape and cached.

Conversion (Pillow): the first frame; EXIF orientation applied; to grey ("L", ITU-R 601-2 luma) or RGB
(alpha dropped; a grey image given to an RGB module gets three equal channels; 16-bit grey scaled to 8
bits); the centred square of the short side cropped; resampled to the target size with a Lanczos filter
(JPEGs first decoded at a reduced scale by libjpeg where they are far larger than needed). A file that
does not decode (truncated, corrupt, not an image, a symlink loop, larger than Pillow's decompression-bomb
limit) is skipped and counted; files of other extensions and hidden files are ignored.

Classes: when every image lies in a first-level sub-folder and there are at least two such folders,
each is a class (named after the folder, sorted); images in deeper folders belong to their first-level
folder. Otherwise the images are one unlabelled set. The evaluator trains its classifier on the classes,
holding out a share of each as the real reference (split below).

Cache: the converted uint8 array, keyed by a hash of every file's relative path and bytes, the target
shape and CONVERSION_VERSION, under $DCGAN_CACHE_DIR/images/KEY/ (else $XDG_CACHE_HOME/dcgan-tf1, else
~/.cache/dcgan-tf1): a second run, --resume and the evaluator read the cache; a folder whose contents
changed has another key and is decoded again. The cache's checksum (sha256 of the images and labels)
goes into config.json; --resume compares it.

numpy, Pillow, tqdm and the standard library only: no TensorFlow here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from common.data.errors import DataError, one_line
from common.data.locate import ImageSet

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
KINDS = "PNG, JPEG, BMP or GIF"
# The data set name of a folder run, by image shape: one per dataset module, so that a run's data set
# still names its module (common.modules.module_for_dataset).
FOLDER_DATASETS = {"images_grey28": (28, 28, 1), "images_rgb32": (32, 32, 3)}
# Part of the cache key: bump when the conversion changes.
CONVERSION_VERSION = 1
CACHE_ENV = "DCGAN_CACHE_DIR"
IMAGES_FILE, RECORD_FILE = "images.npz", "images.json"
HELD_OUT_SHARE = 0.2  # of each class: the evaluator's real reference, never learned by its classifier
MAX_EVAL_CLASSES = 10  # the evaluator's classifier tells this many classes apart (common.metrics)
READ_CHUNK = 1 << 20


def folder_dataset(image_shape: tuple[int, ...]) -> str:
    """The data set name of a folder run whose images have this shape."""
    for name, shape in FOLDER_DATASETS.items():
        if tuple(shape) == tuple(image_shape):
            return name
    raise DataError(f"no image-folder data set for images of shape {tuple(image_shape)}")


def is_folder_dataset(name: str | None) -> bool:
    return name in FOLDER_DATASETS


def cache_root() -> Path:
    """$DCGAN_CACHE_DIR, else $XDG_CACHE_HOME/dcgan-tf1, else ~/.cache/dcgan-tf1."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "dcgan-tf1"


# ---------------------------------------------------------------------------------------------- scan
@dataclass
class Scan:
    """The image files under a folder, sorted by relative path, and what was passed over."""

    folder: Path
    files: list[tuple[str, Path]] = field(default_factory=list)  # (relative posix path, path)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)
    ignored: int = 0  # files of other extensions


def scan_folder(folder: Path) -> Scan:
    """Every PNG/JPEG/BMP/GIF file under `folder`, following symbolic links (each folder once: a link
    back to a folder already seen, a loop, is not followed again); hidden names are passed over."""
    found = Scan(folder)
    seen: set[tuple[int, int]] = set()
    pending = [Path()]
    while pending:
        relative = pending.pop()
        directory = folder / relative
        try:
            info = directory.stat()
        except OSError as err:
            found.unreadable.append((relative.as_posix(), one_line(err, err.strerror)))
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as err:
            found.unreadable.append((relative.as_posix() + "/", one_line(err, err.strerror)))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = relative / entry.name
            try:
                mode = os.stat(entry.path).st_mode  # follows links: a loop or a dangling link raises
            except OSError as err:
                if entry.name.lower().endswith(IMAGE_EXTENSIONS) or entry.is_symlink():
                    found.unreadable.append((path.as_posix(), one_line(err, err.strerror)))
                continue
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif stat.S_ISREG(mode) and entry.name.lower().endswith(IMAGE_EXTENSIONS):
                found.files.append((path.as_posix(), folder / path))
            else:
                found.ignored += 1
    found.files.sort()
    return found


def content_key(scan: Scan, image_shape: tuple[int, int, int]) -> str:
    """sha256 of every image file's relative path and bytes, the target shape and the conversion
    version: the cache's key, which changes with any change to the folder's images."""
    digest = hashlib.sha256(f"v{CONVERSION_VERSION} {tuple(image_shape)}".encode())
    readable = []
    for relative, path in scan.files:
        try:
            with open(path, "rb") as f:
                file_digest = hashlib.sha256()
                while chunk := f.read(READ_CHUNK):
                    file_digest.update(chunk)
        except OSError as err:
            scan.unreadable.append((relative, one_line(err, err.strerror)))
            continue
        readable.append((relative, path))
        digest.update(f"{relative}\0{file_digest.hexdigest()}\0".encode())
    scan.files = readable
    return digest.hexdigest()[:32]


# ------------------------------------------------------------------------------------------- convert
def convert_image(path: Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One file as uint8 [H, W, C] of `image_shape` (see the module docstring); raises on a bad file."""
    from PIL import Image, ImageOps

    size, channels = image_shape[0], image_shape[2]
    mode = "L" if channels == 1 else "RGB"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # past 2x the limit it raises
        with Image.open(path) as image:
            short = min(image.size)
            if image.format == "JPEG" and short > 4 * size:
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale, keeping the short side at least 4x the target
                scale = 4 * size / short
                image.draft(mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I;16") or image.mode in ("I", "F"):
                # 16-bit (or wider) grey: scale to 8 bits, where Pillow's convert would clip at 255
                values = np.asarray(image, dtype=np.float64)
                top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
                image = Image.fromarray(np.clip(np.rint(values * 255.0 / top), 0, 255).astype(np.uint8))
            image = image.convert(mode)
            short = min(image.size)
            left, top = (image.width - short) // 2, (image.height - short) // 2
            # crop first: a box given to resize lets the filter reach past the square into what is cut off
            image = image.crop((left, top, left + short, top + short))
            image = image.resize((size, size), Image.LANCZOS, reducing_gap=3.0)
            array = np.asarray(image, dtype=np.uint8)
    return array.reshape(size, size, channels)


def decode_folder(
    scan: Scan, image_shape: tuple[int, int, int], progress: bool
) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """Every scanned file converted: (uint8 [N, H, W, C], their relative paths, the files skipped and why)."""
    images, kept, skipped = [], [], []
    bar = tqdm(
        scan.files,
        desc=f"decoding {scan.folder}",
        unit="image",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for relative, path in bar:
        try:
            images.append(convert_image(path, image_shape))
            kept.append(relative)
        except Exception as err:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, ...)
            skipped.append((relative, f"{type(err).__name__}: {one_line(err)}"[:160]))
    array = np.stack(images) if images else np.zeros((0, *image_shape), np.uint8)
    return array, kept, skipped


def class_labels(paths: list[str], folder: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels from first-level sub-folders when every image is in one and there are two or more;
    otherwise all 0, one class named after the folder."""
    tops = [p.split("/", 1)[0] if "/" in p else None for p in paths]
    names = sorted({t for t in tops if t is not None})
    if paths and None not in tops and len(names) >= 2:
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[t] for t in tops], np.int64), tuple(names)
    return np.zeros(len(paths), np.int64), (folder.resolve().name or "images",)


def checksum(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in (images, labels):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------- load
def load_image_folder(
    folder: str | os.PathLike, image_shape: tuple[int, int, int], progress: bool = True, quiet: bool = False
) -> ImageSet:
    """The images under `folder` as an ImageSet of `image_shape`, from the cache when the folder's
    contents are unchanged; decoded (one progress bar) and cached otherwise. Its `record` says what
    config.json keeps: folder, count, checksum, classes, skipped files. One line on stderr (unless
    `quiet`) counts the files that did not decode. DataError when the folder holds no readable image."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"--images {folder} is not a folder")
    image_shape = tuple(int(d) for d in image_shape)
    scan = scan_folder(folder)
    key = content_key(scan, image_shape)
    cache = cache_root() / "images" / key
    record = read_cache_record(cache)
    if record is None:
        images, kept, skipped = decode_folder(scan, image_shape, progress)
        labels, classes = class_labels(kept, folder)
        record = {
            "key": key,
            "image_shape": list(image_shape),
            "count": len(images),
            "classes": list(classes),
            "labelled": len(classes) > 1,
            "class_counts": np.bincount(labels, minlength=len(classes)).tolist(),
            "skipped": sorted([list(s) for s in [*scan.unreadable, *skipped]]),
            "ignored": scan.ignored,
            "checksum": checksum(images, labels),
        }
        write_cache(cache, images, labels, record)
    else:
        with np.load(cache / IMAGES_FILE) as saved:
            images, labels = saved["images"], saved["labels"]
        if checksum(images, labels) != record["checksum"]:  # a damaged cache: decode again
            shutil.rmtree(cache, ignore_errors=True)
            return load_image_folder(folder, image_shape, progress, quiet)
    if not quiet:
        line = skipped_line(folder, record, len(scan.files) + len(scan.unreadable))
        if line:
            print(line, file=sys.stderr)
    if len(images) == 0:
        found = len(scan.files) + len(scan.unreadable)
        raise DataError(
            f"--images {folder} holds no readable {KINDS} image (searched its sub-folders too; "
            f"{found} image file{'s' if found != 1 else ''} found, {len(record['skipped'])} did not decode)"
        )
    record = {"folder": str(folder.resolve()), **record, "cache": str(cache)}
    return ImageSet(images, labels, tuple(record["classes"]), f"image folder {folder.resolve()}", record)


def read_cache_record(cache: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((cache / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and (cache / IMAGES_FILE).is_file() else None


def write_cache(cache: Path, images: np.ndarray, labels: np.ndarray, record: dict[str, Any]) -> None:
    """The cache folder, written under a temporary name and renamed into place (a crash leaves none;
    two processes both end with a whole one). An unwritable cache only costs decoding next time."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".decoding-", dir=cache.parent))
    except OSError as err:
        print(f"warning: cannot cache the decoded images in {cache.parent}: {err.strerror}", file=sys.stderr)
        return
    try:
        np.savez(scratch / IMAGES_FILE, images=images, labels=labels)
        (scratch / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        os.rename(scratch, cache)
    except OSError as err:
        if not (cache / RECORD_FILE).exists():  # not another process that finished first
            print(f"warning: cannot cache the decoded images in {cache}: {err.strerror}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def skipped_line(folder: Path, record: dict[str, Any], found: int) -> str:
    """One line: how many image files were skipped (with the first few and why), and files ignored."""
    parts = []
    skipped = record["skipped"]
    if skipped:
        named = "; ".join(f"{path} ({why})" for path, why in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        parts.append(
            f"skipped {len(skipped)} of {found} image files that do not decode or cannot be read: "
            f"{named}{more}"
        )
    if record["ignored"]:
        ignored = record["ignored"]
        parts.append(
            f"ignored {ignored} file{'s that are' if ignored != 1 else ' that is'} not {KINDS} images"
        )
    return f"--images {folder}: " + "; ".join(parts) if parts else ""


# -------------------------------------------------------------------------------------- evaluation
def evaluation_problem(data: ImageSet) -> str | None:
    """Why the evaluator cannot have a classifier for a folder's images (None: it can)."""
    record = data.record or {}
    folder = record.get("folder", data.source)
    if not record.get("labelled"):
        return (
            f"{folder} has no class sub-folders (two or more, holding every image) to train a classifier on"
        )
    if len(data.class_names) > MAX_EVAL_CLASSES:
        return (
            f"{folder} has {len(data.class_names)} class sub-folders; the evaluator's classifier tells at "
            f"most {MAX_EVAL_CLASSES} apart"
        )
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    if counts.min() < 2:
        small = data.class_names[int(np.argmin(counts))]
        return f"class {small!r} of {folder} has {counts.min()} image: a class needs two, one to hold out"
    return None


def folder_split(data: ImageSet, split: str, seed: int = 0) -> ImageSet:
    """The evaluator's split of a labelled folder: "test" holds HELD_OUT_SHARE of each class (at least
    one image), "train" the rest; both in the folder's order."""
    rng = np.random.default_rng([seed, 1])
    held = []
    for label in range(len(data.class_names)):
        members = np.flatnonzero(data.labels == label)
        count = max(1, round(HELD_OUT_SHARE * len(members))) if len(members) > 1 else 0
        held.append(rng.permutation(members)[:count])
    test = np.zeros(len(data.labels), bool)
    test[np.concatenate(held).astype(np.int64)] = True
    keep = test if split == "test" else ~test
    return ImageSet(data.images[keep], data.labels[keep], data.class_names, f"{data.source} ({split} share)")
