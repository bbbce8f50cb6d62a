"""Pitfall: the control dependencies' list read before the layers exist.

`tf.control_dependencies(ops)` takes a list, evaluated when it is called. Read UPDATE_OPS before the
networks are built and the list is empty for good: the batch norms add their updates afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import UPDATE_OPS
from common.pitfalls.harness import Runs, TrainGraph, Variant, layer_means, moving_change
from common.pitfalls.notebook_step import model_opt
from common.pitfalls.sections import Section, code, lines_figure, source, updates
from common.step import Inputs, adam_train_op

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "short_steps"
FIGURE = "captured_before_layers.png"


def captured_before_layers(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step, with train ops that wait for a list read before any batch_norm exists."""
    update_ops = v1.get_collection(UPDATE_OPS)  # read now, before the networks are built: []
    return model_opt(
        spec, config, inputs, total_steps=1, update_ops=lambda tower, network, config: update_ops
    )


VARIANTS = (Variant("captured_before_layers", captured_before_layers, "short_steps"),)


class CapturedEarly(NamedTuple):
    steps: int
    captured: int  # update ops in the list the control dependency was given
    update_ops_in_graph: int  # what batch_norm added to the collection afterwards
    updates_per_step: dict[str, int]
    moving_change: float
    moving_change_fixed: float
    # run -> "G layer" / "D layer" -> channel mean of moving_variance per step
    traces: dict[str, dict[str, np.ndarray]]


def measure(runs: Runs) -> CapturedEarly:
    graph = runs.graphs["captured_before_layers"]
    broken = runs.traces["captured_before_layers"]
    steps = runs.size.short_steps
    fixed = runs.traces["fixed"]
    fixed_short = fixed._replace(moving={name: values[: steps + 1] for name, values in fixed.moving.items()})
    traces = {
        run: {
            f"{label} {layer}": values
            for network, label in (("generator", "G"), ("discriminator", "D"))
            for layer, values in layer_means(trace, network, "moving_variance").items()
        }
        for run, trace in (("fixed", fixed_short), ("captured_before_layers", broken))
    }
    return CapturedEarly(
        steps,
        len(graph.train.g_update_ops),  # both train ops were given that one captured list
        graph.update_ops_in_graph,
        graph.step_update_ops,
        moving_change(broken),
        moving_change(fixed_short),
        traces,
    )


SNIPPET = """
fake = generator(z, training=True)                   # every batch_normalization call first ...
d_real, d_fake = discriminator(real, training=True), discriminator(fake, training=True, reuse=True)
update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, scope="generator")  # ... then
assert update_ops, "no batch-norm update ops: the collection was read too early"
with tf.control_dependencies(update_ops):
    g_train_op = g_optimizer.minimize(g_loss, var_list=g_vars)
"""


def section(result: CapturedEarly, out: Path) -> Section:
    def draw(run: str):
        def plot(ax) -> None:
            for layer, values in result.traces[run].items():
                ax.plot(values, label=layer)
            ax.set_xlabel("step")
            ax.set_ylabel("moving_variance (channel mean)")
            ax.legend(fontsize=7)

        return plot

    lines_figure(
        out / FIGURE,
        {"fixed": draw("fixed"), "control dependency captured early": draw("captured_before_layers")},
        f"Moving variances over {result.steps} steps",
    )
    text = f"""
**Symptom.** As without the dependencies (the section before): healthy losses, blotchy samples, moving
statistics that never move, although the code *has* a `tf.control_dependencies(update_ops)` line.

**Cause.** `tf.control_dependencies(ops)` takes a *list*, evaluated when the `with` line runs.
Read the collection before the networks are built and the list is empty; the batch norms built inside the
block add their updates to the collection afterwards, where nothing looks.

**The broken code:**

{code(source(captured_before_layers))}

**Measured:** the list held **{result.captured}** update ops when captured; the graph ends with
{result.update_ops_in_graph} in `UPDATE_OPS`; one training step runs {updates(result.updates_per_step)} of
them. After {result.steps} steps the largest change of any moving statistic is **{result.moving_change:g}**
(fixed run: {result.moving_change_fixed:.3f}): the same state as without the dependencies, whose samples
the section before measures, harder to see in the code.

![captured early]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

**The project code that runs the same thing:**
read the collection after the layers exist, right where the train op is built:
`model_opt` calls `update_ops(forward, network, config)` after building the forward pass, and
`adam_train_op` opens the control dependency on that list:

{code(source(adam_train_op))}
"""
    headline = (
        f"{result.captured} update ops captured; moving stats change {result.moving_change:g} "
        f"in {result.steps} steps"
    )
    return Section("Control dependencies taken before the layers exist", FIGURE, text, headline)
