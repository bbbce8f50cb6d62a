"""The GAN losses on D's logits, as named tuples of tensors.

The notebooks' own loss (sigmoid cross-entropy with one-sided label smoothing) is written out in each
dataset module's model file; the write-ups in dcgan_mnist/ call `gan_losses`, which is the same loss with
the Keras option of an unsmoothed target for G. The hinge loss, top-k training and InfoGAN's code term are
recipe ingredients (common/ingredients.py: recipe_losses).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from common.config import Config


class Losses(NamedTuple):
    d_loss: tf.Tensor
    g_loss: tf.Tensor
    d_real: tf.Tensor  # mean D(x): the probability D gives real images
    d_fake: tf.Tensor  # mean D(G(z))


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
