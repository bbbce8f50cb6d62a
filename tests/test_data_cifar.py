"""CIFAR-10 loading: layouts, the restricted unpickler, archives, class filtering and downloads."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from common.data import CIFAR10_CLASSES, DataError, load_cifar10, resolve_cifar_class
from common.data import cifar as cifar_module
from common.data.download import RemoteFile
from tests.conftest import SHARED_DATA

BATCHES = "cifar-10-batches-py"
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


@pytest.fixture(autouse=True)
def isolated(isolated_home: Path) -> Path:
    return isolated_home


def batch_dict(labels: list[int], seed: int = 0, str_keys: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    batch = {
        b"batch_label": b"testing batch",
        b"labels": labels,
        b"data": data,
        b"filenames": [b"x.png"] * len(labels),
    }
    return {key.decode(): value for key, value in batch.items()} if str_keys else batch


def write_batches(folder: Path, per_batch: int = 4, names: list[str] | None = None) -> dict[str, dict]:
    """Official-style protocol-2 pickles; labels cycle through 0..9 so every batch mixes classes."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for index, name in enumerate(names or [*TRAIN, "test_batch"]):
        batch = batch_dict([(index + j) % 10 for j in range(per_batch)], seed=index)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = batch
    return written


def make_tar(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
    return path


def official_tar(path: Path, per_batch: int = 3) -> Path:
    batches = {
        n: batch_dict([(i + j) % 10 for j in range(per_batch)], i)
        for i, n in enumerate([*TRAIN, "test_batch"])
    }
    members = {f"{BATCHES}/{name}": pickle.dumps(batch, protocol=2) for name, batch in batches.items()}
    members[f"{BATCHES}/batches.meta"] = pickle.dumps(
        {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, 2
    )
    return make_tar(path, members)


# --- class names ---------------------------------------------------------------------------------------


def test_resolve_cifar_class() -> None:
    assert resolve_cifar_class("horse") == 7
    assert resolve_cifar_class(" Horse ") == 7
    assert resolve_cifar_class("7") == 7
    assert resolve_cifar_class(7) == 7
    assert resolve_cifar_class(np.int64(0)) == 0
    assert CIFAR10_CLASSES[resolve_cifar_class("truck")] == "truck"
    for bad in ("unicorn", "10", "-1", 10, -1, True, 7.0, "", "²"):
        with pytest.raises(DataError, match="airplane, automobile"):
            resolve_cifar_class(bad)


# --- layouts and conversion ----------------------------------------------------------------------------


def test_pixel_layout_is_rgb_planes_row_major(tmp_path: Path) -> None:
    folder = tmp_path / BATCHES
    write_batches(folder)
    row = np.zeros(3072, np.uint8)
    row[0:1024] = np.arange(1024) % 256  # red plane
    row[1024:2048] = 7  # green plane
    row[2048 + 32 * 2 + 5] = 200  # blue at y=2, x=5
    batch = {b"labels": [3], b"data": row[np.newaxis]}
    for name in TRAIN:
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    data = load_cifar10("train", folder, download=False)
    assert data.images.shape == (5, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.images.flags.c_contiguous
    image = data.images[0]
    assert image[1, 2, 0] == 34 and image[0, 31, 0] == 31  # red[y, x] = (32y + x) % 256
    assert (image[..., 1] == 7).all()
    assert image[2, 5, 2] == 200 and image[..., 2].sum() == 200
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [3] * 5
    assert data.class_names == CIFAR10_CLASSES


@pytest.mark.parametrize("layout", ["folder itself", "parent", "keras3 target", "str keys"])
def test_folder_layouts(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "root"
    folder = {
        "folder itself": root,
        "parent": root / BATCHES,
        "keras3 target": root / "cifar-10-batches-py-target" / BATCHES,
        "str keys": root / BATCHES,
    }[layout]
    written = write_batches(folder)
    if layout == "str keys":  # re-pickled under Python 3 with str keys: accepted too
        for name, batch in written.items():
            (folder / name).write_bytes(pickle.dumps({k.decode(): v for k, v in batch.items()}, protocol=2))
    train = load_cifar10("train", root, download=False)
    assert len(train) == 20 and train.source == str(folder.resolve())
    expected = (
        np.concatenate([written[n][b"data"] for n in TRAIN]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(train.images, expected)
    test = load_cifar10("test", root, download=False)
    np.testing.assert_array_equal(test.labels, written["test_batch"][b"labels"])


def test_archive_read_in_place(tmp_path: Path) -> None:
    official_tar(tmp_path / "cifar-10-python.tar.gz")
    data = load_cifar10("train", tmp_path, download=False)
    assert len(data) == 15 and data.source == str((tmp_path / "cifar-10-python.tar.gz").resolve())
    assert len(load_cifar10("test", tmp_path, download=False)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cifar-10-python.tar.gz",
        "home",
    ]  # nothing extracted


def test_class_filter(tmp_path: Path) -> None:
    write_batches(tmp_path, per_batch=10)
    horses = load_cifar10("train", tmp_path, download=False, label=7)
    assert len(horses) == 5 and set(horses.labels.tolist()) == {7}
    assert len(load_cifar10("test", tmp_path, download=False, label="horse")) == 1
    write_batches(tmp_path / "few", per_batch=2)  # labels 0..6 only
    with pytest.raises(DataError, match="no truck images"):
        load_cifar10("train", tmp_path / "few", download=False, label=9)
    with pytest.raises(DataError, match="unknown CIFAR-10 class"):
        load_cifar10("train", tmp_path, download=False, label="unicorn")


def python2_batch(labels: list[int], data: np.ndarray) -> bytes:
    """A batch pickled the way the official files are: Python 2 cPickle, protocol 2, byte strings,
    arrays rebuilt through numpy.core.multiarray._reconstruct (the pre-numpy-2 module name)."""

    def short(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text

    def small(value: int) -> bytes:
        return b"K" + bytes([value])

    out = b"\x80\x02}(" + short(b"labels") + b"](" + b"".join(small(x) for x in labels) + b"e"
    out += short(b"data") + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
    out += small(0) + b"\x85" + short(b"b") + b"\x87R"
    out += b"(" + small(1) + b"M" + struct.pack("<H", len(labels)) + b"M" + struct.pack("<H", 3072) + b"\x86"
    out += b"cnumpy\ndtype\n" + short(b"u1") + small(0) + small(1) + b"\x87R"
    out += b"(" + small(3) + short(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff" + small(0) + b"tb"
    out += b"\x89T" + struct.pack("<I", data.nbytes) + data.tobytes() + b"tbu."
    return out


def test_official_python2_pickle_format(tmp_path: Path) -> None:
    write_batches(tmp_path)
    data = np.random.default_rng(3).integers(0, 256, (2, 3072), dtype=np.uint8)
    (tmp_path / "test_batch").write_bytes(python2_batch([3, 4], data))
    test = load_cifar10("test", tmp_path, download=False)
    np.testing.assert_array_equal(test.images, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert test.labels.tolist() == [3, 4]


# --- the restricted unpickler ----------------------------------------------------------------------------


class SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class WriteFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("attack", [SystemCall, WriteFile])
@pytest.mark.parametrize("nested", [False, True])
def test_malicious_pickle_never_runs(tmp_path: Path, attack: type, nested: bool) -> None:
    marker = tmp_path / "marker"
    write_batches(tmp_path / "d")
    payload = attack(marker)
    if nested:  # hidden inside an otherwise valid batch
        payload = {**batch_dict([1, 2]), b"filenames": [payload]}
    (tmp_path / "d" / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match="unsafe or foreign pickle.*refused global") as caught:
        load_cifar10("train", tmp_path / "d", download=False)
    assert "data_batch_3" in str(caught.value)
    assert not marker.exists()


def test_codecs_only_for_latin1(tmp_path: Path) -> None:
    write_batches(tmp_path)
    # A hand-written protocol-2 pickle calling _codecs.encode with another codec: refused.
    evil = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcX\x06\x00\x00\x00base64\x86R."
    (tmp_path / "test_batch").write_bytes(evil)
    with pytest.raises(DataError, match="unsafe or foreign pickle.*latin-1"):
        load_cifar10("test", tmp_path, download=False)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x01garbage that is no pickle", "not a readable CIFAR-10 python batch"),
        (pickle.dumps(batch_dict([1, 2]), protocol=2)[:500], "not a readable CIFAR-10 python batch"),
        (b"", "not a readable CIFAR-10 python batch"),
        (pickle.dumps([1, 2, 3], protocol=2), "holds a list"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2), "expected 'data' and 'labels'"),
        (pickle.dumps({b"fine_labels": [1], b"data": 1}, protocol=2), "is this CIFAR-10"),
        (pickle.dumps({b"labels": [1, 2], b"data": np.zeros((2, 3072), np.float32)}, 2), "expected uint8"),
        (pickle.dumps({b"labels": [1, 2], b"data": np.zeros((2, 1024), np.uint8)}, 2), r"\(N, 3072\)"),
        (pickle.dumps({b"labels": [1, 2], b"data": b"raw"}, protocol=2), "'data' is bytes"),
        (pickle.dumps({b"labels": [1], b"data": np.zeros((2, 3072), np.uint8)}, 2), "2 images but 1 labels"),
        (pickle.dumps({b"labels": [1, 10], b"data": np.zeros((2, 3072), np.uint8)}, 2), "outside 0..9"),
        (
            pickle.dumps({b"labels": [b"a", b"b"], b"data": np.zeros((2, 3072), np.uint8)}, 2),
            "list of integers",
        ),
        (pickle.dumps({b"labels": [[1], [2, 3]], b"data": np.zeros((2, 3072), np.uint8)}, 2), "integers"),
    ],
)
def test_bad_batches(tmp_path: Path, payload: bytes, message: str) -> None:
    write_batches(tmp_path)
    (tmp_path / "test_batch").write_bytes(payload)
    with pytest.raises(DataError, match=message) as caught:
        load_cifar10("test", tmp_path, download=False)
    assert "\n" not in str(caught.value)


def test_newer_pickle_protocol_is_refused_clearly(tmp_path: Path) -> None:
    # Protocol 5 rebuilds arrays through numpy's _frombuffer, which is not on the allow-list.
    write_batches(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch_dict([1]), protocol=5))
    with pytest.raises(DataError, match="refused global numpy"):
        load_cifar10("test", tmp_path, download=False)


# --- archives ---------------------------------------------------------------------------------------------


def good_members() -> dict[str, bytes]:
    return {f"{BATCHES}/{name}": pickle.dumps(batch_dict([1, 2], i), 2) for i, name in enumerate(TRAIN)}


@pytest.mark.parametrize(
    ("members", "symlink", "message"),
    [
        ({**good_members(), "../escape": b"x"}, None, "unsafe member path '../escape'"),
        ({**good_members(), "/etc/cron.d/x": b"x"}, None, "unsafe member path '/etc/cron.d/x'"),
        ({k: v for k, v in good_members().items() if not k.endswith("_5")}, None, "lacks .*data_batch_5"),
        (
            {k: v for k, v in good_members().items() if not k.endswith("_5")},
            f"{BATCHES}/data_batch_5",
            "not a plain",
        ),
    ],
)
def test_bad_archives(tmp_path: Path, members: dict, symlink: str | None, message: str) -> None:
    make_tar(tmp_path / "cifar-10-python.tar.gz", members, symlink)
    with pytest.raises(DataError, match=message):
        load_cifar10("train", tmp_path, download=False)


def test_truncated_and_garbage_archive(tmp_path: Path) -> None:
    path = official_tar(tmp_path / "cifar-10-python.tar.gz", per_batch=50)
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        load_cifar10("train", tmp_path, download=False)
    path.write_bytes(b"not a tar archive" * 100)
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        load_cifar10("train", tmp_path, download=False)


def test_evil_pickle_inside_archive(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    members = good_members()
    members[f"{BATCHES}/data_batch_2"] = pickle.dumps(SystemCall(marker), protocol=2)
    make_tar(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match="unsafe or foreign pickle"):
        load_cifar10("train", tmp_path, download=False)
    assert not marker.exists()


# --- search order and downloads --------------------------------------------------------------------------


def test_search_order(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_batches(tmp_path / "explicit" / BATCHES)
    write_batches(tmp_path / "env" / "cifar10" / BATCHES)
    official_tar(isolated / ".keras" / "datasets" / "cifar-10-python.tar.gz")
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "env"))
    assert load_cifar10("test", tmp_path / "explicit", download=False).source.startswith(
        str(tmp_path / "explicit")
    )
    assert load_cifar10("test", download=False).source == str(
        (tmp_path / "env" / "cifar10" / BATCHES).resolve()
    )
    monkeypatch.delenv("DCGAN_DATA_DIR")
    assert load_cifar10("test", download=False).source.endswith("cifar-10-python.tar.gz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    write_batches(tmp_path / "kh" / "datasets" / BATCHES)
    assert load_cifar10("test", download=False).source == str(
        (tmp_path / "kh" / "datasets" / BATCHES).resolve()
    )


def test_not_found_lists_places_and_gaps(tmp_path: Path, isolated: Path) -> None:
    write_batches(tmp_path / BATCHES, names=TRAIN[:4])
    with pytest.raises(DataError) as caught:
        load_cifar10("train", tmp_path, download=False)
    text = str(caught.value)
    assert "\n" not in text and "CIFAR-10 train files not found" in text
    assert f"{tmp_path / BATCHES} lacks data_batch_5" in text
    assert str(isolated / ".keras" / "datasets") in text and "cifar-10-python.tar.gz" in text
    with pytest.raises(DataError, match="unknown split"):
        load_cifar10("valid", tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        load_cifar10("train", tmp_path / "nope")


def test_download_from_mirror(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = official_tar(tmp_path / "mirror" / "cifar-10-python.tar.gz")
    blob = archive.read_bytes()
    pinned = RemoteFile(
        archive.name, sha256=hashlib.sha256(blob).hexdigest(), md5=hashlib.md5(blob).hexdigest()
    )
    monkeypatch.setattr(cifar_module, "CIFAR10_ARCHIVE", pinned)
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "mirror").as_uri())
    data = load_cifar10("train", label=3)
    cached = isolated / ".keras" / "datasets" / "cifar-10-python.tar.gz"
    assert cached.read_bytes() == blob and data.source == str(cached.resolve())
    assert set(data.labels.tolist()) == {3}
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "gone").as_uri())  # cached now
    assert len(load_cifar10("test")) == 3


def test_download_failures(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCGAN_MIRROR", (tmp_path / "empty").as_uri())
    with pytest.raises(DataError) as caught:
        load_cifar10("train")
    text = str(caught.value)
    assert text.startswith("could not download") and "\n" not in text
    assert str(isolated / ".keras" / "datasets") in text and "cifar-10-batches-py folder" in text
    official_tar(tmp_path / "mirror" / "cifar-10-python.tar.gz")  # not the pinned archive
    monkeypatch.setenv("DCGAN_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_cifar10("train")
    assert list((isolated / ".keras" / "datasets").iterdir()) == []


def test_archive_is_pinned() -> None:
    assert (
        cifar_module.CIFAR10_ARCHIVE.sha256
        == "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    )
    assert cifar_module.CIFAR10_ARCHIVE.md5 == "c58f30108f718f92721af3b95e74349a"


# --- real data ----------------------------------------------------------------------------------------------

HORSES = SHARED_DATA / "cifar10-horse"


@pytest.mark.skipif(not HORSES.is_dir(), reason=f"shared data folder {HORSES} is absent")
def test_real_cifar_horses() -> None:
    train = load_cifar10("train", HORSES, download=False)
    assert train.images.shape == (5000, 32, 32, 3) and set(train.labels.tolist()) == {7}
    assert abs(float(train.images.mean()) - 118.87) < 5e-3
    assert train.source == str((HORSES / BATCHES).resolve())
    test = load_cifar10("test", HORSES / BATCHES, download=False)
    assert np.bincount(test.labels).tolist() == [100] * 7 + [1000] + [100] * 2
    horses = load_cifar10("test", HORSES, download=False, label=resolve_cifar_class("horse"))
    assert horses.images.shape == (1000, 32, 32, 3) and set(horses.labels.tolist()) == {7}
    np.testing.assert_array_equal(horses.images, test.images[test.labels == 7])
