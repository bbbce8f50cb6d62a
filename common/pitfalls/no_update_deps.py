"""Pitfall 1: train ops built without a control dependency on the batch-norm updates.

batch_norm(training=True) only *adds* its moving-average updates to UPDATE_OPS. A train op that does not
wait for them never runs them: training looks perfect, and the sampler normalizes with the initial 0 and 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.architecture import ArchSpec
from common.config import Config
from common.pitfalls.harness import (
    Quality,
    Runs,
    TrainGraph,
    Variant,
    moving_change,
    weights_difference,
)
from common.pitfalls.notebook_step import model_opt
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    grids_figure,
    quality_note,
    quality_table,
    source,
    updates,
)
from common.step import Inputs, adam_train_op, network_update_ops

FIGURE = "no_update_deps.png"


def without_update_deps(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step, with train ops that wait for no batch-norm updates."""
    # batch_norm filled UPDATE_OPS; nothing ever runs it.
    return model_opt(spec, config, inputs, total_steps=1, update_ops=lambda tower, network, config: [])


VARIANTS = (Variant("without_update_deps", without_update_deps, "steps"),)


class NoUpdateDeps(NamedTuple):
    steps: int
    moving_change_broken: float  # largest change of any moving statistic: 0.0 means never updated
    moving_change_fixed: float
    moving_mean_broken: tuple[float, float]  # (min, max) over all moving_mean entries after training
    moving_variance_broken: tuple[float, float]
    weights_difference: float  # trained weights, broken vs fixed: the updates do not touch training
    updates_per_step: dict[str, dict[str, int]]  # run -> network -> moving-average updates one step runs
    quality: dict[str, dict[str, Quality]]  # run -> statistics -> evaluator numbers
    images: dict[str, np.ndarray]
    table: str
    note: str


def measure(runs: Runs) -> NoUpdateDeps:
    steps = runs.size.steps
    fixed, broken = runs.weights("fixed"), runs.weights("without_update_deps")
    noise = runs.noise()
    quality = {"fixed": runs.both("fixed"), "broken": runs.both("without_update_deps")}
    # The same z, each panel labelled with the evaluator's FID of the same settings.
    images = {
        f"fixed, moving averages: FID {quality['fixed']['moving'].fid:.1f}": runs.samples(
            "fixed", "moving", noise
        ),
        f"broken, moving averages: FID {quality['broken']['moving'].fid:.1f}": runs.samples(
            "without_update_deps", "moving", noise
        ),
        f"broken, recalibrated: FID {quality['broken']['recalibrated'].fid:.1f}": runs.samples(
            "without_update_deps", "recalibrated", noise
        ),
    }
    means = np.concatenate([value for name, value in broken.items() if name.endswith("moving_mean")])
    variances = np.concatenate([value for name, value in broken.items() if name.endswith("moving_variance")])
    rows = {"fixed": quality["fixed"], "without the dependencies": quality["broken"]}
    return NoUpdateDeps(
        steps,
        moving_change(runs.traces["without_update_deps"]),
        moving_change(runs.traces["fixed"]),
        (float(means.min()), float(means.max())),
        (float(variances.min()), float(variances.max())),
        weights_difference(broken, fixed),
        {run: runs.graphs[run].step_update_ops for run in ("fixed", "without_update_deps")},
        quality,
        images,
        quality_table(rows, runs.evaluator),
        quality_note(runs.evaluator),
    )


SNIPPET = """
update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)  # after the model is built
with tf.control_dependencies(update_ops):
    train_op = optimizer.minimize(loss)
# or as TensorFlow's batch_normalization documentation writes it (same sess.run, no ordering):
train_op = tf.group([optimizer.minimize(loss), update_ops])
# two networks: each optimizer with its own network's updates (scope="generator" / "discriminator")
"""


def section(result: NoUpdateDeps, out: Path) -> Section:
    grids_figure(out / FIGURE, result.images, f"Same z after {result.steps} steps")
    broken, fixed = result.quality["broken"], result.quality["fixed"]
    text = f"""
**Symptom.** The losses and D(x) / D(G(z)) look like a healthy run; the sampler's images are washed
out: grey backgrounds and faint strokes where the same weights draw clean digits once their statistics
are recalibrated (the figure: the same z, each panel with its FID).

**Cause.** `batch_norm(x, training=True)` does not update `moving_mean` / `moving_variance` by
itself: it *adds* two assign ops per call to `UPDATE_OPS`, and only a train op built under a control
dependency on them runs them. Without it the training graph still normalizes with batch statistics, and
the sampler normalizes with the initial values 0 and 1 for ever.

**The broken code** (it ran as written: `model_opt` (dcgan_mnist/model.py) builds each Adam train op under
`tf.control_dependencies` on the list `update_ops(tower, network, config)` returns):

{code(source(without_update_deps))}

**Measured** after {result.steps} steps, same initial weights, batches and noise:

- Largest change of any moving statistic from its initial value: **{result.moving_change_broken:g}** broken,
  {result.moving_change_fixed:.3f} fixed. Broken `moving_mean` entries lie in
  [{result.moving_mean_broken[0]:g}, {result.moving_mean_broken[1]:g}] and `moving_variance` entries in
  [{result.moving_variance_broken[0]:g}, {result.moving_variance_broken[1]:g}]: the initial values.
- Moving-average updates one training step runs: {updates(result.updates_per_step["fixed"])} fixed,
  {updates(result.updates_per_step["without_update_deps"])} broken.
- The trained weights differ by at most {result.weights_difference:g} between the two runs: the moving
  statistics play no part in training, so nothing in the losses warns you.

{result.table}

{result.note}

With its moving statistics the broken run scores {fq(broken["moving"])}, against {fq(fixed["moving"])}
for the fixed run; recalibrated, the two are the same generator ({fq(broken["recalibrated"])} and
FID {fixed["recalibrated"].fid:.1f}): only the inference mode is broken, and recalibrating the statistics
repairs a checkpoint trained this way.

![broken vs fixed]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

**The project code that runs the same thing** (`dcgan_mnist/model.py`, `model_opt`): each optimizer
waits for its
own network's updates, from the forward pass it trains on.

{code(source(network_update_ops, adam_train_op))}
"""
    headline = (
        f"moving stats change {result.moving_change_broken:g}; moving-average samples {fq(broken['moving'])} "
        f"vs FID {fixed['moving'].fid:.1f} fixed; recalibrated both FID {broken['recalibrated'].fid:.1f}"
    )
    return Section("Train ops without the UPDATE_OPS control dependencies", FIGURE, text, headline)
