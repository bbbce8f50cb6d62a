"""The pitfalls lab, --quick size, real MNIST: each pitfall shows its signature; the report has them all."""

import dataclasses
import re

import numpy as np
import pytest

from common.config import ConfigError
from common.pitfalls import harness
from common.pitfalls.cli import main, run_pitfalls
from common.pitfalls.report import PITFALLS, pitfall_name, variants, write_report
from dcgan_mnist.model import NOTEBOOK
from tests.conftest import SHARED_DATA, needs_shared_data

MNIST_DIR = str(SHARED_DATA / "mnist")
SIZE = harness.lab_size(quick=True)


@pytest.fixture(scope="module")
def mnist():
    from common.data import load_mnist

    return load_mnist("mnist", "train", MNIST_DIR).images, load_mnist("mnist", "test", MNIST_DIR).images


@pytest.fixture(scope="module")
def runs(mnist):
    return harness.train_variants(NOTEBOOK, SIZE, *mnist, variants(), seed=0, progress=False)


@pytest.fixture(scope="module")
def measured(runs):
    return run_pitfalls(runs, progress=False)


def test_one_module_per_pitfall_with_its_variants():
    names = [pitfall_name(pitfall) for pitfall in PITFALLS]
    assert len(names) == len(set(names)) == 10
    assert [variant.name for variant in variants()] == [
        "without_update_deps",
        "one_update_collection",
        "captured_before_layers",
        "training_false_in_training",
        "concat_d",
    ]
    fields = {field.name for field in dataclasses.fields(harness.LabSize)}
    assert all(variant.steps in fields for variant in variants())


@needs_shared_data
def test_no_update_deps_leaves_moving_statistics_at_init(measured):
    result = measured["no_update_deps"]
    assert result.moving_change_broken == 0.0 and result.moving_change_fixed > 0.0
    assert result.moving_mean_broken == (0.0, 0.0) and result.moving_variance_broken == (1.0, 1.0)
    assert result.updates_per_step["without_update_deps"] == {"generator": 0, "discriminator": 0}
    assert result.updates_per_step["fixed"] == {"generator": 6, "discriminator": 8}
    # The moving statistics take no part in training: the weights are those of the fixed run.
    assert result.weights_difference < 1e-5


@needs_shared_data
def test_one_collection_runs_the_other_networks_updates(measured):
    result = measured["one_update_collection"]
    fixed, broken = result.waits_for["fixed"], result.waits_for["one_update_collection"]
    assert fixed["G train op"]["discriminator"] == 0 and fixed["D train op"]["generator"] == 0
    assert broken["G train op"]["discriminator"] > 0 and broken["D train op"]["generator"] > 0
    assert sum(result.updates_per_step["one_update_collection"].values()) > sum(
        result.updates_per_step["fixed"].values()
    )
    assert result.ops_per_step["one_update_collection"] > result.ops_per_step["fixed"]
    assert result.g_moving_relative_difference["moving_variance"] > 0.0
    assert result.weights_difference < 1e-5


@needs_shared_data
def test_control_dependencies_captured_early_are_empty(measured):
    result = measured["captured_before_layers"]
    assert result.captured == 0 and result.update_ops_in_graph > 0
    assert result.updates_per_step == {"generator": 0, "discriminator": 0}
    assert result.moving_change == 0.0 and result.moving_change_fixed > 0.0


@needs_shared_data
def test_training_true_at_inference_depends_on_the_batch(measured):
    result = measured["training_true_at_inference"]
    assert result.batch_mode_difference[0] > 0.0
    assert result.inference_difference == (0.0, 0.0)


@needs_shared_data
def test_training_false_adds_no_updates(measured):
    result = measured["training_false_in_training"]
    assert result.update_ops_in_graph["training_false_in_training"] == 0
    assert result.update_ops_in_graph["fixed"] > 0
    assert result.moving_change == 0.0
    assert result.losses["training_false_in_training"].shape == (SIZE.half_steps, 4)


@needs_shared_data
def test_rebuilt_sampler_grows_the_graph_and_finalize_refuses(measured):
    rebuilt = measured["sampler_rebuilt_in_loop"]
    assert len(rebuilt.nodes) == SIZE.rebuilds + 1
    assert all(after > before for before, after in zip(rebuilt.nodes, rebuilt.nodes[1:], strict=False))
    assert all(
        after > before for before, after in zip(rebuilt.graph_bytes, rebuilt.graph_bytes[1:], strict=False)
    )
    assert rebuilt.finalized_error.startswith("RuntimeError")


@needs_shared_data
def test_unwarmed_moving_averages_differ_from_batch_mode(measured):
    result = measured["unwarmed_moving_averages"]
    assert result.steps == SIZE.warmup_steps and len(result.steps) >= 2
    assert result.init_weight == sorted(result.init_weight, reverse=True)
    # Recalibration puts the batch statistics into the moving ones: inference meets batch mode.
    assert all(fixed < broken for fixed, broken in zip(result.gap_recalibrated, result.gap, strict=True))


@needs_shared_data
def test_separate_batches_erase_the_real_fake_shift(measured):
    result = measured["separate_vs_concat_d"]
    assert result.feature_gap["separate"] < 1e-3 < result.feature_gap["concat"]
    assert result.same_weights["separate"][0] != pytest.approx(result.same_weights["concat"][0], abs=1e-4)
    assert set(result.late_losses) == {"fixed", "concat_d"}


@needs_shared_data
def test_dropout_at_inference_changes_with_the_seed(measured):
    result = measured["dropout_at_inference"]
    assert result.seed_difference[0] > 0.0


@needs_shared_data
def test_trainable_only_checkpoint_lacks_moving_statistics(measured):
    result = measured["trainable_only_saver"]
    trainable, full = result.variables_saved  # in the order the saver part defines them
    assert result.moving_saved[trainable] == 0 and result.moving_saved[full] == 10
    assert result.restored_moving_change[trainable] == 0.0 and result.restored_moving_change[full] > 0.0


@needs_shared_data
def test_report_has_a_section_and_a_figure_per_pitfall(tmp_path, measured):
    about = {
        "command": "test",
        "seconds": 1.0,
        "device": "test",
        "tensorflow": "test",
        "data_source": "test",
        "size": SIZE,
    }
    report = write_report(tmp_path, measured, about)
    text = report.read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(sections) == 10
    for title in (
        "UPDATE_OPS control dependencies",
        "One UPDATE_OPS collection",
        "training=True at inference",
    ):
        assert any(title in section for section in sections)
    figures = sorted(path.name for path in tmp_path.glob("*.png"))
    assert len(figures) == 10
    for name in figures:
        assert f"]({name})" in text
    assert not re.search(r"\bnan\b", text)
    # The code that ran: the variants' own source, each the one line that differs from model_opt.
    assert "update_ops=lambda tower, network, config: []" in text
    assert "tower=tower_in_inference_mode" in text


def test_lab_size_rejects_nonpositive_steps():
    with pytest.raises(ConfigError):
        harness.lab_size(0)
    assert harness.lab_size(7, quick=True).steps == 7


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
    assert harness.sample_stats(reference[:5], reference).nn_rms == 0.0
    assert harness.sample_stats(rng.uniform(-1, 1, (5, 28, 28, 1)), reference).nn_rms > 0.1
