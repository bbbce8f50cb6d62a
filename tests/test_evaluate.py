"""The evaluator: FID and KID against their closed forms, the ordering on real data, eval.json, the CLI
and `train --eval-every`. The mechanisms run on conftest's synthetic MNIST and horse-only CIFAR files,
so a fresh clone runs them; only the ordering of real, blurred and noise images needs real MNIST."""

import csv
import json
import shutil

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from common import classifier as classifier_module
from common import run_evaluation
from common.classifier import TrainingPlan, load_classifier
from common.data import DataError, load_mnist
from common.evaluate import main
from common.metrics import (
    checkerboard,
    checkerboard_shares,
    class_statistics,
    fid,
    frechet_distance,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
)
from common.run_evaluation import (
    EVAL_FILE,
    evaluate_run,
    floor_sets,
    image_features,
    noise_images,
    uninformative_statistics,
)
from common.rundir import HISTORY_COLUMNS, RunDir
from dcgan_cifar.__main__ import cli as cifar_cli
from dcgan_mnist.__main__ import cli
from tests.conftest import (
    SHARED_DATA,
    SYNTHETIC_HORSES,
    SYNTHETIC_TEST,
    SYNTHETIC_TRAIN,
    needs_shared_data,
    synthetic_classifier_plan,
    synthetic_horse_dir,
    synthetic_mnist_dir,
)

REAL_MNIST_DIR = str(SHARED_DATA / "mnist")
MNIST_DIR = synthetic_mnist_dir()
CIFAR_DIR = synthetic_horse_dir()
QUICK = TrainingPlan(epochs=1, limit=6000)  # for real MNIST
SECTION_KEYS = {
    "fid",
    "kid",
    "kid_stderr",
    "class_histogram",
    "class_entropy",
    "confident_share",
    "target_class_share",
    "checkerboard",
}


def random_covariance(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------------------------------- closed forms
def test_fid_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mean, cov = rng.standard_normal(16), random_covariance(rng, 16)
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_shifted_gaussians_is_the_squared_shift():
    rng = np.random.default_rng(1)
    mean, cov, shift = rng.standard_normal(16), random_covariance(rng, 16), rng.standard_normal(16)
    assert frechet_distance(mean, cov, mean + shift, cov) == pytest.approx(shift @ shift, rel=1e-8)


def test_fid_of_diagonal_gaussians():
    # Commuting covariances: Tr(A + B - 2 sqrt(AB)) = sum (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected)


def test_fid_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    shift = np.array([3.0, 0.0, -4.0, 0.0])  # squared norm 25
    a = rng.standard_normal((20000, 4))
    b = rng.standard_normal((20000, 4)) + shift
    assert fid(a, b) == pytest.approx(25.0, abs=0.3)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_singular_covariances_is_finite():
    # A feature that never fires (a dead ReLU) makes both covariances singular.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((50, 5)), rng.standard_normal((50, 5)) + 1.0
    a[:, 0] = b[:, 0] = 0.0
    value = fid(a, b)
    assert np.isfinite(value) and value > 0


def direct_mmd2_unbiased(x, y):
    """The U-statistic written pair by pair, straight from its definition."""
    d = x.shape[1]

    def k(u, v):
        return (float(u @ v) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_the_pairwise_definition():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((7, 3)) + 0.5
    assert mmd2_unbiased(x, y) == pytest.approx(direct_mmd2_unbiased(x, y), rel=1e-10)
    assert polynomial_kernel(x, y).shape == (6, 7)


def test_kid_is_unbiased():
    # Two samples of one distribution: the unbiased estimate averages to 0 over many draws, while the
    # biased one (diagonal kept) is clearly positive: the test tells them apart.
    rng = np.random.default_rng(5)
    kids, biased = [], []
    for _ in range(200):
        x, y = rng.standard_normal((40, 4)), rng.standard_normal((40, 4))
        kids.append(kid(x, y, blocks=2, seed=0)[0])
        k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        biased.append(k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    kids, biased = np.array(kids), np.array(biased)
    stderr = kids.std(ddof=1) / np.sqrt(len(kids))
    assert abs(kids.mean()) < 3 * stderr
    assert biased.mean() > 10 * biased.std(ddof=1) / np.sqrt(len(biased))


def test_kid_separates_and_reports_a_standard_error():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 8)) + 0.5
    value, stderr = kid(x, y, blocks=10)
    assert value > 10 * stderr > 0
    assert np.isnan(kid(x[:3], y[:3])[1])  # one block of 3: no spread to estimate an error from


def test_class_statistics():
    uniform = np.eye(10)[np.arange(100) % 10]
    stats = class_statistics(uniform, target_class=3)
    assert stats["class_histogram"] == [10] * 10
    assert stats["class_entropy"] == pytest.approx(1.0)
    assert stats["confident_share"] == 1.0 and stats["target_class_share"] == pytest.approx(0.1)
    unsure = np.full((4, 10), 0.1)
    unsure[:, 2] = 0.19
    stats = class_statistics(unsure)
    assert stats["class_entropy"] == 0.0 and stats["confident_share"] == 0.0
    assert stats["target_class_share"] is None


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.zeros((1, 4)), np.zeros((5, 4)), "at least 2 samples"),
        (np.zeros((5, 4)), np.zeros((5, 3)), "feature sizes differ"),
        (np.zeros(5), np.zeros((5, 4)), "2-D array"),
    ],
)
def test_bad_features_are_data_errors(a, b, message):
    with pytest.raises(DataError, match=message):
        fid(a, b)
    with pytest.raises(DataError, match=message):
        kid(a, b)


# -------------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def quick_classifiers(tmp_path_factory):
    """A cache of its own, and a short default plan for MNIST, so the CLI trains its classifier fast."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DCGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setitem(classifier_module.DEFAULT_PLANS, "mnist", synthetic_classifier_plan())
        patch.setitem(classifier_module.DEFAULT_PLANS, "cifar10", TrainingPlan(epochs=2))
        yield


@needs_shared_data
def test_noise_is_worse_than_blurred_real_which_is_worse_than_real(quick_classifiers):
    test = load_mnist("mnist", "test", REAL_MNIST_DIR).images
    a, b = test[:500], test[500:1000]
    blurred = scipy.ndimage.gaussian_filter(a.astype(float), sigma=(0, 1.5, 1.5, 0)).round().astype(np.uint8)
    with load_classifier("mnist", REAL_MNIST_DIR, QUICK, progress=False) as classifier:
        reference = image_features(classifier, b)
        sets = {
            "real": image_features(classifier, a),
            "blurred": image_features(classifier, blurred),
            "noise": image_features(classifier, noise_images(500, (28, 28, 1), seed=0)),
        }
        with pytest.raises(DataError, match="do not fit the classifier"):
            image_features(classifier, np.zeros((4, 28, 28), np.uint8))
    fids = {name: fid(s.features, reference.features) for name, s in sets.items()}
    kids = {name: kid(s.features, reference.features)[0] for name, s in sets.items()}
    assert fids["real"] < fids["blurred"] < fids["noise"], fids
    assert kids["real"] < kids["blurred"] < kids["noise"], kids
    entropy = {name: class_statistics(s.probabilities)["class_entropy"] for name, s in sets.items()}
    assert entropy["real"] > 0.95 and entropy["real"] > entropy["noise"]


def history(run_dir) -> list[dict[str, str]]:
    with open(RunDir(run_dir).history) as f:
        return list(csv.DictReader(f))


TRAIN = ["train", "--data-dir", MNIST_DIR, "--batch-size", "16", "--no-progress", "--log-every", "5"]


@pytest.fixture(scope="module")
def evaluated_run(quick_classifiers, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mnist"
    argv = [*TRAIN, "--out", str(out), "--max-steps", "20", "--eval-every", "10", "--eval-samples", "100"]
    assert cli(argv) == 0
    return out


def test_eval_every_adds_history_columns_and_tensorboard_scalars(evaluated_run):
    rows = history(evaluated_run)
    assert list(rows[0]) == [*HISTORY_COLUMNS, "fid", "kid", "class_entropy", "confident_share", "best_fid"]
    evaluated = {int(r["step"]): r for r in rows if r["fid"]}
    assert sorted(evaluated) == [10, 20]
    # The best checkpoint: the lowest FID so far on every evaluated row, kept in checkpoints/best.
    fids = [float(evaluated[step]["fid"]) for step in (10, 20)]
    assert [float(evaluated[step]["best_fid"]) for step in (10, 20)] == [fids[0], min(fids)]
    best = RunDir(evaluated_run).best_record()
    assert best["step"] == (10, 20)[fids.index(min(fids))] and best["fid"] == pytest.approx(
        min(fids), rel=1e-5
    )
    assert json.loads(RunDir(evaluated_run).config.read_text())["best"]["step"] == best["step"]
    assert tf.train.load_checkpoint(best["checkpoint"]).get_tensor("global_step") == best["step"]
    assert all(r["fid"] == r["kid"] == "" for r in rows if int(r["step"]) not in evaluated)
    assert all(float(r["fid"]) > 0 and 0 <= float(r["class_entropy"]) <= 1 for r in evaluated.values())
    tags = {}
    for path in RunDir(evaluated_run).events.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert tags["eval/fid"] == [10, 20] and tags["eval/confident_share"] == [10, 20]
    assert tags["eval/best_fid"] == [10, 20] and "watch/collapsed" in tags
    assert "summaries/d_loss" in tags  # the training's own summaries are still there


def test_evaluating_during_training_leaves_the_training_unchanged(evaluated_run, tmp_path):
    plain = tmp_path / "plain"
    assert cli([*TRAIN, "--out", str(plain), "--max-steps", "20"]) == 0
    readers = [tf.train.load_checkpoint(RunDir(run).latest_checkpoint()) for run in (evaluated_run, plain)]
    names = readers[0].get_variable_to_shape_map()
    assert names == readers[1].get_variable_to_shape_map()
    # Up to the last bits: two plain in-process runs already differ there in D's batch-norm moving
    # statistics. Drawing random numbers or updating state would show as differences far larger.
    for name in names:
        a, b = readers[0].get_tensor(name), readers[1].get_tensor(name)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
    losses = [[(r["d_loss"], r["g_loss"]) for r in history(run)] for run in (evaluated_run, plain)]
    np.testing.assert_allclose(np.array(losses[0], float), np.array(losses[1], float), rtol=1e-5)


def test_evaluate_writes_eval_json(evaluated_run, capsys):
    n = SYNTHETIC_TEST // 2  # the floor's two sets from the test split alone
    assert main(["--run", str(evaluated_run), "--n", str(n), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "real floor" in out and "noise ceiling" in out
    result = json.loads((evaluated_run / EVAL_FILE).read_text())
    assert result["run"] == str(evaluated_run) and result["step"] == 20 and result["n"] == n
    assert result["checkpoint"].endswith("model.ckpt-20")
    assert result["dataset"] == "mnist" and result["class_label"] is None
    assert 0.85 < result["classifier"]["test_accuracy"] <= 1.0
    assert f"classifier trained on {SYNTHETIC_TRAIN} training images" in result["classifier"]["trained_on"]
    for section in ("generated", "real_floor", "noise_ceiling"):
        assert SECTION_KEYS <= set(result[section])
        assert sum(result[section]["class_histogram"]) == n and result[section]["target_class_share"] is None
    assert result["real_floor"]["fid"] < result["noise_ceiling"]["fid"]
    assert result["real_floor"]["fid"] < result["generated"]["fid"]  # 20 steps do not make digits
    assert f"drawn from test ({SYNTHETIC_TEST} images)" in result["real_floor"]["source"]


def test_several_weights_share_one_reference_and_score_as_one_at_a_time(
    quick_classifiers, tmp_path, monkeypatch
):
    out = tmp_path / "ema"
    assert (
        cli([*TRAIN, "--out", str(out), "--max-steps", "4", "--eval-every", "0", "--g-ema-decay", "0.9"]) == 0
    )
    run, n = RunDir(out), SYNTHETIC_TEST // 2
    alone = [evaluate_run(run, n, weights=[w])[0] for w in ("live", "average")]
    featured = []
    counted = run_evaluation.image_features
    monkeypatch.setattr(
        run_evaluation,
        "image_features",
        lambda c, images: featured.append(len(images)) or counted(c, images),
    )
    together = evaluate_run(run, n, weights=["live", "average"])
    # reference, the floor's two sets and the noise once, then one set per weights: 6, not 2 x 5
    assert featured == [n] * 6
    assert [r["weights"] for r in together] == ["live", "average"]
    assert together[0]["generated"]["fid"] != together[1]["generated"]["fid"]
    for one, both in zip(alone, together, strict=True):
        assert json.dumps(one, sort_keys=True, default=str) == json.dumps(both, sort_keys=True, default=str)


def test_floor_sets_come_from_test_then_test_and_train_then_a_smaller_n():
    test = np.arange(10).reshape(10, 1, 1, 1).astype(np.uint8)
    train = np.arange(10, 16).reshape(6, 1, 1, 1).astype(np.uint8)

    def never():
        raise AssertionError("the train split was loaded although the test split sufficed")

    a, b, source = floor_sets(test, never, 5, np.random.default_rng(0))
    assert len(a) == len(b) == 5 and source.endswith("drawn from test (10 images)")
    assert not set(a.ravel()) & set(b.ravel()) and set(a.ravel()) | set(b.ravel()) == set(range(10))
    a, b, source = floor_sets(test, lambda: train, 7, np.random.default_rng(0))
    assert len(a) == len(b) == 7 and "test + train (16 images)" in source
    assert not set(a.ravel()) & set(b.ravel())
    a, b, source = floor_sets(test, lambda: train, 9, np.random.default_rng(0))
    assert len(a) == 8 and "n reduced from 9: there are fewer than 18" in source
    with pytest.raises(DataError, match="at least 4 real images"):
        floor_sets(test[:1], lambda: train[:2], 2, np.random.default_rng(0))


def test_resume_with_eval_every_widens_the_history(quick_classifiers, tmp_path):
    out = tmp_path / "run"
    assert cli([*TRAIN, "--out", str(out), "--max-steps", "5", "--checkpoint-every", "5"]) == 0
    argv = [*TRAIN, "--out", str(out), "--resume", "--max-steps", "10", "--eval-every", "10"]
    assert cli([*argv, "--eval-samples", "50"]) == 0
    rows = history(out)
    assert [int(r["step"]) for r in rows] == [5, 10]
    assert [bool(r["fid"]) for r in rows] == [False, True]
    assert len(RunDir(out).read_history()) == 2  # still a readable CSV


def test_cifar_run_reports_the_target_class_and_how_its_classifier_was_trained(quick_classifiers, tmp_path):
    out = tmp_path / "horse"
    argv = ["train", "--data-dir", CIFAR_DIR, "--batch-size", "16", "--no-progress", "--log-every", "5"]
    assert cifar_cli([*argv, "--out", str(out), "--max-steps", "10", "--eval-every", "10"]) == 0
    rows = history(out)
    assert list(rows[0])[-2:] == ["target_class_share", "best_fid"] and rows[-1]["target_class_share"] != ""
    per_batch, test_horses, test_others = SYNTHETIC_HORSES
    assert main(["--run", str(out), "--n", "50", "--no-progress"]) == 0
    result = json.loads((out / EVAL_FILE).read_text())
    assert (
        result["class_label"] == 7
        and result["reference"] == f"50 of the {test_horses} real cifar10 test images of class horse"
    )
    sections = ("generated", "real_floor", "noise_ceiling")
    assert all(0 <= result[s]["target_class_share"] <= 1 for s in sections)
    assert all(0 <= result[s]["checkerboard"] <= 1 for s in sections)
    assert result["noise_ceiling"]["checkerboard"] == pytest.approx(3 / 1023, rel=0.1)
    # the held-out horses: the other half of the test split's
    assert result["real_floor"]["unseen_images"] == test_horses // 2
    assert 0 <= result["real_floor"]["target_class_share_unseen"] <= 1
    assert 0 <= result["real_floor"]["other_classes_target_share"] <= 1
    # Like the shared subset, only horses in the training batches: the classifier also learned from half
    # of the test split, and eval.json says so.
    classifier = result["classifier"]
    test_half = (test_horses + 9 * test_others) // 2
    assert (
        f"{5 * per_batch} from the training split and {test_half} from the test split"
        in (classifier["trained_on"])
    )
    assert "no images of classes [0, 1, 2, 3, 4, 5, 6, 8, 9]" in classifier["note"]
    # A class statistic that noise scores as high as real images is flagged in eval.json, and only then.
    for key in ("confident_share", "target_class_share"):
        flagged = any(w.startswith(f"{key} does not measure quality here") for w in result["warnings"])
        assert flagged == (result["noise_ceiling"][key] >= result["real_floor"][key]), key
    assert len(result["warnings"]) <= 2


# ----------------------------------------------------------------------------------------- checkerboard
def fft_nyquist_share(image: np.ndarray) -> float:
    """The statistic from its definition: the DFT energy at the three Nyquist frequencies over all the
    energy but the DC term's, summed over channels."""
    spectrum = np.abs(np.fft.fft2(image.astype(float), axes=(0, 1))) ** 2
    h, w = image.shape[:2]
    nyquist = spectrum[h // 2, 0] + spectrum[0, w // 2] + spectrum[h // 2, w // 2]
    return float(nyquist.sum() / (spectrum.sum() - spectrum[0, 0].sum()))


def test_checkerboard_scores_a_checkerboard_high_and_a_smooth_image_low():
    y, x = np.mgrid[:32, :32]
    board = np.where((x + y) % 2, 200, 50).astype(np.uint8)[None, :, :, None]
    stripes = np.where(x % 2, 255, 0).astype(np.uint8)[None, :, :, None]
    smooth = (127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)).astype(np.uint8)[None, :, :, None]
    flat = np.full((1, 32, 32, 3), 90, np.uint8)
    assert checkerboard_shares(board)[0] == pytest.approx(1.0)
    assert checkerboard_shares(stripes)[0] == pytest.approx(1.0)
    assert checkerboard_shares(smooth)[0] < 1e-3
    assert checkerboard_shares(flat)[0] == 0.0  # no energy at all: nothing to share
    # A smooth image with a faint checkerboard added: the statistic sees the 2-pixel pattern.
    faint = np.clip(smooth.astype(int) + np.where((x + y) % 2, 6, -6)[None, :, :, None], 0, 255)
    faint = faint.astype(np.uint8)
    assert checkerboard_shares(faint)[0] > 10 * checkerboard_shares(smooth)[0]


def test_checkerboard_is_the_spectral_share_at_nyquist():
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (20, 28, 28, 3), dtype=np.uint8)  # MNIST's size is even too
    images[:10] = np.cumsum(images[:10] // 32, axis=1, dtype=np.uint16).astype(np.uint8)  # some structure
    shares = checkerboard_shares(images)
    np.testing.assert_allclose(shares, [fft_nyquist_share(image) for image in images], rtol=1e-9)
    noise = rng.integers(0, 256, (500, 32, 32, 3), dtype=np.uint8)
    assert checkerboard(noise) == pytest.approx(3 / (32 * 32 - 1), rel=0.05)  # white noise: 3 of 1023
    with pytest.raises(DataError, match="even H and W"):
        checkerboard_shares(np.zeros((2, 7, 8, 1), np.uint8))


def test_class_statistics_that_noise_matches_are_flagged():
    floor = {"confident_share": 0.9, "target_class_share": 0.8}
    assert uninformative_statistics(floor, {"confident_share": 0.5, "target_class_share": 0.2}) == []
    flagged = uninformative_statistics(floor, {"confident_share": 0.5, "target_class_share": 0.96})
    assert flagged == [
        "target_class_share does not measure quality here: noise images score 0.960, real images 0.800"
    ]
    assert uninformative_statistics(
        {**floor, "target_class_share": None}, {**floor, "target_class_share": None}
    ) == ["confident_share does not measure quality here: noise images score 0.900, real images 0.900"]
    # The real images the classifier never learned from decide, when there are any: the floor's images
    # include ones it learned from, which it recognizes better than new ones.
    unseen = {**floor, "target_class_share_unseen": 0.15}
    assert uninformative_statistics(unseen, {"confident_share": 0.5, "target_class_share": 0.2}) == [
        "target_class_share does not measure quality here: noise images score 0.200, real images 0.150"
    ]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "1"], "--n must be at least 2"),
        (["--n", "20000"], f"--n 20000 is larger than the {SYNTHETIC_TEST} real mnist test images"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
    ],
)
def test_bad_n_exits_2(evaluated_run, capsys, args, message):
    assert main(["--run", str(evaluated_run), "--no-progress", *args]) == 2
    assert message in error_line(capsys)


def test_not_a_run_directory_exits_2(tmp_path, capsys):
    assert main(["--run", str(tmp_path / "missing")]) == 2
    assert "no such folder" in error_line(capsys)
    assert main(["--run", str(tmp_path)]) == 2
    assert "not a run directory (no config.json)" in error_line(capsys)
    (tmp_path / "config.json").write_text("[]")
    assert main(["--run", str(tmp_path)]) == 2
    assert 'holds no run settings (no "config" object)' in error_line(capsys)


def test_run_without_checkpoint_exits_2(evaluated_run, tmp_path, capsys):
    shutil.copy(RunDir(evaluated_run).config, tmp_path / "config.json")
    assert main(["--run", str(tmp_path)]) == 2
    assert "has no checkpoint to evaluate, sample or export" in error_line(capsys)
    assert not (tmp_path / EVAL_FILE).exists()


def test_bad_eval_samples_exits_2_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli([*TRAIN, "--out", str(out), "--eval-every", "10", "--eval-samples", "1"]) == 2
    assert "--eval-samples must be at least 2" in error_line(capsys)
    assert not out.exists()
