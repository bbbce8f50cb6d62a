"""Pitfall: a checkpoint of the trainable variables only.

The moving statistics are variables with trainable=False: `Saver(var_list=trainable_variables())` leaves
them out, and a sampling program that restores it keeps their initial values, 0 and 1.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.pitfalls.harness import ProbeInputs, Quality, Runs, open_probe
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    grids_figure,
    quality_note,
    quality_table,
    source,
    table,
)
from common.sampling import build_sampler
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
    quality: dict[str, dict[str, Quality]]  # saver -> statistics -> evaluator numbers of the restored G
    images: dict[str, np.ndarray]
    table: str
    note: str


def sample_restored(
    runs: Runs, checkpoint: str, noise: np.ndarray
) -> tuple[np.ndarray, float, dict[str, np.ndarray]]:
    """A fresh sampling program restoring what `checkpoint` holds: (its samples, the largest change of a
    moving statistic from its initial value, the restored generator's variables)."""
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
        generator = sess.run({n: v for n, v in variables.items() if n.startswith("generator/")})
    return images, max(float(np.abs(restored[name] - initial[name]).max()) for name in moving), generator


def measure(runs: Runs) -> TrainableOnlySaver:
    noise = runs.noise()
    variables_saved, moving_saved, change, images, quality = {}, {}, {}, {}, {}
    with open_probe(runs, savers) as probe, tempfile.TemporaryDirectory() as tmp:
        probe.load(runs.weights())
        for index, (label, saver) in enumerate(probe.part.items()):
            with probe.sess.graph.as_default():
                checkpoint = saver.save(probe.sess, str(Path(tmp) / f"ckpt{index}"), write_meta_graph=False)
            names = [name for name, _ in tf.train.list_variables(checkpoint)]
            variables_saved[label] = len(names)
            moving_saved[label] = sum("/moving_" in name for name in names)
            images[label], change[label], restored = sample_restored(runs, checkpoint, noise)
            quality[label] = {s: runs.evaluator.of_weights(restored, s) for s in ("moving", "recalibrated")}
    return TrainableOnlySaver(
        variables_saved,
        moving_saved,
        change,
        quality,
        images,
        quality_table(quality, runs.evaluator),
        quality_note(runs.evaluator),
    )


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
**Symptom.** The training program's grids are fine; a separate sampling program that restores the
checkpoint draws grey blotches.

**Cause.** The moving statistics are variables with `trainable=False`. A checkpoint written by
`Saver(var_list=tf.trainable_variables())` (a common way to "save only the model") leaves them out; a
sampling program that restores it keeps their initial values, 0 and 1: the missing-dependency state, one
step removed.

**The code that ran:**

{code(source(savers))}

**Measured** on the fixed run's final weights, each checkpoint restored into a fresh sampler graph:

{table(["saver", "variables saved", "moving statistics saved", "largest restored change from init"], rows)}

{result.table}

{result.note}

Restored from the trainable-only checkpoint: {fq(result.quality[TRAINABLE_ONLY]["moving"])} with the restored
(initial) statistics; recalibrated, {fq(result.quality[TRAINABLE_ONLY]["recalibrated"])}, the same as the full
checkpoint (FID {result.quality["Saver()"]["recalibrated"].fid:.1f}): recalibration also repairs such a
checkpoint, since it needs only the weights.

![savers]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste): save the global variables
(`tf.compat.v1.train.Saver()`, whose default is every saveable variable); to save only G, take
`GLOBAL_VARIABLES` under `generator/`. The project code that runs the same thing: `common/train.py`'s
Saver of the global variables, and `common/sampling.py`'s `Generator.restore`, which restores G's global
variables, moving statistics included:

```python
saver = tf.compat.v1.train.Saver(var_list=tf.compat.v1.get_collection(
    tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, scope="generator/"))   # moving_mean / moving_variance included
```
"""
    broken = result.quality[TRAINABLE_ONLY]
    headline = (
        f"{result.moving_saved[TRAINABLE_ONLY]} moving statistics in a trainable-only checkpoint; restored "
        f"FID {broken['moving'].fid:.1f}, recalibrated {broken['recalibrated'].fid:.1f} (n "
        f"{broken['moving'].n})"
    )
    return Section("A checkpoint of the trainable variables only", FIGURE, text, headline)
