"""Pitfall 10: a checkpoint of the trainable variables only.

The moving statistics are variables with trainable=False: `Saver(var_list=trainable_variables())` leaves
them out, and a sampling program that restores it keeps their initial values, 0 and 1.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec, build_sampler
from common.pitfalls.harness import ProbeInputs, Runs, SampleStats, open_probe, stats_of
from common.pitfalls.sections import Section, code, grids_figure, stats_table, table
from common.train import session_config

v1 = tf.compat.v1

FIGURE = "trainable_only_saver.png"
VARIANTS = ()  # measured on the fixed run's weights
TRAINABLE_ONLY = "Saver(var_list=trainable_variables())"


def savers(spec: ArchSpec, config: Config, inputs: ProbeInputs) -> dict[str, v1.train.Saver]:
    """The broken saver and the fixed one, on the probe's variables (both networks, no optimizer)."""
    return {
        TRAINABLE_ONLY: v1.train.Saver(var_list=v1.trainable_variables(), name="trainable_saver"),
        "Saver()": v1.train.Saver(name="saver"),  # every global variable: here, the networks'
    }


class TrainableOnlySaver(NamedTuple):
    variables_saved: dict[str, int]  # saver -> variables in its checkpoint
    moving_saved: dict[str, int]  # saver -> moving statistics among them
    restored_moving_change: dict[str, float]  # saver -> largest |restored moving stat - initializer value|
    stats: dict[str, SampleStats]
    images: dict[str, np.ndarray]


def sample_restored(runs: Runs, checkpoint: str, noise: np.ndarray) -> tuple[np.ndarray, float]:
    """A fresh sampling program restoring what `checkpoint` holds: (its samples, the largest change of a
    moving statistic from its initial value)."""
    saved = {name for name, _ in tf.train.list_variables(checkpoint)}
    graph = tf.Graph()
    with graph.as_default():
        sampler = build_sampler(runs.spec, runs.config, reuse=False)
        variables = {variable.op.name: variable for variable in v1.global_variables()}
        restore = v1.train.Saver(var_list=[variable for name, variable in variables.items() if name in saved])
        moving = {name: variable for name, variable in variables.items() if "/moving_" in name}
        init = v1.global_variables_initializer()
    graph.finalize()
    with v1.Session(graph=graph, config=session_config()) as sess:
        sess.run(init)
        initial = sess.run(moving)
        restore.restore(sess, checkpoint)
        restored = sess.run(moving)
        images = sess.run(sampler.images, {sampler.noise: noise})
    return images, max(float(np.abs(restored[name] - initial[name]).max()) for name in moving)


def measure(runs: Runs) -> TrainableOnlySaver:
    noise = runs.noise()
    variables_saved, moving_saved, change, images = {}, {}, {}, {}
    with open_probe(runs, savers) as probe, tempfile.TemporaryDirectory() as tmp:
        probe.load(runs.weights())
        for index, (label, saver) in enumerate(probe.part.items()):
            with probe.sess.graph.as_default():
                checkpoint = saver.save(probe.sess, str(Path(tmp) / f"ckpt{index}"), write_meta_graph=False)
            names = [name for name, _ in tf.train.list_variables(checkpoint)]
            variables_saved[label] = len(names)
            moving_saved[label] = sum("/moving_" in name for name in names)
            images[label], change[label] = sample_restored(runs, checkpoint, noise)
    return TrainableOnlySaver(variables_saved, moving_saved, change, stats_of(images, runs), images)


def section(result: TrainableOnlySaver, out: Path) -> Section:
    grids_figure(out / FIGURE, result.images, "The same weights, saved two ways and sampled in a fresh graph")
    rows = [
        [
            label,
            result.variables_saved[label],
            result.moving_saved[label],
            f"{result.restored_moving_change[label]:.3f}",
        ]
        for label in result.variables_saved
    ]
    text = f"""
**What goes wrong.** The moving statistics are variables with `trainable=False`. A checkpoint written by
`Saver(var_list=tf.trainable_variables())` (a common way to "save only the model") leaves them out; a
sampling program that restores it keeps their initial values, 0 and 1: section 1's garbage, one step
removed.

**The broken code:**

{
        code('''
saver = tf.train.Saver(var_list=tf.trainable_variables())   # moving_mean / moving_variance left out
''')
    }

**The fix:** save the global variables (`tf.train.Saver()`, as `common.train` does); to save only G,
take `GLOBAL_VARIABLES` under `generator/`, as `common.sampling.Generator` restores them.

**Measured** on the fixed run's final weights, each checkpoint restored into a fresh sampler graph:

{table(["saver", "variables saved", "moving statistics saved", "largest restored change from init"], rows)}

{stats_table(result.stats)}

![savers]({FIGURE})
"""
    headline = f"{result.moving_saved[TRAINABLE_ONLY]} moving statistics in a trainable-only checkpoint"
    return Section("10. A checkpoint of the trainable variables only", FIGURE, text, headline)
