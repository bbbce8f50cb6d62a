"""The training steps `benchmarks.speed` times: the project's, and the alternatives users compare it with.

Every implementation trains the same model (the dataset's notebook DCGAN: same layers, sizes, Adam
settings, dropout and label smoothing) at the same batch size, and updates both networks once per
`step()`. They differ in how a step is driven:

- project: `common.train`'s graph and step, one `sess.run` with the data and noise made in-graph.
- TF1 original: the notebook's step. numpy batches and noise fed through `feed_dict`, two `sess.run` per
  step (G, then D), each train op waiting for the whole UPDATE_OPS collection.
- TF1 original, scoped: the same, each train op waiting only for its own network's update ops.
- Keras tf.function: the TensorFlow DCGAN tutorial's step (Keras 3 models, two GradientTapes, both
  updates from one forward pass: the "simultaneous" schedule, less work per step than G-then-D), fed by
  a `tf.data` pipeline. Optionally compiled with XLA (`jit_compile=True`), or with Keras's own bf16
  switch, `keras.mixed_precision.set_global_policy("mixed_bfloat16")` (the policy is restored after the
  models are built; D's output layer stays float32, as the Keras mixed-precision guide advises).
- PyTorch eager: the PyTorch DCGAN example's loop (D on real and on detached fakes, then G through the
  updated D on the same fakes), on the notebook's layers; optionally with PyTorch's bf16 switch, the
  forward passes under `torch.autocast("cpu", dtype=torch.bfloat16)`. Only where torch is installed (it
  is not a dependency of the project: `pip install torch` to time it).

The bf16 peers run only where the CPU has native bf16 (AMX or AVX512_BF16): elsewhere their switch
would emulate bf16 and no user would flip it for speed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from common.architecture import ArchSpec
from common.config import Config
from common.flops import forward_flops_per_image, train_step_flops_per_image
from common.layers import UPDATE_OPS, LayerImpl, Layers, SeedStream
from common.losses import gan_losses
from common.machine import cpu_count
from common.speed import SpeedSettings, bf16_supported
from common.step import adam_train_op, call_network
from common.train import build_training_graph, session_config, with_precision

v1 = tf.compat.v1


class TrainingStep(Protocol):
    """One implementation, built and warmed up: `step()` updates both networks once."""

    def step(self) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Implementation:
    name: str
    build: Callable[[ArchSpec, Config, np.ndarray], TrainingStep]
    schedule: str  # the schedule it runs, for its FLOPs per image
    project: bool  # the project's own step (a variant of it), rather than an alternative


class Unavailable(RuntimeError):
    """An implementation that cannot run here (no Keras mirror of an architecture, no bf16 on the CPU)."""


# --------------------------------------------------------------------------------------------- project
@contextlib.contextmanager
def loss_scaled_adam(loss_scale: str | float | None) -> Iterator[None]:
    """Every Adam a model file builds inside the block wrapped in TF1's loss-scale optimizer, which
    float16 gradients need (grappler's GPU `auto_mixed_precision` rewrite: benchmarks.gpu); None: as is.

    A benchmark's wrapper, not a training option: the model files call `tf.compat.v1.train.AdamOptimizer`
    by name, so it reaches them without an argument in the notebook's lines.
    """
    if loss_scale is None:
        yield
        return
    adam = v1.train.AdamOptimizer

    def scaled_adam(*args: Any, **kwargs: Any) -> Any:
        return v1.mixed_precision.MixedPrecisionLossScaleOptimizer(adam(*args, **kwargs), loss_scale)

    v1.train.AdamOptimizer = scaled_adam
    try:
        yield
    finally:
        v1.train.AdamOptimizer = adam


class ProjectStep:
    """The step `common.train.train` runs: the same graph, session config and fetches.

    The precision is the config's (resolved as `train` resolves it); `settings` gives threads and XLA;
    `layer_impl` overrides layer implementation choices (its None fields follow the precision).
    float16: grappler's GPU `auto_mixed_precision` rewrite with dynamic loss scaling (benchmarks.gpu).
    """

    def __init__(
        self,
        spec: ArchSpec,
        config: Config,
        images: np.ndarray,
        settings: SpeedSettings | None = None,
        layer_impl: LayerImpl | None = None,
        float16: bool = False,
    ) -> None:
        config = with_precision(config)
        settings = settings or SpeedSettings.default_settings()
        impl = (layer_impl or LayerImpl()).for_precision(config.precision)
        settings = dataclasses.replace(settings, precision=config.precision, layer_impl=impl)
        with loss_scaled_adam("dynamic" if float16 else None):
            self.graph, self.gan = build_training_graph(spec, config, len(images), settings.layer_impl)
        session = session_config(settings)
        if float16:  # grappler's GPU float16 rewrite (it skips a machine without a GPU)
            session.graph_options.rewrite_options.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
        self.sess = v1.Session(graph=self.graph, config=session)
        self.sess.run(self.gan.init)
        self.sess.run(self.gan.inputs.load_dataset, {self.gan.inputs.dataset_feed: images})
        self.steps_per_epoch = self.gan.inputs.steps_per_epoch
        self.step_index = 0

    def step(self) -> dict:
        if self.step_index % self.steps_per_epoch == 0:
            self.sess.run(self.gan.inputs.shuffle)
        out = self.sess.run({"step": self.gan.train.step, "losses": self.gan.losses})
        self.step_index += 1
        return out

    def close(self) -> None:
        self.sess.close()


def project(precision: str | None = None) -> Callable[[ArchSpec, Config, np.ndarray], ProjectStep]:
    """The project's step with the default config's precision, or with `precision` (a --precision value)."""
    return lambda spec, config, images: ProjectStep(
        spec, config.replace(precision=precision) if precision else config, images
    )


# ------------------------------------------------------------------------------ the notebook's TF1 step
class NumpyBatches:
    """The notebook's input side: a per-epoch numpy shuffle, batches scaled in numpy, numpy noise."""

    def __init__(self, images: np.ndarray, config: Config) -> None:
        self.images, self.config = images, config
        self.rng = np.random.default_rng(config.seed)
        self.order = self.rng.permutation(len(images))
        self.position = 0

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        size = self.config.batch_size
        if self.position + size > len(self.images):
            self.order, self.position = self.rng.permutation(len(self.images)), 0
        batch = self.images[self.order[self.position : self.position + size]]
        self.position += size
        real = batch.astype(np.float32) / 127.5 - 1.0
        noise = self.rng.uniform(-1.0, 1.0, (size, self.config.noise_dim)).astype(np.float32)
        return real, noise


class OriginalTF1Step:
    """One graph: G(z), D(x), D(G(z)); then `sess.run(g_train, feed)` and `sess.run(d_train, feed)`."""

    def __init__(self, spec: ArchSpec, config: Config, images: np.ndarray, scoped: bool) -> None:
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.set_random_seed(config.seed)
            self.input_real = v1.placeholder(tf.float32, [None, *spec.image_shape], name="input_real")
            self.input_z = v1.placeholder(tf.float32, [None, config.noise_dim], name="input_z")
            # tf.layers.dropout drew fresh stateful masks at every run: a stateful base seed does the same.
            layers = Layers(seeds=SeedStream(v1.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)))
            fake = call_network(spec.generator, "generator", False, self.input_z, True, config, layers)
            d_logits_real = call_network(
                spec.discriminator, "discriminator", False, self.input_real, True, config, layers
            )
            d_logits_fake = call_network(
                spec.discriminator, "discriminator", True, fake, True, config, layers
            )
            losses = gan_losses(d_logits_real, d_logits_fake, config.label_smoothing)
            lr = tf.constant(config.learning_rate, tf.float32)

            def updates(network: str) -> list:
                return v1.get_collection(UPDATE_OPS, scope=network if scoped else None)

            self.g_train = adam_train_op(losses.g_loss, "generator", updates("generator"), lr, config)
            self.d_train = adam_train_op(losses.d_loss, "discriminator", updates("discriminator"), lr, config)
            init = v1.global_variables_initializer()
        self.graph.finalize()
        self.sess = v1.Session(graph=self.graph, config=session_config(SpeedSettings.default_settings()))
        self.sess.run(init)
        self.batches = NumpyBatches(images, config)

    def step(self) -> None:
        real, noise = self.batches.next()
        feed = {self.input_real: real, self.input_z: noise}
        self.sess.run(self.g_train, feed)  # the notebook's order: G, then D on the updated G's fakes
        self.sess.run(self.d_train, feed)

    def close(self) -> None:
        self.sess.close()


def original_tf1(scoped: bool) -> Callable[[ArchSpec, Config, np.ndarray], OriginalTF1Step]:
    return lambda spec, config, images: OriginalTF1Step(spec, config, images, scoped)


# ----------------------------------------------------------------------------- the Keras tutorial step
def keras_models(spec: ArchSpec, config: Config, output_dtype: str | None = None):
    """The notebook's G and D as Keras 3 Sequential models (MNIST 28x28x1 or CIFAR 32x32x3).

    output_dtype: the dtype policy of D's last layer (None: the global policy's); "float32" under a
    mixed policy keeps the logits, and so the losses, in float32.
    """
    import keras
    from keras import layers

    height, width, channels = spec.image_shape
    if spec.name != "notebook" or (height, width, channels) not in ((28, 28, 1), (32, 32, 3)):
        raise Unavailable(f"no Keras mirror of architecture {spec.name!r} {spec.image_shape}")
    # MNIST goes 4x4 -> 7x7 with a valid stride-1 kernel 4; CIFAR 4x4 -> 8x8 with a same stride-2 one.
    first_up = (1, "valid") if height == 28 else (2, "same")
    rate = 1.0 - config.keep_prob
    bn = {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}

    def block(*stack):
        return [*stack, layers.BatchNormalization(**bn), layers.LeakyReLU(config.lrelu_alpha)]

    generator = keras.Sequential(
        [
            keras.Input((config.noise_dim,)),
            layers.Dense(4 * 4 * 512),
            layers.Reshape((4, 4, 512)),
            *block(),
            layers.Dropout(rate),
            *block(layers.Conv2DTranspose(256, 4, strides=first_up[0], padding=first_up[1])),
            layers.Dropout(rate),
            *block(layers.Conv2DTranspose(128, 3, strides=2, padding="same")),
            layers.Dropout(rate),
            layers.Conv2DTranspose(channels, 3, strides=2, padding="same", activation="tanh"),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input(spec.image_shape),
            layers.Conv2D(128, 3, strides=2, padding="same"),
            layers.LeakyReLU(config.lrelu_alpha),
            layers.Dropout(rate),
            *block(layers.Conv2D(256, 3, strides=2, padding="same")),
            layers.Dropout(rate),
            *block(layers.Conv2D(512, 3, strides=2, padding="same")),
            layers.Dropout(rate),
            layers.Flatten(),
            layers.Dense(1, dtype=output_dtype),
        ],
        name="discriminator",
    )
    return generator, discriminator


NO_NATIVE_BF16 = "no native bf16 on this CPU (AMX or AVX512_BF16)"
# The notebook generator's layers (dcgan_mnist/model.py), in the order the Keras mirror's weighted layers
# come in, and each Keras layer kind's weights under the project's variable names.
NOTEBOOK_GENERATOR_LAYERS = (
    "dense",
    "batch_norm1",
    "conv_transpose2",
    "batch_norm2",
    "conv_transpose3",
    "batch_norm3",
    "conv_transpose4",
)
KERAS_WEIGHT_NAMES = {
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "Dense": ("kernel", "bias"),
    "Conv2DTranspose": ("kernel", "bias"),
}


def keras_generator_weights(generator) -> dict[str, np.ndarray]:
    """The Keras mirror's generator weights under the project's variable names (`Generator.load` takes
    them), so both are sampled by the same sampler: same layout, same layer order (a test checks it)."""
    weighted = [layer for layer in generator.layers if layer.weights]
    if len(weighted) != len(NOTEBOOK_GENERATOR_LAYERS):
        raise ValueError(f"{len(weighted)} weighted layers, expected {len(NOTEBOOK_GENERATOR_LAYERS)}")
    weights = {}
    for name, layer in zip(NOTEBOOK_GENERATOR_LAYERS, weighted, strict=True):
        for attribute in KERAS_WEIGHT_NAMES[type(layer).__name__]:
            value = getattr(layer, attribute)
            weights[f"generator/{name}/{attribute}"] = np.asarray(value.numpy(), np.float32)
    return weights


# Keras's one-line bf16 switch (a global dtype policy: bf16 compute, float32 variables).
KERAS_MIXED_POLICY = "mixed_bfloat16"


class KerasStep:
    """The TF2 DCGAN tutorial's `train_step` under `tf.function`, over a shuffled, batched tf.data set.

    policy: build the models under this Keras dtype policy (`mixed_bfloat16`, `mixed_float16`). Each
    Keras layer keeps the policy it was built with, so the global one is put back right after (other
    rows, and tests, see float32).
    """

    def __init__(
        self, spec: ArchSpec, config: Config, images: np.ndarray, jit_compile: bool, policy: str | None = None
    ) -> None:
        import keras

        keras.utils.set_random_seed(config.seed)
        before = keras.mixed_precision.global_policy()
        try:
            if policy:
                keras.mixed_precision.set_global_policy(policy)
            self.generator, self.discriminator = keras_models(spec, config, "float32" if policy else None)
        finally:
            keras.mixed_precision.set_global_policy(before)
        self.g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        self.d_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        if policy == "mixed_float16":  # float16 gradients underflow without it (Keras's guide)
            self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_optimizer)
            self.d_optimizer = keras.optimizers.LossScaleOptimizer(self.d_optimizer)
        self.config = config
        scaled = (images.astype(np.float32) - 127.5) / 127.5
        dataset = (
            tf.data.Dataset.from_tensor_slices(scaled)
            .shuffle(len(scaled), seed=config.seed)
            .batch(config.batch_size, drop_remainder=True)
            .repeat()
            .prefetch(1)
        )
        self.batches = iter(dataset)
        self.train_step = tf.function(self._train_step, jit_compile=jit_compile)

    def _train_step(self, real: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        noise = tf.random.uniform([self.config.batch_size, self.config.noise_dim], -1.0, 1.0)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(noise, training=True)
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            losses = gan_losses(real_logits, fake_logits, self.config.label_smoothing)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        # scale_loss: the identity, except under a LossScaleOptimizer (which unscales in apply_gradients).
        g_loss, d_loss = (
            self.g_optimizer.scale_loss(losses.g_loss),
            self.d_optimizer.scale_loss(losses.d_loss),
        )
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars, strict=True))
        return losses.d_loss, losses.g_loss

    def step(self) -> None:
        d_loss, _ = self.train_step(next(self.batches))
        d_loss.numpy()  # wait for the step, as sess.run does

    def close(self) -> None:
        pass


def keras_tf_function(
    jit_compile: bool, policy: str | None = None
) -> Callable[[ArchSpec, Config, np.ndarray], KerasStep]:
    """The Keras row's builder; `policy` is the CPU's bf16 switch, so it needs native bf16."""

    def build(spec: ArchSpec, config: Config, images: np.ndarray) -> KerasStep:
        if policy and not bf16_supported():
            raise Unavailable(NO_NATIVE_BF16 + f": {policy} would be emulated")
        return KerasStep(spec, config, images, jit_compile, policy)

    return build


# ------------------------------------------------------------------------------ the PyTorch example step
# The PyTorch DCGAN example's step: one G forward, D updated on real and detached fakes, then G updated
# through the new D on the same fakes (3 G + 9 D forward-equivalents: D's weight gradients are computed
# in the G step too, as the example does).
PYTORCH_SCHEDULE = "pytorch_example"


def torch_models(spec: ArchSpec, config: Config):
    """The notebook's G and D as torch.nn.Sequential (NCHW; "same" padding as explicit padding)."""
    try:
        import torch
        from torch import nn
    except ImportError:
        raise Unavailable("PyTorch is not installed (pip install torch to time it)") from None
    height, width, channels = spec.image_shape
    if spec.name != "notebook" or (height, width, channels) not in ((28, 28, 1), (32, 32, 3)):
        raise Unavailable(f"no PyTorch mirror of architecture {spec.name!r} {spec.image_shape}")
    alpha, rate = config.lrelu_alpha, 1.0 - config.keep_prob
    bn = {"momentum": 1.0 - config.bn_momentum, "eps": config.bn_epsilon}  # torch: weight of the new value
    # MNIST goes 4x4 -> 7x7 (kernel 4, stride 1, no padding); CIFAR 4x4 -> 8x8 (kernel 4, stride 2, pad 1).
    first_up = nn.ConvTranspose2d(512, 256, 4, *((1, 0) if height == 28 else (2, 1)))

    def block(*layers: nn.Module, features: int) -> list:
        return [*layers, nn.BatchNorm2d(features, **bn), nn.LeakyReLU(alpha), nn.Dropout(rate)]

    generator = nn.Sequential(
        nn.Linear(config.noise_dim, 4 * 4 * 512),
        nn.Unflatten(1, (512, 4, 4)),
        *block(features=512),
        *block(first_up, features=256),
        *block(nn.ConvTranspose2d(256, 128, 3, 2, 1, output_padding=1), features=128),
        nn.ConvTranspose2d(128, channels, 3, 2, 1, output_padding=1),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(channels, 128, 3, 2, 1),
        nn.LeakyReLU(alpha),
        nn.Dropout(rate),
        *block(nn.Conv2d(128, 256, 3, 2, 1), features=256),
        *block(nn.Conv2d(256, 512, 3, 2, 1), features=512),
        nn.Flatten(),
        nn.Linear(4 * 4 * 512, 1),
    )
    return torch, generator, discriminator


class TorchStep:
    """The PyTorch DCGAN example's training loop body, eager, on the CPU, data already in memory.

    autocast: the forward passes and losses under `torch.autocast("cpu", dtype=torch.bfloat16)`
    (PyTorch's own bf16 switch: convolutions and linear layers in bf16, weights and Adam in float32);
    the backward passes run outside it, as PyTorch's AMP recipe has them.
    """

    def __init__(self, spec: ArchSpec, config: Config, images: np.ndarray, autocast: bool = False) -> None:
        torch, self.generator, self.discriminator = torch_models(spec, config)
        if autocast and not bf16_supported():
            raise Unavailable(NO_NATIVE_BF16 + ": autocast would be emulated")
        self.torch, self.config = torch, config
        self.autocast = (
            (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext
        )
        torch.manual_seed(config.seed)
        torch.set_num_threads(cpu_count())
        adam = {"lr": config.learning_rate, "betas": (config.beta1, 0.999)}
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), **adam)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), **adam)
        self.loss = torch.nn.BCEWithLogitsLoss()
        # NHWC uint8 -> NCHW float in [-1, 1], once.
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        self.order, self.position = torch.randperm(len(images)), 0

    def step(self) -> None:
        torch, config = self.torch, self.config
        if self.position + config.batch_size > len(self.images):
            self.order, self.position = torch.randperm(len(self.images)), 0
        real = self.images[self.order[self.position : self.position + config.batch_size]]
        self.position += config.batch_size
        noise = torch.rand(config.batch_size, config.noise_dim) * 2.0 - 1.0
        real_target = torch.full((config.batch_size, 1), 1.0 - config.label_smoothing)
        fake_target = torch.zeros(config.batch_size, 1)

        with self.autocast():
            fake = self.generator(noise)
        self.d_optimizer.zero_grad()
        with self.autocast():
            d_loss = self.loss(self.discriminator(real), real_target)
            d_loss = d_loss + self.loss(self.discriminator(fake.detach()), fake_target)
        d_loss.backward()
        self.d_optimizer.step()

        self.g_optimizer.zero_grad()
        with self.autocast():  # the notebook smooths G's target too
            g_loss = self.loss(self.discriminator(fake), real_target)
        g_loss.backward()
        self.g_optimizer.step()
        g_loss.item()  # wait for the step (eager is synchronous on the CPU, this only reads the value)

    def close(self) -> None:
        pass


def torch_autocast(spec: ArchSpec, config: Config, images: np.ndarray) -> TorchStep:
    return TorchStep(spec, config, images, autocast=True)


# ------------------------------------------------------------------------------------------ the list
def implementations(default_precision: str, bf16_available: bool) -> list[Implementation]:
    """What `benchmarks.speed` compares, the project's variants first.

    default_precision: what `--precision auto` chose here; the other precisions this CPU runs follow it.
    """
    chosen = [Implementation("project (default train)", project(), "g_then_d", True)]
    others = ["float32"] + (["bfloat16"] if bf16_available else [])
    for precision in others:
        if precision != default_precision:
            name = f"project, --precision {precision}"
            chosen.append(Implementation(name, project(precision), "g_then_d", True))
    chosen += [
        Implementation("TF1 original step (feed_dict, 2 runs)", original_tf1(False), "g_then_d", False),
        Implementation("  same, update ops per network", original_tf1(True), "g_then_d", False),
        Implementation("TF2 Keras tf.function", keras_tf_function(False), "simultaneous", False),
        Implementation("  same, jit_compile (XLA)", keras_tf_function(True), "simultaneous", False),
        Implementation(
            f"  same, {KERAS_MIXED_POLICY} policy",
            keras_tf_function(False, KERAS_MIXED_POLICY),
            "simultaneous",
            False,
        ),
        Implementation("PyTorch DCGAN example, eager", TorchStep, PYTORCH_SCHEDULE, False),
        Implementation("  same, bf16 autocast", torch_autocast, PYTORCH_SCHEDULE, False),
    ]
    return chosen


def flops_per_image(spec: ArchSpec, config: Config, schedule: str) -> int:
    """FLOPs per image of a step run with `schedule` (the Keras tutorial's is simultaneous)."""
    if schedule == PYTORCH_SCHEDULE:
        forward = forward_flops_per_image(spec, config)
        return 3 * forward["generator"] + 9 * forward["discriminator"]
    return train_step_flops_per_image(dataclasses.replace(spec, schedule=schedule), config)
