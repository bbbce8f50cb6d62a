"""The experiments: each pitfall reproduced on real MNIST and measured against the fixed code.

`train_variants` trains every variant side by side (one Session each, stepped round-robin); each
`pitfall_*` function then turns the runs (or its own small graph) into a result: the numbers and the
images the report shows. Nothing here formats text; `common.pitfalls.report` does.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.config import Config, ConfigError
from common.gan import ArchSpec, build_gan, build_sampler, sample_noise
from common.pitfalls.lab import (
    LabGraph,
    LabRun,
    ProbeSession,
    Trace,
    build_lab_graph,
    count_by_network,
    train_together,
)
from common.train import session_config

v1 = tf.compat.v1

WARMUP_STEPS = (
    1,
    10,
    50,
    200,
    500,
    1000,
    2000,
)  # pitfall 7 looks at these (those below --steps) and the last


@dataclasses.dataclass(frozen=True)
class LabSize:
    steps: int  # the fixed run's length, and pitfall 1's
    batch_size: int
    train_images: int  # training images used (the first ones of MNIST's training set)
    reference_images: int  # MNIST test images the nearest-neighbour distance compares samples with
    grid: int  # samples measured and shown per grid
    companions: int  # pitfall 4: other z in the batch around the 8 watched ones
    rebuilds: int  # pitfall 6
    steps_per_rebuild: int
    short_steps: int  # pitfall 3
    half_steps: int  # pitfalls 2, 5 and 8
    recalibration_batch: int  # pitfall 7's fix: noise batch whose statistics replace the moving ones

    @property
    def warmup_steps(self) -> tuple[int, ...]:
        return tuple(s for s in WARMUP_STEPS if s < self.steps) + (self.steps,)


def lab_size(steps: int | None = None, quick: bool = False) -> LabSize:
    """The default size (~10-15 min on 2 idle cores) or --quick (well under a minute of training)."""
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if quick:
        n = steps or 12
        return LabSize(n, 8, 512, 256, 16, 8, 3, 2, max(n // 3, 1), max(n // 2, 1), 64)
    n = steps or 500
    return LabSize(n, 32, 60000, 2000, 64, 56, 30, 3, min(n, 100), max(n // 2, 1), 1024)


def lab_config(size: LabSize, seed: int) -> Config:
    # The lab builds its own graphs and sessions in float32 (session_config's default): say so.
    return Config(batch_size=size.batch_size, seed=seed, grid_size=size.grid, precision="float32")


# ------------------------------------------------------------------------------------ measurements
class SampleStats(NamedTuple):
    """Simple statistics of a batch of images in [-1, 1]."""

    mean_pixel: float  # MNIST's own: about -0.74 (mostly black background)
    diversity: float  # per-pixel standard deviation across the batch, averaged over pixels
    nn_rms: float  # RMS distance to the nearest MNIST test image, averaged over the batch


def sample_stats(images: np.ndarray, reference: np.ndarray) -> SampleStats:
    x = images.reshape(len(images), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    squared = (x**2).sum(1)[:, None] + (r**2).sum(1)[None, :] - 2.0 * x @ r.T
    nearest = np.sqrt(np.maximum(squared.min(axis=1), 0.0) / x.shape[1])
    return SampleStats(float(x.mean()), float(x.std(axis=0).mean()), float(nearest.mean()))


def to_levels(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> 8-bit levels as the sampler rounds them (float, for differences)."""
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255)


def level_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference in 8-bit levels."""
    d = np.abs(to_levels(a) - to_levels(b))
    return float(d.max()), float(d.mean())


def moving_change(trace: Trace) -> float:
    """Largest change of any moving statistic from its initial value over the run."""
    return max(float(np.abs(v[-1] - v[0]).max()) for v in trace.moving.values())


def weights_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest absolute difference between two runs' trained weights (moving statistics excluded)."""
    return max(float(np.abs(a[k] - b[k]).max()) for k in a if "/moving_" not in k)


def layer_means(trace: Trace, network: str, statistic: str) -> dict[str, np.ndarray]:
    """Per batch-norm layer of `network`: the channel mean of moving_mean or moving_variance per step."""
    return {
        name.split("/")[1]: values.mean(axis=1)
        for name, values in sorted(trace.moving.items())
        if name.startswith(f"{network}/") and name.endswith(statistic)
    }


def scaled(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.astype(np.float32) / 127.5 - 1.0


# ------------------------------------------------------------------------------------ the training
class Runs(NamedTuple):
    size: LabSize
    config: Config
    spec: ArchSpec
    graphs: dict[str, LabGraph]
    traces: dict[str, Trace]
    train_images: np.ndarray  # uint8
    reference: np.ndarray  # [-1, 1], MNIST test images
    seconds: float


RUN_STEPS = {  # which LabSize field sets each run's length
    "fixed": "steps",
    "without_update_deps": "steps",
    "one_update_collection": "half_steps",
    "captured_before_layers": "short_steps",
    "training_false_in_training": "half_steps",
    "concat_d": "half_steps",
}


def train_variants(
    spec: ArchSpec,
    size: LabSize,
    train_images: np.ndarray,
    reference_images: np.ndarray,
    seed: int = 0,
    progress: bool = True,
) -> Runs:
    """Train every variant from the same initial weights on the same batches, interleaved."""
    started = time.perf_counter()
    config = lab_config(size, seed)
    images = train_images[: size.train_images]
    graphs = {}
    for name in RUN_STEPS:
        variant = "fixed" if name == "concat_d" else name
        run_spec = dataclasses.replace(spec, d_batches="concat") if name == "concat_d" else spec
        graphs[name] = build_lab_graph(variant, run_spec, config, len(images))
    snapshots = {"fixed": (*size.warmup_steps, size.half_steps, size.short_steps)}
    runs: dict[str, LabRun] = {}
    try:
        runs["fixed"] = LabRun(graphs["fixed"], images, size.steps, snapshots["fixed"])
        initial = runs["fixed"].weights()
        for name in list(RUN_STEPS)[1:]:
            runs[name] = LabRun(graphs[name], images, getattr(size, RUN_STEPS[name]), (), initial)
        traces = train_together(runs, progress, "training the variants")
    finally:
        for run in runs.values():
            run.close()
    reference = scaled(reference_images[: size.reference_images])
    return Runs(size, config, spec, graphs, traces, images, reference, time.perf_counter() - started)


# ------------------------------------------------------------------------------------ pitfalls 1 to 3
class NoUpdateDeps(NamedTuple):
    steps: int
    moving_change_broken: float  # largest change of any moving statistic: 0.0 means never updated
    moving_change_fixed: float
    moving_mean_broken: tuple[float, float]  # (min, max) over all moving_mean entries after training
    moving_variance_broken: tuple[float, float]
    weights_difference: float  # trained weights, broken vs fixed: the updates do not touch training
    updates_per_step: dict[str, dict[str, int]]  # run -> network -> moving-average updates one step runs
    stats: dict[str, SampleStats]  # fixed inference, broken inference, broken batch mode, real
    images: dict[str, np.ndarray]


def pitfall_no_update_deps(runs: Runs, probe: ProbeSession) -> NoUpdateDeps:
    fixed, broken = runs.traces["fixed"], runs.traces["without_update_deps"]
    steps = runs.size.steps
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed)
    final_broken = broken.snapshots[steps]
    images = {
        "fixed, inference": probe.load(fixed.snapshots[steps]).generate(probe.probe.inference, noise),
        "broken, inference": probe.load(final_broken).generate(probe.probe.inference, noise),
        "broken, batch statistics": probe.generate(probe.probe.batch_mode, noise),
    }
    means = np.concatenate([v for k, v in final_broken.items() if k.endswith("moving_mean")])
    variances = np.concatenate([v for k, v in final_broken.items() if k.endswith("moving_variance")])
    stats = {k: sample_stats(v, runs.reference) for k, v in images.items()}
    stats["real MNIST (train)"] = sample_stats(scaled(runs.train_images[: runs.size.grid]), runs.reference)
    return NoUpdateDeps(
        steps,
        moving_change(broken),
        moving_change(fixed),
        (float(means.min()), float(means.max())),
        (float(variances.min()), float(variances.max())),
        weights_difference(final_broken, fixed.snapshots[steps]),
        {k: runs.graphs[k].step_update_ops for k in ("fixed", "without_update_deps")},
        stats,
        images,
    )


class OneCollection(NamedTuple):
    steps: int
    waits_for: dict[str, dict[str, dict[str, int]]]  # run -> train op -> network -> update ops waited for
    updates_per_step: dict[str, dict[str, int]]  # run -> network -> updates one step runs
    ops_per_step: dict[str, int]  # run -> ops one step runs
    step_seconds: dict[str, float]  # run -> median seconds per step (interleaved)
    g_moving_relative_difference: dict[str, float]  # moving_mean / moving_variance of G, broken vs fixed
    weights_difference: float
    sample_difference: tuple[float, float]  # inference samples broken vs fixed, 8-bit (max, mean)
    g_variance_traces: dict[str, dict[str, np.ndarray]]  # run -> layer -> channel mean per step


def pitfall_one_update_collection(runs: Runs, probe: ProbeSession) -> OneCollection:
    names = ("fixed", "one_update_collection")
    steps = runs.size.half_steps
    waits_for = {
        n: {
            "G train op": count_by_network(runs.graphs[n].train.g_update_ops),
            "D train op": count_by_network(runs.graphs[n].train.d_update_ops),
        }
        for n in names
    }
    fixed, broken = (runs.traces[n].snapshots[steps] for n in names)
    relative = {}
    for statistic in ("moving_mean", "moving_variance"):
        keys = [k for k in fixed if k.startswith("generator/") and k.endswith(statistic)]
        a = np.concatenate([fixed[k] for k in keys])
        b = np.concatenate([broken[k] for k in keys])
        relative[statistic] = float(np.linalg.norm(b - a) / np.linalg.norm(a))
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed)
    fixed_images = probe.load(fixed).generate(probe.probe.inference, noise)
    broken_images = probe.load(broken).generate(probe.probe.inference, noise)
    # Skip the first steps (graph warm-up) when there are enough.
    skip = min(5, steps // 2)
    return OneCollection(
        steps,
        waits_for,
        {n: runs.graphs[n].step_update_ops for n in names},
        {n: runs.graphs[n].step_ops for n in names},
        {n: float(np.median(runs.traces[n].seconds[skip:steps])) for n in names},
        relative,
        weights_difference(broken, fixed),
        level_difference(broken_images, fixed_images),
        {
            n: {
                k: v[: steps + 1]
                for k, v in layer_means(runs.traces[n], "generator", "moving_variance").items()
            }
            for n in names
        },
    )


class CapturedEarly(NamedTuple):
    steps: int
    captured: int  # update ops in the list the control dependency was given
    update_ops_in_graph: int  # what batch_norm added to the collection afterwards
    updates_per_step: dict[str, int]
    moving_change: float
    moving_change_fixed: float
    traces: dict[
        str, dict[str, np.ndarray]
    ]  # run -> "G layer" / "D layer" -> channel mean of moving_variance


def pitfall_captured_before_layers(runs: Runs) -> CapturedEarly:
    graph = runs.graphs["captured_before_layers"]
    broken = runs.traces["captured_before_layers"]
    steps = runs.size.short_steps
    fixed = runs.traces["fixed"]
    fixed_short = fixed._replace(moving={k: v[: steps + 1] for k, v in fixed.moving.items()})
    traces = {}
    for name, trace in (("fixed", fixed_short), ("captured_before_layers", broken)):
        traces[name] = {
            **{f"G {k}": v for k, v in layer_means(trace, "generator", "moving_variance").items()},
            **{f"D {k}": v for k, v in layer_means(trace, "discriminator", "moving_variance").items()},
        }
    return CapturedEarly(
        steps,
        graph.train.captured,
        graph.update_ops_in_graph,
        graph.step_update_ops,
        moving_change(broken),
        moving_change(fixed_short),
        traces,
    )


# ------------------------------------------------------------------------------------ pitfall 4
class TrainingAtInference(NamedTuple):
    contexts: tuple[str, ...]
    batch_mode_difference: tuple[float, float]  # same z across contexts, training=True: 8-bit (max, mean)
    inference_difference: tuple[float, float]  # the same with the project's sampler
    images: dict[str, np.ndarray]  # "training=True" / "training=False" -> [contexts, 8, H, W, C]


def pitfall_training_true_at_inference(
    runs: Runs, probe: ProbeSession, watched: int = 8
) -> TrainingAtInference:
    probe.load(runs.traces["fixed"].snapshots[runs.size.steps])
    z = sample_noise(runs.config, watched, runs.config.seed)
    others = {s: sample_noise(runs.config, runs.size.companions, runs.config.seed + s) for s in (1, 2)}
    # A batch of near-identical companions: its statistics are those of one image.
    alike = np.repeat(others[1][:1], runs.size.companions, axis=0)
    contexts = {
        f"with {runs.size.companions} other z (draw 1)": np.concatenate([z, others[1]]),
        f"with {runs.size.companions} other z (draw 2)": np.concatenate([z, others[2]]),
        f"with {runs.size.companions} copies of one z": np.concatenate([z, alike]),
        f"the {watched} alone": z,
    }
    images = {}
    for label, tensor in (
        ("training=True", probe.probe.batch_mode),
        ("training=False", probe.probe.inference),
    ):
        in_batches = [probe.generate(tensor, batch)[:watched] for batch in contexts.values()]
        one_by_one = np.concatenate([probe.generate(tensor, z[i : i + 1]) for i in range(watched)])
        images[label] = np.stack([*in_batches, one_by_one])

    def spread(stack: np.ndarray) -> tuple[float, float]:
        d = to_levels(stack).max(axis=0) - to_levels(stack).min(axis=0)
        return float(d.max()), float(d.mean())

    return TrainingAtInference(
        (*contexts, "each in a batch of one"),
        spread(images["training=True"]),
        spread(images["training=False"]),
        images,
    )


# ------------------------------------------------------------------------------------ pitfall 5
class TrainingFalse(NamedTuple):
    steps: int
    update_ops_in_graph: dict[str, int]
    moving_change: float
    late_losses: dict[
        str, np.ndarray
    ]  # run -> mean over the last quarter of (d_loss, g_loss, d_real, d_fake)
    losses: dict[str, np.ndarray]  # run -> [steps, 4]
    stats: dict[str, SampleStats]
    images: dict[str, np.ndarray]


def pitfall_training_false_in_training(runs: Runs, probe: ProbeSession) -> TrainingFalse:
    steps = runs.size.half_steps
    names = ("fixed", "training_false_in_training")
    losses = {n: runs.traces[n].losses[:steps] for n in names}
    quarter = max(steps // 4, 1)
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed)
    images = {
        "fixed (training=True), inference": probe.load(runs.traces["fixed"].snapshots[steps]).generate(
            probe.probe.inference, noise
        ),
        "training=False in training": probe.load(runs.traces[names[1]].snapshots[steps]).generate(
            probe.probe.inference, noise
        ),
    }
    return TrainingFalse(
        steps,
        {n: runs.graphs[n].update_ops_in_graph for n in names},
        moving_change(runs.traces[names[1]]),
        {n: v[-quarter:].mean(axis=0) for n, v in losses.items()},
        losses,
        {k: sample_stats(v, runs.reference) for k, v in images.items()},
        images,
    )


# ------------------------------------------------------------------------------------ pitfall 6
class SamplerRebuilt(NamedTuple):
    rebuilds: int
    nodes: list[int]  # graph ops before the first rebuild, then after each
    graph_bytes: list[int]  # serialized GraphDef size, same points
    build_seconds: list[float]  # building one more sampler
    first_sample_seconds: list[float]  # the first run of each new sampler
    step_seconds: list[float]  # median training step after each rebuild
    finalized_error: str  # type: message, when the finalized graph is asked for one more sampler


def pitfall_sampler_rebuilt(
    spec: ArchSpec,
    size: LabSize,
    train_images: np.ndarray,
    seed: int = 0,
    progress: bool = True,
) -> SamplerRebuilt:
    """The notebook's loop: a new `generator(..., reuse=True, is_train=False)` every few steps."""
    config = lab_config(size, seed)
    images = train_images[: size.train_images]
    noise = sample_noise(config, size.grid, seed)
    graph = tf.Graph()
    with graph.as_default():
        gan = build_gan(spec, config, len(images), size.rebuilds * size.steps_per_rebuild)
    nodes, graph_bytes = [len(graph.get_operations())], [graph.as_graph_def().ByteSize()]
    build_seconds, first_sample, step_seconds = [], [], []
    with v1.Session(graph=graph, config=session_config()) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: images})
        sess.run(gan.inputs.shuffle)
        sess.run(gan.train.step)  # the first run pays the one-time setup
        for _ in tqdm(range(size.rebuilds), desc="rebuilding the sampler", disable=not progress):
            tick = time.perf_counter()
            with graph.as_default():
                sampler = build_sampler(spec, config)  # the pitfall: one more generator in the graph
            build_seconds.append(time.perf_counter() - tick)
            tick = time.perf_counter()
            sess.run(sampler.images, {sampler.noise: noise})
            first_sample.append(time.perf_counter() - tick)
            seconds = []
            for _ in range(size.steps_per_rebuild):
                tick = time.perf_counter()
                sess.run(gan.train.step)
                seconds.append(time.perf_counter() - tick)
            step_seconds.append(float(np.median(seconds)))
            nodes.append(len(graph.get_operations()))
            graph_bytes.append(graph.as_graph_def().ByteSize())
    graph.finalize()
    try:
        with graph.as_default():
            build_sampler(spec, config)
        finalized_error = "none: the finalized graph accepted a new sampler"
    except RuntimeError as err:
        finalized_error = f"{type(err).__name__}: {err}"
    return SamplerRebuilt(
        size.rebuilds, nodes, graph_bytes, build_seconds, first_sample, step_seconds, finalized_error
    )


# ------------------------------------------------------------------------------------ pitfall 7
class Warmup(NamedTuple):
    momentum: float
    steps: tuple[int, ...]
    init_weight: list[float]  # momentum ** step: the share of the initial value still in the average
    gap: list[float]  # mean |inference - batch mode| in 8-bit levels, same z
    gap_recalibrated: list[float]  # after setting the moving statistics from one big noise batch
    stats: dict[str, list[SampleStats]]  # "inference" / "batch statistics" / "recalibrated" per step
    images: dict[int, dict[str, np.ndarray]]


def pitfall_unwarmed_moving_averages(runs: Runs, probe: ProbeSession) -> Warmup:
    steps = runs.size.warmup_steps
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed)
    calibration_noise = sample_noise(runs.config, runs.size.recalibration_batch, runs.config.seed + 7)
    gap, gap_fixed, images = [], [], {}
    stats: dict[str, list[SampleStats]] = {"inference": [], "batch statistics": [], "recalibrated": []}
    for step in steps:
        probe.load(runs.traces["fixed"].snapshots[step])
        inference = probe.generate(probe.probe.inference, noise)
        batch = probe.generate(probe.probe.batch_mode, noise)
        probe.recalibrate(calibration_noise)
        recalibrated = probe.generate(probe.probe.inference, noise)
        gap.append(level_difference(inference, batch)[1])
        gap_fixed.append(level_difference(recalibrated, batch)[1])
        for key, value in (
            ("inference", inference),
            ("batch statistics", batch),
            ("recalibrated", recalibrated),
        ):
            stats[key].append(sample_stats(value, runs.reference))
        images[step] = {"inference": inference, "batch statistics": batch, "recalibrated": recalibrated}
    momentum = runs.config.bn_momentum
    return Warmup(momentum, steps, [momentum**s for s in steps], gap, gap_fixed, stats, images)


# ------------------------------------------------------------------------------------ pitfall 8
class SeparateConcat(NamedTuple):
    steps: int
    same_weights: dict[
        str, tuple[float, float, float]
    ]  # way -> (d_loss, D(x), D(G(z))) on one real+fake pair
    feature_gap: dict[str, float]  # way -> mean over D's BN channels of |mean real - mean fake| after BN
    late_losses: dict[
        str, np.ndarray
    ]  # run -> mean over the last quarter of (d_loss, g_loss, d_real, d_fake)
    losses: dict[str, np.ndarray]


def pitfall_separate_vs_concat(runs: Runs, probe: ProbeSession) -> SeparateConcat:
    probe.load(runs.traces["fixed"].snapshots[runs.size.steps])
    p = probe.probe
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed + 3)
    fake = probe.generate(p.batch_mode, noise)  # fakes as a training step makes them
    real = scaled(runs.train_images[-runs.size.grid :])
    feed = {p.real: real, p.fake: fake}
    separate, concat, features = probe.run([p.d_separate, p.d_concat, p.d_features], feed)
    n = len(real)
    eps = runs.config.bn_epsilon

    def normalize(x: np.ndarray) -> np.ndarray:  # what batch norm does in training mode, per channel
        return (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + eps)

    def channel_gap(real_part: np.ndarray, fake_part: np.ndarray) -> float:
        return float(np.abs(real_part.mean(axis=(0, 1, 2)) - fake_part.mean(axis=(0, 1, 2))).mean())

    real_f, fake_f, mix = features["separate_real"], features["separate_fake"], features["concat"]
    mixed = normalize(mix)
    feature_gap = {
        # separate: each batch is centred on its own mean, so a real-vs-fake shift of the mean is erased
        "separate": channel_gap(normalize(real_f), normalize(fake_f)),
        "concat": channel_gap(mixed[:n], mixed[n:]),
    }
    steps = runs.size.half_steps
    names = ("fixed", "concat_d")
    losses = {k: runs.traces[k].losses[:steps] for k in names}
    quarter = max(steps // 4, 1)
    return SeparateConcat(
        steps,
        {
            "separate": (float(separate.d_loss), float(separate.d_real), float(separate.d_fake)),
            "concat": (float(concat.d_loss), float(concat.d_real), float(concat.d_fake)),
        },
        feature_gap,
        {k: v[-quarter:].mean(axis=0) for k, v in losses.items()},
        losses,
    )


# ------------------------------------------------------------------------------------ pitfall 9
class DropoutAtInference(NamedTuple):
    keep_prob: float
    seed_difference: tuple[float, float]  # same z, same batch, two dropout seeds: 8-bit (max, mean)
    stats: dict[str, SampleStats]
    images: dict[str, np.ndarray]


def pitfall_dropout_at_inference(runs: Runs, probe: ProbeSession) -> DropoutAtInference:
    probe.load(runs.traces["fixed"].snapshots[runs.size.steps])
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed)
    images = {
        "dropout off (fixed)": probe.generate(probe.probe.inference, noise),
        "dropout on, seed 1": probe.generate(probe.probe.dropout_on, noise, (1, 0)),
        "dropout on, seed 2": probe.generate(probe.probe.dropout_on, noise, (2, 0)),
    }
    return DropoutAtInference(
        runs.config.keep_prob,
        level_difference(images["dropout on, seed 1"], images["dropout on, seed 2"]),
        {k: sample_stats(v, runs.reference) for k, v in images.items()},
        images,
    )


# ------------------------------------------------------------------------------------ pitfall 10
class TrainableOnlySaver(NamedTuple):
    variables_saved: dict[str, int]  # saver -> variables in its checkpoint
    moving_saved: dict[str, int]  # saver -> moving statistics among them
    restored_moving_change: dict[str, float]  # saver -> largest |restored moving stat - initializer value|
    stats: dict[str, SampleStats]
    images: dict[str, np.ndarray]


def pitfall_trainable_only_saver(runs: Runs, probe: ProbeSession) -> TrainableOnlySaver:
    weights = runs.traces["fixed"].snapshots[runs.size.steps]
    probe.load(weights)
    noise = sample_noise(runs.config, runs.size.grid, runs.config.seed)
    variables_saved, moving_saved, change, images = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, saver) in enumerate(probe.probe.savers.items()):
            with probe.probe.graph.as_default():
                path = saver.save(probe.sess, str(Path(tmp) / f"ckpt{i}"), write_meta_graph=False)
            names = [n for n, _ in tf.train.list_variables(path)]
            variables_saved[label] = len(names)
            moving_saved[label] = sum("/moving_" in n for n in names)
            graph = tf.Graph()
            with graph.as_default():
                sampler = build_sampler(runs.spec, runs.config, reuse=False)  # a fresh sampling program
                restore = v1.train.Saver(var_list=[v for v in v1.global_variables() if v.op.name in names])
                moving = {v.op.name: v for v in v1.global_variables() if "/moving_" in v.op.name}
                init = v1.global_variables_initializer()
            with v1.Session(graph=graph, config=session_config()) as sess:
                sess.run(init)
                initial = sess.run(moving)
                restore.restore(sess, path)
                restored = sess.run(moving)
                images[label] = sess.run(sampler.images, {sampler.noise: noise})
            change[label] = max(float(np.abs(restored[k] - initial[k]).max()) for k in moving)
    return TrainableOnlySaver(
        variables_saved,
        moving_saved,
        change,
        {k: sample_stats(v, runs.reference) for k, v in images.items()},
        images,
    )
