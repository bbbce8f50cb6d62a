"""Pitfall: both optimizers under one control dependency on the whole UPDATE_OPS collection.

The notebook's choice. The collection holds G's *and* D's updates, from every call, so each step runs the
other network's updates too: the moving averages take several updates per step, and the step does more.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import UPDATE_OPS
from common.pitfalls.harness import (
    Quality,
    Runs,
    TrainGraph,
    Variant,
    count_by_network,
    layer_means,
    level_difference,
    open_probe,
    weights_difference,
)
from common.pitfalls.notebook_step import model_opt
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    lines_figure,
    quality_note,
    quality_table,
    source,
    table,
    updates,
    verdict,
    verdict_word,
)
from common.step import Inputs, Tower, network_update_ops

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
FIGURE = "one_update_collection.png"
RUNS = ("fixed", "one_update_collection")


def whole_collection(tower: Tower, network: str, config: Config) -> list:
    """Everything built so far: G's *and* D's (by D's train op, both towers' updates)."""
    return v1.get_collection(UPDATE_OPS)


def one_update_collection(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step, with each train op waiting for the whole collection."""
    return model_opt(spec, config, inputs, total_steps=1, update_ops=whole_collection)


VARIANTS = (Variant("one_update_collection", one_update_collection, "half_steps"),)
SNIPPET = """
UPDATE_OPS = tf.compat.v1.GraphKeys.UPDATE_OPS
g_updates = tf.compat.v1.get_collection(UPDATE_OPS, scope="generator")      # G's own updates
d_updates = tf.compat.v1.get_collection(UPDATE_OPS, scope="discriminator")  # D's own updates
with tf.control_dependencies(g_updates):
    g_train_op = g_optimizer.minimize(g_loss, var_list=g_vars)
with tf.control_dependencies(d_updates):
    d_train_op = d_optimizer.minimize(d_loss, var_list=d_vars)
"""
GROUP_SNIPPET = """
g_train_op = tf.group(g_optimizer.minimize(g_loss, var_list=g_vars), *g_updates)
d_train_op = tf.group(d_optimizer.minimize(d_loss, var_list=d_vars), *d_updates)
"""


class OneCollection(NamedTuple):
    steps: int
    waits_for: dict[str, dict[str, dict[str, int]]]  # run -> train op -> network -> update ops waited for
    updates_per_step: dict[str, dict[str, int]]  # run -> network -> updates one step runs
    ops_per_step: dict[str, int]  # run -> ops one step runs
    step_seconds: dict[str, float]  # run -> median seconds per step (interleaved)
    g_moving_relative_difference: dict[str, float]  # moving_mean / moving_variance of G, broken vs fixed
    weights_difference: float
    sample_difference: tuple[float, float]  # inference samples broken vs fixed, 8-bit (max, mean)
    g_variance_traces: dict[str, dict[str, np.ndarray]]  # run -> layer -> channel mean per step
    quality: dict[str, dict[str, Quality]]  # run -> statistics -> evaluator numbers
    table: str
    note: str


def measure(runs: Runs) -> OneCollection:
    steps = runs.size.half_steps
    waits_for = {
        run: {
            "G train op": count_by_network(runs.graphs[run].train.g_update_ops),
            "D train op": count_by_network(runs.graphs[run].train.d_update_ops),
        }
        for run in RUNS
    }
    fixed, broken = (runs.weights(run, steps) for run in RUNS)
    relative = {}
    for statistic in ("moving_mean", "moving_variance"):
        names = [name for name in fixed if name.startswith("generator/") and name.endswith(statistic)]
        fixed_values = np.concatenate([fixed[name] for name in names])
        broken_values = np.concatenate([broken[name] for name in names])
        relative[statistic] = float(
            np.linalg.norm(broken_values - fixed_values) / np.linalg.norm(fixed_values)
        )
    noise = runs.noise()
    with open_probe(runs) as probe:
        fixed_images = probe.load(fixed).inference(noise)
        broken_images = probe.load(broken).inference(noise)
    # Skip the first steps (graph warm-up) when there are enough.
    skip = min(5, steps // 2)
    return OneCollection(
        steps,
        waits_for,
        {run: runs.graphs[run].step_update_ops for run in RUNS},
        {run: runs.graphs[run].step_ops for run in RUNS},
        {run: float(np.median(runs.traces[run].seconds[skip:steps])) for run in RUNS},
        relative,
        weights_difference(broken, fixed),
        level_difference(broken_images, fixed_images),
        {
            run: {
                layer: values[: steps + 1]
                for layer, values in layer_means(runs.traces[run], "generator", "moving_variance").items()
            }
            for run in RUNS
        },
        {run: runs.both(run, steps) for run in RUNS},
        quality_table(
            {"per network (fixed)": runs.both(RUNS[0], steps), "one collection": runs.both(RUNS[1], steps)},
            runs.evaluator,
        ),
        quality_note(runs.evaluator),
    )


def section(result: OneCollection, out: Path) -> Section:
    labels = {"fixed": "per network (fixed)", "one_update_collection": "one collection"}

    def bars(ax) -> None:
        names, own, other = [], [], []
        for run, label in labels.items():
            for op, network in (("G train op", "generator"), ("D train op", "discriminator")):
                counts = result.waits_for[run][op]
                names.append(f"{op[0]}: {label}")
                own.append(counts[network])
                other.append(sum(counts.values()) - counts[network])
        rows = np.arange(len(names))
        ax.barh(rows, own, label="its own network's")
        ax.barh(rows, other, left=own, label="the other network's")
        ax.set_yticks(rows, names, fontsize=8)
        ax.set_xlabel("update ops the train op waits for")
        ax.legend(fontsize=7)

    def traces(ax) -> None:
        for run, style in (("fixed", "-"), ("one_update_collection", "--")):
            for colour, (layer, values) in enumerate(result.g_variance_traces[run].items()):
                ax.plot(values, style, color=f"C{colour}", label=f"{layer}, {labels[run]}")
        ax.set_xlabel("step")
        ax.set_ylabel("G moving_variance (channel mean)")
        ax.legend(fontsize=6)

    lines_figure(
        out / FIGURE,
        {"what each train op waits for": bars, "G's moving variance": traces},
        "One UPDATE_OPS collection for both optimizers",
    )
    fixed_seconds, broken_seconds = result.step_seconds["fixed"], result.step_seconds["one_update_collection"]
    fixed_updates = sum(result.updates_per_step["fixed"].values())
    broken_updates = sum(result.updates_per_step["one_update_collection"].values())
    waits = result.waits_for["one_update_collection"]
    broken, fixed = (result.quality[run]["recalibrated"] for run in ("one_update_collection", "fixed"))
    counts = table(
        ["", "G train op waits for", "D train op waits for", "updates one step runs", "ops one step runs"],
        [
            [
                label,
                updates(result.waits_for[run]["G train op"]),
                updates(result.waits_for[run]["D train op"]),
                updates(result.updates_per_step[run]),
                result.ops_per_step[run],
            ]
            for run, label in labels.items()
        ],
    )
    text = f"""
**Symptom.** None in the losses; each step runs more ops than it needs, and the moving averages move
faster than `momentum` says.

**Cause.** The notebook built both optimizers under one
`tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS))`. The collection holds every batch
norm's updates: G's *and* D's, from every call. So the G step also runs D's updates (and D's forward
pass on the real batch, which the G step does not otherwise need), and the D step runs G's again: each
moving average takes more than one update per step, mixing statistics from before and after the G update.

**The broken code:**

{code(source(whole_collection, one_update_collection))}

**Measured** (ops counted in each train op's control dependencies and in what `sess.run(step)` reaches):

{counts}

- The G train op waits for {waits["G train op"]["discriminator"]} of D's updates and the D train op for
  {waits["D train op"]["generator"]} of G's: each step runs
  {broken_updates - fixed_updates} extra moving-average updates
  ({broken_updates} instead of {fixed_updates}) and
  {result.ops_per_step["one_update_collection"] - result.ops_per_step["fixed"]} extra ops in all.
- Median step time, the two runs interleaved: {broken_seconds * 1000:.0f} ms vs {fixed_seconds * 1000:.0f} ms
  (x{broken_seconds / fixed_seconds:.2f}).
- After {result.steps} steps G's moving statistics differ from the fixed run's by
  {result.g_moving_relative_difference["moving_mean"]:.1%} (means) and
  {result.g_moving_relative_difference["moving_variance"]:.1%} (variances), relative L2, while the trained
  weights differ by at most {result.weights_difference:g}; the inference samples differ by
  {result.sample_difference[1]:.2f} 8-bit levels on average (max {result.sample_difference[0]:.0f}).

![one collection]({FIGURE})

G's moving averages move twice per step (faster warm-up, a shorter memory: an effective momentum of
about 0.99^2) and D's four times, and the step does work it does not need. What that does to the samples,
after {result.steps} steps:

{result.table}

{result.note}

**Verdict** (recalibrated, both sides: the collection changes only the moving statistics, never the
training, so the weights are the same): one collection vs per network is **{verdict_word(broken, fixed)}**
({verdict(broken, fixed)}; FID {broken.fid:.1f} vs {fixed.fid:.1f}, n {fixed.n}). With the moving
averages, {fq(result.quality["one_update_collection"]["moving"])} one collection vs
{fq(result.quality["fixed"]["moving"])} per network: the doubled updates warm G's averages faster, so at
{result.steps} steps, where the fixed run's averages have not caught up (section 1), the broken code's
checkpoint *samples* better; that is the warm-up, not a better model, and it fades as both averages
catch up (section 1's table). The cost that stays is the extra work per step and D's averages mixing
statistics from before and after the G update.

**The fix, as code** (plain `tf.compat.v1`, to paste): each train op waits for its own network's updates.

{code(SNIPPET)}

TensorFlow's `tf.compat.v1.layers.batch_normalization` documentation shows the same as a group of the train
op and the updates (equivalent here: the updates run in the same `sess.run`, though not ordered before
the weight update):

{code(GROUP_SNIPPET)}

The project code that runs the same thing (`common/step.py`, called by `dcgan_mnist/model.py`'s
`model_opt`): each train op waits for its own network's updates, from the forward pass it trains on
(`--quirks original` takes everything that forward pass added, G's and D's).

{code(source(network_update_ops))}
"""
    headline = (
        f"{broken_updates} moving-average updates per step instead of {fixed_updates}; "
        f"step time x{broken_seconds / fixed_seconds:.2f}; recalibrated **{verdict_word(broken, fixed)}** "
        f"(FID {broken.fid:.1f} vs {fixed.fid:.1f}, n {fixed.n}; moving averages "
        f"{result.quality['one_update_collection']['moving'].fid:.1f} vs "
        f"{result.quality['fixed']['moving'].fid:.1f}: warm-up only)"
    )
    return Section("One UPDATE_OPS collection for both optimizers", FIGURE, text, headline)
