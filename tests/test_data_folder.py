"""`train --images DIR`: a folder of one's own images, on tiny folders the tests write (a truncated file, a
text file, a grey image for the RGB module, a huge image, a decompression bomb, symbolic-link loops), the
conversion, the cache, the refusals, --resume, and what the evaluator measures with and without classes."""

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import common.classifier as classifier_module
import common.data.folder as folder_module
from common.data.folder import convert_image, folder_split, load_image_folder, scan_folder
from common.evaluate import main as evaluate_main
from dcgan_cifar.__main__ import cli as cifar_cli
from dcgan_mnist.__main__ import cli as mnist_cli
from tests.conftest import history, synthetic_images

FAST = ["--batch-size", "16", "--no-progress", "--max-steps", "2", "--eval-every", "0"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """A cache of its own per test, and a short classifier plan for the folders' classes."""
    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(classifier_module, "FOLDER_STEPS", 60)


def save(path: Path, array: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return path


def squares(folder: Path, n: int = 20, size: int = 40, classes: tuple[str, ...] = (), seed: int = 0) -> Path:
    """n images of the synthetic digits (a bright square whose place is the label) as PNG and JPEG files,
    in class sub-folders 0..9 (by label) when `classes` names them, else all in the folder."""
    images, labels = synthetic_images(n, (size, size, 3), seed)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        where = folder / classes[label % len(classes)] if classes else folder
        save(where / f"{i:03d}.{'png' if i % 3 else 'jpg'}", image)
    return folder


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A tiny PNG whose header claims width x height pixels: more than Pillow's decompression-bomb limit."""
    small = save(path.with_suffix(".tmp.png"), np.zeros((2, 2), np.uint8)).read_bytes()
    path.with_suffix(".tmp.png").unlink()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    start = small.index(b"IHDR") - 4
    path.write_bytes(small[:start] + ihdr + small[start + 25 :])
    return path


def messy_folder(root: Path) -> Path:
    """Classes a and b, and in them: a truncated PNG, a text file, a text file named .jpg, a grey image,
    a huge JPEG, a decompression bomb, a link back to the folder itself and a loop of two file links."""
    folder = squares(root / "messy", n=30, classes=("a", "b"))
    (folder / "a" / "truncated.png").write_bytes((folder / "a" / "002.png").read_bytes()[:60])
    (folder / "a" / "notes.txt").write_text("not an image")
    (folder / "b" / "fake.jpg").write_text("not a JPEG either")
    save(folder / "b" / "grey.bmp", np.tile(np.arange(0, 250, 5, dtype=np.uint8), (50, 1)))
    huge = np.zeros((4000, 6000, 3), np.uint8)
    huge[:, 1000:5000] = 200  # the centred square (rows 0..4000, columns 1000..5000) is light
    save(folder / "b" / "huge.jpg", huge, quality=80)
    bomb_png(folder / "b" / "bomb.png")
    os.symlink("..", folder / "b" / "back_to_top")
    os.symlink("loop2.png", folder / "a" / "loop1.png")
    os.symlink("loop1.png", folder / "a" / "loop2.png")
    return folder


# ------------------------------------------------------------------------------------------- conversion
def test_conversion_to_each_modules_shape(tmp_path):
    rgb = np.zeros((30, 60, 3), np.uint8)
    rgb[:, 15:45] = (255, 0, 0)  # the centred 30x30 square is red; the bands left and right are black
    path = save(tmp_path / "wide.png", rgb)
    red = convert_image(path, (32, 32, 3))
    assert red.shape == (32, 32, 3) and red.dtype == np.uint8
    assert (red[..., 0] >= 250).all() and (red[..., 1:] <= 5).all()  # cropped to the centre: no black band
    grey = convert_image(path, (28, 28, 1))
    assert grey.shape == (28, 28, 1) and abs(int(grey.mean()) - 76) <= 1  # L = 0.299 R
    # a grey image given to the RGB module: three equal channels
    levels = save(tmp_path / "grey.png", np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1)))
    three = convert_image(levels, (32, 32, 3))
    assert (three[..., 0] == three[..., 1]).all() and (three[..., 1] == three[..., 2]).all()
    # palette GIF, RGBA PNG and 16-bit grey PNG
    save(tmp_path / "p.gif", np.full((10, 10), 7, np.uint8))
    assert convert_image(tmp_path / "p.gif", (28, 28, 1)).max() == 7
    assert convert_image(save(tmp_path / "a.png", np.full((8, 8, 4), 90, np.uint8)), (32, 32, 3)).max() == 90
    sixteen = tmp_path / "16.png"
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(sixteen)
    assert convert_image(sixteen, (28, 28, 1)).min() == 255  # scaled, not clipped


def test_downsizing_is_a_proper_resample(tmp_path):
    """One-pixel stripes shrunk 4x average to grey (a filtered resample), where picking pixels would
    keep black or white."""
    stripes = np.zeros((128, 128), np.uint8)
    stripes[:, ::2] = 255
    small = convert_image(save(tmp_path / "stripes.png", stripes), (32, 32, 1))
    error = np.abs(small.astype(int) - 128)
    assert error[:, 2:-2].max() <= 3 and error.max() <= 15  # Lanczos rings a little at the borders


# -------------------------------------------------------------------------------------- the messy folder
def test_a_messy_folder_trains_skipping_what_does_not_decode_in_one_line(tmp_path, capsys):
    folder = messy_folder(tmp_path)
    out = tmp_path / "run"
    assert cifar_cli(["train", "--images", str(folder), *FAST, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "skipped" in line]
    assert len(lines) == 1, err
    # truncated.png, fake.jpg, bomb.png, loop1.png, loop2.png; notes.txt ignored
    assert "skipped 5 of 37 image files" in lines[0] and "ignored 1 file that is not" in lines[0]
    assert "a/loop1.png (Too many levels of symbolic links)" in lines[0] and "and 2 more" in lines[0]
    assert "a/truncated.png (OSError: image file is truncated" in lines[0]
    assert "Traceback" not in err
    skipped = dict(json.loads((out / "config.json").read_text())["data"]["folder"]["skipped"])
    assert set(skipped) == {"a/loop1.png", "a/loop2.png", "a/truncated.png", "b/bomb.png", "b/fake.jpg"}
    assert "DecompressionBombError" in skipped["b/bomb.png"] and "cannot identify" in skipped["b/fake.jpg"]
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["images"] == str(folder) and record["config"]["dataset"] == "images_rgb32"
    assert record["config"]["class_label"] is None
    data = record["data"]["folder"]
    assert data["count"] == 32 == record["data"]["images"]  # 30 squares, the grey image, the huge JPEG
    assert data["classes"] == ["a", "b"] and data["folder"] == str(folder) and len(data["checksum"]) == 64
    images = load_image_folder(folder, (32, 32, 3), progress=False, quiet=True)
    assert images.record["checksum"] == data["checksum"]
    paths = [relative for relative, _ in scan_folder(folder).files if relative not in skipped]
    huge = images.images[paths.index("b/huge.jpg")]
    assert huge.min() >= 190  # the light centred square, decoded at a reduced scale and resampled
    grey = images.images[paths.index("b/grey.bmp")]
    assert (grey[..., 0] == grey[..., 2]).all()


def test_the_link_back_to_the_folder_is_walked_once(tmp_path):
    folder = messy_folder(tmp_path)
    scanned = scan_folder(folder)
    assert not any("back_to_top" in relative for relative, _ in scanned.files)
    assert len(scanned.files) == 35  # 30 squares, truncated, fake, grey, huge, bomb: all but the loops
    assert {relative for relative, _ in scanned.unreadable} == {"a/loop1.png", "a/loop2.png"}


# ------------------------------------------------------------------------------------------------ cache
def test_the_cache_spares_decoding_and_a_changed_folder_is_read_again(tmp_path, monkeypatch):
    folder = squares(tmp_path / "images", n=20)
    first = load_image_folder(folder, (28, 28, 1), progress=False)
    assert first.images.shape == (20, 28, 28, 1) and first.class_names == ("images",)
    calls = []
    original = folder_module.convert_image
    monkeypatch.setattr(folder_module, "convert_image", lambda *a: calls.append(a) or original(*a))
    again = load_image_folder(folder, (28, 28, 1), progress=False)
    assert calls == [] and np.array_equal(again.images, first.images)
    assert again.record["checksum"] == first.record["checksum"]
    # another shape is another cache
    assert load_image_folder(folder, (32, 32, 3), progress=False).images.shape == (20, 32, 32, 3)
    calls.clear()
    # one file's bytes change: the folder is decoded again, and its checksum is another
    target = folder / "001.png"
    save(target, np.full((40, 40, 3), 255, np.uint8))
    changed = load_image_folder(folder, (28, 28, 1), progress=False)
    assert len(calls) == 20 and changed.record["checksum"] != first.record["checksum"]


def test_a_second_run_and_resume_do_not_decode_and_a_changed_folder_is_refused(tmp_path, monkeypatch, capsys):
    folder = squares(tmp_path / "images", n=20)
    first, second = tmp_path / "first", tmp_path / "second"
    assert mnist_cli(["train", "--images", str(folder), *FAST, "--out", str(first)]) == 0
    record = json.loads((first / "config.json").read_text())
    assert record["config"]["dataset"] == "images_grey28"

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_module, "convert_image", no_decoding)
    assert mnist_cli(["train", "--images", str(folder), *FAST, "--out", str(second)]) == 0
    resume = ["train", "--resume", "--out", str(first), "--no-progress", "--max-steps", "3"]
    assert mnist_cli(resume) == 0
    monkeypatch.undo()
    save(folder / "new.png", np.zeros((40, 40, 3), np.uint8))
    capsys.readouterr()
    assert mnist_cli(resume[:-1] + ["4"]) == 2
    err = capsys.readouterr().err
    assert "are not those" in err and "learned 20" in err and "now 21 images" in err
    assert len(history(first)) and int(history(first)[-1]["step"]) == 3  # untouched


# -------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: squares(f, n=5), "holds 5 readable images, fewer than one batch of 16"),
        (
            lambda f: (f.mkdir(), (f / "readme.txt").write_text("x")),
            "holds no readable PNG, JPEG, BMP or GIF",
        ),
        (lambda f: (f.mkdir(), (f / "bad.png").write_text("x")), "1 image file found, 1 did not decode"),
        (lambda f: None, "is not a folder"),
    ],
    ids=["fewer than a batch", "no image", "none readable", "no folder"],
)
def test_too_few_images_exit_2_saying_how_many(tmp_path, capsys, make, message):
    folder = tmp_path / "images"
    make(folder)
    out = tmp_path / "run"
    assert cifar_cli(["train", "--images", str(folder), *FAST, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not out.exists()


@pytest.mark.parametrize(
    "cli, flags, message",
    [
        (mnist_cli, ["--dataset", "fashion_mnist"], "a run learns one of the two"),
        (cifar_cli, ["--class", "cat"], "an --images run learns its whole folder"),
        (mnist_cli, ["--images", ""], "--images is empty"),
    ],
)
def test_images_with_another_data_choice_is_refused(tmp_path, capsys, cli, flags, message):
    folder = squares(tmp_path / "images")
    out = tmp_path / "run"
    assert cli(["train", "--images", str(folder), *flags, *FAST, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------------------ evaluation
def test_class_folders_train_the_evaluators_classifier_with_a_held_out_share(tmp_path, capsys):
    folder = squares(tmp_path / "digits", n=60, classes=tuple("0123456789"))
    out = tmp_path / "run"
    flags = ["--batch-size", "16", "--no-progress", "--max-steps", "4", "--eval-every", "2"]
    assert (
        mnist_cli(["train", "--images", str(folder), *flags, "--eval-samples", "10", "--out", str(out)]) == 0
    )
    rows = history(out)
    assert rows[-1]["fid"] != "" and float(rows[-1]["fid"]) > 0
    assert (out / "checkpoints" / "best" / "best.json").exists()
    data = load_image_folder(folder, (28, 28, 1), progress=False, quiet=True)
    test, train = folder_split(data, "test"), folder_split(data, "train")
    assert len(test) == 10 and len(train) == 50  # a fifth of each class (6 images each) held out
    assert (np.bincount(test.labels, minlength=10) == 1).all()
    capsys.readouterr()
    assert evaluate_main(["--run", str(out), "--n", "10", "--no-progress"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["reference"].startswith("10 of the 10 real images_grey28 test images")
    assert "50 training images" in result["classifier"]["trained_on"]
    assert result["generated"]["fid"] > 0


def test_without_classes_training_says_what_is_not_measured_and_goes_on(tmp_path, capsys):
    folder = squares(tmp_path / "flat", n=40)
    out = tmp_path / "run"
    flags = ["--batch-size", "16", "--no-progress", "--max-steps", "4", "--eval-every", "2"]
    assert mnist_cli(["train", "--images", str(folder), *flags, "--out", str(out)]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("quality tracking")]
    assert len(lines) == 1
    assert (
        "no class sub-folders" in lines[0] and "FID, KID and the class statistics are not tracked" in lines[0]
    )
    assert "fid" not in history(out)[-1] and int(history(out)[-1]["step"]) == 4
    assert evaluate_main(["--run", str(out), "--n", "20", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("measured: the checkerboard share") and "not measured: FID, KID" in printed
    result = json.loads((out / "eval.json").read_text())
    assert set(result["generated"]) == {"checkerboard"} and "no class sub-folders" in result["not_measured"]


def test_a_folder_run_is_scored_against_the_data_set_its_images_came_from(tmp_path, capsys, monkeypatch):
    """The synthetic CIFAR-10 written out as PNG files, trained with --images, then scored against the
    official files' classifier and test images (--dataset cifar10 --class horse)."""
    from tests.conftest import synthetic_cifar_dir, synthetic_mnist_dir

    monkeypatch.setitem(classifier_module.DEFAULT_PLANS, "cifar10", classifier_module.TrainingPlan(epochs=1))
    source = classifier_module.load_split("cifar10", "train", synthetic_cifar_dir())
    folder = tmp_path / "pngs"
    for i, image in enumerate(source.images[:40]):
        save(folder / f"{i:05d}.png", image)
    out = tmp_path / "run"
    assert cifar_cli(["train", "--images", str(folder), *FAST, "--out", str(out)]) == 0
    data = load_image_folder(folder, (32, 32, 3), progress=False, quiet=True)
    assert np.array_equal(data.images, source.images[:40])  # 32x32 PNGs pass through unchanged
    argv = ["--run", str(out), "--dataset", "cifar10", "--class", "horse", "--n", "5", "--no-progress"]
    assert evaluate_main([*argv, "--data-dir", synthetic_cifar_dir()]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["dataset"] == "cifar10" and result["class_label"] == 7
    assert "scored against cifar10 test images of class horse" in result["scored_against"]
    mnist = ["--dataset", "mnist", "--data-dir", synthetic_mnist_dir()]
    assert evaluate_main(["--run", str(out), *mnist, "--n", "5", "--no-progress"]) == 2
    assert "score it against a data set of its own image shape" in capsys.readouterr().err
