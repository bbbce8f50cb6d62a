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
  a `tf.data` pipeline. Optionally compiled with XLA (`jit_compile=True`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np
import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec, adam_train_op, call_network, gan_losses, train_step_flops_per_image
from common.layers import UPDATE_OPS, SeedStream
from common.speed import SpeedSettings
from common.train import build_training_graph, session_config

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
class ProjectStep:
    """The step `common.train.train` runs: the same graph, session config and fetches."""

    def __init__(self, spec: ArchSpec, config: Config, images: np.ndarray, settings: SpeedSettings) -> None:
        self.graph, self.gan = build_training_graph(spec, config, len(images))
        self.sess = v1.Session(graph=self.graph, config=session_config(settings))
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


def project(settings: SpeedSettings) -> Callable[[ArchSpec, Config, np.ndarray], ProjectStep]:
    return lambda spec, config, images: ProjectStep(spec, config, images, settings)


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
            seeds = SeedStream(v1.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64))
            fake = call_network(spec.generator, "generator", False, self.input_z, True, config, seeds)
            d_logits_real = call_network(
                spec.discriminator, "discriminator", False, self.input_real, True, config, seeds
            )
            d_logits_fake = call_network(spec.discriminator, "discriminator", True, fake, True, config, seeds)
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
def keras_models(spec: ArchSpec, config: Config):
    """The notebook's G and D as Keras 3 Sequential models (MNIST 28x28x1 or CIFAR 32x32x3)."""
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
            layers.Dense(1),
        ],
        name="discriminator",
    )
    return generator, discriminator


class KerasStep:
    """The TF2 DCGAN tutorial's `train_step` under `tf.function`, over a shuffled, batched tf.data set."""

    def __init__(self, spec: ArchSpec, config: Config, images: np.ndarray, jit_compile: bool) -> None:
        import keras

        keras.utils.set_random_seed(config.seed)
        self.generator, self.discriminator = keras_models(spec, config)
        self.g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        self.d_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
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
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(losses.g_loss, g_vars), g_vars, strict=True))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(losses.d_loss, d_vars), d_vars, strict=True))
        return losses.d_loss, losses.g_loss

    def step(self) -> None:
        d_loss, _ = self.train_step(next(self.batches))
        d_loss.numpy()  # wait for the step, as sess.run does

    def close(self) -> None:
        pass


def keras_tf_function(jit_compile: bool) -> Callable[[ArchSpec, Config, np.ndarray], KerasStep]:
    return lambda spec, config, images: KerasStep(spec, config, images, jit_compile)


# ------------------------------------------------------------------------------------------ the list
def implementations(precision_available: bool) -> list[Implementation]:
    """What `benchmarks.speed` compares, the project's variants first."""
    chosen = [
        Implementation(
            "project (default train)", project(SpeedSettings.default_settings()), "g_then_d", True
        ),
    ]
    if precision_available:
        bf16 = dataclasses.replace(SpeedSettings.default_settings(), precision="bfloat16")
        chosen.append(Implementation("project, bf16 (opt-in)", project(bf16), "g_then_d", True))
    chosen += [
        Implementation("TF1 original step (feed_dict, 2 runs)", original_tf1(False), "g_then_d", False),
        Implementation("  same, update ops per network", original_tf1(True), "g_then_d", False),
        Implementation("TF2 Keras tf.function", keras_tf_function(False), "simultaneous", False),
        Implementation("  same, jit_compile (XLA)", keras_tf_function(True), "simultaneous", False),
    ]
    return chosen


def flops_per_image(spec: ArchSpec, config: Config, schedule: str) -> int:
    """FLOPs per image of a step run with `schedule` (the Keras tutorial's is simultaneous)."""
    return train_step_flops_per_image(dataclasses.replace(spec, schedule=schedule), config)
