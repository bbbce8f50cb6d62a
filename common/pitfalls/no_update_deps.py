"""Pitfall 1: train ops built without a control dependency on the batch-norm updates.

batch_norm(training=True) only *adds* its moving-average updates to UPDATE_OPS. A train op that does not
wait for them never runs them: training looks perfect, and the sampler normalizes with the initial 0 and 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.config import Config
from common.gan import ArchSpec, Inputs, adam_train_op, model_opt, network_update_ops
from common.pitfalls.harness import (
    Runs,
    SampleStats,
    TrainGraph,
    Variant,
    moving_change,
    open_probe,
    sample_stats,
    scaled,
    stats_of,
    weights_difference,
)
from common.pitfalls.sections import STATS_NOTE, Section, code, grids_figure, source, stats_table, updates

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
    stats: dict[str, SampleStats]  # fixed inference, broken inference, broken batch mode, real
    images: dict[str, np.ndarray]


def measure(runs: Runs) -> NoUpdateDeps:
    steps = runs.size.steps
    fixed, broken = runs.weights("fixed"), runs.weights("without_update_deps")
    noise = runs.noise()
    with open_probe(runs) as probe:
        images = {
            "fixed, inference": probe.load(fixed).inference(noise),
            "broken, inference": probe.load(broken).inference(noise),
            "broken, batch statistics": probe.batch_mode(noise),
        }
    means = np.concatenate([value for name, value in broken.items() if name.endswith("moving_mean")])
    variances = np.concatenate([value for name, value in broken.items() if name.endswith("moving_variance")])
    stats = stats_of(images, runs)
    stats["real MNIST (train)"] = sample_stats(scaled(runs.train_images[: runs.size.grid]), runs.reference)
    return NoUpdateDeps(
        steps,
        moving_change(runs.traces["without_update_deps"]),
        moving_change(runs.traces["fixed"]),
        (float(means.min()), float(means.max())),
        (float(variances.min()), float(variances.max())),
        weights_difference(broken, fixed),
        {run: runs.graphs[run].step_update_ops for run in ("fixed", "without_update_deps")},
        stats,
        images,
    )


def section(result: NoUpdateDeps, out: Path) -> Section:
    grids_figure(
        out / FIGURE, result.images, f"Same weights and z after {result.steps} steps: inference samples"
    )
    fixed_stats, broken_stats = result.stats["fixed, inference"], result.stats["broken, inference"]
    text = f"""
**What goes wrong.** `batch_norm(x, training=True)` does not update `moving_mean` / `moving_variance` by
itself: it *adds* two assign ops per call to `UPDATE_OPS`, and only a train op built under a control
dependency on them runs them. Without it, training looks perfect (the training graph uses batch
statistics), and the inference sampler, which uses the moving statistics, normalizes with their initial
values 0 and 1.

**The broken code** (it ran as written: `common.gan.model_opt` builds each Adam train op under
`tf.control_dependencies` on the list `update_ops(tower, network, config)` returns):

{code(source(without_update_deps))}

**The fix** (`common/gan.py`, `model_opt`'s default `update_ops`): each optimizer waits for its own
network's updates.

{code(source(network_update_ops, adam_train_op))}

**Measured** after {result.steps} steps, same initial weights, batches and noise:

- Largest change of any moving statistic from its initial value: **{result.moving_change_broken:g}** broken,
  {result.moving_change_fixed:.3f} fixed. Broken `moving_mean` entries lie in
  [{result.moving_mean_broken[0]:g}, {result.moving_mean_broken[1]:g}] and `moving_variance` entries in
  [{result.moving_variance_broken[0]:g}, {result.moving_variance_broken[1]:g}]: the initial values.
- Moving-average updates one training step runs: {updates(result.updates_per_step["fixed"])} fixed,
  {updates(result.updates_per_step["without_update_deps"])} broken.
- The trained weights differ by at most {result.weights_difference:g} between the two runs: the moving
  statistics play no part in training, so nothing in the losses warns you.

{stats_table(result.stats)}

{STATS_NOTE}

![broken vs fixed]({FIGURE})

The broken run's generator is trained all the same: run with batch statistics (third panel) its samples
are {result.stats["broken, batch statistics"].nn_rms:.3f} from the nearest real image, against
{broken_stats.nn_rms:.3f} in inference mode. Only its inference mode is broken.
"""
    headline = (
        f"moving stats change {result.moving_change_broken:g} (fixed {result.moving_change_fixed:.3f}); "
        f"inference samples' distance to real {broken_stats.nn_rms:.3f} vs {fixed_stats.nn_rms:.3f}"
    )
    return Section("1. Train ops without the UPDATE_OPS control dependencies", FIGURE, text, headline)
