"""The pieces a model file's training step is made of, and the graph around it.

A model file (dcgan_mnist/model.py) writes the notebook's step itself: `model_inputs` (the placeholders,
fed by default from the in-graph data: common/pipeline.py), `model_loss` (one forward pass: a `Tower`)
and `model_opt` (the Adam train ops under their UPDATE_OPS). This module holds the named tuples they
return, the one function that calls a network in its variable scope, the step's end (`count_step`) and
`build_training_graph`, which asks the architecture's module for its step, adds the summaries and
savers, and finalizes the graph.

Graph construction is pure: each function takes tensors and returns a named tuple of tensors and ops.
The only side effect is the one TF1 itself has: batch norm adds its moving-average updates to
UPDATE_OPS, and the optimizers pick them up from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import tensorflow as tf

from common.config import Config
from common.ingredients import (
    generator_average,
    learning_rates,
    network_layers,
    recipe_losses,
    split_code_head,
)
from common.layers import FLOAT32_IMPL, UPDATE_OPS, Layers, Training
from common.losses import Losses, gan_losses
from common.pipeline import StepData, step_batches
from common.speed import op_determinism
from common.streams import FIRST_TOWER_STREAM, SECOND_TOWER_STREAM, draw_latent, tower_layers

if TYPE_CHECKING:
    from common.architecture import ArchSpec, Network
    from common.layers import LayerImpl

v1 = tf.compat.v1


class Inputs(NamedTuple):
    """The notebook's two placeholders, and the in-graph data that feeds them by default."""

    real_images: tf.Tensor  # [None, H, W, C] in [-1, 1]; defaults to this step's batch, sliced in-graph
    noise: tf.Tensor  # [None, latent_dim]; defaults to this step's z (noise, code), drawn from (seed, step)
    data: StepData

    @property
    def global_step(self) -> tf.Variable:
        return self.data.global_step

    @property
    def epoch(self) -> tf.Tensor:
        return self.data.epoch

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    @property
    def dataset_feed(self) -> tf.Tensor:
        return self.data.dataset_feed

    @property
    def load_dataset(self) -> tf.Operation:
        return self.data.load_dataset

    @property
    def shuffle(self) -> tf.Operation:
        return self.data.shuffle


class Tower(NamedTuple):
    """One forward pass of G and D for a training step, built inside its own name scope."""

    scope: str
    fake_images: tf.Tensor
    d_logits_real: tf.Tensor
    d_logits_fake: tf.Tensor
    losses: Losses


class TrainOps(NamedTuple):
    g_train: tf.Operation
    d_train: tf.Operation
    step: tf.Operation  # both updates in the architecture's order, then global_step += 1: one sess.run
    learning_rate: tf.Tensor
    g_update_ops: list  # the UPDATE_OPS each optimizer waits for: shown by tests and the pitfalls lab
    d_update_ops: list


class Step(NamedTuple):
    """What a model file's `model_opt` returns: its forward passes, the losses a step reports (D's from
    the D update's pass, G's from the G update's) and the train ops."""

    towers: tuple[Tower, ...]
    losses: Losses
    train: TrainOps


def call_network(
    net: Network, scope: str, reuse: bool, x: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
    """net(x) in variable scope `scope` ("generator" or "discriminator"), with the layers the config's
    options ask for (common.ingredients.network_layers: spectral norm in D, resize upsampling in G)."""
    layers = network_layers(scope, layers, training, config)
    with v1.variable_scope(scope, reuse=reuse):
        return net(x, training, config, layers)


def update_ops_scope(tower: Tower, network: str | None, config: Config) -> str:
    """The UPDATE_OPS scope a network's train op waits for: its own network's updates from its own tower.

    The notebook put both optimizers under one dependency on the whole collection, which held the updates
    of its one forward pass, so each of its two sess.run calls ran G's and D's: --quirks original (or
    network None) reproduces that (6 G + 8 D per tower for the notebook's networks; 28 a step).
    """
    if config.original_quirks or network is None:
        return f"{tower.scope}/"
    return f"{tower.scope}/{network}"


def network_update_ops(tower: Tower, network: str | None, config: Config) -> list:
    """The batch-norm updates a train op must wait for: UPDATE_OPS under update_ops_scope."""
    return v1.get_collection(UPDATE_OPS, scope=update_ops_scope(tower, network, config))


def adam_train_op(
    loss: tf.Tensor, network: str, update_ops: list, learning_rate: tf.Tensor, config: Config
) -> tf.Operation:
    """Adam over one network's variables, under a control dependency on its batch-norm updates."""
    variables = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope=f"{network}/")
    with tf.control_dependencies(update_ops):
        optimizer = v1.train.AdamOptimizer(learning_rate, beta1=config.beta1, name=f"{network}_adam")
        return optimizer.minimize(loss, var_list=variables, name=f"{network}_train")


def count_step(
    inputs: Inputs,
    config: Config,
    towers: tuple[Tower, ...],
    losses: Losses,
    g_train: tf.Operation,
    d_train: tf.Operation,
    last: tf.Operation,
    learning_rate: tf.Tensor,
    update_ops: tuple[list, list],
) -> Step:
    """The end of every step: after `last` (the step's last update), G's weight average where the recipe
    keeps one (common.ingredients.generator_average), then global_step += 1."""
    last = generator_average(config, inputs.global_step, last)
    with tf.control_dependencies([last]):
        step = v1.assign_add(inputs.global_step, 1, name="train_step").op
    return Step(towers, losses, TrainOps(g_train, d_train, step, learning_rate, *update_ops))


# ---------------------------------------------------------------------------------- a step, generically
# The write-ups of dcgan_mnist/ and the pitfalls lab build their steps from these three; the notebooks'
# model files write theirs out (dcgan_mnist/model.py), op for op the same as these with g_then_d.


def generic_inputs(
    image_shape: tuple[int, int, int], n_images: int, config: Config, noise_batches: int = 1
) -> Inputs:
    """model_inputs for `image_shape`: the two placeholders over the in-graph data, with
    noise_batches x batch_size noise vectors a step (ArchSpec.g_noise_batches)."""
    global_step = v1.train.get_or_create_global_step()
    with tf.name_scope("inputs"):
        data = step_batches(global_step, image_shape, n_images, config)
        real_images = v1.placeholder_with_default(data.batch, [None, *image_shape], name="real_images")
        z = draw_latent(config.batch_size * noise_batches, config, global_step)
        noise = v1.placeholder_with_default(z, [None, config.latent_dim], name="noise")
    return Inputs(real_images, noise, data)


def forward_pass(
    generator: Network,
    discriminator: Network,
    inputs: Inputs,
    config: Config,
    scope: str,
    stream: int,
    reuse: bool,
    impl: LayerImpl = FLOAT32_IMPL,
    noise: tf.Tensor | None = None,
    d_batches: str = "separate",
    smooth_g_target: bool = True,
) -> Tower:
    """model_loss for two networks: G(z), D(x), D(G(z)) in training mode and the sigmoid cross-entropy
    losses (common.losses.gan_losses) with the recipe's loss ingredients, in name scope `scope`.

    d_batches "separate" calls D on the real batch and on the fake batch; "concat" once on both, split
    afterwards (one set of batch statistics). noise: G's input (default inputs.noise).
    """
    with tf.name_scope(scope):
        layers = tower_layers(config, inputs.global_step, stream, impl)
        noise = inputs.noise if noise is None else noise
        fake = call_network(generator, "generator", reuse, noise, True, config, layers)
        if d_batches == "concat":
            both = tf.concat([inputs.real_images, fake], axis=0)
            logits = call_network(discriminator, "discriminator", reuse, both, True, config, layers)
            d_logits_real, d_logits_fake = tf.split(
                logits, [tf.shape(inputs.real_images)[0], tf.shape(fake)[0]]
            )
        else:
            d_logits_real = call_network(
                discriminator, "discriminator", reuse, inputs.real_images, True, config, layers
            )
            d_logits_fake = call_network(discriminator, "discriminator", True, fake, True, config, layers)
        d_logits_real, d_logits_fake, code_logits = split_code_head(d_logits_real, d_logits_fake, config)
        losses = gan_losses(d_logits_real, d_logits_fake, config.label_smoothing, smooth_g_target)
        losses = recipe_losses(
            losses, d_logits_real, d_logits_fake, code_logits, noise, config, smooth_g_target
        )
    return Tower(scope, fake, d_logits_real, d_logits_fake, losses)


# How a train op picks the batch-norm updates it waits for: (tower, network, config) -> update ops.
UpdateOpsRule = Callable[[Tower, str, Config], list]
# One forward pass of a step: (inputs, config, scope, stream, reuse, impl, noise) -> Tower.
TowerBuilder = Callable[..., Tower]


def two_network_step(
    model_loss: TowerBuilder,
    inputs: Inputs,
    config: Config,
    total_steps: int,
    impl: LayerImpl = FLOAT32_IMPL,
    schedule: str = "g_then_d",
    g_noise_batches: int = 1,
    update_ops: UpdateOpsRule = network_update_ops,
) -> Step:
    """model_opt for a schedule: "g_then_d" (the notebook: D's forward pass waits for G's update, so one
    sess.run does both and D sees the updated G's fakes), "d_then_g", or "simultaneous" (both gradients
    from one forward pass). Each Adam waits for the batch-norm updates `update_ops` picks (default: its
    own network's, from its own tower; the pitfalls lab passes the classic mistakes).

    With g_noise_batches > 1, G's update trains on all of the step's noise and D's on its first
    batch_size vectors (the Keras MLP GAN).
    """
    g_rate, d_rate = learning_rates(config, inputs.global_step, total_steps)
    rates = {"generator": g_rate, "discriminator": d_rate}
    noise = {"generator": inputs.noise, "discriminator": inputs.noise}
    if g_noise_batches > 1:
        noise["discriminator"] = inputs.noise[: tf.shape(inputs.noise)[0] // g_noise_batches]
    order = ("discriminator", "generator") if schedule == "d_then_g" else ("generator", "discriminator")
    updates: dict[str, list] = {}
    train: dict[str, tf.Operation] = {}

    def update(network: str, forward: Tower) -> None:
        updates[network] = update_ops(forward, network, config)
        loss = forward.losses.g_loss if network == "generator" else forward.losses.d_loss
        train[network] = adam_train_op(loss, network, updates[network], rates[network], config)

    first = model_loss(inputs, config, "step", FIRST_TOWER_STREAM, False, impl, noise[order[0]])
    tower_of = {network: first for network in order}
    if schedule == "simultaneous":
        for network in order:  # both gradients from one forward pass, before either update is applied
            update(network, first)
        towers, last = (first,), tf.group(*train.values())
    else:
        update(order[0], first)
        with tf.control_dependencies([train[order[0]]]):
            second = model_loss(
                inputs, config, "second_step", SECOND_TOWER_STREAM, True, impl, noise[order[1]]
            )
        update(order[1], second)
        tower_of[order[1]] = second
        towers, last = (first, second), train[order[1]]
    g, d = tower_of["generator"].losses, tower_of["discriminator"].losses
    losses = Losses(d.d_loss, g.g_loss, d.d_real, d.d_fake)
    return count_step(
        inputs, config, towers, losses, train["generator"], train["discriminator"], last, g_rate,
        (updates["generator"], updates["discriminator"]),
    )  # fmt: skip


# ---------------------------------------------------------------------------------- the whole graph
class Summaries(NamedTuple):
    scalars: tf.Tensor  # merged scalar summaries of the step (the sample grids: common.train.write_samples)


class GANGraph(NamedTuple):
    spec: ArchSpec
    inputs: Inputs
    towers: tuple[Tower, ...]
    losses: Losses  # what a step reports: D's from the D update's pass, G's from the G update's
    train: TrainOps
    summaries: Summaries
    init: tf.Operation
    saver: v1.train.Saver  # the rotating last --keep-checkpoints checkpoints
    best_saver: v1.train.Saver  # the one best checkpoint (checkpoints/best/), never rotated away


# Ops of the training graph that run on the CPU whatever the device: string and file work, which has no
# GPU kernel (tests/test_gan.py checks that every other op has one).
CPU_ONLY_SCOPES = ("summaries/", "saver/", "best_saver/")


def gpu_visible() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def total_steps(config: Config, n_images: int) -> int:
    steps = config.epochs * (n_images // config.batch_size)
    return min(steps, config.max_steps) if config.max_steps else steps


@contextlib.contextmanager
def graph_being_built(config: Config, device: str | None = None) -> Iterator[tf.Graph]:
    """A new graph to build a run in: the default graph inside the block, on `device` (default: the GPU
    when there is one), with the initializers' seed and the op determinism the run asks for; finalized
    when the block ends, so that no op can be added afterwards (the loop only runs what exists)."""
    graph = tf.Graph()
    device = device or ("/GPU:0" if gpu_visible() else "/CPU:0")
    with op_determinism(config.deterministic), graph.as_default(), tf.device(device):
        v1.set_random_seed(config.seed)  # the initializers' seeds
        yield graph
    graph.finalize()


def finish_graph(spec: ArchSpec, config: Config, inputs: Inputs, step: Step) -> GANGraph:
    """What the loop needs around a model file's step: the step's scalar summaries, the init op and the
    savers (the rotating checkpoints and the best one)."""
    towers, losses, train = step
    with tf.name_scope("summaries"), tf.device("/CPU:0"):  # CPU_ONLY_SCOPES
        scalars = v1.summary.merge(
            [
                v1.summary.scalar("d_loss", losses.d_loss),
                v1.summary.scalar("g_loss", losses.g_loss),
                v1.summary.scalar("d_real", losses.d_real),
                v1.summary.scalar("d_fake", losses.d_fake),
                v1.summary.scalar("learning_rate", train.learning_rate),
            ]
        )
    init = tf.group(v1.global_variables_initializer(), name="init")
    # Relative paths in checkpoints/checkpoint: a run directory can be moved or copied.
    with tf.device("/CPU:0"):  # CPU_ONLY_SCOPES
        saver = v1.train.Saver(max_to_keep=config.keep_checkpoints, save_relative_paths=True, name="saver")
        best_saver = v1.train.Saver(max_to_keep=1, save_relative_paths=True, name="best_saver")
    return GANGraph(spec, inputs, towers, losses, train, Summaries(scalars), init, saver, best_saver)


def build_gan(spec: ArchSpec, config: Config, n_images: int, impl: LayerImpl = FLOAT32_IMPL) -> GANGraph:
    """The whole training graph of `spec`, in the current default graph: its module's model_inputs and
    model_opt (which builds its forward passes with its model_loss), then finish_graph. What the
    notebooks' model files write out in their `train` (dcgan_mnist/model.py), for any architecture."""
    v1.set_random_seed(config.seed)  # the initializers' seeds
    inputs = spec.model.model_inputs(n_images, config)
    step = spec.model.model_opt(inputs, config, total_steps(config, n_images), impl)
    return finish_graph(spec, config, inputs, step)


def build_training_graph(
    spec: ArchSpec, config: Config, n_images: int, impl: LayerImpl = FLOAT32_IMPL, device: str | None = None
) -> tuple[tf.Graph, GANGraph]:
    """The finalized graph of a run of `spec` (graph_being_built, build_gan): what the loop, the
    benchmarks and the tests train. impl: the layers' implementation (a run's: SpeedSettings.layer_impl)."""
    with graph_being_built(config, device) as graph:
        gan = build_gan(spec, config, n_images, impl)
    return graph, gan
