"""The pitfalls lab, --quick size, on the synthetic MNIST files conftest writes (so a fresh clone runs
every test): each pitfall shows its signature; the report has them all. The lab's numbers on real MNIST
are docs/pitfalls, from `python -m common.pitfalls`."""

import dataclasses
import re

import numpy as np
import pytest

from common.config import ConfigError
from common.pitfalls import harness
from common.pitfalls.cli import main, run_pitfalls
from common.pitfalls.report import PITFALLS, pitfall_name, variants, write_report
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import synthetic_mnist_dir

SIZE = harness.lab_size(quick=True)


@pytest.fixture(scope="module")
def mnist_dir():
    return synthetic_mnist_dir()


@pytest.fixture(scope="module")
def runs(mnist_dir):
    from common.data import load_mnist

    train, test = (load_mnist("mnist", split, mnist_dir).images for split in ("train", "test"))
    trained = harness.train_variants(NOTEBOOK, SIZE, train, test, variants(), 0, False, mnist_dir)
    yield trained
    trained.close()


@pytest.fixture(scope="module")
def measured(runs):
    return run_pitfalls(runs, progress=False)


def test_one_module_per_pitfall_with_its_variants():
    names = [pitfall_name(pitfall) for pitfall in PITFALLS]
    assert len(names) == len(set(names)) == 21
    # The warm-up comes first: every later comparison of samples depends on it.
    assert names[0] == "unwarmed_moving_averages"
    assert [variant.name for variant in variants()] == [
        "without_update_deps",
        "captured_before_layers",
        "one_update_collection",
        "towers_first_only",
        "towers_all",
        "in_place_updates",
        "training_placeholder",
        "training_false_in_training",
        "concat_d",
        "contrib_defaults",
        "weight_average",
    ]
    fields = {field.name for field in dataclasses.fields(harness.LabSize)}
    assert all(variant.steps in fields for variant in variants())


def test_no_update_deps_leaves_moving_statistics_at_init(measured):
    result = measured["no_update_deps"]
    assert result.moving_change_broken == 0.0 and result.moving_change_fixed > 0.0
    assert result.moving_mean_broken == (0.0, 0.0) and result.moving_variance_broken == (1.0, 1.0)
    assert result.updates_per_step["without_update_deps"] == {"generator": 0, "discriminator": 0}
    assert result.updates_per_step["fixed"] == {"generator": 6, "discriminator": 8}
    # The moving statistics take no part in training: the weights are those of the fixed run, so the
    # recalibrated sampler makes the same images from both, and the evaluator says so.
    assert result.weights_difference < 1e-5
    assert result.quality["broken"]["recalibrated"].fid == pytest.approx(
        result.quality["fixed"]["recalibrated"].fid, rel=1e-3
    )
    assert result.quality["broken"]["moving"].fid != pytest.approx(
        result.quality["broken"]["recalibrated"].fid
    )


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


def test_control_dependencies_captured_early_are_empty(measured):
    result = measured["captured_before_layers"]
    assert result.captured == 0 and result.update_ops_in_graph > 0
    assert result.updates_per_step == {"generator": 0, "discriminator": 0}
    assert result.moving_change == 0.0 and result.moving_change_fixed > 0.0


def test_training_true_at_inference_depends_on_the_batch(measured):
    result = measured["training_true_at_inference"]
    assert result.batch_mode_difference[0] > 0.0
    assert result.inference_difference == (0.0, 0.0)


def test_training_false_adds_no_updates(measured):
    result = measured["training_false_in_training"]
    assert result.update_ops_in_graph["training_false_in_training"] == 0
    assert result.update_ops_in_graph["fixed"] > 0
    assert result.moving_change == 0.0
    assert result.losses["training_false_in_training"].shape == (SIZE.half_steps, 4)


def test_rebuilt_sampler_grows_the_graph_and_finalize_refuses(measured):
    rebuilt = measured["sampler_rebuilt_in_loop"]
    assert len(rebuilt.nodes) == SIZE.rebuilds + 1
    assert all(after > before for before, after in zip(rebuilt.nodes, rebuilt.nodes[1:], strict=False))
    assert all(
        after > before for before, after in zip(rebuilt.graph_bytes, rebuilt.graph_bytes[1:], strict=False)
    )
    assert rebuilt.finalized_error.startswith("RuntimeError")


def test_unwarmed_moving_averages_differ_from_batch_mode(measured):
    result = measured["unwarmed_moving_averages"]
    assert result.steps == SIZE.warmup_steps and len(result.steps) >= 2
    assert result.init_weight == sorted(result.init_weight, reverse=True)
    # Recalibration puts the batch statistics into the moving ones: inference meets batch mode.
    assert all(fixed < broken for fixed, broken in zip(result.gap_recalibrated, result.gap, strict=True))
    assert set(result.quality) == set(result.steps)
    assert all(set(q) == {"moving", "recalibrated"} for q in result.quality.values())


def test_evaluator_numbers_sit_between_floor_and_ceiling(runs):
    evaluator = runs.evaluator
    assert evaluator.n == SIZE.eval_samples
    assert evaluator.floor.fid < evaluator.noise_ceiling.fid
    quality = runs.quality("fixed", "recalibrated")
    assert quality.n == SIZE.eval_samples and np.isfinite(quality.fid) and np.isfinite(quality.kid_stderr)
    assert runs.quality("fixed", "recalibrated") is quality  # cached: each set is evaluated once


def test_multi_tower_first_tower_updates_are_half_of_all(measured):
    result = measured["multi_tower_updates"]
    first, every = result.updates_per_step["towers_first_only"], result.updates_per_step["towers_all"]
    assert every == {network: 2 * count for network, count in first.items()} and first["generator"] > 0
    assert result.update_ops_in_graph == sum(every.values())
    assert result.weights_difference < 1e-5  # the updates never touch training


def test_in_place_batch_norm_leaves_update_ops_empty_and_updates_on_any_fetch(measured):
    result = measured["in_place_updates"]
    assert result.update_ops_in_graph == 0
    assert result.waited_for == {"G train op": 0, "D train op": 0}
    assert all(count > 0 for count in result.updates_per_step["in_place_updates"].values())
    assert result.logging_run_updates["discriminator"] > 0
    assert result.logging_run_change["discriminator"] > 0.0


def test_keras_batch_norm_in_a_v1_graph_never_updates(measured):
    result = measured["keras_layers_in_v1_graph"]
    assert result.keras_layers == 3 and result.keras_variables == 12
    assert result.keras_in_update_ops == 0 and result.orphan_assigns > 0 and result.orphan_assigns_run == 0
    assert result.moving_change == 0.0 and result.gamma_change == 0.0 and result.kernel_change > 0.0
    assert result.keras_trainable == 6 and result.keras_in_var_list == 0
    assert result.frozen_difference == 0.0  # trainable=False: Keras normalizes with the moving statistics
    assert result.tf_layers_error.startswith("AttributeError")


def test_frozen_generator_statistics_move_unless_its_updates_are_left_out(measured):
    result = measured["frozen_generator_updates"]
    broken, fixed = "whole collection", "own updates (fixed)"
    assert result.g_trainable == {broken: 0, fixed: 0}
    assert result.g_weight_change == {broken: 0.0, fixed: 0.0}
    assert result.g_moving_change[broken] > 0.0 and result.g_moving_change[fixed] == 0.0
    assert result.sample_difference[fixed] == (0.0, 0.0) and result.sample_difference[broken][0] > 0.0


def test_training_placeholder_costs_ops_and_a_wrong_feed_changes_the_program(measured):
    result = measured["training_flag_placeholder"]
    assert result.cond_ops["training_placeholder"] > result.cond_ops["fixed"]
    assert result.ops_per_step["training_placeholder"] > result.ops_per_step["fixed"]
    assert result.first_loss_difference < 1e-3  # the same math, other kernels
    assert result.wrong_feed_moving_change == 0.0  # fed False: decay 0
    assert result.wrong_feed_losses["True"] != pytest.approx(result.wrong_feed_losses["False"], abs=1e-4)
    assert result.sampler_spread["fed training=False"] == (0.0, 0.0)
    assert result.sampler_spread["default training=True"][0] > 0.0


def test_separate_batches_erase_the_real_fake_shift(measured):
    result = measured["separate_vs_concat_d"]
    assert result.feature_gap["separate"] < 1e-3 < result.feature_gap["concat"]
    assert result.same_weights["separate"][0] != pytest.approx(result.same_weights["concat"][0], abs=1e-4)
    assert set(result.late_losses) == {"fixed", "concat_d"}


def test_dropout_at_inference_changes_with_the_seed(measured):
    result = measured["dropout_at_inference"]
    assert result.seed_difference[0] > 0.0


def test_trainable_only_checkpoint_lacks_moving_statistics(measured):
    result = measured["trainable_only_saver"]
    trainable, full = result.variables_saved  # in the order the saver part defines them
    assert result.moving_saved[trainable] == 0 and result.moving_saved[full] == 10
    assert result.restored_moving_change[trainable] == 0.0 and result.restored_moving_change[full] > 0.0
    # Recalibration needs only the weights: both checkpoints then sample the same images.
    assert result.quality[trainable]["recalibrated"].fid == pytest.approx(
        result.quality[full]["recalibrated"].fid
    )


def test_report_has_a_section_and_a_figure_per_pitfall(tmp_path, runs, measured):
    about = {
        "command": "test",
        "seconds": 1.0,
        "device": "test",
        "tensorflow": "test",
        "data_source": "test",
        "size": SIZE,
        "quality": runs.evaluator,
        "load": "test",
    }
    report = write_report(tmp_path, measured, about)
    text = report.read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(sections) == len(PITFALLS)
    for title in (
        "UPDATE_OPS control dependencies",
        "One UPDATE_OPS collection",
        "training=True at inference",
    ):
        assert any(title in section for section in sections)
    figures = sorted(path.name for path in tmp_path.glob("*.png"))
    assert len(figures) == len(PITFALLS)
    for name in figures:
        assert f"]({name})" in text
    assert not re.search(r"\bnan\b", text)
    # Uniform noise is a reference, not a ceiling: generators can score worse.
    assert "noise (a reference, not a ceiling)" in text and "uniform-noise ceiling" not in text
    # Every verdict in words: each comparison section says better / worse / the same in bold.
    for part in text.split("\n## ")[1:]:
        number = int(part.split(".", 1)[0])
        if number in (4, 5, 6, 8, 9, 11, 12, 16, 17, 18, 19, 20, 21):
            assert re.search(r"\*\*[^*]*(better|worse|the same)[^*]*\*\*", part), part.splitlines()[0]
    # The code that ran: the variants' own source, each the one line that differs from model_opt.
    assert "update_ops=lambda tower, network, config: []" in text
    assert "tower=tower_in_inference_mode" in text
    # Every section ends with the fix as a code block.
    for part in text.split("\n## ")[1:]:
        fix = part[part.index("**The fix, as code") :]
        assert "```" in fix, part.splitlines()[0]
        assert "plain `tf.compat.v1`, to paste" in " ".join(fix.split()), part.splitlines()[0]


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


@pytest.mark.parametrize("quirks", ["fixed", "original"])
def test_the_labs_step_is_the_model_files_step_op_for_op(quirks):
    """The lab builds the notebook's step from the shared pieces (common/ cannot import a dataset
    module): it must be the graph dcgan_mnist/model.py builds, op for op, or its lessons are about
    another step."""
    import tensorflow as tf

    from common.config import Config
    from common.pitfalls import notebook_step
    from dcgan_mnist import model

    config = Config(batch_size=8, quirks=quirks)

    def ops(build) -> list[tuple[str, str, tuple[str, ...]]]:
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.set_random_seed(config.seed)
            build()
        return [(op.name, op.type, tuple(i.name for i in op.inputs)) for op in graph.get_operations()]

    from_model = ops(lambda: model.model_opt(model.model_inputs(64, config), config, total_steps=10))
    from_lab = ops(
        lambda: notebook_step.model_opt(
            model.SPEC, config, notebook_step.model_inputs(model.IMAGE_SHAPE, 64, config), total_steps=10
        )
    )
    assert len(from_model) > 1000 and from_model == from_lab


def test_only_runs_the_named_sections_and_the_runs_they_need(tmp_path, mnist_dir, capsys, monkeypatch):
    from common.pitfalls import cli, ema_variables_to_restore, in_place_updates, separate_vs_concat_d

    trained = {}
    real_train = cli.train_variants

    def spy(spec, size, train, test, variants, *args):
        trained["variants"] = [variant.name for variant in variants]
        trained["fixed_steps"] = args[3]
        return real_train(spec, size, train, test, variants, *args)

    monkeypatch.setattr(cli, "train_variants", spy)
    out = tmp_path / "lab"
    argv = ["--out", str(out), "--quick", "--data-dir", mnist_dir, "--no-progress"]
    assert main([*argv, "--only", "6", "separate_vs_concat_d", "20"]) == 0
    printed = capsys.readouterr().out
    assert "3 section(s)" in printed and "training steps" in printed and "idle cores" in printed
    # Sections 6, 12 and 20's variants, nothing else; the fixed run as long as they need (half_steps).
    assert trained == {
        "variants": ["in_place_updates", "concat_d", "weight_average"],
        "fixed_steps": SIZE.half_steps,
    }
    text = (out / "report.md").read_text()
    titles = [line.split(".")[0] for line in text.splitlines() if line.startswith("## ")]
    assert titles == ["## 6", "## 12", "## 20"]  # the full report's numbers
    assert sorted(path.name for path in out.glob("*.png")) == sorted(
        [in_place_updates.FIGURE, separate_vs_concat_d.FIGURE, ema_variables_to_restore.FIGURE]
    )
    assert str(tmp_path) not in text and mnist_dir not in text  # no path of the machine


def test_only_refuses_an_unknown_section(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "x"), "--quick", "--only", "99"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown section '99'" in err and "\n" not in err


def test_every_pasteable_snippet_is_short_python():
    for pitfall in PITFALLS:
        snippet = getattr(pitfall, "SNIPPET", None)
        if snippet is None:  # the saver section writes its snippet inline
            continue
        lines = snippet.strip().splitlines()
        assert 3 <= len(lines) <= 10, pitfall_name(pitfall)
        compile(snippet, pitfall_name(pitfall), "exec")  # it parses


def test_seeded_comparisons_use_three_seeds_and_say_so(measured):
    for name, runs_compared in (
        ("training_false_in_training", ("fixed", "training_false_in_training")),
        ("separate_vs_concat_d", ("fixed", "concat_d")),
        ("multi_tower_updates", ("towers_all", "fixed")),
    ):
        seeds = measured[name].seeds
        assert set(seeds) == set(runs_compared)
        assert all(len(values) == 3 for values in seeds.values())
        fids = [q.fid for q in seeds["fixed"]]
        assert len(set(fids)) == 3  # three training paths, not one evaluated thrice


def test_seed_verdict_counts_the_spread_over_seeds():
    from common.pitfalls.harness import Quality
    from common.pitfalls.sections import seeds_verdict, seeds_word

    def q(fid):
        return Quality(fid, 0.0, 0.0, 0.0, 0.0, 2000)

    tight, other = [q(10.0), q(10.5), q(9.5)], [q(20.0), q(20.5), q(19.5)]
    assert seeds_word(tight, other) == "better" and seeds_word(other, tight) == "worse"
    noisy = [q(5.0), q(25.0), q(15.0)]
    assert seeds_word(noisy, other) == "the same"
    said = seeds_verdict(tight, other, "A", "B")
    assert "**A: better** than B over 3 seeds" in said and "n = 2000" in said


def test_momentum_replay_reproduces_the_recorded_averages(measured):
    result = measured["bn_momentum"]
    assert result.replay_error < 1e-3
    assert set(result.quality) == {0.9, 0.99, 0.999}


def test_warmed_up_sections_judge_with_recalibrated_statistics(measured):
    # Same weights on both sides: recalibrated, the variant and the fixed run are one generator.
    for name, run in (
        ("one_update_collection", "one_update_collection"),
        ("in_place_updates", "in_place_updates"),
    ):
        quality = measured[name].quality
        assert quality[run]["recalibrated"].fid == pytest.approx(
            quality["fixed"]["recalibrated"].fid, rel=1e-3
        )
    frozen = measured["frozen_generator_updates"].quality
    assert frozen["recalibrated after"].fid == pytest.approx(frozen["recalibrated"].fid, rel=1e-3)


def test_d_batch_of_one_and_test_batch_statistics(measured):
    d = measured["d_batch_of_one"]
    assert len(d.scores) == 3 and d.alone_vs_batch[0] > 0.0
    assert all(score.n == SIZE.eval_samples for score in d.scores.values())
    batch = measured["statistics_of_the_test_batch"]
    assert all(len(ways) == 5 for ways in batch.quality.values())


def test_only_estimates_every_section_under_five_minutes_on_two_idle_cores():
    from common.pitfalls.cli import estimate_seconds

    size = harness.lab_size()  # the default size, as the report is made
    for pitfall in PITFALLS:
        assert estimate_seconds(size, (pitfall,), seeds=3) < 300, pitfall_name(pitfall)
    assert estimate_seconds(size, PITFALLS, seeds=3) > 600  # the full run: not a trivial bound


def test_training_left_out_is_the_training_false_graph():
    """tf.layers' default (training=False): a tower whose layers are called without `training=` is the
    training=False tower op for op, so section 11's numbers are that default's."""
    from common.config import Config
    from common.pitfalls import training_false_in_training as section
    from common.pitfalls.notebook_step import model_loss

    config = Config(batch_size=8)
    count, same = section.default_is_false(NOTEBOOK, config)
    assert same and count > 500
    # and not the training=True tower's (the test can fail)
    left_out = section.graph_ops(NOTEBOOK, config, section.tower_with_training_left_out)
    assert left_out != section.graph_ops(NOTEBOOK, config, model_loss)


def test_contrib_defaults_hold_gamma_and_are_judged_over_seeds(measured):
    result = measured["contrib_batch_norm_defaults"]
    assert result.gamma_change == 0.0  # scale=False: no gamma learnt
    # the 3 batch norms of G and the 2 of D lose their gamma
    assert result.trainable["fixed"] - result.trainable["contrib_defaults"] == 5
    for seeds in (result.scale_seeds, result.sampled_seeds):
        assert all(len(values) == 3 for values in seeds.values())
    # as sampled, contrib's side uses its own (decay 0.999) moving averages, not the recalibrated ones
    assert result.sampled_seeds["contrib_defaults"][0] == result.quality["contrib_defaults"]["moving"]
    assert result.scale_seeds["contrib_defaults"][0] == result.quality["contrib_defaults"]["recalibrated"]


def test_variables_to_restore_takes_weights_from_the_average_and_statistics_raw(measured):
    result = measured["ema_variables_to_restore"]
    assert result.raw_vs_fixed < 1e-5  # the average never touches training
    plain = result.from_average["Saver() (raw weights)"]
    default = result.from_average["variables_to_restore()"]
    everything = result.from_average["variables_to_restore(all G variables)"]
    assert plain[1:] == (0, 0)
    assert default[0] == 20 and default[1:] == (14, 0)  # G: 14 weights averaged, 6 statistics raw
    assert everything[1:] == (20, 6)
    quality = result.quality
    assert quality["variables_to_restore()"]["recalibrated"].fid == pytest.approx(
        quality["variables_to_restore(all G variables)"]["recalibrated"].fid, rel=1e-3
    )


def test_a_frozen_flag_left_at_true_uses_each_requests_batch_statistics(measured):
    from common.pitfalls.frozen_training_flag import WAYS, uses

    result = measured["frozen_training_flag"]
    assert result.flag_exported == {"flag": True, "fix": False}
    by_way = [uses(result.matches[label]) for label, *_ in WAYS]
    assert by_way[0] == "batch statistics"
    assert by_way[2] == "moving averages"
    assert by_way[3] == "recalibrated statistics"
    assert all(quality.n == SIZE.eval_samples for quality in result.quality.values())
