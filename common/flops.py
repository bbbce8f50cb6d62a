"""What a network costs: its parameters and the FLOPs of one image through it, from the layer shapes."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import Layers, SeedStream
from common.step import call_network

v1 = tf.compat.v1


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
            # quirks=original keeps the generator's dropout on when sampling: it needs its random masks
            seeds = SeedStream(tf.constant([0, 0], tf.int64))
            call_network(spec.generator, "generator", False, noise, False, config, Layers(seeds=seeds))
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
