"""Pitfall: batch norm that updates its moving averages in place (`updates_collections=None`).

`tf.contrib.layers.batch_norm(..., updates_collections=None)` put the assign ops under a control
dependency of the layer's own output instead of into UPDATE_OPS. There is nothing to collect, so the fix
of the missing-dependency pitfall changes nothing, and the averages move in every `sess.run` that
evaluates the layer in training mode: both towers of a step, a D step that evaluates G, a logging call.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec, Network
from common.config import Config
from common.layers import UPDATE_OPS, Layers, Training, batch_norm
from common.pitfalls.harness import (
    LabRun,
    Quality,
    Runs,
    TrainGraph,
    Variant,
    build_lab_graph,
    executed_ops,
)
from common.pitfalls.notebook_step import model_opt, with_networks
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    lines_figure,
    quality_note,
    quality_table,
    source,
    updates,
    verdict,
    verdict_word,
)
from common.step import Inputs

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
FIGURE = "in_place_updates.png"
IN_PLACE_UPDATES = "in_place_batch_norm_updates"  # the variant's update ops, for counting
RUNS = ("fixed", "in_place_updates")


class InPlaceLayers(Layers):
    """The project's layers with `updates_collections=None` batch norm, as tf.contrib.layers had it."""

    def batch_norm(
        self, x: tf.Tensor, training: Training, name: str, momentum: float = 0.99, epsilon: float = 1e-3
    ) -> tf.Tensor:
        collection = v1.get_collection_ref(UPDATE_OPS)
        before = len(collection)
        y = batch_norm(x, training, name, momentum, epsilon, self.impl)
        added = [update.op for update in collection[before:]]
        del collection[before:]  # updates_collections=None: nothing in UPDATE_OPS ...
        if not added:
            return y
        for op in added:
            v1.add_to_collection(IN_PLACE_UPDATES, op)  # (kept apart only so the lab can count them)
        with tf.control_dependencies(added):  # ... the output itself waits for the assignments
            return tf.identity(y)


def in_place(network: Network) -> Network:
    return lambda x, training, config, layers: network(
        x, training, config, InPlaceLayers(layers.impl, layers.seeds, layers.spectral_norm)
    )


def in_place_updates(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step (with its per-network update ops) on batch norms that update in place."""
    spec = with_networks(spec, generator=in_place(spec.generator), discriminator=in_place(spec.discriminator))
    return model_opt(spec, config, inputs, total_steps=1)


VARIANTS = (Variant("in_place_updates", in_place_updates, "half_steps"),)
SNIPPET = """
# keep the updates in UPDATE_OPS (the default) instead of updates_collections=None ...
h = tf.contrib.layers.batch_norm(h, is_training=True, scope="bn1")  # TF 1.x: updates in UPDATE_OPS
with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, "discriminator")):
    d_train_op = d_optimizer.minimize(d_loss, var_list=d_vars)
# ... and with in-place layers, log in the step's own sess.run (one evaluation of each layer per step)
_, d_loss_value, g_loss_value = sess.run([d_train_op, d_loss, g_loss])
"""


def in_place_counts(ops: set[tf.Operation], graph: tf.Graph) -> dict[str, int]:
    """In-place updates among `ops`, by network."""
    counts = {"generator": 0, "discriminator": 0}
    for op in graph.get_collection(IN_PLACE_UPDATES):
        if op in ops:
            counts["generator" if "/generator/" in f"/{op.name}" else "discriminator"] += 1
    return counts


class InPlace(NamedTuple):
    steps: int
    update_ops_in_graph: int  # UPDATE_OPS: empty
    waited_for: dict[str, int]  # train op -> update ops network_update_ops gave it (0)
    updates_per_step: dict[str, dict[str, int]]  # run -> network -> updates one step runs
    logging_run_updates: dict[str, int]  # network -> updates one extra sess.run(losses) runs
    logging_run_change: dict[str, float]  # network -> largest change of a moving statistic by that run
    g_mean_traces: dict[str, np.ndarray]  # run -> channel mean of G's first moving_mean per step
    quality: dict[str, dict[str, Quality]]
    table: str
    note: str


def measure(runs: Runs) -> InPlace:
    steps = runs.size.half_steps
    lab = runs.graphs["in_place_updates"]
    step_ops = executed_ops(lab.train.step)
    # A logging call as many loops make: sess.run(d_loss, g_loss) between steps, on the trained weights.
    fresh = build_lab_graph(
        Variant("in_place_updates", in_place_updates), runs.spec, runs.config, len(runs.train_images)
    )
    fetches = [fresh.losses.d_loss, fresh.losses.g_loss]
    logged = set().union(*(executed_ops(t.op) for t in fetches))
    run = LabRun(fresh, runs.train_images, 1, (), runs.weights("in_place_updates", steps))
    try:
        before = run.sess.run(fresh.moving)
        run.sess.run(fetches)
        after = run.sess.run(fresh.moving)
    finally:
        run.close()
    change = {
        network: max(float(np.abs(after[n] - before[n]).max()) for n in before if n.startswith(f"{network}/"))
        for network in ("generator", "discriminator")
    }
    first_mean = sorted(
        name for name in lab.moving if name.startswith("generator/") and name.endswith("moving_mean")
    )[0]
    return InPlace(
        steps,
        lab.update_ops_in_graph,
        {"G train op": len(lab.train.g_update_ops), "D train op": len(lab.train.d_update_ops)},
        {
            "fixed": runs.graphs["fixed"].step_update_ops,
            "in_place_updates": in_place_counts(step_ops, lab.graph),
        },
        in_place_counts(logged, fresh.graph),
        change,
        {run_name: runs.traces[run_name].moving[first_mean][: steps + 1].mean(axis=1) for run_name in RUNS},
        {run_name: runs.both(run_name, steps) for run_name in RUNS},
        quality_table(
            {
                "UPDATE_OPS (fixed)": runs.both("fixed", steps),
                "in place": runs.both("in_place_updates", steps),
            },
            runs.evaluator,
        ),
        quality_note(runs.evaluator),
    )


def section(result: InPlace, out: Path) -> Section:
    labels = {"fixed": "UPDATE_OPS + dependencies (fixed)", "in_place_updates": "in place"}

    def traces(ax) -> None:
        for run, values in result.g_mean_traces.items():
            ax.plot(values, label=labels[run])
        ax.set_xlabel("step")
        ax.set_ylabel("G batch_norm1 moving_mean (channel mean)")
        ax.legend(fontsize=7)

    def bars(ax) -> None:
        names = ["fixed step", "in-place step", "in place: one logging sess.run"]
        counts = [
            result.updates_per_step["fixed"],
            result.updates_per_step["in_place_updates"],
            result.logging_run_updates,
        ]
        rows = np.arange(len(names))
        g = [c["generator"] for c in counts]
        ax.barh(rows, g, label="G's")
        ax.barh(rows, [c["discriminator"] for c in counts], left=g, label="D's")
        ax.set_yticks(rows, names, fontsize=8)
        ax.set_xlabel("moving-average updates run")
        ax.legend(fontsize=7)

    lines_figure(
        out / FIGURE,
        {"updates per sess.run": bars, "G's moving mean": traces},
        "Batch norm that updates in place",
    )
    in_place_quality, fixed = result.quality["in_place_updates"], result.quality["fixed"]
    text = f"""
**Symptom.** `tf.get_collection(UPDATE_OPS)` is empty, so the usual fix looks unnecessary (it is: the
averages do move), but the moving statistics depend on how often and where the layer is evaluated: a
logging `sess.run(d_loss)` between steps moves D's averages too.

**Cause.** With `updates_collections=None` (`tf.contrib.layers.batch_norm`, and TF-Slim arg scopes that
set it), the layer's output carries a control dependency on its own assign ops. Any fetch that
evaluates the layer in training mode runs the update: here G's in both forward passes of a step (the G
update's and the D update's fakes), and D's for every call the fetch needs.

**The code that ran:** the project's `batch_norm`, its updates moved from `UPDATE_OPS` onto the output
(what `updates_collections=None` did), under the project's own step:

{code(source(InPlaceLayers, in_place, in_place_updates))}

**Measured** over {result.steps} steps from the same start:

- `UPDATE_OPS` holds **{result.update_ops_in_graph}** ops; `network_update_ops` gives the G train op
  {result.waited_for["G train op"]} and the D train op {result.waited_for["D train op"]}: the dependency
  fix has nothing to add.
- Updates one training step runs: {updates(result.updates_per_step["in_place_updates"])} in place vs
  {updates(result.updates_per_step["fixed"])} fixed: every call of a layer that the step's losses need
  (G in both forward passes; D in the G update's pass only on the fakes).
- One extra `sess.run([d_loss, g_loss])` after training (a logging call) runs
  {updates(result.logging_run_updates)} updates and moves the moving statistics by up to
  {result.logging_run_change["generator"]:.3g} (G) and {result.logging_run_change["discriminator"]:.3g} (D).

{result.table}

{result.note}

**Verdict** (recalibrated, both sides: in-place updates change only the moving statistics, so the two
runs share their weights): in place vs fixed is **{
        verdict_word(in_place_quality["recalibrated"], fixed["recalibrated"])
    }** ({verdict(in_place_quality["recalibrated"], fixed["recalibrated"])}; FID
{in_place_quality["recalibrated"].fid:.1f} vs {fixed["recalibrated"].fid:.1f}, n {fixed["moving"].n}).
With the moving averages ({fq(in_place_quality["moving"])} in place vs {fq(fixed["moving"])} fixed) the
in-place run's extra updates per step warm its averages faster: at {result.steps} steps the fixed run's
have not caught up (section 1), so that gap is warm-up speed, not a better model, and no verdict is
drawn from it.

![in place]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste; `tf.contrib` is TF 1.x only, where
`updates_collections=None` comes from): keep the updates in `UPDATE_OPS` and run them from the train op
of the network they belong to; with in-place layers, fetch the losses for logging in the same
`sess.run` as the step, under names of their own:

{code(SNIPPET)}

The project code that runs the same thing: the project's `batch_norm` (`common/layers.py`) keeps its
updates in `UPDATE_OPS`, `network_update_ops` (`common/step.py`) hands each train op its own network's,
and the lab's loop (`LabRun.step` in `common/pitfalls/harness.py`) logs in the step's `sess.run`:

{code(source(LabRun.step))}
"""
    headline = (
        f"UPDATE_OPS {result.update_ops_in_graph}; updates per step "
        f"{updates(result.updates_per_step['in_place_updates'])}"
        f" vs {updates(result.updates_per_step['fixed'])}; a logging sess.run runs "
        f"{updates(result.logging_run_updates)};"
        f" recalibrated **{verdict_word(in_place_quality['recalibrated'], fixed['recalibrated'])}** (FID "
        f"{in_place_quality['recalibrated'].fid:.1f} vs {fixed['recalibrated'].fid:.1f}, n "
        f"{fixed['moving'].n}; moving averages {in_place_quality['moving'].fid:.1f} vs "
        f"{fixed['moving'].fid:.1f}: warm-up only)"
    )
    return Section("Batch norm that updates in place (updates_collections=None)", FIGURE, text, headline)
