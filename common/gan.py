"""The GAN graph, in the notebook's order: inputs, (generator, discriminator: from the spec), losses,
optimizers, then the inference sampler. `build_gan` puts the training part together into one `GANGraph`;
the sampler gets a graph of its own (common.sampling.Generator), into which the loop copies G's weights.

Graph construction is pure: each function takes tensors and returns a named tuple of tensors and ops.
The only side effect is the one TF1 itself has: batch norm adds its moving-average updates to
UPDATE_OPS, and the optimizers pick them up from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from common.config import Config, ConfigError
from common.layers import FLOAT32_IMPL, UPDATE_OPS, LayerImpl, Layers, SeedStream, Training

v1 = tf.compat.v1

# A network maps (input, training, config, layers) to images in [-1, 1] (generator) or logits (discriminator).
Network = Callable[[tf.Tensor, Training, Config, Layers], tf.Tensor]

SCHEDULES = ("g_then_d", "d_then_g", "simultaneous")
# Stream ids folded into (seed, step) so noise, dropout and data order never share random numbers; the
# sample grids and the evaluator's noise have their own streams too.
NOISE_STREAM, FIRST_TOWER_STREAM, SECOND_TOWER_STREAM, SHUFFLE_STREAM, SAMPLE_STREAM = 1, 2, 3, 4, 5
EVAL_STREAM, RECALIBRATION_STREAM, CODE_STREAM = 6, 7, 8


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """What differs between architectures: the two networks, their defaults, and how a step runs.

    schedule: "g_then_d" (the notebook: the G update, then the D update on the updated G's fakes),
    "d_then_g", or "simultaneous" (both updates from one forward pass).
    d_batches: "separate" (D called on real and on fake: two sets of batch statistics) or "concat"
    (one call on both, split afterwards).
    g_noise_batches: the G update trains on this many x batch_size noise vectors, the D update on the
    first batch_size of them (the Keras MLP GAN: D on 64 real + 64 fake, G on 128); two-tower schedules.
    smooth_g_target: G's target is smoothed like D's real target (the notebook), or stays 1 (Keras).
    upsamples: the values of Config.upsample its generator implements (the notebook's both); any other
    is refused rather than silently ignored by a generator that never reads it.
    d_norms: the values of Config.d_norm its discriminator implements (the notebook's all three).
    info_codes: its discriminator returns the categorical code's logits beside its own (Config.info_codes:
    1 + info_codes columns), so --info-codes can train it; other architectures refuse the flag.
    """

    name: str
    image_shape: tuple[int, int, int]
    generator: Network
    discriminator: Network
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    schedule: str = "g_then_d"
    d_batches: str = "separate"
    description: str = ""
    g_noise_batches: int = 1
    smooth_g_target: bool = True
    upsamples: tuple[str, ...] = ("transpose",)
    d_norms: tuple[str, ...] = ("batch",)
    info_codes: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.d_batches not in ("separate", "concat"):
            raise ValueError(f"unknown d_batches {self.d_batches!r}")
        if self.g_noise_batches < 1 or (self.g_noise_batches > 1 and self.schedule == "simultaneous"):
            raise ValueError("g_noise_batches > 1 needs a two-tower schedule (g_then_d or d_then_g)")


# ---------------------------------------------------------------------------------------------- inputs
class Inputs(NamedTuple):
    real_images: tf.Tensor  # [None, H, W, C] in [-1, 1]; defaults to this step's batch, sliced in-graph
    noise: tf.Tensor  # [None, latent_dim]; defaults to this step's z (noise, code), drawn from (seed, step)
    global_step: tf.Variable
    epoch: tf.Tensor
    steps_per_epoch: int
    dataset_feed: tf.Tensor  # uint8 placeholder fed once, to load the data set onto the device
    load_dataset: tf.Operation
    shuffle: tf.Operation  # draws the order of the current epoch; run at each epoch's first step


def draw_noise(shape: tf.Tensor | list, seed: tf.Tensor, kind: str) -> tf.Tensor:
    if kind == "normal":
        return tf.random.stateless_normal(shape, seed=seed)
    return tf.random.stateless_uniform(shape, seed=seed, minval=-1.0, maxval=1.0)


def draw_latent(rows: int, config: Config, step_seed: tf.Tensor) -> tf.Tensor:
    """z for one step: `rows` noise vectors, then, with --info-codes K, a one-hot block of K uniformly
    drawn code values (from a stream of its own, so the noise is the same with and without codes)."""
    noise_seed = tf.random.experimental.stateless_fold_in(step_seed, NOISE_STREAM)
    noise = draw_noise([rows, config.noise_dim], noise_seed, config.noise)
    if not config.info_codes:
        return noise
    code_seed = tf.random.experimental.stateless_fold_in(step_seed, CODE_STREAM)
    codes = tf.random.stateless_uniform([rows], code_seed, minval=0, maxval=config.info_codes, dtype=tf.int64)
    return tf.concat([noise, tf.one_hot(codes, config.info_codes, dtype=noise.dtype)], axis=1)


def scale_images(images_uint8: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range of the generator's tanh."""
    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def model_inputs(
    image_shape: tuple[int, int, int], n_images: int, config: Config, noise_batches: int = 1
) -> Inputs:
    """The notebook's two placeholders, fed by default from the graph itself.

    The whole data set lives in a uint8 variable on the device; each step slices its batch out of a
    per-epoch permutation and draws its noise from (seed, step). No feed_dict in the loop, and the state
    that decides a batch is only the step, which is checkpointed: resume is exact.
    """
    steps_per_epoch = n_images // config.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"--batch-size {config.batch_size} is larger than the data set ({n_images} images)")
    global_step = v1.train.get_or_create_global_step()
    with tf.name_scope("inputs"):
        epoch = global_step // steps_per_epoch
        dataset_feed = v1.placeholder(tf.uint8, [n_images, *image_shape], name="dataset_feed")
        # Local variables: not checkpointed (the data is the data; the order is recomputed from the step).
        dataset_images = v1.Variable(
            dataset_feed, trainable=False, collections=[v1.GraphKeys.LOCAL_VARIABLES], name="dataset_images"
        )
        # int64: a GPU has kernels for int64 resource variables, not int32 ones (tests/test_gan.py).
        epoch_order = v1.Variable(
            tf.range(n_images, dtype=tf.int64),
            trainable=False,
            collections=[v1.GraphKeys.LOCAL_VARIABLES],
            name="epoch_order",
        )
        shuffle_seed = tf.random.experimental.stateless_fold_in(
            tf.stack([config.seed, epoch]), SHUFFLE_STREAM
        )
        order = tf.cast(tf.argsort(tf.random.stateless_uniform([n_images], seed=shuffle_seed)), tf.int64)
        shuffle = v1.assign(epoch_order, order, name="shuffle").op

        start = (global_step % steps_per_epoch) * config.batch_size
        batch_indices = epoch_order[start : start + config.batch_size]
        batch = scale_images(tf.gather(dataset_images, batch_indices))
        real_images = v1.placeholder_with_default(batch, [None, *image_shape], name="real_images")

        step_seed = tf.stack([tf.constant(config.seed, tf.int64), global_step])
        noise_rows = config.batch_size * noise_batches  # ArchSpec.g_noise_batches
        step_noise = draw_latent(noise_rows, config, step_seed)
        noise = v1.placeholder_with_default(step_noise, [None, config.latent_dim], name="noise")
    return Inputs(
        real_images,
        noise,
        global_step,
        epoch,
        steps_per_epoch,
        dataset_feed,
        dataset_images.initializer,
        shuffle,
    )


# ---------------------------------------------------------------------------------------------- losses
class Losses(NamedTuple):
    d_loss: tf.Tensor
    g_loss: tf.Tensor
    d_real: tf.Tensor  # mean D(x): the probability D gives real images
    d_fake: tf.Tensor  # mean D(G(z))


def top_k_logits(d_logits_fake: tf.Tensor, share: float) -> tf.Tensor:
    """The ceil(share x batch) highest of D's logits for a batch of fakes: what G's loss sees under top-k
    training (Sinha et al. 2020: the fakes D finds worst are left out of G's update; docs/quality.md
    measures it). share 1: all of them, in their order, and no op is added."""
    if share >= 1.0:
        return d_logits_fake
    with tf.name_scope("top_k_fakes"):
        count = tf.cast(tf.shape(d_logits_fake)[0], tf.float32)
        k = tf.maximum(tf.cast(tf.math.ceil(share * count), tf.int32), 1)
        return tf.math.top_k(tf.reshape(d_logits_fake, [-1]), k, sorted=False).values


def hinge_losses(
    d_logits_real: tf.Tensor, d_logits_fake: tf.Tensor, g_logits_fake: tf.Tensor | None = None
) -> Losses:
    """The hinge loss: D minimizes relu(1 - D(x)) + relu(1 + D(G(z))), G minimizes -D(G(z)) (over
    g_logits_fake, the fakes G's loss sees: default all of d_logits_fake).

    D(x) and D(G(z)) are still reported as sigmoid probabilities of the logits, for the same curves.
    """
    g_logits_fake = d_logits_fake if g_logits_fake is None else g_logits_fake
    d_loss = tf.reduce_mean(tf.nn.relu(1.0 - d_logits_real)) + tf.reduce_mean(tf.nn.relu(1.0 + d_logits_fake))
    g_loss = -tf.reduce_mean(g_logits_fake)
    d_real = tf.reduce_mean(tf.sigmoid(d_logits_real))
    d_fake = tf.reduce_mean(tf.sigmoid(d_logits_fake))
    return Losses(tf.identity(d_loss, name="d_loss"), tf.identity(g_loss, name="g_loss"), d_real, d_fake)


def gan_losses(
    d_logits_real: tf.Tensor,
    d_logits_fake: tf.Tensor,
    label_smoothing: float,
    smooth_g_target: bool = True,
    g_logits_fake: tf.Tensor | None = None,
) -> Losses:
    """Sigmoid cross-entropy with one-sided label smoothing: real targets 1 - smoothing, fakes 0.

    As the notebook, G's target for its fakes is smoothed too, unless smooth_g_target=False (Keras: 1).
    G's loss is over g_logits_fake (default: all of d_logits_fake; top_k_logits for top-k training).
    """
    g_logits_fake = d_logits_fake if g_logits_fake is None else g_logits_fake
    real_target = 1.0 - label_smoothing
    g_target = real_target if smooth_g_target else 1.0
    d_loss_real = tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(
            logits=d_logits_real, labels=tf.ones_like(d_logits_real) * real_target
        )
    )
    d_loss_fake = tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(logits=d_logits_fake, labels=tf.zeros_like(d_logits_fake))
    )
    g_loss = tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(
            logits=g_logits_fake, labels=tf.ones_like(g_logits_fake) * g_target
        )
    )
    d_real = tf.reduce_mean(tf.sigmoid(d_logits_real))
    d_fake = tf.reduce_mean(tf.sigmoid(d_logits_fake))
    return Losses(
        tf.add(d_loss_real, d_loss_fake, name="d_loss"), tf.identity(g_loss, name="g_loss"), d_real, d_fake
    )


def info_loss(code_logits: tf.Tensor, latent: tf.Tensor, config: Config) -> tf.Tensor:
    """InfoGAN's term for a categorical code (Chen et al. 2016): the cross-entropy of the code's value
    (the one-hot block at the end of z) under D's code logits for G(z). Both networks minimize it, with
    weight 1 as the paper has for categorical codes: G learns to make the code visible in its images,
    D's head learns to read it. It lower-bounds the mutual information between code and image (up to a
    constant), which pushes G to split z-space into K separate kinds of image."""
    codes = latent[:, config.noise_dim :]
    return tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits(labels=codes, logits=code_logits), name="info_loss"
    )


# ------------------------------------------------------------------------------ one forward pass: tower
class Tower(NamedTuple):
    """One forward pass of G and D for a training step, built inside its own name scope."""

    scope: str
    fake_images: tf.Tensor
    d_logits_real: tf.Tensor
    d_logits_fake: tf.Tensor
    losses: Losses


def call_network(
    net: Network, scope: str, reuse: bool, x: tf.Tensor, training: Training, config: Config, layers: Layers
) -> tf.Tensor:
    """net(x) in variable scope `scope`; D's layers spectrally normalized where config.d_norm asks."""
    if scope == "discriminator" and config.d_spectral_norm:
        layers = layers.with_spectral_norm(training)
    with v1.variable_scope(scope, reuse=reuse):
        return net(x, training, config, layers)


def model_loss(
    spec: ArchSpec,
    config: Config,
    inputs: Inputs,
    scope: str,
    stream: int,
    reuse: bool,
    noise: tf.Tensor | None = None,
    impl: LayerImpl = FLOAT32_IMPL,
) -> Tower:
    """The notebook's model_loss: G(z), D(x), D(G(z)) in training mode and the two losses, in `scope`.

    The variables are shared between towers (variable_scope reuse), the ops are not: each tower's batch
    norm adds its own update ops, named `scope/generator/...` and `scope/discriminator...`.
    """
    with tf.name_scope(scope):
        step_seed = tf.stack([tf.constant(config.seed, tf.int64), inputs.global_step])
        layers = Layers(impl, SeedStream(tf.random.experimental.stateless_fold_in(step_seed, stream)))
        noise = inputs.noise if noise is None else noise
        fake = call_network(spec.generator, "generator", reuse, noise, True, config, layers)
        if spec.d_batches == "concat":
            both = tf.concat([inputs.real_images, fake], axis=0)
            logits = call_network(spec.discriminator, "discriminator", reuse, both, True, config, layers)
            d_logits_real, d_logits_fake = tf.split(
                logits, [tf.shape(inputs.real_images)[0], tf.shape(fake)[0]]
            )
        else:
            d_logits_real = call_network(
                spec.discriminator, "discriminator", reuse, inputs.real_images, True, config, layers
            )
            d_logits_fake = call_network(
                spec.discriminator, "discriminator", True, fake, True, config, layers
            )
        if config.info_codes:  # D's output: its logit, then the code's logits (ArchSpec.info_codes)
            code_logits = d_logits_fake[:, 1:]
            d_logits_real, d_logits_fake = d_logits_real[:, :1], d_logits_fake[:, :1]
        g_logits_fake = top_k_logits(d_logits_fake, config.g_top_k)
        if config.loss == "hinge":
            losses = hinge_losses(d_logits_real, d_logits_fake, g_logits_fake)
        else:
            losses = gan_losses(
                d_logits_real, d_logits_fake, config.label_smoothing, spec.smooth_g_target, g_logits_fake
            )
        if config.info_codes:
            info = info_loss(code_logits, noise, config)
            losses = losses._replace(
                d_loss=tf.add(losses.d_loss, info, name="d_loss_with_info"),
                g_loss=tf.add(losses.g_loss, info, name="g_loss_with_info"),
            )
    return Tower(scope, fake, d_logits_real, d_logits_fake, losses)


# ------------------------------------------------------------------------------------------ optimizers
class TrainOps(NamedTuple):
    g_train: tf.Operation
    d_train: tf.Operation
    step: tf.Operation  # both updates in the spec's order, then global_step += 1: one sess.run per step
    learning_rate: tf.Tensor
    g_update_ops: list  # the UPDATE_OPS each optimizer waits for: shown by tests and the pitfalls lab
    d_update_ops: list


def network_update_ops(tower: Tower, network: str | None, config: Config) -> list:
    """The batch-norm updates a train op must wait for.

    Fixed: only its own network's, from its own tower. The notebook put both optimizers under one
    dependency on the whole collection, which held the updates of its one forward pass, so each of its two
    sess.run calls ran G's and D's. quirks=original: everything this train op's own tower added, G's and
    D's (6 G + 8 D per tower for the notebook's networks; 28 updates a step, as in the notebook).
    """
    if config.original_quirks or network is None:
        return v1.get_collection(UPDATE_OPS, scope=f"{tower.scope}/")
    return v1.get_collection(UPDATE_OPS, scope=f"{tower.scope}/{network}")


def learning_rate(config: Config, global_step: tf.Tensor, total_steps: int) -> tf.Tensor:
    if config.lr_decay == "linear":
        progress = tf.cast(global_step, tf.float32) / float(max(total_steps, 1))
        return config.learning_rate * tf.maximum(1.0 - progress, 0.0)
    if config.lr_decay == "inverse_time":
        # Keras's legacy Adam(decay=lr / epochs), as pyimagesearch set it: lr / (1 + decay * iterations).
        decay = config.learning_rate / config.epochs
        return config.learning_rate / (1.0 + decay * tf.cast(global_step, tf.float32))
    return tf.constant(config.learning_rate, tf.float32)


def generator_average(config: Config, global_step: tf.Tensor, after: tf.Operation) -> tf.Operation:
    """An exponential moving average of G's weights, in variables `generator_ema/...` (checkpointed).

    shadow <- shadow - (1 - decay_t) * (shadow - weight), with decay_t = min(decay, (1 + t) / (10 + t)):
    the average forgets the initial weights in the first steps rather than over ~1 / (1 - decay) steps.
    Sampling from it needs recalibrated batch-norm statistics (no moving average tracked these weights).
    """
    weights = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope="generator/")
    # Starts at G's initial weights: the same initializer tensor, run once by the one init op.
    shadows = [
        v1.get_variable(
            "generator_ema/" + weight.op.name[len("generator/") :],
            initializer=weight.initial_value,
            trainable=False,
        )
        for weight in weights
    ]
    with tf.name_scope("generator_average"), tf.control_dependencies([after]):  # this step's final weights
        step = tf.cast(global_step, tf.float32)
        decay = tf.minimum(config.g_ema_decay, (1.0 + step) / (10.0 + step))
        updates = [
            v1.assign_sub(shadow, (shadow - weight) * (1.0 - decay)).op
            for shadow, weight in zip(shadows, weights, strict=True)
        ]
    return tf.group(*updates, name="update_generator_average")


def adam_train_op(
    loss: tf.Tensor,
    network: str,
    update_ops: list,
    lr: tf.Tensor,
    config: Config,
    loss_scale: str | float | None = None,
) -> tf.Operation:
    """Adam over one network's variables, under a control dependency on its batch-norm updates.

    loss_scale: "dynamic" or a number wraps Adam in TF1's loss-scale optimizer, which float16 gradients
    need (grappler's GPU `auto_mixed_precision` rewrite; benchmarks/gpu.py); None (training) leaves it.
    """
    variables = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope=f"{network}/")
    with tf.control_dependencies(update_ops):
        optimizer = v1.train.AdamOptimizer(lr, beta1=config.beta1, name=f"{network}_adam")
        if loss_scale is not None:
            optimizer = v1.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, loss_scale)
        return optimizer.minimize(loss, var_list=variables, name=f"{network}_train")


# ---------------------------------------------------------------------------------------------- sampler
class Sampler(NamedTuple):
    noise: tf.Tensor  # placeholder [None, latent_dim]
    seed: tf.Tensor  # placeholder_with_default: the dropout seed, used only in quirks=original
    images: tf.Tensor  # [-1, 1]
    images_uint8: tf.Tensor


def build_sampler(spec: ArchSpec, config: Config, reuse: bool = True) -> Sampler:
    """The inference generator: BN on moving statistics, no dropout; variables shared (reuse=True).

    Built once, before the graph is finalized: the notebook rebuilt it every 101 steps, adding a whole
    generator to the graph each time. reuse=False builds it alone (to sample from a checkpoint).
    """
    with tf.name_scope("sampler"):
        noise = v1.placeholder(tf.float32, [None, config.latent_dim], name="sample_noise")
        seed = v1.placeholder_with_default(
            tf.constant([config.seed, SAMPLE_STREAM], tf.int64), [2], name="seed"
        )
        # quirks=original keeps dropout on at sampling time, so it needs random masks.
        layers = Layers(seeds=SeedStream(seed) if config.original_quirks else None)
        images = call_network(spec.generator, "generator", reuse, noise, False, config, layers)
        images_uint8 = tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)
    return Sampler(noise, seed, images, images_uint8)


def sample_noise(config: Config, n: int, seed: int, stream: int = SAMPLE_STREAM) -> np.ndarray:
    """A reproducible numpy batch of z for the sampler: grids and `sample` (SAMPLE_STREAM), or the
    evaluator (EVAL_STREAM), each from its own generator. With --info-codes, each row's code value is
    drawn uniformly, as in training, after its noise."""
    rng = np.random.default_rng([seed, stream])
    if config.noise == "normal":
        noise = rng.standard_normal((n, config.noise_dim), dtype=np.float32)
    else:
        noise = rng.uniform(-1.0, 1.0, (n, config.noise_dim)).astype(np.float32)
    if not config.info_codes:
        return noise
    codes = np.eye(config.info_codes, dtype=np.float32)[rng.integers(0, config.info_codes, n)]
    return np.concatenate([noise, codes], axis=1)


def code_rows_noise(config: Config, columns: int, seed: int) -> np.ndarray:
    """z for a grid with one row per value of the categorical code (--info-codes), each row the same
    `columns` noise vectors: a row shows what one code value makes of them, a column what the code alone
    changes. Row-major, info_codes x columns rows of z."""
    noise = sample_noise(config.replace(info_codes=0), columns, seed)
    codes = np.repeat(np.eye(config.info_codes, dtype=np.float32), columns, axis=0)
    return np.concatenate([np.tile(noise, (config.info_codes, 1)), codes], axis=1)


# ---------------------------------------------------------------------------------------------- the GAN
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


# How a train op picks the batch-norm updates it waits for: (tower, network, config) -> update ops.
UpdateOpsRule = Callable[[Tower, str, Config], list]
# How a step's forward pass is built: model_loss's signature (the pitfalls lab swaps in broken ones).
TowerBuilder = Callable[..., Tower]


def model_opt(
    spec: ArchSpec,
    config: Config,
    inputs: Inputs,
    total_steps: int,
    impl: LayerImpl = FLOAT32_IMPL,
    update_ops: UpdateOpsRule = network_update_ops,
    tower: TowerBuilder = model_loss,
    loss_scale: str | float | None = None,
) -> tuple[tuple[Tower, ...], Losses, TrainOps]:
    """The notebook's model_opt: towers and Adam train ops in the spec's order.

    g_then_d reproduces the notebook's two `sess.run` calls in one: the second update's tower is built
    under a control dependency on the first update, so the D step runs after, and sees the fakes of,
    the updated generator, from the same noise batch. `update_ops` and `tower` are the two lines the
    pitfalls lab changes to build the classic mistakes from this very function.
    """
    lr = learning_rate(config, inputs.global_step, total_steps)
    # Two time-scales: D's own learning rate when --d-learning-rate is given (the same schedule). Built
    # only then: an extra op before the networks would move the initializers' op seeds (graph order).
    rates = {"generator": lr, "discriminator": lr}
    if config.d_learning_rate is not None:
        d_config = config.replace(learning_rate=config.d_learning_rate)
        rates["discriminator"] = learning_rate(d_config, inputs.global_step, total_steps)
    # G's update trains on all of the step's noise; D's on its first batch_size vectors (the same unless
    # ArchSpec.g_noise_batches > 1).
    noise = {"generator": inputs.noise, "discriminator": inputs.noise}
    if spec.g_noise_batches > 1:
        noise["discriminator"] = inputs.noise[: tf.shape(inputs.noise)[0] // spec.g_noise_batches]
    order = ("discriminator", "generator") if spec.schedule == "d_then_g" else ("generator", "discriminator")

    def update(network: str, forward: Tower) -> None:
        updates[network] = update_ops(forward, network, config)
        loss = forward.losses.g_loss if network == "generator" else forward.losses.d_loss
        train[network] = adam_train_op(loss, network, updates[network], rates[network], config, loss_scale)

    updates: dict[str, list] = {}
    train: dict[str, tf.Operation] = {}
    first = tower(spec, config, inputs, "step", FIRST_TOWER_STREAM, False, noise[order[0]], impl)
    tower_of = {network: first for network in order}
    if spec.schedule == "simultaneous":
        # Both gradients from one forward pass: compute both before either update is applied.
        for network in order:
            update(network, first)
        towers, last = (first,), tf.group(*train.values())
    else:
        update(order[0], first)
        with tf.control_dependencies([train[order[0]]]):
            second = tower(
                spec, config, inputs, "second_step", SECOND_TOWER_STREAM, True, noise[order[1]], impl
            )
        update(order[1], second)
        tower_of[order[1]] = second
        towers, last = (first, second), train[order[1]]
    g, d = tower_of["generator"].losses, tower_of["discriminator"].losses
    losses = Losses(d.d_loss, g.g_loss, d.d_real, d.d_fake)
    if config.g_ema_decay > 0:
        last = generator_average(config, inputs.global_step, last)
    with tf.control_dependencies([last]):
        step = v1.assign_add(inputs.global_step, 1, name="train_step").op
    ops = TrainOps(
        train["generator"], train["discriminator"], step, lr, updates["generator"], updates["discriminator"]
    )
    return towers, losses, ops


# Ops of the training graph that run on the CPU whatever the device: string and file work, which has no
# GPU kernel (tests/test_gan.py checks that every other op has one).
CPU_ONLY_SCOPES = ("summaries/", "saver/", "best_saver/")


def build_gan(
    spec: ArchSpec,
    config: Config,
    n_images: int,
    total_steps: int,
    impl: LayerImpl = FLOAT32_IMPL,
    loss_scale: str | float | None = None,
) -> GANGraph:
    """The whole training graph, in the current default graph: model_inputs, model_opt (which builds the
    towers with model_loss), summaries and the savers. Finalize the graph after this. (The loop samples
    from a copy of G in its own graph, common.sampling.Generator: the training graph has no sampler.)

    loss_scale: for float16 on a GPU only (adam_train_op); None in every run of the project."""
    v1.set_random_seed(config.seed)  # the initializers' seeds
    inputs = model_inputs(spec.image_shape, n_images, config, spec.g_noise_batches)
    towers, losses, train = model_opt(spec, config, inputs, total_steps, impl, loss_scale=loss_scale)
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


def parameter_counts() -> dict[str, int]:
    """Trainable parameters of each network in the current graph."""
    counts = {}
    for network in ("generator", "discriminator"):
        variables = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope=f"{network}/")
        counts[network] = int(sum(np.prod(v.shape.as_list()) for v in variables))
    return counts


def forward_flops_per_image(spec: ArchSpec, config: Config) -> dict[str, int]:
    """Multiply-adds x 2 of one image's forward pass through each network, from the layer shapes.

    Counts the matrix work (MatMul, Conv2D, Conv2DBackpropInput for transposed convolutions); the
    elementwise ops are a small remainder. Built in a scratch graph with batch 1.
    """
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)  # initializers need a seed when op determinism is on
        noise = v1.placeholder(tf.float32, [1, config.latent_dim])
        images = v1.placeholder(tf.float32, [1, *spec.image_shape])
        with tf.name_scope("g"):
            call_network(spec.generator, "generator", False, noise, False, config, Layers())
        with tf.name_scope("d"):
            call_network(spec.discriminator, "discriminator", False, images, False, config, Layers())
    flops = {"generator": 0, "discriminator": 0}
    for op in graph.get_operations():
        network = "generator" if op.name.startswith("g/") else "discriminator"
        if op.type == "MatMul":
            (m, k), n = op.inputs[0].shape.as_list(), op.outputs[0].shape[-1]
            flops[network] += 2 * m * k * n
        elif op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            flops[network] += 2 * int(np.prod(op.outputs[0].shape.as_list())) * kh * kw * cin
        elif op.type == "Conv2DBackpropInput":
            # inputs: (output size, kernel [k, k, out, in], the transposed conv's input)
            kh, kw, out_channels, _ = op.inputs[1].shape.as_list()
            flops[network] += 2 * int(np.prod(op.inputs[2].shape.as_list())) * kh * kw * out_channels
    return flops


def train_step_flops_per_image(spec: ArchSpec, config: Config) -> int:
    """Approximate FLOPs per real image of one training step (a backward pass costs ~2 forwards).

    Two-tower schedules: G step = G fwd+bwd through D(G(z)) (3G + 3D, times g_noise_batches) and D step =
    G fwd + D fwd+bwd on real and fake (G + 6D). Simultaneous: one pass, 3G + 6D.
    """
    f = forward_flops_per_image(spec, config)
    g, d = f["generator"], f["discriminator"]
    if spec.schedule == "simultaneous":
        return 3 * g + 6 * d
    k = spec.g_noise_batches
    return (3 * k + 1) * g + (3 * k + 6) * d
