"""The recipe's ingredients: what `--recipe improved`, the research flags and the write-ups change in
the notebook's graph, each a named piece that says what it changes and is a no-op at the notebook's
settings. A model file calls them at the one place each applies; the notebook's own lines stay as the
notebook wrote them.

- learning_rates: --lr-decay (a schedule) and --d-learning-rate (two time-scales).
- network_layers: --d-norm spectral|both (D's kernels spectrally normalized, spectral without batch
  norm) and --upsample resize (G's stride-2 transposed convolutions as resize + convolution).
- split_code_head / recipe_losses: --info-codes (InfoGAN's code head and term), --loss hinge, --g-top-k.
- generator_average: --g-ema-decay (sample from an exponential moving average of G's weights).
"""

from __future__ import annotations

import tensorflow as tf

from common.config import Config
from common.layers import Layers, Training
from common.losses import Losses, gan_losses, hinge_losses, info_loss, top_k_logits

v1 = tf.compat.v1


# ---------------------------------------------------------------------------------- learning rates
def learning_rate(config: Config, global_step: tf.Tensor, total_steps: int) -> tf.Tensor:
    """config.learning_rate on its --lr-decay schedule (constant in the notebook)."""
    if config.lr_decay == "linear":
        progress = tf.cast(global_step, tf.float32) / float(max(total_steps, 1))
        return config.learning_rate * tf.maximum(1.0 - progress, 0.0)
    if config.lr_decay == "inverse_time":
        # Keras's legacy Adam(decay=lr / epochs), as pyimagesearch set it: lr / (1 + decay * iterations).
        decay = config.learning_rate / config.epochs
        return config.learning_rate / (1.0 + decay * tf.cast(global_step, tf.float32))
    return tf.constant(config.learning_rate, tf.float32)


def learning_rates(config: Config, global_step: tf.Tensor, total_steps: int) -> tuple[tf.Tensor, tf.Tensor]:
    """G's and D's Adam learning rates: the same one, unless --d-learning-rate gives D its own (two
    time-scales, on the same schedule). Build them before the networks, as the notebook did: D's is built
    only when asked for, since an extra op before the networks would move the initializers' op seeds."""
    rate = learning_rate(config, global_step, total_steps)
    if config.d_learning_rate is None:
        return rate, rate
    return rate, learning_rate(config.replace(learning_rate=config.d_learning_rate), global_step, total_steps)


# ---------------------------------------------------------------------------------- the networks' layers
class WithoutBatchNorm(Layers):
    """--d-norm spectral: D's batch norm left out (its kernels are spectrally normalized instead)."""

    def batch_norm(
        self, x: tf.Tensor, training: Training, name: str, momentum=0.99, epsilon=1e-3
    ) -> tf.Tensor:
        return x


class ResizeUpsampling(Layers):
    """--upsample resize: each stride-2 SAME transposed convolution becomes a nearest-neighbour resize x2
    and a stride-1 SAME convolution of the same kernel size and width (`resize_convN` for
    `conv_transposeN`: the same parameter count, other variables).

    With kernel 3 and stride 2 the transposed convolution's kernel footprints overlap unevenly, so every
    other output pixel sums more kernel taps than its neighbours: the checkerboard of Odena et al.,
    "Deconvolution and Checkerboard Artifacts" (Distill, 2016). A resize makes every output pixel see the
    same taps. Other transposed convolutions (MNIST's stride-1 second layer) stay as they are.
    """

    def conv2d_transpose(
        self, x: tf.Tensor, filters: int, kernel_size: int, strides: int, padding: str, name: str,
        use_bias: bool = True,
    ) -> tf.Tensor:  # fmt: skip
        if (strides, padding.lower()) != (2, "same"):
            return super().conv2d_transpose(x, filters, kernel_size, strides, padding, name, use_bias)
        height, width, channels = (int(d) for d in x.shape[1:])
        # Nearest neighbour as a broadcast and a reshape: its gradient is a sum, exact and deterministic
        # on every device (the resize op's gradient kernel is not deterministic on GPUs).
        repeated = tf.broadcast_to(x[:, :, None, :, None, :], [tf.shape(x)[0], height, 2, width, 2, channels])
        resized = tf.reshape(repeated, [-1, 2 * height, 2 * width, channels])
        resize_name = name.replace("conv_transpose", "resize_conv")
        return self.conv2d(resized, filters, kernel_size, 1, "same", resize_name, use_bias)


def network_layers(network: str, layers: Layers, training: Training, config: Config) -> Layers:
    """The layers `network` ("generator" or "discriminator") is built with under the config's options."""
    if network == "generator" and config.upsample == "resize":
        return ResizeUpsampling(layers.impl, layers.seeds, layers.spectral_norm)
    if network == "discriminator" and config.d_spectral_norm:
        kind = Layers if config.d_batch_norm else WithoutBatchNorm
        return kind(layers.impl, layers.seeds).with_spectral_norm(training)
    return layers


# ---------------------------------------------------------------------------------- losses
def split_code_head(
    d_logits_real: tf.Tensor, d_logits_fake: tf.Tensor, config: Config
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """--info-codes K: D's output is its logit, then the K logits of the code head. Returns D's logits
    on real and fake and the code logits for the fakes (None, and the logits as they are, without codes)."""
    if not config.info_codes:
        return d_logits_real, d_logits_fake, None
    return d_logits_real[:, :1], d_logits_fake[:, :1], d_logits_fake[:, 1:]


def recipe_losses(
    losses: Losses,
    d_logits_real: tf.Tensor,
    d_logits_fake: tf.Tensor,
    code_logits: tf.Tensor | None,
    latent: tf.Tensor,
    config: Config,
    smooth_g_target: bool = True,
) -> Losses:
    """The losses with the config's loss ingredients; `losses` itself at the notebook's settings.

    --loss hinge replaces them with the hinge loss; --g-top-k makes G's loss see only the fakes D scores
    highest (common.losses.top_k_logits); --info-codes adds InfoGAN's code term to both (info_loss).
    """
    if config.loss == "hinge" or config.g_top_k < 1.0:
        g_logits_fake = top_k_logits(d_logits_fake, config.g_top_k)
        if config.loss == "hinge":
            losses = hinge_losses(d_logits_real, d_logits_fake, g_logits_fake)
        else:
            losses = gan_losses(
                d_logits_real, d_logits_fake, config.label_smoothing, smooth_g_target, g_logits_fake
            )
    if code_logits is not None:
        info = info_loss(code_logits, latent, config)
        losses = losses._replace(
            d_loss=tf.add(losses.d_loss, info, name="d_loss_with_info"),
            g_loss=tf.add(losses.g_loss, info, name="g_loss_with_info"),
        )
    return losses


# ---------------------------------------------------------------------------------- G's weight average
def generator_average(config: Config, global_step: tf.Tensor, after: tf.Operation) -> tf.Operation:
    """--g-ema-decay: after `after` (the step's last update), an exponential moving average of G's weights
    in variables `generator_ema/...` (checkpointed); `after` itself when the average is off.

    shadow <- shadow - (1 - decay_t) * (shadow - weight), with decay_t = min(decay, (1 + t) / (10 + t)):
    the average forgets the initial weights in the first steps rather than over ~1 / (1 - decay) steps.
    Sampling from it needs recalibrated batch-norm statistics (no moving average tracked these weights).
    """
    if config.g_ema_decay <= 0:
        return after
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
