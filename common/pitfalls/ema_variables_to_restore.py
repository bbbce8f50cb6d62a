"""Pitfall: a weight average restored with `tf.train.ExponentialMovingAverage(...).variables_to_restore()`.

The usual recipe keeps an average of the trainable weights (`ema.apply(tf.trainable_variables())`) and
restores it into the sampler with `Saver(ema.variables_to_restore())`: each trainable variable from its
average, every other variable (the batch norms' moving statistics) from itself. The sampler then
normalizes averaged weights with statistics that tracked the raw weights. An average of the moving
statistics too (`ema.apply` on them, `variables_to_restore(those variables)`) restores averages of the
raw weights' statistics: neither set was computed for the averaged weights.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.pitfalls.harness import (
    AVERAGE_SUFFIX,
    Quality,
    Runs,
    TrainGraph,
    Variant,
    model_variables,
    scaled,
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
    table,
    verdict,
    verdict_word,
)
from common.sampling import build_sampler
from common.step import Inputs

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
FIGURE = "ema_variables_to_restore.png"
DECAY = 0.999  # with num_updates: min(0.999, (1 + t) / (10 + t)), the schedule of the project's --g-ema


def weight_average(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step, then an ExponentialMovingAverage of every G variable (weights and moving
    statistics, so that both ways of restoring can be measured from one run)."""
    towers, losses, train = model_opt(spec, config, inputs, total_steps=1)
    generator = [v for name, v in model_variables().items() if name.startswith("generator/")]
    with tf.control_dependencies([train.step]):  # this step's final weights
        ema = v1.train.ExponentialMovingAverage(DECAY, num_updates=inputs.global_step)
        average = ema.apply(generator)
    return towers, losses, train._replace(step=tf.group(train.step, average, name="step_and_average"))


VARIANTS = (Variant("weight_average", weight_average, "half_steps"),)


# How each sampler's Saver is built: checkpoint name -> the sampler's variable (in the sampler's graph).
def plain_saver(ema: v1.train.ExponentialMovingAverage) -> dict[str, tf.Variable]:
    """The raw weights and their moving statistics: what a Saver() restores."""
    return {variable.op.name: variable for variable in v1.global_variables()}


def restore_default(ema: v1.train.ExponentialMovingAverage) -> dict[str, tf.Variable]:
    """The recipe: every trainable variable from its average, the moving statistics raw."""
    return ema.variables_to_restore()


def restore_all_averaged(ema: v1.train.ExponentialMovingAverage) -> dict[str, tf.Variable]:
    """Every G variable from its average, the moving statistics too (where the EMA kept them)."""
    return ema.variables_to_restore(v1.global_variables("generator/"))


RESTORES: dict[str, Callable[[v1.train.ExponentialMovingAverage], dict[str, tf.Variable]]] = {
    "Saver() (raw weights)": plain_saver,
    "variables_to_restore()": restore_default,
    "variables_to_restore(all G variables)": restore_all_averaged,
}


def write_checkpoint(values: Mapping[str, np.ndarray], prefix: str) -> str:
    """A checkpoint holding `values` under their names, as the training graph's Saver writes them."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.Variable(value, name=name.replace("/", "_")) for name, value in values.items()}
        saver = v1.train.Saver(var_list=variables)
        init = v1.global_variables_initializer()
    graph.finalize()
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        return saver.save(sess, prefix, write_meta_graph=False)


def restore(spec: ArchSpec, config: Config, checkpoint: str, saver_list) -> tuple[dict[str, np.ndarray], int]:
    """The sampler's G variables after restoring `checkpoint` with `saver_list(ema)`'s Saver, and how many
    of the moving statistics came from an average."""
    graph = tf.Graph()
    with graph.as_default():
        build_sampler(spec, config, reuse=False)
        ema = v1.train.ExponentialMovingAverage(DECAY)
        var_list = saver_list(ema)
        saver = v1.train.Saver(var_list=var_list)
        variables = {v.op.name: v for v in v1.global_variables("generator/")}
    graph.finalize()
    averaged_statistics = sum(name.endswith(AVERAGE_SUFFIX) and "/moving_" in name for name in var_list)
    with v1.Session(graph=graph) as sess:
        saver.restore(sess, checkpoint)
        return sess.run(variables), averaged_statistics


class EmaRestore(NamedTuple):
    steps: int
    raw_vs_fixed: float  # the average never touches training: raw weights vs the fixed run's
    from_average: dict[str, tuple[int, int, int]]  # restore -> (G variables, from an average, of them stats)
    quality: dict[str, dict[str, Quality]]  # restore -> statistics -> numbers
    images: dict[str, np.ndarray]
    table: str
    note: str


def measure(runs: Runs) -> EmaRestore:
    steps = runs.size.half_steps
    trained = runs.weights("weight_average", steps)
    generator = {name: value for name, value in trained.items() if name.startswith("generator/")}
    raw = {name: value for name, value in trained.items() if not name.endswith(AVERAGE_SUFFIX)}
    restored, from_average = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = write_checkpoint(generator, str(Path(folder) / "model"))
        for label, saver_list in RESTORES.items():
            restored[label], statistics = restore(runs.spec, runs.config, checkpoint, saver_list)
            averaged = sum(
                not np.array_equal(restored[label][name], generator[name]) for name in restored[label]
            )
            from_average[label] = (len(restored[label]), averaged, statistics)
    evaluator = runs.evaluator
    quality = {
        label: {stats: evaluator.of_weights(values, stats) for stats in ("moving", "recalibrated")}
        for label, values in restored.items()
    }
    noise = runs.noise()
    default, everything = "variables_to_restore()", "variables_to_restore(all G variables)"
    shown = (
        ("Saver() (raw weights)", "recalibrated", "raw weights, recalibrated"),
        (default, "moving", "variables_to_restore(), as restored"),
        (everything, "moving", "all averaged, as restored"),
        (default, "recalibrated", "averaged weights, recalibrated"),
    )
    images = {
        f"{name}: FID {quality[label][stats].fid:.1f}": scaled(
            evaluator.generator(restored[label], stats).images(noise)
        )
        for label, stats, name in shown
    }
    return EmaRestore(
        steps,
        weights_difference(raw, runs.weights("fixed", steps)),
        from_average,
        quality,
        images,
        quality_table(quality, evaluator),
        quality_note(evaluator),
    )


SNIPPET = """
ema = tf.compat.v1.train.ExponentialMovingAverage(0.999, num_updates=global_step)
with tf.control_dependencies([train_op]):
    train_op = ema.apply(tf.compat.v1.trainable_variables("generator"))
# sampler: averaged weights, then batch-norm statistics recomputed FOR them (precise BN), not restored
saver = tf.compat.v1.train.Saver(ema.variables_to_restore())
saver.restore(sess, checkpoint)
sess.run(recalibrate_ops, {z: np.random.uniform(-1, 1, [1024, z_dim])})  # a momentum-0 training pass
"""


def section(result: EmaRestore, out: Path) -> Section:
    grids_figure(
        out / FIGURE,
        result.images,
        f"The same z: a weight average restored three ways ({result.steps} steps)",
    )
    raw_label, default, everything = RESTORES
    q = result.quality
    averaged, raw = q[default]["recalibrated"], q[raw_label]["recalibrated"]
    counts = table(
        ["restored with", "G variables", "taken from an average", "of them moving statistics"],
        [[f"`{label}`", *result.from_average[label]] for label in RESTORES],
    )
    text = f"""
**Symptom.** The weight average that should sample better than the raw weights samples worse, or no
better, when restored into the sampler with `Saver(ema.variables_to_restore())`.

**Cause.** `variables_to_restore()` maps every trainable variable (and every variable the EMA was applied
to, when they are passed in) to its average, and every other variable to itself. Kept on the trainable
weights, as the recipe does, the average comes back with the batch norms' moving statistics of the *raw*
weights; kept on the statistics too, it comes back with averaged statistics of the raw weights. Neither
was measured on the averaged weights, whose activations have other means and variances.

**The code that ran:** the fixed step plus an average of G's variables, a checkpoint of them, and the
project's sampler restored from it three ways:

{code(source(weight_average, restore_default, restore_all_averaged))}

**Measured** after {result.steps} steps (the raw weights of this run differ from the fixed run's by at
most {result.raw_vs_fixed:g}: the average never touches training). What each Saver took from the averages
(the values read back after the restore, against the raw ones):

{counts}

{result.table}

{result.note}

One training path: the verdicts count the evaluator's noise (KID, two standard errors); none uses a
moving-average row as its baseline:

- The weight average itself, both recalibrated: averaged {fq(averaged)} vs raw {fq(raw)}:
  **{verdict_word(averaged, raw)}** ({verdict(averaged, raw)}).
- `variables_to_restore()` as restored (averaged weights, raw moving statistics): {fq(q[default]["moving"])}
  against the same averaged weights recalibrated: **{verdict_word(q[default]["moving"], averaged)}**
  ({verdict(q[default]["moving"], averaged)}).
- Everything averaged as restored: {fq(q[everything]["moving"])} against the averaged weights recalibrated:
  **{verdict_word(q[everything]["moving"], averaged)}** ({verdict(q[everything]["moving"], averaged)}).

At this budget the raw moving statistics have not warmed up either (section 1), which adds to the gap;
recalibration removes both causes at once.

![weight average]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste): restore the averaged weights, then recompute the
statistics for them:

{code(SNIPPET)}

The project code that runs the same thing: `--g-ema-decay` keeps the average
(`common.ingredients.generator_average`, variables `generator_ema/...`), `common.sampling.Generator`
restores it into G's weights (its `sources`) and `Config` refuses a weight average sampled without
recalibrated statistics.
"""
    headline = (
        f"averaged vs raw weights, recalibrated **{verdict_word(averaged, raw)}** (FID {averaged.fid:.1f} vs "
        f"{raw.fid:.1f}); restored by variables_to_restore() FID {q[default]['moving'].fid:.1f}: "
        f"**{verdict_word(q[default]['moving'], averaged)}** vs those weights recalibrated (n {averaged.n})"
    )
    return Section("A weight average restored with variables_to_restore()", FIGURE, text, headline)
