"""Pitfall 7: sampling before the moving averages have warmed up.

With momentum m a moving average keeps a share m^t of its initial value after t updates, so early samples
normalize with statistics that are mostly the initial 0 and 1. The fix measured here: recalibration.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.config import Config
from common.gan import ArchSpec, call_network
from common.layers import UPDATE_OPS, Layers
from common.pitfalls.harness import ProbeInputs, Runs, SampleStats, level_difference, open_probe, sample_stats
from common.pitfalls.sections import Section, code, rows_figure, table

v1 = tf.compat.v1

FIGURE = "unwarmed_moving_averages.png"
VARIANTS = ()  # measured on the fixed run's snapshots
MODES = ("inference", "batch statistics", "recalibrated")


def recalibration(spec: ArchSpec, config: Config, inputs: ProbeInputs) -> tf.Operation:
    """The fix: sets G's moving statistics to the statistics of the fed noise batch ("precise BN")."""
    with tf.name_scope("recalibrate") as scope:
        # momentum 0: one training-mode pass sets each moving statistic to the batch's own statistic.
        one_pass = config.replace(keep_prob=1.0, bn_momentum=0.0)
        call_network(spec.generator, "generator", True, inputs.noise, True, one_pass, Layers())
        return tf.group(*v1.get_collection(UPDATE_OPS, scope=scope))


class Warmup(NamedTuple):
    momentum: float
    steps: tuple[int, ...]
    init_weight: list[float]  # momentum ** step: the share of the initial value still in the average
    gap: list[float]  # mean |inference - batch mode| in 8-bit levels, same z
    gap_recalibrated: list[float]  # after setting the moving statistics from one big noise batch
    stats: dict[str, list[SampleStats]]  # "inference" / "batch statistics" / "recalibrated" per step
    images: dict[int, dict[str, np.ndarray]]


def measure(runs: Runs) -> Warmup:
    steps = runs.size.warmup_steps
    noise = runs.noise()
    calibration_noise = runs.noise(runs.size.recalibration_batch, seed_offset=7)
    gap, gap_recalibrated, images = [], [], {}
    stats: dict[str, list[SampleStats]] = {mode: [] for mode in MODES}
    with open_probe(runs, recalibration) as probe:
        for step in steps:
            probe.load(runs.weights("fixed", step))
            inference = probe.inference(noise)
            batch = probe.batch_mode(noise)
            probe.run(probe.part, {probe.graph.inputs.noise: calibration_noise})
            recalibrated = probe.inference(noise)
            gap.append(level_difference(inference, batch)[1])
            gap_recalibrated.append(level_difference(recalibrated, batch)[1])
            images[step] = dict(zip(MODES, (inference, batch, recalibrated), strict=True))
            for mode, samples in images[step].items():
                stats[mode].append(sample_stats(samples, runs.reference))
    momentum = runs.config.bn_momentum
    return Warmup(momentum, steps, [momentum**step for step in steps], gap, gap_recalibrated, stats, images)


def section(result: Warmup, out: Path) -> Section:
    rows = {f"step {step}: {mode}": result.images[step][mode][:10] for step in result.steps for mode in MODES}

    def gaps(ax) -> None:
        ax.plot(result.steps, result.gap, marker="o", label="inference vs batch statistics")
        ax.plot(result.steps, result.gap_recalibrated, marker="o", label="after recalibration")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("mean |difference| (8-bit levels)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

    rows_figure(out / FIGURE, rows, f"Moving averages with momentum {result.momentum}", extra=gaps)
    body = [
        [
            step,
            f"{share:.3f}",
            f"{gap:.1f}",
            f"{gap_recalibrated:.1f}",
            f"{inference.nn_rms:.3f}",
            f"{batch.nn_rms:.3f}",
        ]
        for step, share, gap, gap_recalibrated, inference, batch in zip(
            result.steps,
            result.init_weight,
            result.gap,
            result.gap_recalibrated,
            result.stats["inference"],
            result.stats["batch statistics"],
            strict=True,
        )
    ]
    header = [
        "step",
        "initial value's share m^t",
        "gap (levels)",
        "gap after recalibration",
        "inference: distance to real",
        "batch mode: distance to real",
    ]
    text = f"""
**What goes wrong.** A moving average with momentum m keeps a share m^t of its initial value after t
updates. With the default m = {result.momentum}, the time constant is {1 / (1 - result.momentum):.0f} steps:
samples drawn early in training (the notebook's first grids, a quick smoke run, a short fine-tune)
normalize with statistics that are mostly the initial 0 and 1, not the network's.

**The broken code:**

{
        code('''
train(steps=10)
samples = sess.run(sampler.images, {sampler.noise: z})   # moving statistics: still mostly 0 and 1
''')
    }

**The fix:** judge samples only after a few time constants (or lower the momentum for short runs), or
recalibrate before sampling: one training-mode pass of G with momentum 0 over a big noise batch sets each
moving statistic to that batch's statistic (`recalibration` here; the idea of "precise BN").

**Measured** on the fixed run, the same z, inference mode vs batch-statistics mode:

{table(header, body)}

![warm-up]({FIGURE})
"""
    headline = (
        f"inference vs batch mode {result.gap[0]:.1f} levels at step {result.steps[0]}, {result.gap[-1]:.1f} "
        f"at step {result.steps[-1]}; recalibrated {result.gap_recalibrated[0]:.1f}"
    )
    return Section("7. Sampling before the moving averages have warmed up", FIGURE, text, headline)
