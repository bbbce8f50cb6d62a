"""The speed levers keep results, and the benchmark harness runs (a tiny smoke test, not a benchmark)."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

import common.machine
from benchmarks import levers, speed
from benchmarks.alternatives import KerasStep, ProjectStep, keras_generator_weights, keras_models
from benchmarks.machine import (
    avx512_on_256_bit_units,
    bf16_flops_per_cycle,
    float32_flops_per_cycle,
    this_machine,
)
from common.config import PRECISIONS, Config, ConfigError
from common.layers import LayerImpl, SeedStream, batch_norm, dropout, lrelu
from common.sampling import Generator
from common.speed import CPU_KINDS, SpeedSettings, bf16_supported, cpu_kind, resolve_precision
from common.train import session_config
from dcgan_mnist.model import SPEC as NOTEBOOK
from tests.conftest import (
    synthetic_classifier_plan,
    synthetic_horse_dir,
    synthetic_mnist_dir,
)

v1 = tf.compat.v1
OLD_KERNELS = LayerImpl(fused_batch_norm=False, mask_dropout=False, fused_leaky_relu=False)


def _layer_outputs(impl: LayerImpl, data: np.ndarray) -> list[np.ndarray]:
    """Each layer's output and its input gradient, built with `impl`, on the same data and seeds."""
    impl = impl.for_precision("float32")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.constant(data)
        seeds = SeedStream(tf.constant([7, 11], tf.int64))
        outputs = [dropout(x, 0.8, seeds, impl=impl), lrelu(x, 0.01, impl)]
        with tf.name_scope("bn"):
            outputs.append(batch_norm(x * 3.0 + 1.0, True, "bn", momentum=0.9, impl=impl))
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        weights = tf.constant(np.linspace(-1, 1, data.size, dtype=np.float32).reshape(data.shape))
        gradients = [tf.gradients(tf.reduce_sum(out * weights), x)[0] for out in outputs]
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            values = sess.run(outputs + gradients)
            sess.run(updates)
            moving = {v.op.name: v for v in v1.global_variables()}
            values += sess.run([moving["bn/moving_mean"], moving["bn/moving_variance"]])
    return values


def test_layer_kernels_give_the_same_values_and_gradients():
    data = np.random.default_rng(0).normal(size=(8, 5, 5, 6)).astype(np.float32)
    data[:, 0] = 0.0  # leaky ReLU's kink: both forms give the gradient alpha there
    new, old = _layer_outputs(LayerImpl(mask_dropout=True), data), _layer_outputs(OLD_KERNELS, data)
    names = ["dropout", "lrelu", "batch norm"]
    names += [f"d {n}" for n in names] + ["moving mean", "moving variance"]
    for name, a, b in zip(names, new, old, strict=True):
        if "batch norm" in name or "moving" in name:
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=name)
        else:  # the same ops' values, rearranged: bit for bit
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert (new[0] == 0).mean() > 0.1  # dropout dropped something


def _losses(impl: LayerImpl, settings: SpeedSettings, images: np.ndarray, steps: int) -> np.ndarray:
    config = Config(batch_size=16, seed=5, precision="float32")  # bit-for-bit claims are float32's
    step = ProjectStep(NOTEBOOK, config, images, settings, impl)
    try:
        return np.array([list(step.step()["losses"]) for _ in range(steps)])
    finally:
        step.close()


def test_default_kernels_and_session_keep_the_training_losses():
    """Fused leaky ReLU and mask dropout are bit for bit; so is another thread setup than the default."""
    images = np.random.default_rng(1).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    default = _losses(LayerImpl(), SpeedSettings(), images, steps=3)
    np.testing.assert_array_equal(default, _losses(LayerImpl(mask_dropout=True), SpeedSettings(), images, 3))
    # The default (0, 0: TensorFlow's choice, one thread per core) against one thread each: the op
    # determinism the runs use makes the sums independent of the threads.
    assert SpeedSettings() == SpeedSettings(intra_op_threads=0, inter_op_threads=0)
    tensorflow_session = SpeedSettings(intra_op_threads=1, inter_op_threads=1)
    fused_bn_only = LayerImpl(fused_batch_norm=True, mask_dropout=False, fused_leaky_relu=False)
    np.testing.assert_array_equal(default, _losses(fused_bn_only, tensorflow_session, images, steps=3))
    # Fused batch norm rounds differently (~1e-7 relative per op, see the layer test). The first step's
    # losses agree to that; later ones drift apart as Adam's early steps amplify last-bit differences.
    unfused = _losses(OLD_KERNELS, tensorflow_session, images, steps=1)
    np.testing.assert_allclose(default[:1], unfused, rtol=2e-4)


def test_speed_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("DCGAN_INTRA_OP_THREADS", "2")
    monkeypatch.setenv("DCGAN_XLA", "1")
    config = session_config()
    assert config.intra_op_parallelism_threads == 2
    assert config.graph_options.optimizer_options.global_jit_level == v1.OptimizerOptions.ON_1
    assert config.allow_soft_placement
    rewrite = config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16
    assert rewrite != rewriter_config_pb2.RewriterConfig.ON  # float32 unless the run's precision says so
    bf16 = session_config(SpeedSettings.default_settings("bfloat16"))
    assert (
        bf16.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16
        == rewriter_config_pb2.RewriterConfig.ON
    )
    with pytest.raises(ValueError, match="unresolved"):
        SpeedSettings.default_settings("auto")
    monkeypatch.setenv("DCGAN_INTER_OP_THREADS", "many")
    with pytest.raises(ConfigError, match="DCGAN_INTER_OP_THREADS"):
        SpeedSettings.default_settings()


AMX = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
AVX512_BF16 = frozenset({"avx512f", "avx512_bf16"})


@pytest.mark.parametrize(
    "requested, on_gpu, flags, expected",
    [
        ("auto", False, AMX, "bfloat16"),  # measured: ~2x, the same sample quality
        ("auto", False, AVX512_BF16, "float32"),  # an Intel core: measured with oneDNN capped below AMX
        ("auto", False, frozenset({"avx2", "fma"}), "float32"),
        ("auto", True, AMX, "float32"),  # the bf16 rewrite is oneDNN's, for the CPU
        ("float32", False, AMX, "float32"),
        ("bfloat16", False, frozenset({"avx512f", "avx512_bf16"}), "bfloat16"),
        ("bfloat16", False, frozenset({"avx2"}), "AMX or AVX-512-BF16"),
        ("bfloat16", True, AMX, "use float32 on a GPU"),
    ],
)
def test_resolve_precision(requested, on_gpu, flags, expected):
    if expected in PRECISIONS:
        assert resolve_precision(requested, on_gpu, flags, "GenuineIntel") == expected
    else:
        with pytest.raises(ConfigError, match=expected):
            resolve_precision(requested, on_gpu, flags, "GenuineIntel")


@pytest.mark.parametrize(
    "flags, vendor, expected",
    [
        (AMX, "GenuineIntel", "bfloat16"),
        (AVX512_BF16, "AuthenticAMD", "bfloat16"),  # Zen 4: measured 2.0x float32 (2026-12-03)
        (AVX512_BF16, "GenuineIntel", "float32"),  # Cooper Lake stand-in: bf16 no faster
        (frozenset({"avx2", "fma"}), "AuthenticAMD", "float32"),
        (AVX512_BF16, "", "float32"),  # vendor unknown: the Intel measurement's safe choice
    ],
)
def test_auto_precision_per_cpu_kind(flags, vendor, expected):
    assert resolve_precision("auto", False, flags, vendor) == expected
    assert cpu_kind(flags, vendor).auto == expected


@pytest.mark.skipif(not bf16_supported(), reason="needs a CPU with AMX or AVX-512-BF16 (bf16 rewrite)")
def test_bf16_step_is_a_rounding_of_the_float32_step():
    """bf16 mixed precision, with or without its matmul filter gradients, follows the float32 step.

    Same seed, same batch, same dropout masks (the 16-bit draws bf16 uses, forced in float32 too): G's
    first loss, computed before any update, agrees to bf16's ~3 significant digits; D's, computed after
    G's first Adam step (which amplifies small gradient differences), to 10%. The two bf16 variants (they
    differ only in how the kernel gradients are summed) stay together for a few steps.
    """
    images = np.random.default_rng(1).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)

    def losses(precision: str, impl: LayerImpl, steps: int) -> np.ndarray:
        step = ProjectStep(
            NOTEBOOK, Config(batch_size=16, seed=5, precision=precision), images, layer_impl=impl
        )
        try:
            return np.array([list(step.step()["losses"]) for _ in range(steps)])
        finally:
            step.close()

    float32 = losses("float32", LayerImpl(dropout_bits16=True), steps=1)
    bf16 = losses("bfloat16", LayerImpl(), steps=3)
    bf16_native_filter_grads = losses("bfloat16", LayerImpl(matmul_filter_grad=False), steps=3)
    (d_loss, g_loss, d_real, d_fake), expected = bf16[0], float32[0]
    assert g_loss == pytest.approx(expected[1], rel=0.005)
    np.testing.assert_allclose([d_loss, d_real, d_fake], expected[[0, 2, 3]], rtol=0.1)
    np.testing.assert_allclose(bf16, bf16_native_filter_grads, rtol=0.05)
    assert np.isfinite(bf16).all()


def test_cpu_kinds_pick_by_the_richest_flag():
    assert cpu_kind(AMX, "AuthenticAMD").flag == "amx_bf16"
    assert cpu_kind(AVX512_BF16, "GenuineIntel").flag == "avx512_bf16"
    assert cpu_kind(frozenset({"avx2", "fma"})).auto == "float32"
    assert [kind.auto for kind in CPU_KINDS][-1] == "float32"  # no native bf16: never emulated bf16


@pytest.mark.parametrize(
    "cap, hidden",
    [
        (None, set()),
        ("DEFAULT", set()),
        ("avx512_core_amx", set()),  # the top level this CPU has: nothing above it to hide
        ("AVX512_CORE_BF16", {"amx_tile", "amx_bf16", "avx512_fp16"}),
        ("AVX512_CORE", {"amx_tile", "amx_bf16", "avx512_fp16", "avx512_bf16"}),
        ("AVX2", {"amx_tile", "amx_bf16", "avx512_fp16", "avx512_bf16", "avx512f"}),
        ("NOT_A_LEVEL", set()),  # oneDNN ignores it too
    ],
)
def test_onednn_isa_cap_hides_the_flags_above_it(monkeypatch, cap, hidden):
    hardware = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"})
    monkeypatch.setattr(common.machine, "hardware_cpu_flags", lambda: hardware)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert common.machine.cpu_flags() == hardware - hidden
    machine = this_machine()
    assert (machine.isa_cap is not None) == bool(hidden)
    assert set(machine.hidden_flags) == hidden
    if hidden:
        assert "an emulation" in machine.describe()


def test_peak_estimate_from_flags():
    assert float32_flops_per_cycle(frozenset({"avx512f", "avx2", "fma"})) == 64
    assert float32_flops_per_cycle(frozenset({"avx2", "fma"})) == 32
    assert bf16_flops_per_cycle(frozenset({"amx_bf16", "avx512_bf16"})) == 2048
    assert bf16_flops_per_cycle(frozenset({"avx2"})) is None
    # AMD Zen 4 runs 512-bit operations on 256-bit units: half the rate; Zen 3 (AVX2) and Zen 5 do not.
    zen4 = frozenset({"avx512f", "avx2", "fma", "avx512_bf16"})
    assert avx512_on_256_bit_units("AuthenticAMD", "25") and not avx512_on_256_bit_units("AuthenticAMD", "26")
    assert not avx512_on_256_bit_units("GenuineIntel", "6")
    assert float32_flops_per_cycle(zen4, half_width_avx512=True) == 32
    assert bf16_flops_per_cycle(zen4, half_width_avx512=True) == 64
    assert float32_flops_per_cycle(frozenset({"avx2", "fma"}), half_width_avx512=True) == 32
    assert bf16_supported(frozenset({"avx512_bf16"})) and not bf16_supported(frozenset({"avx2"}))
    machine = this_machine()
    assert machine.cores >= 1 and machine.cpu


def test_speed_benchmark_smoke(tmp_path, capsys):
    argv = ["--steps", "2", "--rounds", "1", "--warmup", "0", "--batch-size", "16", "--no-progress"]
    argv += ["--data-dir", str(tmp_path), "--only", "project (default", "--only", "TF1 original"]
    argv += ["--only", "Keras tf.function"]
    assert speed.main(argv) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ") and "img/s" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| project (default train)",
        "| TF1 original step (feed_dict, 2 runs)",
        "| TF2 Keras tf.function",
    ]
    assert all("not run" not in row for row in rows)
    assert float(rows[0].split(" | ")[1]) > 0


def test_levers_benchmark_smoke(tmp_path, capsys):
    argv = ["--steps", "1", "--rounds", "1", "--warmup", "0", "--batch-size", "16", "--no-progress"]
    assert levers.main([*argv, "--data-dir", str(tmp_path), "--only", "feed_dict batches"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("| ") and "img/s" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| default",
        "| feed_dict batches and numpy noise, one run",
    ]


def test_benchmark_rejects_bad_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        speed.main(["--steps", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_pytorch_row_runs_or_says_how_to_get_it(tmp_path, capsys):
    """PyTorch is optional: timed where it is installed, else one row that says how to install it."""
    argv = ["--steps", "1", "--rounds", "1", "--warmup", "0", "--batch-size", "16", "--no-progress"]
    assert speed.main([*argv, "--data-dir", str(tmp_path), "--only", "PyTorch"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| PyTorch")]
    assert len(rows) == 1
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "not run: PyTorch is not installed (pip install torch" in rows[0]
    else:
        assert float(rows[0].split(" | ")[1]) > 0


def _tables(out: str) -> dict[str, list[tuple[str, float]]]:
    """benchmarks.profile's markdown tables: title -> rows (name, ms), the total row last."""
    tables = {}
    for block in out.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("|---")]
        if len(lines) > 1:
            rows = [line.split(" | ") for line in lines[1:]]
            tables[lines[0].split(" | ")[0][2:]] = [
                (r[0][2:].strip("*"), float(r[1].strip("*"))) for r in rows
            ]
    return tables


def test_profile_accounts_for_the_step_and_its_kernels(tmp_path, capsys):
    from benchmarks import profile

    argv = ["--steps", "1", "--top", "500", "--batch-size", "16", "--data-dir", str(tmp_path)]
    assert profile.main([*argv, "--precision", "float32", "--filter-grad", "matmul"]) == 0
    tables = _tables(capsys.readouterr().out)
    assert set(tables) == {"where the step's wall time goes", "layer", "op type (kernel)"}
    totals = set()
    for rows in tables.values():
        *parts, (total_name, total) = rows
        assert total_name.startswith("total") and sum(ms for _, ms in parts) == pytest.approx(
            total, abs=0.1 * len(parts)
        )
        totals.add(total)
    assert len(totals) == 1  # three ways of splitting the same traced step
    categories = dict(tables["where the step's wall time goes"])
    assert (
        categories["matrix work (convolutions, matrix products)"] > 0
        and categories["dropout (random bits, masks)"] > 0
    )
    kernels = [name for name, _ in tables["op type (kernel)"]]
    assert any("MatMul" in t for t in kernels) and any("Conv2D" in t for t in kernels)
    assert not any("BackpropFilter" in t for t in kernels)  # every kernel gradient is a matrix product
    assert {"generator/conv_transpose2", "discriminator/conv1", "generator/dropout"} <= dict(
        tables["layer"]
    ).keys()
    assert profile.main([*argv, "--impl", "mask_dropout=maybe"]) == 2


def test_profile_wall_shares_split_overlaps_and_count_gaps():
    from benchmarks.profile import OpRun, wall_shares

    runs = [OpRun("a", "A", 0, 10), OpRun("b", "B", 5, 10), OpRun("c", "C", 20, 5), OpRun("d", "Const", 7, 0)]
    share, idle, span = wall_shares(runs)
    assert share == [7.5, 7.5, 5.0, 0.0] and idle == 5 and span == 25
    assert sum(share) + idle == span


@pytest.mark.skipif(not bf16_supported(), reason="the bf16 peer rows run only on a CPU with native bf16")
def test_keras_mixed_policy_row_uses_bf16_and_restores_the_policy():
    import keras

    images = np.random.default_rng(1).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    step = KerasStep(NOTEBOOK, Config(batch_size=16), images, jit_compile=False, policy="mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"
    assert step.generator.layers[0].dtype_policy.name == "mixed_bfloat16"
    assert step.discriminator.layers[-1].compute_dtype == "float32"  # the logits, as the guide advises
    d_loss, g_loss = step.train_step(next(step.batches))
    assert d_loss.dtype == tf.float32 and np.isfinite([d_loss.numpy(), g_loss.numpy()]).all()


def test_bf16_peer_rows_run_or_say_why(tmp_path, capsys):
    argv = ["--steps", "1", "--rounds", "1", "--warmup", "0", "--batch-size", "16", "--no-progress"]
    assert speed.main([*argv, "--data-dir", str(tmp_path), "--only", "autocast", "--only", "mixed_b"]) == 0
    out = capsys.readouterr().out
    assert "load average" in out and "CPU: " in out
    rows = [line for line in out.splitlines() if line.startswith("|   same")]
    assert [row.split(" | ")[0] for row in rows] == [
        "|   same, mixed_bfloat16 policy",
        "|   same, bf16 autocast",
    ]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch is not installed (pip install torch" in rows[1]
        rows = rows[:1]
    for row in rows:
        if bf16_supported():
            assert float(row.split(" | ")[1]) > 0
        else:
            assert "no native bf16 on this CPU" in row


def test_keras_mirror_weights_sample_like_the_project_generator():
    """The time-to-quality benchmark samples Keras's generator through the project's: the same images."""
    rng = np.random.default_rng(3)
    config = Config()
    generator, _ = keras_models(NOTEBOOK, config)
    for layer in generator.layers:  # statistics and scales away from their initial 0 / 1
        for weight in layer.weights:
            weight.assign(
                rng.uniform(0.5, 1.5, weight.shape).astype(np.float32) * weight.numpy()
                + rng.normal(0, 0.05, weight.shape).astype(np.float32)
            )
    noise = rng.uniform(-1, 1, (8, config.noise_dim)).astype(np.float32)
    expected = generator(noise, training=False).numpy()
    with Generator(NOTEBOOK, config, sampler_stats="moving") as sampler:
        sampler.load(keras_generator_weights(generator))
        images = sampler.session.run(sampler.sampler.images, {sampler.sampler.noise: noise})
    np.testing.assert_allclose(images, expected, atol=1e-4)


def test_time_to_quality_smoke(capsys, monkeypatch, tmp_path):
    """Two contenders, one step each, evaluated with a quickly trained classifier of its own cache."""
    from benchmarks import time_to_quality
    from common import classifier as classifier_module

    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(classifier_module.DEFAULT_PLANS, "mnist", synthetic_classifier_plan())
    argv = ["--max-steps", "2", "--eval-every", "1", "--eval-samples", "50", "--batch-size", "16"]
    argv += ["--data-dir", synthetic_mnist_dir(), "--no-progress", "--target", "1e9"]
    argv += ["--only", "project (default", "--only", "Keras tutorial"]
    assert time_to_quality.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "contender" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| project (default train)", "| TF2 Keras tutorial step"]
    for row in rows:  # any FID is below 1e9: both stop at their first evaluation
        cells = row.split(" | ")
        assert cells[1] == "1" and cells[2].endswith(" s") and cells[5].startswith("1: ")
    # the Keras row's time as a multiple of the project default's (the default's row: 1.00x)
    assert rows[0].split(" | ")[3] == "1.00x" and re.fullmatch(r"\d+\.\d\dx as long", rows[1].split(" | ")[3])
    assert "| time vs project default |" in out
    assert "target 1e+09" in out
    assert time_to_quality.main([*argv[:-4], "--target", "0"]) == 0  # never reached: said so
    assert "not reached in 2 steps" in capsys.readouterr().out


def test_recipes_benchmark_trains_scores_both_weights_and_resumes(capsys, monkeypatch, tmp_path):
    """One candidate, one seed, two steps on the horse-only CIFAR files: both rows of the table, the
    JSON beside it, and a second call that scores the finished run again without training it."""
    from benchmarks import recipes
    from common import classifier as classifier_module
    from common.classifier import TrainingPlan
    from common.rundir import RunDir

    monkeypatch.setenv("DCGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(classifier_module.DEFAULT_PLANS, "cifar10", TrainingPlan(epochs=2, batch_size=16))
    out = tmp_path / "recipes"
    argv = ["--dataset", "cifar10", "--data-dir", synthetic_horse_dir(), "--steps", "2", "--seeds", "1"]
    argv += ["--n", "20", "--only", "no dropout in G", "--out", str(out)]
    assert recipes.main(argv) == 0
    table = capsys.readouterr().out  # train's own lines, then the table
    assert "\ncifar10, 2 steps of 64, seeds 1; n = 20, recalibrated sampler" in table
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| no dropout")]
    assert rows == ["| no dropout in G", "| no dropout in G + G weight average 0.999"]
    run = RunDir(out / "no-dropout-in-g-seed1")
    config = run.read_config()["config"]
    assert config["dataset"] == "cifar10" and config["class_label"] == 7
    assert config["g_keep_prob"] == 1.0 and config["g_ema_decay"] == 0.999
    saved = json.loads((out / "recipes.json").read_text())
    assert [row[0] for row in saved] == [row[2:] for row in rows]
    assert all(score["seed"] == 1 and score["fid"] > 0 for row in saved for score in row[2])
    checkpoint = run.latest_checkpoint()
    assert recipes.main(argv) == 0  # done earlier: scored again, not trained again
    assert run.latest_checkpoint() == checkpoint and len(run.read_history()) == 1
    assert json.loads((out / "recipes.json").read_text()) == saved  # same checkpoint, same seeds


def test_recipes_benchmark_refuses_an_unknown_candidate(capsys):
    from benchmarks import recipes

    for flags in (["--only", "no dropout in g"], ["--only", "--combine", "hinge loss", "adam"]):
        with pytest.raises(SystemExit) as exit_info:
            recipes.main(["--steps", "2", *flags])
        assert exit_info.value.code == 2
        assert "unknown candidate" in capsys.readouterr().err


def test_gpu_benchmark_runs_and_says_whether_a_gpu_is_there(tmp_path, capsys):
    from benchmarks import gpu

    argv = ["--batch-sizes", "16", "--steps", "1", "--rounds", "1", "--warmup", "0", "--no-progress"]
    assert gpu.main([*argv, "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "every op has a GPU kernel or is CPU-only on purpose" in out
    rows = {line.split(" | ")[0][2:].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for name in ("project, float32", "project, float16 (auto_mixed_precision + loss scaling)"):
        assert float(rows[name].split(" | ")[1]) > 0
    if tf.config.list_physical_devices("GPU"):
        assert out.startswith("GPU: ")
    else:
        assert out.startswith("No GPU is present") and "none of these are GPU figures" in out
        assert "not run: no GPU: mixed_float16 is a GPU row here" in rows["same, mixed_float16"]


def test_time_to_quality_race_prints_each_evaluation_and_keeps_them_when_stopped(capsys):
    """A SIGTERM in the middle of a race ends it with every evaluation so far printed and tabled."""
    from benchmarks import time_to_quality
    from common.command import Terminated
    from common.config import Config

    class CountingStep:  # a contender whose FID falls by 10 per evaluation; stopped on its 5th step
        def __init__(self, stop_at: int | None) -> None:
            self.steps, self.stop_at = 0, stop_at

        def step(self) -> None:
            self.steps += 1
            if self.steps == self.stop_at:
                raise Terminated("signal 15")

        def generator_weights(self) -> dict:
            return {"steps": self.steps}

        def close(self) -> None:
            pass

    class StepEvaluator:
        def fid(self, weights: dict) -> float:
            return 100.0 - 10 * weights["steps"]

    chosen = [
        time_to_quality.Contender("fast", lambda *_: CountingStep(None), True),
        time_to_quality.Contender("stopped", lambda *_: CountingStep(5), False),
    ]
    traces = time_to_quality.race(
        chosen, None, Config(batch_size=4), None, StepEvaluator(), 75.0, 2, 10, progress=False
    )
    out = capsys.readouterr().out
    assert "fast: step 2, FID 80.0" in out and "stopped: step 4, FID 60.0" in out
    assert [t.steps for t in traces] == [[2, 4], [2, 4]]  # stopped in its third chunk: not recorded
    assert traces[0].reached == 1 and traces[1].reached == 1  # both reached 75 at step 4
    assert all(t.interrupted is None for t in traces)  # the race ended before the stop: nothing lost

    chosen[1] = time_to_quality.Contender("stopped", lambda *_: CountingStep(3), False)
    traces = time_to_quality.race(
        chosen, None, Config(batch_size=4), None, StepEvaluator(), 0.0, 2, 10, progress=False
    )
    assert [t.interrupted for t in traces] == ["terminated (SIGTERM)"] * 2
    assert [t.fids for t in traces] == [[80.0, 60.0], [80.0]]
    table = time_to_quality.format_table(traces, 0.0)
    assert "| stopped | not reached in 2 steps (terminated (SIGTERM)) |" in table
