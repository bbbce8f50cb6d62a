"""Pitfall: freezing a network with trainable=False while its batch norms still run in training mode.

`trainable=False` only keeps variables out of TRAINABLE_VARIABLES, i.e. out of the optimizer. The moving
statistics were never trainable: assign ops move them, and a train op under the usual
`tf.control_dependencies(tf.get_collection(UPDATE_OPS))` runs them for the frozen network too. Measured:
fine-tuning D against a frozen G, starting from the fixed run's last step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.ingredients import learning_rate
from common.layers import UPDATE_OPS
from common.pitfalls.harness import (
    LabRun,
    Quality,
    Runs,
    TrainGraph,
    Variant,
    build_lab_graph,
    level_difference,
    open_probe,
    train_runs,
)
from common.pitfalls.notebook_step import model_loss
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    grids_figure,
    quality_note,
    quality_table,
    source,
    verdict,
    verdict_word,
)
from common.step import Inputs, Tower, TrainOps, adam_train_op, network_update_ops
from common.streams import FIRST_TOWER_STREAM

v1 = tf.compat.v1

FIGURE = "frozen_generator_updates.png"
VARIANTS = ()  # trained inside measure, from the fixed run's last weights


def frozen(getter: Callable, name: str, *args, **kwargs):
    """A custom getter: G's variables are created with trainable=False (frozen for every optimizer)."""
    if name.startswith("generator/"):
        kwargs["trainable"] = False
    return getter(name, *args, **kwargs)


def fine_tune_d(
    spec: ArchSpec, config: Config, inputs: Inputs, update_ops: Callable[[Tower], list]
) -> TrainGraph:
    """One forward pass with a frozen G (training=True), and a D-only Adam step under `update_ops`."""
    with v1.variable_scope(v1.get_variable_scope(), custom_getter=frozen):
        tower = model_loss(spec, config, inputs, "step", FIRST_TOWER_STREAM, False)
    waits_for = update_ops(tower)
    lr = learning_rate(config, inputs.global_step, 1)
    d_train = adam_train_op(tower.losses.d_loss, "discriminator", waits_for, lr, config)
    with tf.control_dependencies([d_train]):
        step = v1.assign_add(inputs.global_step, 1, name="train_step").op
    return (tower,), tower.losses, TrainOps(tf.no_op(), d_train, step, lr, [], waits_for)


def frozen_with_whole_collection(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The usual idiom: the D step waits for every update in UPDATE_OPS, the frozen G's included."""
    return fine_tune_d(spec, config, inputs, lambda tower: v1.get_collection(UPDATE_OPS))


def frozen_with_own_updates(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The fix: the D step waits for D's updates only (the project's network_update_ops)."""
    return fine_tune_d(spec, config, inputs, lambda tower: network_update_ops(tower, "discriminator", config))


SNIPPET = """
fake = generator(z, training=False)  # frozen G: moving statistics, no update ops added
d_updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, scope="discriminator")
with tf.control_dependencies(d_updates):  # D's own updates only, never the whole collection
    d_train_op = d_optimizer.minimize(d_loss, var_list=d_vars)
"""
RUNS = {"whole collection": frozen_with_whole_collection, "own updates (fixed)": frozen_with_own_updates}


class Frozen(NamedTuple):
    steps: int
    start_step: int
    g_trainable: dict[str, int]  # run -> G variables in TRAINABLE_VARIABLES
    g_weight_change: dict[str, float]  # run -> largest change of a G weight (kernel, bias, gamma, beta)
    g_moving_change: dict[str, float]  # run -> largest change of a G moving statistic
    sample_difference: dict[str, tuple[float, float]]  # run -> moving-average samples, after vs before
    quality: dict[str, Quality]  # "before" / each run, moving averages; "recalibrated": the frozen weights
    images: dict[str, np.ndarray]
    table: str
    note: str


def measure(runs: Runs) -> Frozen:
    steps, start = runs.size.short_steps, runs.size.steps
    initial = runs.weights("fixed", start)
    graphs = {
        label: build_lab_graph(Variant(label, build), runs.spec, runs.config, len(runs.train_images))
        for label, build in RUNS.items()
    }
    trained = {label: LabRun(graph, runs.train_images, steps, (), initial) for label, graph in graphs.items()}
    traces = train_runs(trained, progress=False, desc="fine-tuning D")
    after = {label: trace.snapshots[steps] for label, trace in traces.items()}

    def g_change(weights: dict[str, np.ndarray], moving: bool) -> float:
        return max(
            float(np.abs(weights[n] - initial[n]).max())
            for n in initial
            if n.startswith("generator/") and ("/moving_" in n) == moving
        )

    noise = runs.noise()
    with open_probe(runs) as probe:
        images = {f"frozen G at step {start}": probe.load(initial).inference(noise)}
        for label, weights in after.items():
            images[f"after {steps} D steps, {label}"] = probe.load(weights).inference(noise)
    before_images = images[f"frozen G at step {start}"]
    quality = {"before": runs.quality("fixed", "moving", start)}
    for label, weights in after.items():
        quality[label] = runs.evaluator.of_weights(weights, "moving")
    quality["recalibrated"] = runs.quality("fixed", "recalibrated", start)
    quality["recalibrated after"] = runs.evaluator.of_weights(after["whole collection"], "recalibrated")
    rows = {
        f"G at step {start}, moving averages": quality["before"],
        **{f"after {steps} D steps, {label}, moving averages": quality[label] for label in RUNS},
        f"G at step {start} (= after, both), recalibrated": quality["recalibrated"],
    }
    return Frozen(
        steps,
        start,
        {
            label: sum(
                v.op.name.startswith("generator/")
                for v in g.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
            )
            for label, g in graphs.items()
        },
        {label: g_change(weights, moving=False) for label, weights in after.items()},
        {label: g_change(weights, moving=True) for label, weights in after.items()},
        {label: level_difference(images[f"after {steps} D steps, {label}"], before_images) for label in RUNS},
        quality,
        images,
        quality_table(rows, runs.evaluator),
        quality_note(runs.evaluator),
    )


def section(result: Frozen, out: Path) -> Section:
    grids_figure(out / FIGURE, result.images, "A frozen generator's samples (moving averages), same z")
    broken, fixed = "whole collection", "own updates (fixed)"
    text = f"""
**Symptom.** A generator frozen with `trainable=False` (to fine-tune D, to distil, to reuse a pretrained
network) keeps changing its samples, and its checkpoint keeps changing, while its weights stay put.

**Cause.** `trainable=False` keeps variables out of `TRAINABLE_VARIABLES`, which is what the optimizer
reads; `moving_mean` and `moving_variance` were never trainable. A frozen network called with
`training=True` still normalizes with batch statistics and still adds its update ops, and a train op
under `tf.control_dependencies(tf.get_collection(UPDATE_OPS))` runs them.

**The code that ran** (D fine-tuned for {result.steps} steps against G frozen at step {result.start_step}
of the fixed run):

{code(source(frozen, fine_tune_d, frozen_with_whole_collection))}

**Measured:**

- G variables in `TRAINABLE_VARIABLES`: {result.g_trainable[broken]}. Largest change of a G weight:
  {result.g_weight_change[broken]:g} (whole collection), {result.g_weight_change[fixed]:g} (own updates).
- Largest change of a G moving statistic: **{result.g_moving_change[broken]:.4g}** with the whole
  collection, **{result.g_moving_change[fixed]:g}** with D's own updates.
- The frozen G's samples (moving averages, the same z) moved by
  {result.sample_difference[broken][1]:.2f} 8-bit levels on average (max
{result.sample_difference[broken][0]:.0f})
  with the whole collection, {result.sample_difference[fixed][1]:.2f} (max
{result.sample_difference[fixed][0]:.0f})
  with D's own.

{result.table}

{result.note}

**Verdict** (recalibrated, both sides): the frozen G after {result.steps} D steps with the whole
collection vs at the freeze is **{
        verdict_word(result.quality["recalibrated after"], result.quality["recalibrated"])
    }** ({verdict(result.quality["recalibrated after"], result.quality["recalibrated"])}; FID {
        result.quality["recalibrated after"].fid:.1f} vs
{result.quality["recalibrated"].fid:.1f}): its weights did not move, so it is one generator throughout.
What changed is its checkpoint: with the moving averages it samples {fq(result.quality["before"])} at the
freeze and {fq(result.quality[broken])} after ({fq(result.quality[fixed])} with D's own updates). At
step {result.start_step} the fixed run's averages have not caught up with its weights (section 1), so
the extra updates carry them on towards the generator's own batch statistics and the moving-average
numbers change by warm-up, in whichever direction: a frozen network whose samples change is the
pitfall, not a better or worse model.

![frozen]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste): keep a frozen network's updates out of every
train op, or call it with `training=False`:

{code(SNIPPET)}

The project code that runs the same thing (`network_update_ops` takes only the trained network's
updates; the lab's frozen run):

{code(source(frozen_with_own_updates))}
"""
    same = verdict_word(result.quality["recalibrated after"], result.quality["recalibrated"])
    headline = (
        f"frozen G's moving stats change {result.g_moving_change[broken]:.3g} in {result.steps} D "
        f"steps (fixed: "
        f"{result.g_moving_change[fixed]:g}); its checkpoint samples FID "
        f"{result.quality['before'].fid:.1f} -> {result.quality[broken].fid:.1f} (moving averages); "
        f"recalibrated **{same}**"
        f" (n {result.quality[broken].n})"
    )
    return Section("Freezing with trainable=False: the moving statistics still move", FIGURE, text, headline)
