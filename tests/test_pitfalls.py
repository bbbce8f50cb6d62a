"""The pitfalls lab, --quick size, real MNIST: each pitfall shows its signature; the report has them all."""

import re

import numpy as np
import pytest

from common.pitfalls import experiments as ex
from common.pitfalls.cli import main, run_pitfalls
from common.pitfalls.report import write_report
from dcgan_mnist.model import NOTEBOOK
from tests.conftest import SHARED_DATA, needs_shared_data

MNIST_DIR = str(SHARED_DATA / "mnist")
SIZE = ex.lab_size(quick=True)


@pytest.fixture(scope="module")
def mnist():
    from common.data import load_mnist

    return load_mnist("mnist", "train", MNIST_DIR).images, load_mnist("mnist", "test", MNIST_DIR).images


@pytest.fixture(scope="module")
def runs(mnist):
    return ex.train_variants(NOTEBOOK, SIZE, *mnist, seed=0, progress=False)


@pytest.fixture(scope="module")
def measured(runs):
    return run_pitfalls(runs, progress=False)


@pytest.fixture(scope="module")
def rebuilt(mnist):
    return ex.pitfall_sampler_rebuilt(NOTEBOOK, SIZE, mnist[0], progress=False)


@needs_shared_data
def test_no_update_deps_leaves_moving_statistics_at_init(measured):
    r = measured["no_update_deps"]
    assert r.moving_change_broken == 0.0 and r.moving_change_fixed > 0.0
    assert r.moving_mean_broken == (0.0, 0.0) and r.moving_variance_broken == (1.0, 1.0)
    assert r.updates_per_step["without_update_deps"] == {"generator": 0, "discriminator": 0}
    assert r.updates_per_step["fixed"] == {"generator": 6, "discriminator": 8}
    # The moving statistics take no part in training: the weights are those of the fixed run.
    assert r.weights_difference < 1e-5


@needs_shared_data
def test_one_collection_runs_the_other_networks_updates(measured):
    r = measured["one_update_collection"]
    fixed, broken = r.waits_for["fixed"], r.waits_for["one_update_collection"]
    assert fixed["G train op"]["discriminator"] == 0 and fixed["D train op"]["generator"] == 0
    assert broken["G train op"]["discriminator"] > 0 and broken["D train op"]["generator"] > 0
    assert sum(r.updates_per_step["one_update_collection"].values()) > sum(
        r.updates_per_step["fixed"].values()
    )
    assert r.ops_per_step["one_update_collection"] > r.ops_per_step["fixed"]
    assert r.g_moving_relative_difference["moving_variance"] > 0.0
    assert r.weights_difference < 1e-5


@needs_shared_data
def test_control_dependencies_captured_early_are_empty(measured):
    r = measured["captured_before_layers"]
    assert r.captured == 0 and r.update_ops_in_graph > 0
    assert r.updates_per_step == {"generator": 0, "discriminator": 0}
    assert r.moving_change == 0.0 and r.moving_change_fixed > 0.0


@needs_shared_data
def test_training_true_at_inference_depends_on_the_batch(measured):
    r = measured["training_true_at_inference"]
    assert r.batch_mode_difference[0] > 0.0
    assert r.inference_difference == (0.0, 0.0)


@needs_shared_data
def test_training_false_adds_no_updates(measured):
    r = measured["training_false_in_training"]
    assert r.update_ops_in_graph["training_false_in_training"] == 0
    assert r.update_ops_in_graph["fixed"] > 0
    assert r.moving_change == 0.0
    assert r.losses["training_false_in_training"].shape == (SIZE.half_steps, 4)


@needs_shared_data
def test_rebuilt_sampler_grows_the_graph_and_finalize_refuses(rebuilt):
    assert len(rebuilt.nodes) == SIZE.rebuilds + 1
    assert all(b > a for a, b in zip(rebuilt.nodes, rebuilt.nodes[1:], strict=False))
    assert all(b > a for a, b in zip(rebuilt.graph_bytes, rebuilt.graph_bytes[1:], strict=False))
    assert rebuilt.finalized_error.startswith("RuntimeError")


@needs_shared_data
def test_unwarmed_moving_averages_differ_from_batch_mode(measured):
    r = measured["unwarmed_moving_averages"]
    assert r.steps == SIZE.warmup_steps and len(r.steps) >= 2
    assert r.init_weight == sorted(r.init_weight, reverse=True)
    # Recalibration puts the batch statistics into the moving ones: inference meets batch mode.
    assert all(fixed < broken for fixed, broken in zip(r.gap_recalibrated, r.gap, strict=True))


@needs_shared_data
def test_separate_batches_erase_the_real_fake_shift(measured):
    r = measured["separate_vs_concat"]
    assert r.feature_gap["separate"] < 1e-3 < r.feature_gap["concat"]
    assert r.same_weights["separate"][0] != pytest.approx(r.same_weights["concat"][0], abs=1e-4)
    assert set(r.late_losses) == {"fixed", "concat_d"}


@needs_shared_data
def test_dropout_at_inference_changes_with_the_seed(measured):
    r = measured["dropout_at_inference"]
    assert r.seed_difference[0] > 0.0


@needs_shared_data
def test_trainable_only_checkpoint_lacks_moving_statistics(measured):
    r = measured["trainable_only_saver"]
    trainable, full = r.variables_saved  # in the order the probe defines them
    assert r.moving_saved[trainable] == 0 and r.moving_saved[full] == 10
    assert r.restored_moving_change[trainable] == 0.0 and r.restored_moving_change[full] > 0.0


@needs_shared_data
def test_report_has_a_section_and_a_figure_per_pitfall(tmp_path, runs, measured, rebuilt):
    about = {
        "command": "test",
        "seconds": 1.0,
        "device": "test",
        "tensorflow": "test",
        "data_source": "test",
        "size": SIZE,
    }
    report = write_report(tmp_path, {**measured, "sampler_rebuilt": rebuilt}, about)
    text = report.read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(sections) == 10
    for title in (
        "UPDATE_OPS control dependencies",
        "One UPDATE_OPS collection",
        "training=True at inference",
    ):
        assert any(title in s for s in sections)
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(figures) == 10
    for name in figures:
        assert f"]({name})" in text
    assert not re.search(r"\bnan\b", text)


def test_lab_size_rejects_nonpositive_steps():
    with pytest.raises(ex.ConfigError):
        ex.lab_size(0)
    assert ex.lab_size(7, quick=True).steps == 7


@pytest.mark.parametrize(
    "make_args", [lambda f: ["--out", str(f)], lambda f: ["--out", str(f.parent / "x"), "--steps", "0"]]
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, make_args):
    a_file = tmp_path / "report"
    a_file.write_text("not a folder")
    assert main([*make_args(a_file), "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m common.pitfalls: error:") and "\n" not in err


def test_sample_stats_of_real_images_beat_noise():
    rng = np.random.default_rng(0)
    reference = rng.uniform(-1, 1, (20, 28, 28, 1))
    assert ex.sample_stats(reference[:5], reference).nn_rms == 0.0
    assert ex.sample_stats(rng.uniform(-1, 1, (5, 28, 28, 1)), reference).nn_rms > 0.1
