"""Pitfall 9: dropout left on at sampling time, as the notebook's unconditional `tf.nn.dropout` was.

The same z gives a different image on every call: a grid cannot be reproduced, and two checkpoints
cannot be compared on the same z.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec, call_network
from common.layers import Layers, SeedStream
from common.pitfalls.harness import ProbeInputs, Runs, SampleStats, level_difference, open_probe, stats_of
from common.pitfalls.sections import Section, code, grids_figure, stats_table

v1 = tf.compat.v1

FIGURE = "dropout_at_inference.png"
VARIANTS = ()  # measured on the fixed run's weights


class DropoutSampler(NamedTuple):
    seed: tf.Tensor  # [2] int64 placeholder: the dropout masks' seed
    images: tf.Tensor


def sampler_with_dropout(spec: ArchSpec, config: Config, inputs: ProbeInputs) -> DropoutSampler:
    """The sampler's generator (BN on moving statistics) with the notebook's dropout left on."""
    with tf.name_scope("dropout_on"):
        seed = v1.placeholder(tf.int64, [2], name="seed")
        # quirks=original makes the notebook generator keep its dropout with training=False.
        notebook = config.replace(quirks="original")
        images = call_network(
            spec.generator, "generator", True, inputs.noise, False, notebook, Layers(seeds=SeedStream(seed))
        )
    return DropoutSampler(seed, images)


class DropoutAtInference(NamedTuple):
    keep_prob: float
    seed_difference: tuple[float, float]  # same z, same batch, two dropout seeds: 8-bit (max, mean)
    stats: dict[str, SampleStats]
    images: dict[str, np.ndarray]


def measure(runs: Runs) -> DropoutAtInference:
    noise = runs.noise()
    with open_probe(runs, sampler_with_dropout) as probe:
        probe.load(runs.weights())
        dropout_on = probe.part
        images = {"dropout off (fixed)": probe.inference(noise)}
        for seed in (1, 2):
            feed = {dropout_on.seed: np.array((seed, 0), np.int64)}
            images[f"dropout on, seed {seed}"] = probe.generate(dropout_on.images, noise, feed)
    return DropoutAtInference(
        runs.config.keep_prob,
        level_difference(images["dropout on, seed 1"], images["dropout on, seed 2"]),
        stats_of(images, runs),
        images,
    )


def section(result: DropoutAtInference, out: Path) -> Section:
    grids_figure(out / FIGURE, result.images, "The same z, dropout at sampling time on and off")
    text = f"""
**What goes wrong.** The notebook applied dropout unconditionally, so its sampler dropped
{1 - result.keep_prob:.0%} of G's activations at random: the same z gives a different image on every call,
so a grid cannot be reproduced and two checkpoints cannot be compared on the same z.

**The broken code:**

{
        code('''
layer = tf.nn.dropout(layer, keep_prob=0.8)          # no training flag: on when sampling too
''')
    }

**The fix:** `layers.dropout(x, keep_prob, active=training)` (`common/layers.py`): the identity when
`training=False`.

**Measured** on the fixed run's final weights: the same z and the same batch with two dropout seeds differ
by up to **{result.seed_difference[0]:.0f}** 8-bit levels (mean {result.seed_difference[1]:.2f}).

{stats_table(result.stats)}

![dropout at inference]({FIGURE})
"""
    headline = f"same z, two dropout seeds: up to {result.seed_difference[0]:.0f} levels apart"
    return Section("9. Dropout left on at inference", FIGURE, text, headline)
