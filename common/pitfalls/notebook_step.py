"""The notebook's training step as the lab builds it: dcgan_mnist/model.py's model_inputs, model_loss and
model_opt, with the two lines the pitfalls change as arguments.

common/ never imports a dataset module, so the lab builds the same step from the shared pieces
(common.step) over the networks of the spec it is handed: op for op the graph the model file builds
(tests/test_pitfalls.py checks it). `update_ops` (which batch-norm updates a train op waits for) and
`tower` (how a forward pass is built) are the two lines the pitfall modules change.
"""

from __future__ import annotations

import dataclasses
import types

import tensorflow as tf

from common.architecture import ArchSpec, Network
from common.config import Config
from common.layers import FLOAT32_IMPL, LayerImpl
from common.step import (
    Inputs,
    Step,
    Tower,
    UpdateOpsRule,
    forward_pass,
    generic_inputs,
    network_update_ops,
    two_network_step,
)


def model_inputs(
    image_shape: tuple[int, int, int], n_images: int, config: Config, noise_batches: int = 1
) -> Inputs:
    """The notebook's two placeholders over the in-graph data (dcgan_mnist/model.py: model_inputs)."""
    return generic_inputs(image_shape, n_images, config, noise_batches)


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
    """G(z), D(x), D(G(z)) in training mode and the smoothed losses, in `scope` (model.py: model_loss)."""
    return forward_pass(
        spec.generator, spec.discriminator, inputs, config, scope, stream, reuse, impl, noise,
        spec.d_batches, spec.smooth_g_target,
    )  # fmt: skip


def model_opt(
    spec: ArchSpec,
    config: Config,
    inputs: Inputs,
    total_steps: int,
    impl: LayerImpl = FLOAT32_IMPL,
    update_ops: UpdateOpsRule = network_update_ops,
    tower=model_loss,
) -> Step:
    """The two Adam optimizers, each under a control dependency on the batch-norm updates `update_ops`
    picks (default: its own network's), G's update then D's (model.py: model_opt)."""

    def forward(inputs, config, scope, stream, reuse, impl, noise) -> Tower:
        return tower(spec, config, inputs, scope, stream, reuse, noise, impl)

    return two_network_step(
        forward, inputs, config, total_steps, impl, spec.schedule, spec.g_noise_batches, update_ops
    )


def with_networks(
    spec: ArchSpec, generator: Network | None = None, discriminator: Network | None = None
) -> ArchSpec:
    """`spec` with its generator and/or discriminator replaced (a variant's one changed line).

    A spec's networks are its model module's functions, so the copy holds a copy of that module with the
    two names rebound; everything else (model_opt, train, ...) is the module's own.
    """
    model = types.ModuleType(spec.model.__name__, spec.model.__doc__)
    model.__dict__.update({k: v for k, v in vars(spec.model).items() if not k.startswith("__")})
    model.generator = generator or spec.model.generator
    model.discriminator = discriminator or spec.model.discriminator
    return dataclasses.replace(spec, model=model)
