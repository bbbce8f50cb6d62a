"""The training data inside the graph: the whole data set on the device, one batch sliced per step.

The data set lives in a uint8 variable, loaded once; each step slices its batch out of a per-epoch
permutation drawn from (seed, epoch). No feed_dict in the loop, and the only state that decides a batch
is the step, which is checkpointed: resume is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from common.config import Config, ConfigError
from common.streams import SHUFFLE_STREAM

v1 = tf.compat.v1


class StepData(NamedTuple):
    """The in-graph data of a run and the step counter it is sliced by."""

    global_step: tf.Variable
    epoch: tf.Tensor
    steps_per_epoch: int
    dataset_feed: tf.Tensor  # uint8 placeholder fed once, to load the data set onto the device
    load_dataset: tf.Operation
    shuffle: tf.Operation  # draws the order of the current epoch; run at each epoch's first step
    batch: tf.Tensor  # this step's real images, float32 in [-1, 1]


def scale_images(images_uint8: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range of the generator's tanh."""
    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def step_batches(
    global_step: tf.Variable, image_shape: tuple[int, int, int], n_images: int, config: Config
) -> StepData:
    """The data set as a local variable and this step's batch of `config.batch_size` images from it.

    Build it inside the inputs' name scope; `global_step` is the run's (get_or_create_global_step).
    """
    steps_per_epoch = n_images // config.batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"--batch-size {config.batch_size} is larger than the data set ({n_images} images)")
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
    shuffle_seed = tf.random.experimental.stateless_fold_in(tf.stack([config.seed, epoch]), SHUFFLE_STREAM)
    order = tf.cast(tf.argsort(tf.random.stateless_uniform([n_images], seed=shuffle_seed)), tf.int64)
    shuffle = v1.assign(epoch_order, order, name="shuffle").op

    start = (global_step % steps_per_epoch) * config.batch_size
    batch_indices = epoch_order[start : start + config.batch_size]
    batch = scale_images(tf.gather(dataset_images, batch_indices))
    return StepData(
        global_step, epoch, steps_per_epoch, dataset_feed, dataset_images.initializer, shuffle, batch
    )
