"""What the four other well-known 28x28 write-ups share, each a module of its own beside model.py.

`python -m dcgan_mnist train --arch NAME` trains one: tf_tutorial (the TensorFlow DCGAN tutorial),
keras_mlp (the Keras fully-connected GAN), pyimagesearch (the pyimagesearch Fashion-MNIST DCGAN) and
tf2_minimal (a short TF2 example). Each module has the notebook's functions under the notebook's names
(model_inputs, generator, discriminator, model_loss, model_opt, train), written on the same layers; only
how a step runs differs (model_opt), so they compare file to file with model.py.

Where a write-up uses one value for a setting the Config has (a leaky-ReLU slope, a dropout rate), the
network reads it from the config, so the flag applies; where it fixes a value the notebook has no
setting for, it is a literal constant, with a comment. `--batch-size` always means the real images one
step trains on (so epochs and "images seen" mean the same for all).

All four end D in a bare logit: Keras's `Dense(1, activation="sigmoid")` + binary cross-entropy is the
same loss as sigmoid cross-entropy on the logit (common.losses.gan_losses, numerically safer), and all
four train G towards target 1 even when D's real targets are smoothed (`smooth_g_target=False`).
"""

from __future__ import annotations

from common.config import Config

IMAGE_SHAPE = (28, 28, 1)  # MNIST and Fashion-MNIST, as in dcgan_mnist.model
TRAIN_IMAGES = 60000  # both training sets: the defaults turn the write-ups' epochs into steps


def steps_per_epoch(batch_size: int) -> int:
    return TRAIN_IMAGES // batch_size


def bn(config: Config) -> dict[str, float]:
    """The batch-norm settings of a write-up's layers (its defaults are Keras's, as the notebook's)."""
    return {"momentum": config.bn_momentum, "epsilon": config.bn_epsilon}
