"""The lab bench: the notebook's training step built right and built wrong, trained side by side.

Every variant is the notebook's `g_then_d` step (the G update, then the D update on the updated G's fakes)
on the project's own pieces (`build_tower`, `gan_losses`, the layers); only the wiring of the batch-norm
updates or of `training` differs. The broken variants are written out here, small, because the broken code
is the lesson: the report prints their source next to the fix.

All variants start from the same initial weights and see the same batches and noise (both are functions
of the seed and the step), so any difference between two runs comes from the one line that differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.config import Config
from common.gan import (
    FIRST_TOWER_STREAM,
    SECOND_TOWER_STREAM,
    ArchSpec,
    Inputs,
    Losses,
    Tower,
    build_sampler,
    build_tower,
    build_train_ops,
    call_network,
    gan_losses,
    model_inputs,
    network_update_ops,
)
from common.layers import UPDATE_OPS, SeedStream
from common.train import session_config

v1 = tf.compat.v1

MODEL_VARIABLE_NAMES = ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")


# ------------------------------------------------------------------------------------ the variants
class LabTrainOps(NamedTuple):
    towers: tuple[Tower, ...]
    losses: Losses  # D's from the D update's tower, G's from the G update's, as the project logs them
    step: tf.Operation  # one training step: both updates, then global_step += 1
    g_update_ops: list  # the batch-norm updates the G train op waits for
    d_update_ops: list
    captured: int | None = None  # pitfall 3: how many update ops the collection held when it was read


# A train op maker: (loss, network, its tower) -> (train op, the update ops it waits for).
TrainOpMaker = Callable[[tf.Tensor, str, Tower], tuple[tf.Operation, list]]
TowerBuilder = Callable[[ArchSpec, Config, Inputs, str, int, bool], Tower]


def adam(loss: tf.Tensor, network: str, config: Config) -> tf.Operation:
    """Adam over one network's trainable variables, as the notebook wrote it (no dependencies)."""
    variables = v1.trainable_variables(f"{network}/")
    optimizer = v1.train.AdamOptimizer(config.learning_rate, beta1=config.beta1, name=f"{network}_adam")
    return optimizer.minimize(loss, var_list=variables, name=f"{network}_train")


def g_then_d(
    spec: ArchSpec, config: Config, inputs: Inputs, train_op: TrainOpMaker, tower: TowerBuilder
) -> LabTrainOps:
    """The notebook's step as `common.gan.build_train_ops` builds it; the train ops are the caller's."""
    first = tower(spec, config, inputs, "step", FIRST_TOWER_STREAM, False)
    g_train, g_updates = train_op(first.losses.g_loss, "generator", first)
    with tf.control_dependencies([g_train]):
        second = tower(spec, config, inputs, "second_step", SECOND_TOWER_STREAM, True)
    d_train, d_updates = train_op(second.losses.d_loss, "discriminator", second)
    with tf.control_dependencies([d_train]):
        step = v1.assign_add(inputs.global_step, 1, name="train_step").op
    d = second.losses
    losses = Losses(d.d_loss, first.losses.g_loss, d.d_real, d.d_fake)
    return LabTrainOps((first, second), losses, step, g_updates, d_updates)


def fixed(spec: ArchSpec, config: Config, inputs: Inputs) -> LabTrainOps:
    """The project's own step (common.gan.build_train_ops): each optimizer waits for its own updates."""
    towers, losses, train = build_train_ops(spec, config, inputs, total_steps=1)
    return LabTrainOps(towers, losses, train.step, train.g_update_ops, train.d_update_ops)


def without_update_deps(spec: ArchSpec, config: Config, inputs: Inputs) -> LabTrainOps:
    """Pitfall 1."""

    def train_op(loss, network, tower):
        return adam(loss, network, config), []  # batch_norm filled UPDATE_OPS; nothing ever runs it

    return g_then_d(spec, config, inputs, train_op, build_tower)


def one_update_collection(spec: ArchSpec, config: Config, inputs: Inputs) -> LabTrainOps:
    """Pitfall 2: the notebook's choice."""

    def train_op(loss, network, tower):
        update_ops = v1.get_collection(UPDATE_OPS)  # everything built so far: G's *and* D's
        with tf.control_dependencies(update_ops):
            return adam(loss, network, config), update_ops

    return g_then_d(spec, config, inputs, train_op, build_tower)


def captured_before_layers(spec: ArchSpec, config: Config, inputs: Inputs) -> LabTrainOps:
    """Pitfall 3."""
    update_ops = v1.get_collection(UPDATE_OPS)  # read now, before any batch_norm exists: []
    with tf.control_dependencies(update_ops):
        ops = g_then_d(
            spec,
            config,
            inputs,
            lambda loss, network, tower: (adam(loss, network, config), update_ops),
            build_tower,
        )
    return ops._replace(captured=len(update_ops))


def tower_in_inference_mode(
    spec: ArchSpec, config: Config, inputs: Inputs, scope: str, stream: int, reuse: bool
) -> Tower:
    """Pitfall 5: G(z), D(x), D(G(z)) with training=False: BN on the moving statistics, no dropout."""
    with tf.name_scope(scope):
        fake = call_network(spec.generator, "generator", reuse, inputs.noise, False, config, None)
        real_logits = call_network(
            spec.discriminator, "discriminator", reuse, inputs.real_images, False, config, None
        )
        fake_logits = call_network(spec.discriminator, "discriminator", True, fake, False, config, None)
        losses = gan_losses(real_logits, fake_logits, config.label_smoothing)
    return Tower(scope, fake, real_logits, fake_logits, losses)


def training_false_in_training(spec: ArchSpec, config: Config, inputs: Inputs) -> LabTrainOps:
    """Pitfall 5: the project's per-network update ops, but towers built with training=False."""

    def train_op(loss, network, tower):
        update_ops = network_update_ops(tower, network, config)  # [] : training=False adds none
        with tf.control_dependencies(update_ops):
            return adam(loss, network, config), update_ops

    return g_then_d(spec, config, inputs, train_op, tower_in_inference_mode)


VARIANTS: dict[str, Callable[[ArchSpec, Config, Inputs], LabTrainOps]] = {
    "fixed": fixed,
    "without_update_deps": without_update_deps,
    "one_update_collection": one_update_collection,
    "captured_before_layers": captured_before_layers,
    "training_false_in_training": training_false_in_training,
}


# ------------------------------------------------------------------------------------ graphs and runs
class WeightLoader(NamedTuple):
    """One op that assigns fed values to variables: loading weights into a finalized graph."""

    feeds: dict[str, tf.Tensor]  # variable name -> placeholder
    load: tf.Operation

    def run(self, sess: v1.Session, weights: Mapping[str, np.ndarray]) -> None:
        feed = {ph: weights[name] for name, ph in self.feeds.items() if name in weights}
        missing = set(self.feeds) - set(weights)
        if missing:
            raise KeyError(f"no values for {sorted(missing)}")
        sess.run(self.load, feed)


def model_variables() -> dict[str, tf.Variable]:
    """The networks' weights and moving statistics in the current graph (no optimizer slots)."""
    return {
        v.op.name: v
        for v in v1.global_variables()
        if v.op.name.startswith(("generator/", "discriminator/"))
        and v.op.name.rsplit("/", 1)[-1] in MODEL_VARIABLE_NAMES
    }


def weight_loader(variables: Mapping[str, tf.Variable]) -> WeightLoader:
    feeds, assigns = {}, []
    with tf.name_scope("weight_loader"):
        for name, var in variables.items():
            feeds[name] = v1.placeholder(var.dtype.base_dtype, var.shape, name=name.replace("/", "_"))
            assigns.append(v1.assign(var, feeds[name]))
    return WeightLoader(feeds, tf.group(*assigns))


def executed_ops(fetch: tf.Operation) -> set[tf.Operation]:
    """The ops one `sess.run(fetch)` runs: everything it reaches through inputs and control inputs."""
    seen: set[tf.Operation] = set()
    stack = [fetch]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def as_op(update) -> tf.Operation:
    """An UPDATE_OPS entry as an op (assign_sub on a resource variable returns a variable-like value)."""
    return update if isinstance(update, tf.Operation) else update.op


def count_by_network(updates) -> dict[str, int]:
    """Batch-norm update ops split by the network whose moving statistics they move."""
    counts = {"generator": 0, "discriminator": 0}
    for update in updates:
        counts["generator" if "/generator/" in f"/{as_op(update).name}" else "discriminator"] += 1
    return counts


class LabGraph(NamedTuple):
    variant: str
    graph: tf.Graph
    inputs: Inputs
    train: LabTrainOps
    variables: dict[str, tf.Variable]
    moving: dict[str, tf.Variable]  # the moving statistics, by variable name
    loader: WeightLoader
    init: tf.Operation
    update_ops_in_graph: int  # what batch_norm added to UPDATE_OPS
    step_ops: int  # ops one training step runs
    step_update_ops: dict[str, int]  # moving-statistics updates one training step runs, per network


def build_lab_graph(variant: str, spec: ArchSpec, config: Config, n_images: int) -> LabGraph:
    """A finalized training graph of one variant."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(config.seed)  # the initializers' seeds (the other runs load the fixed run's)
        inputs = model_inputs(spec.image_shape, n_images, config)
        train = VARIANTS[variant](spec, config, inputs)
        variables = model_variables()
        loader = weight_loader(variables)
        init = tf.group(v1.global_variables_initializer(), name="init")
        update_ops = v1.get_collection(UPDATE_OPS)
    graph.finalize()
    executed = executed_ops(train.step)
    return LabGraph(
        variant,
        graph,
        inputs,
        train,
        variables,
        {k: v for k, v in variables.items() if "/moving_" in k},
        loader,
        init,
        len(update_ops),
        len(executed),
        count_by_network([u for u in update_ops if as_op(u) in executed]),
    )


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
        snapshot_steps: tuple[int, ...] = (),
        initial: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.lab, self.steps = lab, steps
        self.snapshot_steps = set(snapshot_steps) | {steps}
        self.sess = v1.Session(graph=lab.graph, config=session_config())
        self.sess.run(lab.init)
        self.sess.run(lab.inputs.load_dataset, {lab.inputs.dataset_feed: images})
        if initial is not None:
            lab.loader.run(self.sess, initial)
        self.step_count = 0
        self.epoch = None
        self.losses: list[tuple[float, ...]] = []
        self.seconds: list[float] = []
        self.moving = {k: [v] for k, v in self.sess.run(lab.moving).items()}
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
        _, losses = self.sess.run([self.lab.train.step, self.lab.train.losses])
        self.seconds.append(time.perf_counter() - tick)
        self.losses.append(tuple(float(x) for x in losses))
        for name, value in self.sess.run(self.lab.moving).items():
            self.moving[name].append(value)
        self.step_count += 1
        if self.step_count in self.snapshot_steps:
            self.snapshots[self.step_count] = self.weights()

    def trace(self) -> Trace:
        return Trace(
            np.array(self.losses, np.float64).reshape(-1, 4),
            np.array(self.seconds),
            {k: np.stack(v) for k, v in self.moving.items()},
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


# ------------------------------------------------------------------------------------ the probe
class Probe(NamedTuple):
    """One graph that loads a run's weights and looks at them every way the pitfalls need."""

    graph: tf.Graph
    noise: tf.Tensor  # placeholder [None, noise_dim]
    inference: tf.Tensor  # the project's sampler: BN on moving statistics, no dropout
    batch_mode: tf.Tensor  # G with training=True (BN on the batch's statistics), dropout off
    dropout_on: tf.Tensor  # BN on moving statistics, dropout left on (the notebook's sampler)
    dropout_seed: tf.Tensor  # [2] int64 placeholder: the dropout masks' seed
    recalibrate: tf.Operation  # sets G's moving statistics to the statistics of the fed noise batch
    real: tf.Tensor  # placeholder [None, H, W, C] in [-1, 1]
    fake: tf.Tensor
    d_separate: Losses  # D called on the real batch and on the fake batch
    d_concat: Losses  # D called once on both, split afterwards
    d_features: dict[str, tf.Tensor]  # D's activations entering its first batch norm, per way of calling
    variables: dict[str, tf.Variable]
    loader: WeightLoader
    init: tf.Operation
    savers: dict[str, v1.train.Saver]  # pitfall 10: label -> saver


def build_probe(spec: ArchSpec, config: Config) -> Probe:
    no_dropout = config.replace(keep_prob=1.0)
    graph = tf.Graph()
    with graph.as_default():
        sampler = build_sampler(spec, config, reuse=False)
        noise = sampler.noise
        with tf.name_scope("batch_mode"):
            batch_mode = call_network(spec.generator, "generator", True, noise, True, no_dropout, None)
        with tf.name_scope("dropout_on"):
            seed = v1.placeholder(tf.int64, [2], name="seed")
            # quirks=original makes the notebook generator keep its dropout with training=False.
            dropout_on = call_network(
                spec.generator,
                "generator",
                True,
                noise,
                False,
                config.replace(quirks="original"),
                SeedStream(seed),
            )
        with tf.name_scope("recalibrate"):
            # momentum 0: one pass sets each moving statistic to the batch's own statistic.
            call_network(
                spec.generator, "generator", True, noise, True, no_dropout.replace(bn_momentum=0.0), None
            )
            recalibrate = tf.group(*v1.get_collection(UPDATE_OPS, scope="recalibrate/"))
        real = v1.placeholder(tf.float32, [None, *spec.image_shape], name="real")
        fake = v1.placeholder(tf.float32, [None, *spec.image_shape], name="fake")
        with tf.name_scope("d_separate"):
            real_logits = call_network(
                spec.discriminator, "discriminator", False, real, True, no_dropout, None
            )
            fake_logits = call_network(
                spec.discriminator, "discriminator", True, fake, True, no_dropout, None
            )
            d_separate = gan_losses(real_logits, fake_logits, config.label_smoothing)
        with tf.name_scope("d_concat"):
            logits = call_network(
                spec.discriminator, "discriminator", True, tf.concat([real, fake], 0), True, no_dropout, None
            )
            real_logits, fake_logits = tf.split(logits, [tf.shape(real)[0], tf.shape(fake)[0]])
            d_concat = gan_losses(real_logits, fake_logits, config.label_smoothing)
        variables = model_variables()
        loader = weight_loader(variables)
        init = v1.global_variables_initializer()
        savers = {
            "Saver(var_list=trainable_variables())": v1.train.Saver(
                var_list=v1.trainable_variables(), name="trainable_saver"
            ),
            "Saver()": v1.train.Saver(name="saver"),  # every global variable: here, the networks'
        }
    graph.finalize()
    # The input of D's first batch norm (conv2 + bias), for each call: the statistics BN sees.
    features = {
        "separate_real": "d_separate/discriminator/conv2/BiasAdd:0",
        "separate_fake": "d_separate/discriminator_1/conv2/BiasAdd:0",
        "concat": "d_concat/discriminator/conv2/BiasAdd:0",
    }
    d_features = {k: graph.get_tensor_by_name(v) for k, v in features.items()}
    return Probe(
        graph,
        noise,
        sampler.images,
        batch_mode,
        dropout_on,
        seed,
        recalibrate,
        real,
        fake,
        d_separate,
        d_concat,
        d_features,
        variables,
        loader,
        init,
        savers,
    )


class ProbeSession:
    """A Session on a probe with some run's weights loaded."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.sess = v1.Session(graph=probe.graph, config=session_config())
        self.sess.run(probe.init)

    def load(self, weights: Mapping[str, np.ndarray]) -> ProbeSession:
        self.probe.loader.run(self.sess, weights)
        return self

    def generate(
        self, tensor: tf.Tensor, noise: np.ndarray, seed: tuple[int, int] | None = None
    ) -> np.ndarray:
        feed = {self.probe.noise: noise}
        if seed is not None:
            feed[self.probe.dropout_seed] = np.array(seed, np.int64)
        return self.sess.run(tensor, feed)

    def recalibrate(self, noise: np.ndarray) -> None:
        self.sess.run(self.probe.recalibrate, {self.probe.noise: noise})

    def run(self, fetches, feed):
        return self.sess.run(fetches, feed)

    def close(self) -> None:
        self.sess.close()

    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
