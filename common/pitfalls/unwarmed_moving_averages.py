"""Pitfall: judging samples before the moving averages have warmed up.

With momentum m a moving average keeps a share m^t of its initial value after t updates, and it trails
statistics that drift while G trains, so early samples normalize with statistics that are not the
network's. Every other section compares samples, so this one comes first: it measures how large the
confound is along the fixed run, and the rule the report follows (both statistics, or recalibrated).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.pitfalls.harness import Quality, Runs, level_difference, open_probe, scaled
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    quality_note,
    quality_table,
    rows_figure,
    source,
    table,
)
from common.sampling import Generator

FIGURE = "unwarmed_moving_averages.png"
VARIANTS = ()  # measured on the fixed run's snapshots
MODES = ("moving averages", "batch statistics", "recalibrated")


class Warmup(NamedTuple):
    momentum: float
    steps: tuple[int, ...]
    init_weight: list[float]  # momentum ** step: the share of the initial value still in the average
    gap: list[float]  # mean |moving-average samples - batch mode| in 8-bit levels, same z
    gap_recalibrated: list[float]  # the same after recalibrating the statistics
    quality: dict[int, dict[str, Quality]]  # step -> statistics -> evaluator numbers
    images: dict[int, dict[str, np.ndarray]]
    table_note: str
    evaluator_table: str


def measure(runs: Runs) -> Warmup:
    steps = runs.size.warmup_steps
    noise = runs.noise()
    gap, gap_recalibrated, images, quality = [], [], {}, {}
    with open_probe(runs) as probe:
        for step in steps:
            weights = runs.weights("fixed", step)
            batch = probe.load(weights).batch_mode(noise)
            moving = scaled(runs.evaluator.generator(weights, "moving").images(noise))
            recalibrated = scaled(runs.evaluator.generator(weights, "recalibrated").images(noise))
            gap.append(level_difference(moving, batch)[1])
            gap_recalibrated.append(level_difference(recalibrated, batch)[1])
            images[step] = dict(zip(MODES, (moving, batch, recalibrated), strict=True))
            quality[step] = runs.both("fixed", step)
    momentum = runs.config.bn_momentum
    rows = {f"fixed run, step {step}": quality[step] for step in steps}
    return Warmup(
        momentum,
        steps,
        [momentum**step for step in steps],
        gap,
        gap_recalibrated,
        quality,
        images,
        quality_note(runs.evaluator),
        quality_table(rows, runs.evaluator),
    )


def sample_early(generator: Generator, noise: np.ndarray) -> np.ndarray:
    """Illustration of the mistake: a grid after a few hundred steps, with the moving averages."""
    return generator.images(noise)  # Generator(spec, config, sampler_stats="moving")


SNIPPET = """
n = len(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS))
generator(z, training=True, reuse=True, bn_momentum=0.0)  # G's layers again, momentum=0.0
recalibrate = tf.group(*tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)[n:])
# before sampling or saving for sampling: one pass over a large batch of noise
sess.run(recalibrate, {z: np.random.uniform(-1, 1, [1024, z_dim])})
images = sess.run(sample, {z: z_grid})  # the sampler (training=False) now uses those statistics
"""


def section(result: Warmup, out: Path) -> Section:
    rows = {f"step {step}: {mode}": result.images[step][mode][:10] for step in result.steps for mode in MODES}

    def gaps(ax) -> None:
        ax.plot(result.steps, result.gap, marker="o", label="moving averages vs batch statistics")
        ax.plot(result.steps, result.gap_recalibrated, marker="o", label="recalibrated vs batch statistics")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("mean |difference| (8-bit levels)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

    rows_figure(out / FIGURE, rows, f"Moving averages with momentum {result.momentum}", extra=gaps)
    pixels = table(
        ["step", "initial value's share m^t", "moving vs batch (levels)", "recalibrated vs batch (levels)"],
        [
            [step, f"{share:.3f}", f"{gap:.1f}", f"{recal:.1f}"]
            for step, share, gap, recal in zip(
                result.steps, result.init_weight, result.gap, result.gap_recalibrated, strict=True
            )
        ],
    )
    last, first = result.steps[-1], result.steps[0]
    end = result.quality[last]
    ratio = [q["moving"].fid / q["recalibrated"].fid for q in result.quality.values()]
    worst = max(
        result.quality,
        key=lambda step: result.quality[step]["moving"].fid / result.quality[step]["recalibrated"].fid,
    )
    text = f"""
**Symptom.** Grids drawn early in training (the notebook's first grids, a smoke run, a short
fine-tune) look far worse than the generator is: faint, blotchy, or nearly black.

**Cause.** A moving average with momentum m keeps a share m^t of its initial value (mean 0, variance 1)
after t updates; with m = {result.momentum} the time constant is {1 / (1 - result.momentum):.0f} steps.
It also trails the batch statistics while they drift as G trains. The sampler (`training=False`)
normalizes with these averages, the training towers with each batch's own statistics: until the two
agree, the samples show the averages' lag, not the generator.

**The mistake** (an illustration: any sampler with `sampler_stats="moving"` early in a run):

{code(source(sample_early))}

**Measured** on the fixed run's own snapshots, the same weights sampled both ways. Pixels (the same
{len(result.images[first]["batch statistics"])} z; batch mode is G as a training step runs it):

{pixels}

Evaluator numbers at each snapshot:

{result.evaluator_table}

{result.table_note}

The moving-average FID is {min(ratio):.1f}-{max(ratio):.1f} times the recalibrated one along the run
(worst at step {worst}); at step {last} the two are {fq(end["moving"])} and {fq(end["recalibrated"])}.
So every comparison of samples below gives both numbers: a run judged only with its moving averages
after a few hundred steps is judged on the averages' lag.

![warm-up]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

**The project code that runs the same thing:**
recalibrate the statistics before sampling ("precise BN": one training-mode pass
of G with momentum 0 over 1024 noise vectors sets each statistic to that pass's own; the weights are not
touched), the project's default `--sampler-stats recalibrated` (`common/sampling.py`, `Generator`):

{code(source(Generator._set_statistics))}

where `self.recalibration` is the group of update ops of a training-mode copy of G built with
`config.replace(bn_momentum=0.0)` (and no dropout) in the sampler's own graph.
"""
    headline = (
        f"step {last}: {fq(end['moving'])} with the moving averages vs FID {end['recalibrated'].fid:.1f} "
        f"recalibrated; moving/recalibrated FID ratio up to {max(ratio):.1f} (step {worst})"
    )
    return Section("Sampling before the moving averages have warmed up", FIGURE, text, headline)
