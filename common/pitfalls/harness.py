"""The lab bench: the notebook's training step built right and built wrong, trained side by side.

Every variant is the project's own step (dcgan_mnist/model.py: model_opt, as
common.pitfalls.notebook_step builds it: the G update, then the D update on the updated G's fakes), with
one argument changed: which batch-norm updates a train op waits for (`update_ops=`), how a forward pass
is built (`tower=`), or the spec. The pitfall modules hold those
one-liners; this module trains them, side by side, and looks at what they learnt.

All variants start from the same initial weights and see the same batches and noise (both are functions
of the seed and the step), so any difference between two runs comes from the one line that differs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.architecture import ArchSpec
from common.classifier import TrainingPlan, load_classifier
from common.config import Config, ConfigError
from common.layers import UPDATE_OPS, Layers
from common.losses import Losses
from common.metrics import Features, quality
from common.pitfalls.notebook_step import model_inputs, model_opt
from common.run_evaluation import floor_sets, image_features, noise_images
from common.sampling import Generator, build_sampler
from common.step import Inputs, Tower, TrainOps, call_network
from common.streams import EVAL_STREAM, sample_noise
from common.train import session_config

v1 = tf.compat.v1

MODEL_VARIABLE_NAMES = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")
# tf.train.ExponentialMovingAverage's shadow of a variable: its name + "/ExponentialMovingAverage".
AVERAGE_SUFFIX = "/ExponentialMovingAverage"
# The warm-up pitfall looks at the fixed run after these steps (those below --steps) and after the last.
WARMUP_STEPS = (1, 10, 50, 200, 500, 1000, 2000)


# ------------------------------------------------------------------------------------ sizes
@dataclasses.dataclass(frozen=True)
class LabSize:
    steps: int  # the fixed run's length, and pitfall 1's
    batch_size: int
    train_images: int  # training images used (the first ones of MNIST's training set)
    eval_samples: int  # n of every evaluator number: generated images, real test images, floor, ceiling
    grid: int  # samples shown per grid (and the z whose pixels are compared)
    companions: int  # pitfall 4: other z in the batch around the 8 watched ones
    rebuilds: int  # pitfall 6
    steps_per_rebuild: int
    short_steps: int  # pitfall 3
    half_steps: int  # the variants compared with the fixed run at this step, over seeds where paths differ
    classifier_plan: TrainingPlan | None  # None: the evaluator's own (cached) MNIST classifier

    @property
    def warmup_steps(self) -> tuple[int, ...]:
        return tuple(step for step in WARMUP_STEPS if step < self.steps) + (self.steps,)


def lab_size(steps: int | None = None, quick: bool = False) -> LabSize:
    """The default size (~15-20 min on 2 idle cores) or --quick (well under a minute of training)."""
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if quick:
        length = steps or 12
        # A classifier of its own (1 epoch on 6000 images, cached apart): the smoke run checks plumbing.
        plan = TrainingPlan(epochs=1, limit=6000)
        return LabSize(length, 8, 512, 64, 16, 8, 3, 2, max(length // 3, 1), max(length // 2, 1), plan)
    length = steps or 500
    # A quarter of the run for the variants and their seeds: `--only` of a seeded section (three seeds of
    # two paths) stays under five minutes on 2 idle cores (at a third, 166 steps, sections 5 and 12 took
    # 320 s on a 2-core Xeon); every verdict there is judged recalibrated.
    # n = 2000: the real floor is FID ~3 and KID's standard error ~1e-3 there (docs/quality.md), small
    # against the differences the report draws conclusions from; 2000 images cost a few seconds each.
    return LabSize(length, 32, 60000, 2000, 64, 56, 30, 3, min(length, 100), max(length // 4, 1), None)


def lab_config(size: LabSize, seed: int) -> Config:
    # The lab builds its own graphs and sessions in float32 (session_config's default): say so.
    return Config(batch_size=size.batch_size, seed=seed, grid_size=size.grid, precision="float32")


# ------------------------------------------------------------------------------------ the variants
TrainGraph = tuple[tuple[Tower, ...], Losses, TrainOps]  # what dcgan_mnist.model.model_opt returns
VariantBuilder = Callable[[ArchSpec, Config, Inputs], TrainGraph]


class Variant(NamedTuple):
    """One way of building the training step, trained beside the fixed one from the same start."""

    name: str
    build: VariantBuilder
    steps: str = "steps"  # the LabSize field that sets the run's length


def fixed(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's own step: each optimizer waits for its own network's batch-norm updates.

    total_steps only shapes a decaying learning rate, and the lab's is constant (Config's default).
    """
    return model_opt(spec, config, inputs, total_steps=1)


FIXED = Variant("fixed", fixed)


# ------------------------------------------------------------------------------------ weights
class WeightLoader(NamedTuple):
    """One op that assigns fed values to variables: loading weights into a finalized graph."""

    feeds: dict[str, tf.Tensor]  # variable name -> placeholder
    load: tf.Operation

    def run(self, sess: v1.Session, weights: Mapping[str, np.ndarray]) -> None:
        missing = set(self.feeds) - set(weights)
        if missing:
            raise KeyError(f"no values for {sorted(missing)}")
        sess.run(self.load, {placeholder: weights[name] for name, placeholder in self.feeds.items()})


def model_variables(averages: bool = False) -> dict[str, tf.Variable]:
    """The networks' weights and moving statistics in the current graph (no optimizer slots); with
    `averages`, the tf.train.ExponentialMovingAverage shadows of them too (a variant may keep some)."""

    def wanted(name: str) -> bool:
        if averages and name.endswith(AVERAGE_SUFFIX):
            name = name[: -len(AVERAGE_SUFFIX)]
        return (
            name.startswith(("generator/", "discriminator/"))
            and name.rsplit("/", 1)[-1] in MODEL_VARIABLE_NAMES
        )

    return {variable.op.name: variable for variable in v1.global_variables() if wanted(variable.op.name)}


def weight_loader(variables: Mapping[str, tf.Variable]) -> WeightLoader:
    feeds, assigns = {}, []
    with tf.name_scope("weight_loader"):
        for name, variable in variables.items():
            feeds[name] = v1.placeholder(
                variable.dtype.base_dtype, variable.shape, name=name.replace("/", "_")
            )
            assigns.append(v1.assign(variable, feeds[name]))
    return WeightLoader(feeds, tf.group(*assigns))


# ------------------------------------------------------------------------------------ training graphs
def executed_ops(fetch: tf.Operation) -> set[tf.Operation]:
    """The ops one `sess.run(fetch)` runs: everything it reaches through inputs and control inputs."""
    seen: set[tf.Operation] = set()
    stack = [fetch]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(tensor.op for tensor in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def as_op(update: Any) -> tf.Operation:
    """An UPDATE_OPS entry as an op (assign_sub on a resource variable returns a variable-like value)."""
    return update if isinstance(update, tf.Operation) else update.op


def count_by_network(updates: Sequence[Any]) -> dict[str, int]:
    """Batch-norm update ops split by the network whose moving statistics they move."""
    counts = {"generator": 0, "discriminator": 0}
    for update in updates:
        counts["generator" if "/generator/" in f"/{as_op(update).name}" else "discriminator"] += 1
    return counts


class LabGraph(NamedTuple):
    variant: str
    graph: tf.Graph
    inputs: Inputs
    towers: tuple[Tower, ...]
    losses: Losses  # D's from the D update's tower, G's from the G update's, as the project logs them
    train: TrainOps  # .step: both updates, then global_step += 1; .g/d_update_ops: what each waits for
    variables: dict[str, tf.Variable]  # what a snapshot keeps: model_variables(averages=True)
    moving: dict[str, tf.Variable]  # the moving statistics, by variable name
    loader: WeightLoader
    init: tf.Operation
    update_ops_in_graph: int  # what batch_norm added to UPDATE_OPS
    step_ops: int  # ops one training step runs
    step_update_ops: dict[str, int]  # moving-statistics updates one training step runs, per network


def build_lab_graph(variant: Variant, spec: ArchSpec, config: Config, n_images: int) -> LabGraph:
    """A finalized training graph of one variant."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(config.seed)  # the initializers' seeds (the other runs load the fixed run's)
        inputs = model_inputs(spec.image_shape, n_images, config, spec.g_noise_batches)
        towers, losses, train = variant.build(spec, config, inputs)
        variables = model_variables(averages=True)
        # Not the weight averages: theirs start at the graph's own initial weights, forgotten within steps.
        loader = weight_loader(model_variables())
        init = tf.group(v1.global_variables_initializer(), name="init")
        update_ops = v1.get_collection(UPDATE_OPS)
    graph.finalize()
    executed = executed_ops(train.step)
    return LabGraph(
        variant.name,
        graph,
        inputs,
        towers,
        losses,
        train,
        variables,
        {
            name: variable
            for name, variable in variables.items()
            if "/moving_" in name and not name.endswith(AVERAGE_SUFFIX)
        },
        loader,
        init,
        len(update_ops),
        len(executed),
        count_by_network([update for update in update_ops if as_op(update) in executed]),
    )


# ------------------------------------------------------------------------------------ runs
class Trace(NamedTuple):
    """What a run recorded: per step losses and seconds; moving statistics; full weights at some steps."""

    losses: np.ndarray  # [steps, 4]: d_loss, g_loss, d_real, d_fake
    seconds: np.ndarray  # [steps]: wall time of each sess.run
    moving: dict[str, np.ndarray]  # variable name -> [steps + 1, channels] (row 0: before training)
    snapshots: dict[int, dict[str, np.ndarray]]  # step -> model variables


class LabRun:
    """One variant in its own Session, stepped from the outside so several runs can interleave."""

    def __init__(
        self,
        lab: LabGraph,
        images: np.ndarray,
        steps: int,
        snapshot_steps: Sequence[int] = (),
        initial: Mapping[str, np.ndarray] | None = None,
        record_moving: bool = True,
    ) -> None:
        self.lab, self.steps, self.record_moving = lab, steps, record_moving
        self.snapshot_steps = set(snapshot_steps) | {steps}
        self.sess = v1.Session(graph=lab.graph, config=session_config())
        self.sess.run(lab.init)
        self.sess.run(lab.inputs.load_dataset, {lab.inputs.dataset_feed: images})
        # The epoch's order (a function of seed and epoch): a fetch before the first step can read a batch.
        self.sess.run(lab.inputs.shuffle)
        if initial is not None:
            lab.loader.run(self.sess, initial)
        self.step_count = 0
        self.epoch: int | None = None
        self.losses: list[tuple[float, ...]] = []
        self.seconds: list[float] = []
        self.moving = {name: [value] for name, value in self.sess.run(lab.moving).items()}
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}
        if 0 in self.snapshot_steps:
            self.snapshots[0] = self.weights()

    def weights(self) -> dict[str, np.ndarray]:
        return self.sess.run(self.lab.variables)

    @property
    def done(self) -> bool:
        return self.step_count >= self.steps

    def step(self) -> None:
        epoch = self.step_count // self.lab.inputs.steps_per_epoch
        if epoch != self.epoch:
            self.sess.run(self.lab.inputs.shuffle)
            self.epoch = epoch
        tick = time.perf_counter()
        _, losses = self.sess.run([self.lab.train.step, self.lab.losses])
        self.seconds.append(time.perf_counter() - tick)
        self.losses.append(tuple(float(value) for value in losses))
        if self.record_moving:
            for name, value in self.sess.run(self.lab.moving).items():
                self.moving[name].append(value)
        self.step_count += 1
        if self.step_count in self.snapshot_steps:
            self.snapshots[self.step_count] = self.weights()

    def trace(self) -> Trace:
        return Trace(
            np.array(self.losses, np.float64).reshape(-1, 4),
            np.array(self.seconds),
            {name: np.stack(values) for name, values in self.moving.items()},
            self.snapshots,
        )

    def close(self) -> None:
        self.sess.close()


def train_together(runs: Mapping[str, LabRun], progress: bool, desc: str) -> dict[str, Trace]:
    """Step the runs round-robin until each has done its steps, so their step times share the machine."""
    total = sum(run.steps for run in runs.values())
    with tqdm(total=total, desc=desc, unit="step", disable=not progress, dynamic_ncols=True) as bar:
        while not all(run.done for run in runs.values()):
            for run in runs.values():
                if not run.done:
                    run.step()
                    bar.update(1)
    return {name: run.trace() for name, run in runs.items()}


def scaled(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.astype(np.float32) / 127.5 - 1.0


STATISTICS = ("moving", "recalibrated")  # the sampler's batch-norm statistics (common.sampling)


class Quality(NamedTuple):
    """The project's evaluator numbers (common.evaluate.quality) of one set of n samples."""

    fid: float
    kid: float
    kid_stderr: float
    class_entropy: float
    confident_share: float
    n: int


def as_quality(numbers: Mapping[str, Any]) -> Quality:
    return Quality(*(numbers[key] for key in Quality._fields))


class LabEvaluator:
    """common.evaluate's numbers for the lab's samples: the project's MNIST classifier, n real test images
    as the reference, the real-vs-real floor and the noise ceiling at the same n, and the project's own
    sampler-only Generator (common.sampling) in both statistics modes, fed a run's weights."""

    def __init__(
        self,
        spec: ArchSpec,
        config: Config,
        test_images: np.ndarray,
        n: int,
        data_dir: str | None,
        plan: TrainingPlan | None,
        seed: int = 0,
    ) -> None:
        self.n, self.seed = n, seed
        tick = time.perf_counter()
        self.classifier = load_classifier("mnist", data_dir, plan, progress=False)
        self.classifier_seconds = time.perf_counter() - tick  # loaded from the cache, or trained first
        try:
            # The same draws as common.evaluate.evaluate_run: reference subset, then the floor's two sets.
            rng = np.random.default_rng([seed, 5])
            reference = test_images[np.sort(rng.choice(len(test_images), n, replace=False))]
            floor_a, floor_b, _ = floor_sets(test_images, lambda: test_images[:0], n, rng)
            self.reference = self.features(reference)
            self.floor = self._quality(self.features(floor_a), self.features(floor_b))
            noise = self.features(noise_images(n, spec.image_shape, seed))
            self.noise_ceiling = self._quality(noise, self.reference)
            self.noise = sample_noise(config, n, seed, EVAL_STREAM)  # the evaluator's own noise stream
            self.generators = {stats: Generator(spec, config, stats) for stats in STATISTICS}
        except BaseException:
            self.classifier.close()
            raise
        self.accuracy = self.classifier.test_accuracy

    def features(self, images_uint8: np.ndarray) -> Features:
        return image_features(self.classifier, images_uint8)

    def _quality(self, generated: Features, reference: Features) -> Quality:
        return as_quality(quality(generated, reference, seed=self.seed))

    def of_images(self, images_uint8: np.ndarray) -> Quality:
        """The numbers of n generated images (uint8) against the reference."""
        return self._quality(self.features(images_uint8), self.reference)

    def generator(self, weights: Mapping[str, np.ndarray], stats: str) -> Generator:
        """The project's sampler with G's weights from `weights`, its statistics set as `stats` says."""
        generator = self.generators[stats]
        generator.load({name: value for name, value in weights.items() if name.startswith("generator/")})
        return generator

    def of_weights(self, weights: Mapping[str, np.ndarray], stats: str) -> Quality:
        """The numbers of the evaluator's n noise vectors through G with these weights and statistics."""
        return self.of_images(self.generator(weights, stats).images(self.noise))

    def recalibrated(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`weights` with G's moving statistics replaced by the recalibrated ones (precise BN)."""
        return {**weights, **self.generator(weights, "recalibrated").statistics()}

    def close(self) -> None:
        for generator in getattr(self, "generators", {}).values():
            generator.close()
        self.classifier.close()


class Runs(NamedTuple):
    """Every variant trained, and what the measurements compare them with."""

    size: LabSize
    config: Config
    spec: ArchSpec
    graphs: dict[str, LabGraph]
    traces: dict[str, Trace]
    train_images: np.ndarray  # uint8
    evaluator: LabEvaluator
    seconds: float
    qualities: dict[tuple, Quality]  # cache: (run, step, statistics) or (run, seed, step, statistics)
    variants: dict[str, Variant]  # every run trained, by name (FIXED included): what over_seeds retrains
    seeds: int  # how many seeds a comparison of two training paths uses (over_seeds)
    seeded: dict[tuple[str, int, int], dict[str, np.ndarray]]  # cache: (run, seed, steps) -> weights
    progress: bool = False

    def weights(self, run: str = "fixed", step: int | None = None) -> dict[str, np.ndarray]:
        """A run's model variables after `step` (default: the fixed run's length, its last step)."""
        return self.traces[run].snapshots[self.size.steps if step is None else step]

    def quality(self, run: str, stats: str, step: int | None = None) -> Quality:
        """The evaluator's numbers of a run's generator after `step`, sampled with `stats` statistics."""
        step = self.size.steps if step is None else step
        key = (run, step, stats)
        if key not in self.qualities:
            self.qualities[key] = self.evaluator.of_weights(self.weights(run, step), stats)
        return self.qualities[key]

    def both(self, run: str, step: int | None = None) -> dict[str, Quality]:
        """A run's numbers with the moving averages and with recalibrated statistics."""
        return {stats: self.quality(run, stats, step) for stats in STATISTICS}

    def samples(self, run: str, stats: str, noise: np.ndarray, step: int | None = None) -> np.ndarray:
        """A run's samples in [-1, 1] from the project's sampler with `stats` statistics (figures)."""
        return scaled(self.evaluator.generator(self.weights(run, step), stats).images(noise))

    def noise(self, count: int | None = None, seed_offset: int = 0) -> np.ndarray:
        """The sampler's noise: a grid of it by default; another draw with another seed_offset."""
        count = self.size.grid if count is None else count
        return sample_noise(self.config, count, self.config.seed + seed_offset)

    def losses(self, names: Sequence[str], steps: int) -> dict[str, np.ndarray]:
        """The first `steps` rows of each run's (d_loss, g_loss, d_real, d_fake)."""
        return {name: self.traces[name].losses[:steps] for name in names}

    def over_seeds(
        self, names: Sequence[str], steps: int, stats: Mapping[str, str] | None = None
    ) -> dict[str, list[Quality]]:
        """Each run's numbers after `steps`, at seeds 0 .. seeds-1 (seed 0: the runs trained), sampled
        with recalibrated statistics unless `stats` (run -> statistics) says otherwise.

        A seed sets the initial weights, the data order and the noise, so the spread over seeds is the
        spread of the training path, which the evaluator's standard error does not count. The runs of one
        seed train together from that seed's initial weights; each (run, seed, steps) is trained once.
        """
        for seed in range(1, self.seeds):
            missing = [name for name in names if (name, seed, steps) not in self.seeded]
            if not missing:
                continue
            config = self.config.replace(seed=self.config.seed + seed)
            graphs = {
                name: build_lab_graph(self.variants[name], self.spec, config, len(self.train_images))
                for name in dict.fromkeys(["fixed", *missing])
            }
            runs: dict[str, LabRun] = {}
            try:
                # The fixed run of this seed sets the initial weights; trained only if not yet (0 steps).
                fixed_steps = steps if "fixed" in missing else 0
                runs["fixed"] = LabRun(graphs["fixed"], self.train_images, fixed_steps, record_moving=False)
                initial = runs["fixed"].weights()
                for name in missing:
                    if name != "fixed":
                        runs[name] = LabRun(
                            graphs[name], self.train_images, steps, (), initial, record_moving=False
                        )
            except BaseException:
                for run in runs.values():
                    run.close()
                raise
            traces = train_runs(runs, self.progress, f"seed {seed}: {', '.join(runs)}")
            for name in missing:
                self.seeded[(name, seed, steps)] = traces[name].snapshots[steps]
        result = {}
        for name in names:
            how = (stats or {}).get(name, "recalibrated")
            result[name] = [self.quality(name, how, steps)]
            for seed in range(1, self.seeds):
                key = (name, seed, steps, how)
                if key not in self.qualities:
                    self.qualities[key] = self.evaluator.of_weights(self.seeded[(name, seed, steps)], how)
                result[name].append(self.qualities[key])
        return result

    def close(self) -> None:
        self.evaluator.close()


def train_runs(
    runs: Mapping[str, LabRun], progress: bool, desc: str = "training the variants"
) -> dict[str, Trace]:
    """Step the runs together and close their sessions, whatever happens."""
    try:
        return train_together(runs, progress, desc)
    finally:
        for run in runs.values():
            run.close()


def train_variants(
    spec: ArchSpec,
    size: LabSize,
    train_images: np.ndarray,
    test_images: np.ndarray,
    variants: Sequence[Variant],
    seed: int = 0,
    progress: bool = True,
    data_dir: str | None = None,
    fixed_steps: int | None = None,
    seeds: int = 3,
) -> Runs:
    """Train the fixed step and every variant from the same initial weights on the same batches, interleaved.

    The runs are stepped round-robin, so their step times share the machine alike. fixed_steps: the fixed
    run's length (default size.steps; `--only` trains it no longer than its sections need). seeds: how
    many seeds `Runs.over_seeds` trains a comparison of two training paths at.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    fixed_length = size.steps if fixed_steps is None else fixed_steps
    started = time.perf_counter()
    config = lab_config(size, seed)
    images = train_images[: size.train_images]
    everything = (FIXED, *variants)
    graphs = {variant.name: build_lab_graph(variant, spec, config, len(images)) for variant in everything}
    lengths = {variant.name: getattr(size, variant.steps) for variant in everything}
    # The fixed run is the reference: keep its weights where the warm-up pitfall and each variant look.
    lengths["fixed"] = fixed_length
    snapshots = [step for step in (*size.warmup_steps, *lengths.values()) if step <= fixed_length]
    runs: dict[str, LabRun] = {}
    try:
        runs["fixed"] = LabRun(graphs["fixed"], images, fixed_length, snapshots)
        initial = runs["fixed"].weights()
        for variant in variants:
            runs[variant.name] = LabRun(graphs[variant.name], images, lengths[variant.name], (), initial)
    except BaseException:
        for run in runs.values():
            run.close()
        raise
    traces = train_runs(runs, progress)
    evaluator = LabEvaluator(
        spec, config, test_images, size.eval_samples, data_dir, size.classifier_plan, seed
    )
    by_name = {variant.name: variant for variant in everything}
    seconds = time.perf_counter() - started
    return Runs(
        size, config, spec, graphs, traces, images, evaluator, seconds, {}, by_name, seeds, {}, progress
    )


# ------------------------------------------------------------------------------------ the probe
class ProbeInputs(NamedTuple):
    noise: tf.Tensor  # placeholder [None, noise_dim]
    real: tf.Tensor  # placeholder [None, H, W, C] in [-1, 1]


# A pitfall's own tensors in a probe graph, built from (spec, config, the probe's placeholders).
ProbePart = Callable[[ArchSpec, Config, ProbeInputs], Any]


class ProbeGraph(NamedTuple):
    """One finalized graph that loads a run's weights and looks at them the ways a pitfall needs."""

    graph: tf.Graph
    inputs: ProbeInputs
    inference: tf.Tensor  # the project's sampler: BN on moving statistics, no dropout
    batch_mode: tf.Tensor  # G with training=True (BN on the batch's statistics), dropout off
    part: Any  # what the pitfall's ProbePart built (None without one)
    loader: WeightLoader
    init: tf.Operation


def build_probe(spec: ArchSpec, config: Config, part: ProbePart | None = None) -> ProbeGraph:
    """Both networks as a sampling program has them, and `part`'s tensors on the same variables."""
    no_dropout = config.replace(keep_prob=1.0)
    graph = tf.Graph()
    with graph.as_default():
        sampler = build_sampler(spec, config, reuse=False)
        real = v1.placeholder(tf.float32, [None, *spec.image_shape], name="real")
        inputs = ProbeInputs(sampler.noise, real)
        with tf.name_scope("batch_mode"):
            batch_mode = call_network(
                spec.generator, "generator", True, inputs.noise, True, no_dropout, Layers()
            )
        with tf.name_scope("d_inference"):
            # D as an evaluator calls it: creates D's variables, for the loader and for every part to reuse.
            call_network(spec.discriminator, "discriminator", False, real, False, config, Layers())
        built = None if part is None else part(spec, config, inputs)
        loader = weight_loader(model_variables())
        init = v1.global_variables_initializer()
    graph.finalize()
    return ProbeGraph(graph, inputs, sampler.images, batch_mode, built, loader, init)


class Probe:
    """A Session on a probe graph, with some run's weights loaded."""

    def __init__(self, graph: ProbeGraph) -> None:
        self.graph = graph
        self.part = graph.part
        self.sess = v1.Session(graph=graph.graph, config=session_config())
        self.sess.run(graph.init)

    def load(self, weights: Mapping[str, np.ndarray]) -> Probe:
        self.graph.loader.run(self.sess, weights)
        return self

    def generate(
        self, images: tf.Tensor, noise: np.ndarray, feed: Mapping[tf.Tensor, Any] | None = None
    ) -> np.ndarray:
        """`images` generated from `noise` (and whatever else `feed` gives)."""
        return self.sess.run(images, {self.graph.inputs.noise: noise, **(feed or {})})

    def inference(self, noise: np.ndarray) -> np.ndarray:
        """The project's sampler."""
        return self.generate(self.graph.inference, noise)

    def batch_mode(self, noise: np.ndarray) -> np.ndarray:
        """G as a training step runs it: BN on this noise batch's statistics (dropout off)."""
        return self.generate(self.graph.batch_mode, noise)

    def generate_uint8(
        self,
        images: tf.Tensor,
        noise: np.ndarray,
        feed: Mapping[tf.Tensor, Any] | None = None,
        batch: int = 500,
    ) -> np.ndarray:
        """`generate` in batches of `batch`, as 8-bit images (what the evaluator takes)."""
        chunks = [self.generate(images, noise[i : i + batch], feed) for i in range(0, len(noise), batch)]
        return to_levels(np.concatenate(chunks)).astype(np.uint8)

    def run(self, fetches: Any, feed: Mapping[tf.Tensor, Any] | None = None) -> Any:
        return self.sess.run(fetches, feed)

    def close(self) -> None:
        self.sess.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_probe(runs: Runs, part: ProbePart | None = None) -> Probe:
    """A probe of the runs' architecture (with `part`, if given), in a Session of its own."""
    return Probe(build_probe(runs.spec, runs.config, part))


# ------------------------------------------------------------------------------------ measurements
def to_levels(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> 8-bit levels as the sampler rounds them (float, for differences)."""
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255)


def level_difference(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference in 8-bit levels."""
    difference = np.abs(to_levels(first) - to_levels(second))
    return float(difference.max()), float(difference.mean())


def moving_change(trace: Trace) -> float:
    """Largest change of any moving statistic from its initial value over the run."""
    return max(float(np.abs(values[-1] - values[0]).max()) for values in trace.moving.values())


def weights_difference(first: Mapping[str, np.ndarray], second: Mapping[str, np.ndarray]) -> float:
    """Largest absolute difference between two runs' trained weights (moving statistics excluded)."""
    return max(float(np.abs(first[name] - second[name]).max()) for name in first if "/moving_" not in name)


def layer_means(trace: Trace, network: str, statistic: str) -> dict[str, np.ndarray]:
    """Per batch-norm layer of `network`: the channel mean of moving_mean or moving_variance per step."""
    return {
        name.split("/")[1]: values.mean(axis=1)
        for name, values in sorted(trace.moving.items())
        if name.startswith(f"{network}/") and name.endswith(statistic)
    }


def late_means(losses: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per run: the mean of (d_loss, g_loss, d_real, d_fake) over the last quarter of its steps."""
    return {name: values[-max(len(values) // 4, 1) :].mean(axis=0) for name, values in losses.items()}
