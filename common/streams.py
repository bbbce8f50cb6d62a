"""The random streams of a run: every random number is a pure function of (seed, step, stream).

Noise, dropout masks and the data order each fold their own stream id into (seed, step), so they never
share random numbers and each is reproducible from the checkpointed step: that is what makes resume
exact. The sample grids, the evaluator and the sampler's recalibration draw numpy noise of their own
streams. `sample` draws its noise in the graph (latent_noise), where an exported SavedModel draws it too:
for uniform noise and codes the very numbers of numpy's generator (common.numpy_random).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from common import numpy_random
from common.config import Config
from common.layers import FLOAT32_IMPL, LayerImpl, Layers, SeedStream

NOISE_STREAM, FIRST_TOWER_STREAM, SECOND_TOWER_STREAM, SHUFFLE_STREAM, SAMPLE_STREAM = 1, 2, 3, 4, 5
EVAL_STREAM, RECALIBRATION_STREAM, CODE_STREAM = 6, 7, 8


def step_seed(config: Config, global_step: tf.Tensor) -> tf.Tensor:
    """(seed, step) as a shape-[2] int64 tensor: what every in-graph random number folds its stream into."""
    return tf.stack([tf.constant(config.seed, tf.int64), global_step])


def tower_layers(
    config: Config, global_step: tf.Tensor, stream: int, impl: LayerImpl = FLOAT32_IMPL
) -> Layers:
    """The layers of one forward pass of a step: their dropout masks drawn from (seed, step, stream)."""
    base = tf.random.experimental.stateless_fold_in(step_seed(config, global_step), stream)
    return Layers(impl, SeedStream(base))


def draw_noise(shape: tf.Tensor | list, seed: tf.Tensor, kind: str) -> tf.Tensor:
    if kind == "normal":
        return tf.random.stateless_normal(shape, seed=seed)
    return tf.random.stateless_uniform(shape, seed=seed, minval=-1.0, maxval=1.0)


def draw_latent(rows: int, config: Config, global_step: tf.Tensor) -> tf.Tensor:
    """z for one step: `rows` noise vectors, then, with --info-codes K, a one-hot block of K uniformly
    drawn code values (from a stream of its own, so the noise is the same with and without codes)."""
    seed = step_seed(config, global_step)
    noise = draw_noise(
        [rows, config.noise_dim], tf.random.experimental.stateless_fold_in(seed, NOISE_STREAM), config.noise
    )
    if not config.info_codes:
        return noise
    code_seed = tf.random.experimental.stateless_fold_in(seed, CODE_STREAM)
    codes = tf.random.stateless_uniform([rows], code_seed, minval=0, maxval=config.info_codes, dtype=tf.int64)
    return tf.concat([noise, tf.one_hot(codes, config.info_codes, dtype=noise.dtype)], axis=1)


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
    return code_rows(sample_noise(config.replace(info_codes=0), columns, seed), config.info_codes)


def code_rows(noise: np.ndarray, info_codes: int) -> np.ndarray:
    """z of one row per code value, each row the noise vectors `noise` [columns, noise_dim]: row-major."""
    codes = np.repeat(np.eye(info_codes, dtype=np.float32), len(noise), axis=0)
    return np.concatenate([np.tile(noise, (info_codes, 1)), codes], axis=1)


def latent_noise(config: Config, n: tf.Tensor, seed: tf.Tensor, stream: int = SAMPLE_STREAM) -> tf.Tensor:
    """z for `sample` and an exported SavedModel's `sample` signature, as graph ops on the CPU: `n` (an
    int32 scalar) vectors from `seed` (an int64 scalar, >= 0).

    Uniform noise (the default) with its codes is `sample_noise(config, n, seed, stream)` bit for bit: numpy's
    PCG64 and its uniform and integer transforms in integer ops (common.numpy_random), the same on any
    machine. Normal noise is TensorFlow's stateless normal (Philox) of (seed, stream), the codes beside it
    its stateless uniform integers, as training draws them: numpy's normal draws (a ziggurat with libm's
    exp and log1p) have no bit-exact counterpart in TensorFlow's ops."""
    with tf.device("/cpu:0"), tf.name_scope("latent"):
        seed = tf.cast(seed, tf.int64)
        check = tf.debugging.assert_non_negative(seed, message="the seed must be a non-negative integer")
        with tf.control_dependencies([check]):
            n64 = tf.cast(n, tf.int64)
        codes = None
        if config.noise == "uniform":
            count = n64 * config.noise_dim
            words = count + (numpy_random.code_words(n64) if config.info_codes else 0)
            raw = numpy_random.default_rng_raw(seed, stream, words)
            noise = tf.cast(numpy_random.uniform_doubles(raw[:count], -1.0, 1.0), tf.float32)
            noise = tf.reshape(noise, tf.stack([n64, config.noise_dim]))
            if config.info_codes:
                codes = numpy_random.bounded_integers(raw[count:], config.info_codes, n64)
        else:
            pair = tf.stack([seed, tf.constant(stream, tf.int64)])
            noise = tf.random.stateless_normal(tf.stack([n64, config.noise_dim]), seed=pair)
            if config.info_codes:
                code_seed = tf.random.experimental.stateless_fold_in(pair, CODE_STREAM)
                codes = tf.random.stateless_uniform(
                    tf.reshape(n64, [1]), code_seed, minval=0, maxval=config.info_codes, dtype=tf.int64
                )
        if codes is None:
            return noise
        return tf.concat([noise, tf.one_hot(codes, config.info_codes, dtype=tf.float32)], axis=1)
