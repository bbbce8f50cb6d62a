"""Pitfall: sampling with training=True.

Batch norm then normalizes with the statistics of the batch it is given, so an image depends on the other
z in its batch and on the batch size. The broken sampler is the probe's `batch_mode` generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from common.pitfalls.harness import Probe, Quality, Runs, open_probe, to_levels
from common.pitfalls.sections import (
    Section,
    code,
    quality_note,
    quality_table,
    rows_figure,
    source,
    verdict,
    verdict_word,
)
from common.sampling import build_sampler

FIGURE = "training_true_at_inference.png"
VARIANTS = ()  # measured on the fixed run's weights


class TrainingAtInference(NamedTuple):
    contexts: tuple[str, ...]
    batch_mode_difference: tuple[float, float]  # same z across contexts, training=True: 8-bit (max, mean)
    inference_difference: tuple[float, float]  # the same with the project's sampler
    images: dict[str, np.ndarray]  # "training=True" / "training=False" -> [contexts, 8, H, W, C]
    quality: dict[str, Quality]  # sample set -> evaluator numbers
    table: str
    note: str


def sample_in_training_mode(probe: Probe, noise: np.ndarray, batch: int) -> np.ndarray:
    """The mistake, as it ran: G with training=True (BN on each batch's statistics), `batch` z at a time."""
    return probe.generate_uint8(probe.graph.batch_mode, noise, batch=batch)


def pixel_spread(stack: np.ndarray) -> np.ndarray:
    """Per pixel: max - min over the stack's first axis (the batches), in 8-bit levels."""
    levels = to_levels(stack)
    return levels.max(axis=0) - levels.min(axis=0)


def spread(stack: np.ndarray) -> tuple[float, float]:
    """(max, mean) over the pixels of their spread across the batches."""
    difference = pixel_spread(stack)
    return float(difference.max()), float(difference.mean())


def measure(runs: Runs, watched: int = 8) -> TrainingAtInference:
    companions = runs.size.companions
    watched_noise = runs.noise(watched)
    others = {draw: runs.noise(companions, seed_offset=draw) for draw in (1, 2)}
    # A batch of near-identical companions: its statistics are those of one image.
    alike = np.repeat(others[1][:1], companions, axis=0)
    contexts = {
        f"with {companions} other z (draw 1)": np.concatenate([watched_noise, others[1]]),
        f"with {companions} other z (draw 2)": np.concatenate([watched_noise, others[2]]),
        f"with {companions} copies of one z": np.concatenate([watched_noise, alike]),
        f"the {watched} alone": watched_noise,
    }
    images = {}
    with open_probe(runs) as probe:
        probe.load(runs.weights())
        for label, generate in (("training=True", probe.batch_mode), ("training=False", probe.inference)):
            in_batches = [generate(batch)[:watched] for batch in contexts.values()]
            one_by_one = np.concatenate(
                [generate(watched_noise[index : index + 1]) for index in range(watched)]
            )
            images[label] = np.stack([*in_batches, one_by_one])
        evaluator = runs.evaluator
        quality = {
            f"training=True, batches of {runs.size.batch_size}": evaluator.of_images(
                sample_in_training_mode(probe, evaluator.noise, runs.size.batch_size)
            ),
            "training=True, one z at a time": evaluator.of_images(
                sample_in_training_mode(probe, evaluator.noise, 1)
            ),
        }
    both = runs.both("fixed")
    quality["training=False (the sampler), moving averages"] = both["moving"]
    quality["training=False (the sampler), recalibrated"] = both["recalibrated"]
    return TrainingAtInference(
        (*contexts, "each in a batch of one"),
        spread(images["training=True"]),
        spread(images["training=False"]),
        images,
        quality,
        quality_table(quality, evaluator),
        quality_note(evaluator),
    )


SNIPPET = """
fake = generator(z, training=True)                 # training: batch statistics
sample = generator(z, training=False, reuse=True)  # sampling: moving statistics, a function of z
images = sess.run(sample, {z: np.random.uniform(-1, 1, [64, z_dim])})
"""


def fid_note(first: Quality, second: Quality) -> str:
    """Said where KID calls two sets the same while their FIDs are more than 5% apart."""
    if verdict_word(first, second) == "the same" and abs(first.fid - second.fid) > 0.05 * second.fid:
        return "; FID differs by more than 5% while KID does not: no clear verdict either way"
    return ""


def section(result: TrainingAtInference, out: Path) -> Section:
    labels = list(result.quality)
    in_batches, one = result.quality[labels[0]], result.quality["training=True, one z at a time"]
    moving = result.quality["training=False (the sampler), moving averages"]
    recalibrated = result.quality["training=False (the sampler), recalibrated"]
    batch_label = labels[0].rsplit(" ", 1)[-1]
    rows = {}
    for mode in ("training=True", "training=False"):
        for context, images in zip(result.contexts, result.images[mode], strict=True):
            rows[f"{mode}: the same 8 z {context}"] = images
        # Shown as an image: the spread, x4 and mapped back to [-1, 1] (black: identical in every batch).
        rows[f"{mode}: max - min over the {len(result.contexts)} batches, x4"] = (
            np.minimum(pixel_spread(result.images[mode]) * 4, 255) / 127.5 - 1.0
        )
    rows_figure(out / FIGURE, rows, "The same 8 z in different batches")
    text = f"""
**Symptom.** The same z gives a different image depending on what else is in the batch, and on the
batch's size.

**Cause.** A sampler built with `training=True` normalizes with the statistics of the batch it
is given, so an image depends on the other z in its batch and on the batch size. It also adds update
ops that would pull the moving averages towards the sampling batches if something ran them.

**The code that ran** (the probe's `batch_mode` is `call_network(spec.generator, ..., training=True)`):

{code(source(sample_in_training_mode))}

**Measured** on the fixed run's final weights (dropout off in both, to isolate batch norm): 8 fixed z,
placed in {len(result.contexts)} batches ({", ".join(result.contexts)}).
The same z gives images that differ by up to **{result.batch_mode_difference[0]:.0f}** 8-bit levels
(mean spread {result.batch_mode_difference[1]:.2f}) with `training=True`, and by
{result.inference_difference[0]:.0f} (mean {result.inference_difference[1]:.2f}) with the project's sampler.

{result.table}

{result.note}

Verdicts, each in words beside its numbers (better / worse by KID against two standard errors; FID,
which has no standard error here, beside it):

- One z at a time vs batches of {batch_label}, both `training=True`: **{verdict_word(one, in_batches)}**
  ({verdict(one, in_batches)}; FID {one.fid:.1f} vs {in_batches.fid:.1f}{fid_note(one, in_batches)}).
  A batch of one still normalizes over each channel's spatial positions, so it is not broken outright.
- The fix, `training=False` recalibrated, vs `training=True` in batches: **{
        verdict_word(recalibrated, in_batches)
    }** ({verdict(recalibrated, in_batches)}; FID {recalibrated.fid:.1f} vs {in_batches.fid:.1f}).
- `training=False` with the moving averages vs `training=True` in batches: **{
        verdict_word(moving, in_batches)
    }** ({verdict(moving, in_batches)}; FID {moving.fid:.1f} vs {in_batches.fid:.1f}): at this
  budget the recommended sampler *with unwarmed moving averages* samples worse than the mistake, because
  the averages have not caught up with the weights (section 1); recalibrate, or train until they have.

![batch dependence]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste): sample with `training=False`, a function of z
alone, and with warmed-up or recalibrated statistics (the warm-up section):

{code(SNIPPET)}

The project code that runs the same thing (`common/sampling.py`):

{code(source(build_sampler))}
"""
    headline = (
        f"same z, different batch: up to {result.batch_mode_difference[0]:.0f} levels apart "
        f"(sampler: {result.inference_difference[0]:.0f}); one z at a time "
        f"**{verdict_word(one, in_batches)}**"
        f" (FID {one.fid:.1f} vs {in_batches.fid:.1f} in batches, n {one.n}); the sampler recalibrated "
        f"**{verdict_word(recalibrated, in_batches)}** (FID {recalibrated.fid:.1f})"
    )
    return Section("training=True at inference", FIGURE, text, headline)
