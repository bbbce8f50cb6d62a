"""Pitfall: a multi-tower (multi-GPU style) step taking the batch-norm updates of one tower only.

Each tower's batch norms add their own update ops (named `tower_k/...`). The classic multi-GPU recipe
(TF-Slim's `train_image_classifier.py`: "Gather update_ops from the first clone") keeps the updates of the
first tower only: the moving averages
then see half of each batch. Taking every tower's runs each average once per tower and step.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.ingredients import learning_rate
from common.layers import UPDATE_OPS
from common.losses import Losses
from common.pitfalls.harness import (
    Quality,
    Runs,
    TrainGraph,
    Variant,
    count_by_network,
    layer_means,
    weights_difference,
)
from common.pitfalls.notebook_step import model_loss
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    lines_figure,
    quality_note,
    quality_table,
    seeds_table,
    seeds_verdict,
    seeds_word,
    source,
    updates,
    verdict,
    verdict_word,
)
from common.step import Inputs, TrainOps, adam_train_op
from common.streams import FIRST_TOWER_STREAM, SECOND_TOWER_STREAM

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
FIGURE = "multi_tower_updates.png"
TOWERS = 2
RUNS = ("towers_first_only", "towers_all")


def multi_tower_step(spec: ArchSpec, config: Config, inputs: Inputs, first_tower_only: bool) -> TrainGraph:
    """The batch split over TOWERS towers (as over GPUs), both losses averaged, both updates from the same
    forward passes; each train op waits for its network's updates of the first tower or of all towers."""
    reals = tf.split(inputs.real_images, TOWERS)
    noises = tf.split(inputs.noise, TOWERS)
    towers = tuple(
        model_loss(
            spec,
            config,
            inputs._replace(real_images=reals[k]),
            f"tower_{k}",
            (FIRST_TOWER_STREAM, SECOND_TOWER_STREAM)[k % 2],
            reuse=k > 0,
            noise=noises[k],
        )
        for k in range(TOWERS)
    )
    # Averaging the towers' losses is averaging their gradients: the multi-GPU recipe's math.
    d_loss = tf.add_n([tower.losses.d_loss for tower in towers]) / TOWERS
    g_loss = tf.add_n([tower.losses.g_loss for tower in towers]) / TOWERS
    taken = towers[:1] if first_tower_only else towers
    update_ops = {
        network: [op for tower in taken for op in v1.get_collection(UPDATE_OPS, f"{tower.scope}/{network}")]
        for network in ("generator", "discriminator")
    }
    lr = learning_rate(config, inputs.global_step, 1)
    g_train = adam_train_op(g_loss, "generator", update_ops["generator"], lr, config)
    d_train = adam_train_op(d_loss, "discriminator", update_ops["discriminator"], lr, config)
    with tf.control_dependencies([g_train, d_train]):
        step = v1.assign_add(inputs.global_step, 1, name="train_step").op
    mean = lambda values: tf.add_n(values) / TOWERS  # noqa: E731
    losses = Losses(
        d_loss,
        g_loss,
        mean([tower.losses.d_real for tower in towers]),
        mean([tower.losses.d_fake for tower in towers]),
    )
    ops = TrainOps(g_train, d_train, step, lr, update_ops["generator"], update_ops["discriminator"])
    return towers, losses, ops


def first_tower_only(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    return multi_tower_step(spec, config, inputs, first_tower_only=True)


def all_towers(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    return multi_tower_step(spec, config, inputs, first_tower_only=False)


VARIANTS = (
    Variant("towers_first_only", first_tower_only, "half_steps"),
    Variant("towers_all", all_towers, "half_steps"),
)
# The two towers' runs share one training path (the updates never touch training); the multi-tower step
# and the single-device fixed step do not (half-batch statistics): that one is judged over seeds.
SEEDED, SEEDED_STEPS = ("towers_all",), "half_steps"
SNIPPET = """
update_ops = []
for i in range(num_gpus):
    with tf.device(f"/gpu:{i}"), tf.compat.v1.name_scope(f"tower_{i}") as scope:
        tower_losses.append(build_tower(batches[i], reuse=i > 0))
        update_ops += tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, scope)  # every tower
with tf.control_dependencies(update_ops):
    train_op = optimizer.minimize(tf.add_n(tower_losses) / num_gpus)
"""


class MultiTower(NamedTuple):
    steps: int
    update_ops_in_graph: int
    updates_per_step: dict[str, dict[str, int]]  # run -> network -> updates one step runs
    weights_difference: float  # the two runs' trained weights: the updates never touch training
    stats_error: dict[str, dict[str, float]]  # run -> statistic -> relative L2 of G's moving vs recalibrated
    g_variance_traces: dict[str, dict[str, np.ndarray]]
    quality: dict[str, dict[str, Quality]]
    table: str
    note: str
    seeds: dict[str, list[Quality]]  # run -> recalibrated numbers per seed (towers_all, fixed)


def relative_error(moving: dict[str, np.ndarray], target: dict[str, np.ndarray], statistic: str) -> float:
    names = sorted(name for name in target if name.startswith("generator/") and name.endswith(statistic))
    a = np.concatenate([moving[name] for name in names])
    b = np.concatenate([target[name] for name in names])
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def measure(runs: Runs) -> MultiTower:
    steps = runs.size.half_steps
    weights = {run: runs.weights(run, steps) for run in RUNS}
    target = runs.evaluator.recalibrated(weights["towers_all"])  # G's statistics as recalibration makes them
    return MultiTower(
        steps,
        runs.graphs["towers_all"].update_ops_in_graph,
        {
            run: count_by_network(runs.graphs[run].train.g_update_ops + runs.graphs[run].train.d_update_ops)
            for run in RUNS
        },
        weights_difference(*weights.values()),
        {
            run: {s: relative_error(weights[run], target, s) for s in ("moving_mean", "moving_variance")}
            for run in RUNS
        },
        {run: layer_means(runs.traces[run], "generator", "moving_variance") for run in RUNS},
        {run: runs.both(run, steps) for run in RUNS},
        quality_table(
            {
                "first tower's updates": runs.both(RUNS[0], steps),
                "all towers' updates": runs.both(RUNS[1], steps),
            },
            runs.evaluator,
        ),
        quality_note(runs.evaluator),
        runs.over_seeds(("towers_all", "fixed"), steps),
    )


def fixed_update_ops(towers, network: str) -> list:
    """The fix: every tower's updates of the network the train op trains."""
    return [op for tower in towers for op in v1.get_collection(UPDATE_OPS, f"{tower.scope}/{network}")]


def section(result: MultiTower, out: Path) -> Section:
    labels = {"towers_first_only": "first tower only", "towers_all": "all towers"}

    def traces(ax) -> None:
        for run, style in (("towers_first_only", "--"), ("towers_all", "-")):
            for colour, (layer, values) in enumerate(result.g_variance_traces[run].items()):
                ax.plot(values, style, color=f"C{colour}", label=f"{layer}, {labels[run]}")
        ax.set_xlabel("step")
        ax.set_ylabel("G moving_variance (channel mean)")
        ax.legend(fontsize=6)

    def errors(ax) -> None:
        names = list(labels)
        for offset, statistic in enumerate(("moving_mean", "moving_variance")):
            ax.bar(
                np.arange(len(names)) + 0.4 * offset,
                [result.stats_error[run][statistic] for run in names],
                0.4,
                label=statistic,
            )
        ax.set_xticks(np.arange(len(names)) + 0.2, [labels[run] for run in names])
        ax.set_ylabel("relative L2 distance to recalibrated")
        ax.legend(fontsize=7)

    lines_figure(
        out / FIGURE,
        {"G's moving variance": traces, f"G's moving statistics after {result.steps} steps": errors},
        f"A {TOWERS}-tower step: the updates of one tower or of all",
    )
    first, every = result.quality["towers_first_only"], result.quality["towers_all"]
    seeded = {
        "all towers, recalibrated": result.seeds["towers_all"],
        "single device (fixed), recalibrated": result.seeds["fixed"],
    }
    error = result.stats_error
    text = f"""
**Symptom.** A multi-GPU port of a working single-device model samples differently in inference mode,
while its training is the same.

**Cause.** Every tower builds its own batch norms' update ops, under its own name scope, in
`UPDATE_OPS` ({result.update_ops_in_graph} here for {TOWERS} towers). Code that filters the collection by
the first tower's scope, as TF-Slim's `train_image_classifier.py` does
(`tf.get_collection(tf.GraphKeys.UPDATE_OPS, first_clone_scope)`), updates the averages with one tower's
share of
the batch; code that takes all of them runs each average {TOWERS} times a step, on statistics of
{TOWERS} different half-batches, in no fixed order between towers.

**The code that ran** (a {TOWERS}-tower step over `model_loss` (dcgan_mnist/model.py), batch {TOWERS} x half):

{code(source(multi_tower_step, first_tower_only, all_towers))}

**Measured** over {result.steps} steps, both runs from the same start on the same batches:

- Updates one step runs: {updates(result.updates_per_step["towers_first_only"])} (first tower) vs
  {updates(result.updates_per_step["towers_all"])} (all towers).
- The trained weights differ by at most {result.weights_difference:g}: the choice changes only the moving
  statistics.
- G's moving statistics against the recalibrated ones of the same weights (relative L2): means
  {error["towers_first_only"]["moving_mean"]:.1%} vs {error["towers_all"]["moving_mean"]:.1%}, variances
  {error["towers_first_only"]["moving_variance"]:.1%} vs {error["towers_all"]["moving_variance"]:.1%}
  (first tower vs all towers).

{result.table}

{result.note}

One tower vs all, recalibrated: **{verdict_word(first["recalibrated"], every["recalibrated"])}**
({verdict(first["recalibrated"], every["recalibrated"])}; FID {first["recalibrated"].fid:.1f} and
{every["recalibrated"].fid:.1f}): the same weights, so the same generator. With the moving averages
({fq(first["moving"])} first tower only, {fq(every["moving"])} all towers) the difference is how far each
set of averages has warmed up after {result.steps} steps (all towers update them twice a step), not a
better or worse model: at this budget neither set has caught up with the weights (section 1), so no
verdict is drawn from those rows.

Does the multi-tower step itself (batch norm on half-batches) train another generator than the
single-device step? Different training paths, so over {len(result.seeds["fixed"])} seeds, recalibrated:

{seeds_table(seeded)}

{seeds_verdict(result.seeds["towers_all"], result.seeds["fixed"], "2 towers", "the single-device step")}.

![multi-tower]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste): collect each tower's updates, not the first
tower's only (or recalibrate before sampling, which makes the choice irrelevant, as the recalibrated rows
show):

{code(SNIPPET)}

The project code that runs the same thing (the lab's multi-tower step, per network):

{code(source(fixed_update_ops))}
"""
    headline = (
        f"updates per step {updates(result.updates_per_step['towers_first_only'])} vs "
        f"{updates(result.updates_per_step['towers_all'])}; recalibrated, one tower vs all **"
        f"{verdict_word(first['recalibrated'], every['recalibrated'])}** (FID {first['recalibrated'].fid:.1f}"
        f" vs {every['recalibrated'].fid:.1f}, n {first['moving'].n}); 2 towers vs 1 device **"
        f"{seeds_word(result.seeds['towers_all'], result.seeds['fixed'])}** "
        f"({len(result.seeds['fixed'])} seeds)"
    )
    return Section("Multi-tower graphs: the updates of one tower or of all", FIGURE, text, headline)
