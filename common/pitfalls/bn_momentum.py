"""Pitfall: a batch-norm momentum chosen for a long run, sampled at a short one (0.9, 0.99, and
`tf.contrib.layers.batch_norm`'s default decay 0.999).

The momentum never touches training (the towers normalize with batch statistics; the averages only feed
the sampler), so every momentum gives the same weights. The fixed run recorded G's moving averages at
every step; the batch statistic each update used is recovered from them
(m_t = mu m_(t-1) + (1 - mu) b_t), and the averages are replayed with another momentum: the exact moving
statistics that run would have had, with no run trained twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.pitfalls.harness import Quality, Runs
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    lines_figure,
    quality_note,
    source,
    table,
    verdict,
    verdict_word,
)

FIGURE = "bn_momentum.png"
VARIANTS = ()  # the fixed run's own trace, replayed
MOMENTA = (0.9, 0.99, 0.999)  # 0.999: tf.contrib.layers.batch_norm's default decay


def replay(moving: dict[str, np.ndarray], used: float, momentum: float) -> dict[str, np.ndarray]:
    """G's moving statistics per step ([steps + 1, channels]) as `momentum` would have made them, from
    the averages recorded with `used`: each update's batch statistic recovered, then averaged anew."""
    replayed = {}
    for name, values in moving.items():
        if not name.startswith("generator/"):
            continue
        recorded = values.astype(np.float64)
        batch = (recorded[1:] - used * recorded[:-1]) / (1.0 - used)
        averages = np.empty_like(recorded)
        averages[0] = recorded[0]
        for t in range(1, len(recorded)):
            averages[t] = momentum * averages[t - 1] + (1.0 - momentum) * batch[t - 1]
        replayed[name] = averages
    return replayed


class Momentum(NamedTuple):
    used: float  # the momentum the fixed run trained with
    steps: tuple[int, ...]
    replay_error: float  # replaying with `used` vs the recorded averages: largest relative difference
    quality: dict[float, dict[int, Quality]]  # momentum -> step -> moving-average numbers
    recalibrated: dict[int, Quality]  # step -> the same weights recalibrated
    note: str


def measure(runs: Runs) -> Momentum:
    used = runs.config.bn_momentum
    moving = runs.traces["fixed"].moving
    steps = tuple(step for step in runs.size.warmup_steps if step >= 10) or runs.size.warmup_steps[-1:]
    check = replay(moving, used, used)
    error = max(
        float(np.abs(check[name] - moving[name]).max() / max(np.abs(moving[name]).max(), 1e-12))
        for name in check
    )
    quality: dict[float, dict[int, Quality]] = {}
    for momentum in MOMENTA:
        averages = replay(moving, used, momentum)
        quality[momentum] = {}
        for step in steps:
            weights = {
                **runs.weights("fixed", step),
                **{name: values[step].astype(np.float32) for name, values in averages.items()},
            }
            quality[momentum][step] = (
                runs.quality("fixed", "moving", step)
                if momentum == used
                else runs.evaluator.of_weights(weights, "moving")
            )
    recalibrated = {step: runs.quality("fixed", "recalibrated", step) for step in steps}
    return Momentum(used, steps, error, quality, recalibrated, quality_note(runs.evaluator))


SNIPPET = """
# the time constant of a moving average is 1 / (1 - momentum) updates: 0.999 needs thousands of steps
h = tf.compat.v1.layers.batch_normalization(h, training=training, momentum=0.99)  # not 0.999 for short runs
# tf.contrib.layers.batch_norm (TF 1.x): decay=0.999 and scale=False (no gamma) by default
h = tf.contrib.layers.batch_norm(h, is_training=training, decay=0.99, scale=True)
# whatever the momentum: recalibrate before sampling early checkpoints (section 1)
"""


def caught_up(result: Momentum, momentum: float) -> str:
    """The first measured step where the moving averages sample the same as recalibrated (by KID)."""
    for step in result.steps:
        if verdict_word(result.quality[momentum][step], result.recalibrated[step]) != "worse":
            return f"step {step}"
    return f"not by step {result.steps[-1]}"


def section(result: Momentum, out: Path) -> Section:
    def fids(ax) -> None:
        for momentum in MOMENTA:
            ax.plot(
                result.steps,
                [result.quality[momentum][step].fid for step in result.steps],
                "o-",
                label=f"moving averages, momentum {momentum}",
            )
        ax.plot(result.steps, [result.recalibrated[s].fid for s in result.steps], "k--", label="recalibrated")
        ax.set_xscale("log")
        ax.set_xlabel("step of the fixed run")
        ax.set_ylabel("FID (lower is better)")
        ax.legend(fontsize=7)

    lines_figure(out / FIGURE, {"the same weights, three momenta": fids}, "Batch-norm momentum at short runs")
    last = result.steps[-1]

    def cell(momentum: float, step: int) -> str:
        quality = result.quality[momentum][step]
        return f"{quality.fid:.1f} ({verdict_word(quality, result.recalibrated[step])})"

    rows = [
        [step, *(cell(m, step) for m in MOMENTA), f"{result.recalibrated[step].fid:.1f}"]
        for step in result.steps
    ]
    fid_table = table(
        ["step", *(f"FID, momentum {m} (vs recalibrated)" for m in MOMENTA), "FID, recalibrated"], rows
    )
    best = {m: result.quality[m][last] for m in MOMENTA}
    text = f"""
**Symptom.** The same code samples well in a long run and badly in a short one, or after switching from
`tf.layers` to `tf.contrib.layers.batch_norm`, with no change to training.

**Cause.** A moving average with momentum m forgets its initial value (0 and 1) as m^t and trails a drifting
statistic by about 1 / (1 - m) updates: 10 steps at 0.9, 100 at 0.99 (Keras and `tf.layers`' default),
1000 at 0.999 (`tf.contrib.layers.batch_norm`'s default `decay`). contrib's batch norm also defaults to
`scale=False` (no gamma), harmless before a ReLU, not before a linear output; that one changes training
and is not measured here. The momentum never touches training: every momentum gives the same weights.

**The code that ran:** the fixed run recorded G's moving averages at every step (momentum {result.used});
each update's batch statistic is recovered from them and the averages replayed with another momentum
(replaying {result.used} reproduces the recorded averages to a relative {result.replay_error:.1g}), then
the project's sampler with those statistics goes through the evaluator:

{code(source(replay))}

**Measured** (the same weights in every column; each moving-average FID with its verdict against the
recalibrated statistics of the same weights, by KID within two standard errors):

{fid_table}

{result.note}

At step {last}: momentum 0.9 {fq(best[0.9])}, 0.99 {fq(best[0.99])}, 0.999 {fq(best[0.999])},
recalibrated {fq(result.recalibrated[last])}. Momentum 0.9 vs 0.99 at step {last}: **{
        verdict_word(best[0.9], best[0.99])
    }** ({verdict(best[0.9], best[0.99])}); 0.999 vs 0.99: **{verdict_word(best[0.999], best[0.99])}**
({verdict(best[0.999], best[0.99])}). The averages sample as well as recalibrated statistics (not worse
by KID) from: momentum 0.9 {caught_up(result, 0.9)}, 0.99 {caught_up(result, 0.99)}, 0.999
{caught_up(result, 0.999)}. A short momentum catches up fast but averages few batches (noisier
statistics late in a run); a long one is what a short run cannot afford.

![momentum]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

The project code that runs the same thing: `Config.bn_momentum` (0.99, `--bn-momentum`) reaches every
`batch_norm` of `common/layers.py`, and the sampler recalibrates by default (`common/sampling.py`).
"""
    headline = (
        f"same weights, step {last}: moving-average FID {best[0.9].fid:.1f} (0.9) / {best[0.99].fid:.1f} "
        f"(0.99) / {best[0.999].fid:.1f} (0.999) vs {result.recalibrated[last].fid:.1f} recalibrated; "
        f"0.999 vs 0.99 **{verdict_word(best[0.999], best[0.99])}** (n {best[0.99].n})"
    )
    return Section(
        "Batch-norm momentum: 0.9, 0.99 and contrib's 0.999 at a short run", FIGURE, text, headline
    )
