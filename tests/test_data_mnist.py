"""MNIST / Fashion-MNIST loading, validation, search order and the checksum-pinned downloader."""

from __future__ import annotations

import gzip
import hashlib
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from common.data import MNIST_DATASETS, DataError, ImageSet, load_mnist
from common.data import mnist as mnist_module
from common.data.download import RemoteFile, download_file, mirror_url
from tests.conftest import SHARED_DATA

DEBIAN_FASHION_DIRS = mnist_module.DEBIAN_FASHION_MNIST_DIRS
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@pytest.fixture(autouse=True)
def isolated(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Tests must not depend on whether this machine has the Debian package; the real-data test opts in.
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIRS", ())
    return isolated_home


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = 0x0800 + array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, mtime=0) if path.name.endswith(".gz") else payload)
    return path


def make_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def make_idx_set(directory: Path, n: int = 6, seed: int = 0, gz: bool = True, split: str = "train"):
    images, labels = make_arrays(n, seed)
    suffix = ".gz" if gz else ""
    write(directory / (STEMS[split][0] + suffix), idx_bytes(images))
    write(directory / (STEMS[split][1] + suffix), idx_bytes(labels))
    return images, labels


def make_npz(path: Path, n: int = 5, seed: int = 1, **override) -> tuple[np.ndarray, np.ndarray]:
    x_train, y_train = make_arrays(n, seed)
    x_test, y_test = make_arrays(3, seed + 1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **override}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return x_train, y_train


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- formats -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_set_loads_exactly(tmp_path: Path, gz: bool) -> None:
    images, labels = make_idx_set(tmp_path / "d", gz=gz)
    data = load_mnist("mnist", "train", tmp_path / "d", download=False)
    assert isinstance(data, ImageSet)
    assert data.images.dtype == np.uint8 and data.images.shape == (6, 28, 28, 1)
    assert data.labels.dtype == np.int64 and data.labels.shape == (6,)
    np.testing.assert_array_equal(data.images[..., 0], images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == tuple("0123456789") and len(data) == 6
    assert data.source == str((tmp_path / "d").resolve())
    data.images[0, 0, 0, 0] = 1  # writable, so callers may shuffle in place


def test_test_split_and_fashion_class_names(tmp_path: Path) -> None:
    images, _ = make_idx_set(tmp_path, split="test", n=4)
    data = load_mnist("fashion_mnist", "test", tmp_path, download=False)
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert load_mnist("Fashion-MNIST", "test", tmp_path, download=False).images.shape == (4, 28, 28, 1)
    assert MNIST_DATASETS == ("mnist", "fashion_mnist")


def test_keras_npz(tmp_path: Path) -> None:
    x_train, y_train = make_npz(tmp_path / "mnist.npz")
    data = load_mnist("mnist", "train", tmp_path, download=False)
    np.testing.assert_array_equal(data.images[..., 0], x_train)
    np.testing.assert_array_equal(data.labels, y_train)
    assert data.source == str((tmp_path / "mnist.npz").resolve())
    assert load_mnist("mnist", "test", tmp_path, download=False).images.shape == (3, 28, 28, 1)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"y_train": None}, "missing y_train"),
        ({"x_train": np.zeros((5, 28, 28), np.float32)}, "expected uint8"),
        ({"x_train": np.zeros((5, 32, 32), np.uint8)}, "expected uint8 (N, 28, 28)"),
        ({"y_train": np.zeros(4, np.uint8)}, "expected integers of shape (5,)"),
        ({"y_train": np.full(5, 10, np.uint8)}, "outside 0..9"),
    ],
)
def test_bad_npz(tmp_path: Path, override: dict, message: str) -> None:
    make_npz(tmp_path / "mnist.npz", **override)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mnist("mnist", "train", tmp_path, download=False)


def test_npz_garbage_and_truncated(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DataError, match="not a readable .npz archive"):
        load_mnist("mnist", "train", tmp_path, download=False)
    make_npz(tmp_path / "mnist.npz")
    whole = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="not a readable .npz archive"):
        load_mnist("mnist", "train", tmp_path, download=False)


# --- IDX validation ------------------------------------------------------------------------------------


def write_pair(directory: Path, images_payload: bytes, labels_payload: bytes) -> None:
    write(directory / "train-images-idx3-ubyte.gz", images_payload)
    write(directory / "train-labels-idx1-ubyte.gz", labels_payload)


@pytest.mark.parametrize(
    ("images_payload", "labels_payload", "message"),
    [
        (idx_bytes(np.zeros(4, np.uint8)), idx_bytes(np.zeros(4, np.uint8)), "magic number 2049"),
        (idx_bytes(np.zeros((4, 28, 28), np.uint8), magic=0x12345678), b"", "not an IDX file"),
        (idx_bytes(np.zeros((4, 28, 28), np.uint8), magic=0x0D03), b"", "element type 0x0d"),
        (
            idx_bytes(np.zeros((4, 32, 32), np.uint8)),
            idx_bytes(np.zeros(4, np.uint8)),
            "32x32, expected 28x28",
        ),
        (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-10], idx_bytes(np.zeros(4, np.uint8)), "truncated"),
        (
            idx_bytes(np.zeros((4, 28, 28), np.uint8)) + b"xx",
            idx_bytes(np.zeros(4, np.uint8)),
            "unexpected bytes",
        ),
        (
            idx_bytes(np.zeros((4, 28, 28), np.uint8))[:10],
            idx_bytes(np.zeros(4, np.uint8)),
            "truncated IDX header",
        ),
        (b"", idx_bytes(np.zeros(4, np.uint8)), "too short"),
        (
            idx_bytes(np.zeros((4, 28, 28), np.uint8)),
            idx_bytes(np.zeros(3, np.uint8)),
            "4 images but .* 3 labels",
        ),
        (idx_bytes(np.zeros((2, 28, 28), np.uint8)), idx_bytes(np.array([3, 10], np.uint8)), "label 10"),
        (idx_bytes(np.zeros((0, 28, 28), np.uint8)), idx_bytes(np.zeros(0, np.uint8)), "declares 0 images"),
    ],
)
def test_bad_idx(tmp_path: Path, images_payload: bytes, labels_payload: bytes, message: str) -> None:
    write_pair(tmp_path, images_payload, labels_payload)
    with pytest.raises(DataError, match=message) as caught:
        load_mnist("mnist", "train", tmp_path, download=False)
    assert "\n" not in str(caught.value)


def test_truncated_gzip(tmp_path: Path) -> None:
    make_idx_set(tmp_path, n=50)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        load_mnist("mnist", "train", tmp_path, download=False)


def test_corrupt_gzip(tmp_path: Path) -> None:
    make_idx_set(tmp_path, n=50)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[-6] ^= 0xFF  # inside the stored length/CRC: the data decompress but fail the check
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        load_mnist("mnist", "train", tmp_path, download=False)
    blob = bytearray(gzip.compress(idx_bytes(make_arrays(50, 0)[0])))
    blob[len(blob) // 2 : len(blob) // 2 + 40] = b"\xff" * 40  # scramble the deflate stream itself
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        load_mnist("mnist", "train", tmp_path, download=False)


def test_plain_file_named_gz(tmp_path: Path) -> None:
    make_idx_set(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte").rename(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        load_mnist("mnist", "train", tmp_path, download=False)


# --- names and search order ----------------------------------------------------------------------------


def test_bad_names(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*mnist, fashion_mnist"):
        load_mnist("cifar", "train", tmp_path)
    with pytest.raises(DataError, match="unknown split 'validation'.*train, test"):
        load_mnist("mnist", "validation", tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist("mnist", "train", tmp_path / "typo")


def test_subfolders_of_data_dir(tmp_path: Path) -> None:
    make_idx_set(tmp_path / "mnist", seed=1)
    make_idx_set(tmp_path / "fashion-mnist", seed=2)
    digits = load_mnist("mnist", "train", tmp_path, download=False)
    fashion = load_mnist("fashion_mnist", "train", tmp_path, download=False)
    assert digits.source.endswith("mnist") and fashion.source.endswith("fashion-mnist")
    assert not np.array_equal(digits.images, fashion.images)
    make_idx_set(tmp_path / "other" / "fashion_mnist", seed=3)
    assert load_mnist("fashion_mnist", "train", tmp_path / "other", download=False).source.endswith(
        "fashion_mnist"
    )


def test_search_order(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    make_idx_set(explicit / "mnist", seed=1)
    make_idx_set(env / "mnist", seed=2)
    make_idx_set(isolated / ".keras" / "datasets" / "mnist", seed=3)
    monkeypatch.setenv("DCGAN_DATA_DIR", str(env))
    assert load_mnist("mnist", data_dir=explicit, download=False).source == str(
        (explicit / "mnist").resolve()
    )
    assert load_mnist("mnist", download=False).source == str((env / "mnist").resolve())
    monkeypatch.delenv("DCGAN_DATA_DIR")
    keras = isolated / ".keras" / "datasets" / "mnist"
    assert load_mnist("mnist", download=False).source == str(keras.resolve())
    # A data_dir without a complete set falls through to the next place.
    (tmp_path / "empty").mkdir()
    assert load_mnist("mnist", data_dir=tmp_path / "empty", download=False).source == str(keras.resolve())


def test_keras_home_and_npz_at_cache_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    make_npz(tmp_path / "kh" / "datasets" / "mnist.npz")
    assert load_mnist("mnist", download=False).source == str(
        (tmp_path / "kh" / "datasets" / "mnist.npz").resolve()
    )


def test_env_dir_with_the_four_idx_files_is_read_as_mnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README: put the four MNIST IDX files in a folder and pass --data-dir FOLDER or set $DCGAN_DATA_DIR.
    images, _ = make_idx_set(tmp_path / "env")
    make_idx_set(tmp_path / "env", split="test")
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "env"))
    train = load_mnist("mnist", "train", download=False)
    np.testing.assert_array_equal(train.images[..., 0], images)
    assert train.source == str((tmp_path / "env").resolve())
    # For Fashion-MNIST the same files are ambiguous (the names are shared): not read, and said so.
    with pytest.raises(DataError, match="Fashion-MNIST train files not found") as error:
        load_mnist("fashion_mnist", download=False)
    assert "taken as MNIST's" in str(error.value) and "fashion_mnist" in str(error.value)


def test_not_found_message(tmp_path: Path, isolated: Path) -> None:
    make_idx_set(tmp_path / "mnist")
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as caught:
        load_mnist("mnist", "train", tmp_path, download=False)
    text = str(caught.value)
    assert "\n" not in text
    assert str(tmp_path / "mnist") in text and "lacks train-labels-idx1-ubyte" in text
    assert str(isolated / ".keras" / "datasets") in text and "mnist.npz" in text
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_mnist("fashion_mnist", "train", tmp_path, download=False)


def test_debian_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_set(tmp_path / "usr-share", split="test")
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIRS", (tmp_path / "usr-share",))
    assert load_mnist("fashion_mnist", "test", download=False).source == str(
        (tmp_path / "usr-share").resolve()
    )
    with pytest.raises(DataError):  # the Debian package is Fashion-MNIST only
        load_mnist("mnist", "test", download=False)


# --- download_file ---------------------------------------------------------------------------------------


def test_download_good_checksum(tmp_path: Path) -> None:
    source = tmp_path / "src" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(b"payload" * 1000)
    dest = tmp_path / "cache" / "sub" / "blob.bin"
    assert download_file(source.as_uri(), dest, sha256=sha256_of(source), progress=False) == dest
    assert dest.read_bytes() == source.read_bytes()
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    dest.write_bytes(b"old")  # a good download replaces an existing file
    download_file(source.as_uri(), dest, md5=md5, progress=False)
    assert dest.read_bytes() == source.read_bytes()
    assert leftovers(dest.parent) == ["blob.bin"]


def test_download_bad_checksum_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch.*nothing was saved"):
        download_file(source.as_uri(), cache / "blob.bin", sha256="0" * 64, progress=False)
    assert leftovers(cache) == []
    (cache / "blob.bin").write_bytes(b"previous")
    with pytest.raises(DataError, match="md5"):
        download_file(source.as_uri(), cache / "blob.bin", md5="0" * 32, progress=False)
    assert leftovers(cache) == ["blob.bin"] and (cache / "blob.bin").read_bytes() == b"previous"


def test_download_unreachable(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="could not download file://"):
        download_file(
            (tmp_path / "missing.bin").as_uri(), tmp_path / "c" / "x", sha256="0" * 64, progress=False
        )
    with socket.socket() as sock:  # a local port that is certainly closed: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError, match="could not download http://127.0.0.1"):
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "c" / "x", sha256="0" * 64, progress=False)
    assert leftovers(tmp_path / "c") == []
    with pytest.raises(ValueError, match="pinned"):
        download_file("file:///x", tmp_path / "x")


def test_mirror_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mirror_url("https://example.org/a/", "f.gz") == "https://example.org/a/f.gz"
    monkeypatch.setenv("DCGAN_MIRROR", "https://mirror.example/ds")
    assert mirror_url("https://example.org/a/", "f.gz") == "https://mirror.example/ds/f.gz"
    monkeypatch.setenv("DCGAN_MIRROR", str(tmp_path))
    assert mirror_url("https://example.org/a/", "f.gz") == (tmp_path / "f.gz").resolve().as_uri()


def test_every_remote_file_is_pinned() -> None:
    for remote in (mnist_module.MNIST_NPZ, *mnist_module.FASHION_MNIST_FILES):
        assert remote.sha256 and len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0


# --- download through the loader ------------------------------------------------------------------------


def test_fashion_download_from_mirror(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    make_idx_set(mirror, seed=5, split="train")
    images, _ = make_idx_set(mirror, seed=6, split="test")
    pinned = tuple(
        RemoteFile(p.name, sha256=sha256_of(p), md5=hashlib.md5(p.read_bytes()).hexdigest())
        for p in sorted(mirror.iterdir())
    )
    monkeypatch.setattr(mnist_module, "FASHION_MNIST_FILES", pinned)
    monkeypatch.setenv("DCGAN_MIRROR", mirror.as_uri())
    data = load_mnist("fashion_mnist", "test")
    cache = isolated / ".keras" / "datasets" / "fashion-mnist"
    assert data.source == str(cache.resolve()) and len(leftovers(cache)) == 4
    np.testing.assert_array_equal(data.images[..., 0], images)
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "gone").as_uri())  # now cached: no download needed
    assert len(load_mnist("fashion_mnist", "train")) == 6


def test_mnist_download_from_mirror(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x_train, _ = make_npz(tmp_path / "mirror" / "mnist.npz")
    pinned = RemoteFile("mnist.npz", sha256=sha256_of(tmp_path / "mirror" / "mnist.npz"))
    monkeypatch.setattr(mnist_module, "MNIST_NPZ", pinned)
    monkeypatch.setenv("DCGAN_MIRROR", str(tmp_path / "mirror"))
    data = load_mnist("mnist", "train")
    assert data.source == str((isolated / ".keras" / "datasets" / "mnist.npz").resolve())
    np.testing.assert_array_equal(data.images[..., 0], x_train)


def test_download_failure_names_searched_places(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "empty-mirror").as_uri())
    with pytest.raises(DataError) as caught:
        load_mnist("mnist", "train")
    text = str(caught.value)
    assert text.startswith("could not download") and "\n" not in text
    assert str(isolated / ".keras" / "datasets" / "mnist") in text
    assert f"put Keras's mnist.npz into {isolated / '.keras' / 'datasets'}" in text
    with pytest.raises(DataError, match="could not download.*apt-get install dataset-fashion-mnist"):
        load_mnist("fashion_mnist", "train")
    assert not (isolated / ".keras" / "datasets" / "mnist.npz").exists()


def test_a_named_folder_without_the_data_is_no_download(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --data-dir or $DCGAN_DATA_DIR says where the data is: a download into the Keras cache would hide a
    # wrong path (issue 35), so the places searched are named and nothing is downloaded.
    (tmp_path / "data").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "empty-mirror").as_uri())
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DataError) as caught:
        load_mnist("mnist", "train", tmp_path / "data")
    text = str(caught.value)
    assert text.startswith("MNIST train files not found") and "\n" not in text
    for place in (tmp_path / "data", tmp_path / "data" / "mnist", tmp_path / "env" / "mnist"):
        assert str(place) in text
    assert "nothing is downloaded while --data-dir and $DCGAN_DATA_DIR name where the data is" in text
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "nonexistent"))
    with pytest.raises(DataError, match="DCGAN_DATA_DIR names .*nonexistent, which is not a folder"):
        load_mnist("fashion_mnist", "train")
    assert not (isolated / ".keras").exists()


def test_mirror_with_wrong_files_is_rejected(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_npz(tmp_path / "mirror" / "mnist.npz")  # a valid npz, but not the pinned one
    monkeypatch.setenv("DCGAN_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_mnist("mnist", "train")
    assert leftovers(isolated / ".keras" / "datasets") == []


# --- real data ---------------------------------------------------------------------------------------------

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir(), reason=f"shared data folder {SHARED_DATA} is absent"
)


@needs_shared
def test_real_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    train = load_mnist("mnist", "train", SHARED_DATA, download=False)
    assert train.images.shape == (60000, 28, 28, 1)
    assert np.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(float(train.images.mean()) - 33.3184) < 1e-3
    test = load_mnist("mnist", "test", SHARED_DATA / "mnist", download=False)
    assert test.images.shape == (10000, 28, 28, 1)
    assert abs(float(test.images.mean()) - 33.7912) < 1e-3
    monkeypatch.setenv("DCGAN_DATA_DIR", str(SHARED_DATA))  # the env var finds the mnist/ subfolder
    assert load_mnist("mnist", "test", download=False).source == str((SHARED_DATA / "mnist").resolve())


@pytest.mark.skipif(
    not all((d / "train-images-idx3-ubyte.gz").is_file() for d in DEBIAN_FASHION_DIRS),
    reason="Debian package dataset-fashion-mnist not installed (.ci/run installs it)",
)
def test_real_fashion_mnist_from_debian(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIRS", DEBIAN_FASHION_DIRS)
    train = load_mnist("fashion_mnist", "train", download=False)
    assert train.images.shape == (60000, 28, 28, 1) and train.source == str(DEBIAN_FASHION_DIRS[0])
    assert np.bincount(train.labels).tolist() == [6000] * 10
    test = load_mnist("fashion_mnist", "test", download=False)
    assert test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(test.labels).tolist() == [1000] * 10
