"""`sample --walk K`: spherical interpolation through K points of `sample`'s noise, the same steps in every
row, written as a grid and an animated GIF; --by-code walks each code value's row."""

import numpy as np
import pytest
from PIL import Image

from common.walks import slerp, walk_latents
from dcgan_mnist.__main__ import cli
from tests.conftest import synthetic_mnist_dir

FAST = ["--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress", "--eval-every", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("walks") / "run"
    assert cli(["train", *FAST, "--out", str(out), "--max-steps", "3", "--info-codes", "4"]) == 0
    return out


def test_slerp_keeps_the_ends_and_follows_the_arc():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (3, 100)), rng.uniform(-1, 1, (3, 100))
    b *= (np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))[:, None]  # equal norms: the arc keeps them
    t = np.linspace(0, 1, 9)
    path = slerp(a, b, t)
    np.testing.assert_array_equal(path[:, 0], a)
    np.testing.assert_allclose(path[:, -1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=2), np.linalg.norm(a, axis=1)[:, None] * np.ones(9))
    chord = (1 - t)[None, :, None] * a[:, None] + t[None, :, None] * b[:, None]
    assert (np.linalg.norm(chord, axis=2)[:, 4] < np.linalg.norm(path, axis=2)[:, 4] - 0.5).all()
    same = slerp(a[:1], a[:1], t)  # no arc between a point and itself: it stays put
    np.testing.assert_allclose(same[0], np.repeat(a[:1], 9, axis=0))


def test_walk_latents_pass_through_every_point_with_the_same_steps():
    rng = np.random.default_rng(1)
    noise = rng.uniform(-1, 1, (2, 4, 5)).astype(np.float32)
    codes = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 4))]
    points = np.concatenate([noise, codes], axis=2)
    z = walk_latents(points, steps=5, noise_dim=5)
    assert z.shape == (2, 16, 8) and z.dtype == np.float32
    np.testing.assert_array_equal(z[:, ::5], points)
    np.testing.assert_allclose(z[:, 1:5, 5:].sum(axis=2), 1.0, rtol=1e-6)  # the code mixed linearly


def test_a_walk_writes_a_grid_and_a_gif_whose_keyframes_are_samples_images(run, tmp_path, capsys):
    out = tmp_path / "walk.png"
    argv = ["sample", "--run", str(run), "--walk", "3", "--walk-steps", "4", "--n", "2", "--seed", "5"]
    assert cli([*argv, "--out", str(out)]) == 0
    assert "2 walks of 9 frames through 3 points" in capsys.readouterr().out
    with Image.open(out.with_suffix(".gif")) as gif:
        assert gif.n_frames == 9 and gif.info["loop"] == 0
        gif.seek(8)
        last = np.asarray(gif.convert("L"))
    with Image.open(out) as grid:
        # 2 rows x 9 columns of 28-pixel images with 1-pixel gaps, 3x
        assert grid.size == ((9 * 29 + 1) * 3, (2 * 29 + 1) * 3)
        cells = np.asarray(grid.convert("L"))[::3, ::3]
    samples = tmp_path / "samples.npy"
    assert cli(["sample", "--run", str(run), "--n", "6", "--seed", "5", "--out", str(samples)]) == 0
    keyframes = np.load(samples)[..., 0].reshape(2, 3, 28, 28)  # row by row: each walk's 3 points
    for row in range(2):
        for k in range(3):
            column = 4 * k
            cell = cells[1 + row * 29 : 1 + row * 29 + 28, 1 + column * 29 : 1 + column * 29 + 28]
            np.testing.assert_array_equal(cell, keyframes[row, k])
    # the GIF's last frame: both walks' last point side by side (a square grid of 2)
    np.testing.assert_allclose(last[::3, ::3][1:29, 1:29], keyframes[0, 2], atol=4)  # a 256-colour palette


def test_walking_each_code_value(run, tmp_path, capsys):
    out = tmp_path / "codes.gif"
    assert (
        cli(["sample", "--run", str(run), "--walk", "2", "--walk-steps", "2", "--by-code", "--out", str(out)])
        == 0
    )
    assert "4 walks of 3 frames" in capsys.readouterr().out
    with Image.open(out.with_suffix(".png")) as grid:
        assert grid.size == ((3 * 29 + 1) * 3, (4 * 29 + 1) * 3)  # one row per code value


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--walk", "1"], "--walk must be at least 2"),
        (["--walk", "3", "--walk-steps", "0"], "--walk-steps must be at least 1"),
        (["--walk-steps", "3"], "--walk-steps needs --walk K"),
        (["--walk", "3", "--by-code", "--n", "2"], "leave out --n"),
        (["--walk", "600", "--walk-steps", "2"], "more than 1000"),
        (["--walk", "3", "--out-npy"], "must end in FILE.png or FILE.gif"),
        (["--walk", "3", "--seed", str(2**63)], "below 2^63"),
    ],
)
def test_bad_walks_exit_2_in_one_line(run, tmp_path, capsys, flags, message):
    out = tmp_path / ("walk.npy" if "--out-npy" in flags else "walk.png")
    flags = [f for f in flags if f != "--out-npy"]
    assert cli(["sample", "--run", str(run), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.iterdir())
