"""Pitfall: the discriminator scoring one image at inference with training=True (a batch of one).

A common question on TF1 GAN trackers: "D gives a different score for the same image alone and in a
batch", or "D scores everything the same at test time". In training mode D's batch norms normalize with
the statistics of the batch they are given; a batch of one has only its own spatial positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import Layers
from common.pitfalls.harness import ProbeInputs, Runs, open_probe, scaled
from common.pitfalls.sections import Section, code, lines_figure, source, table
from common.step import call_network

FIGURE = "d_batch_of_one.png"
VARIANTS = ()  # the fixed run's final weights


class DScores(NamedTuple):
    training: tf.Tensor  # D's logits with training=True: the batch's statistics
    inference: tf.Tensor  # D's logits with training=False: the moving statistics


def d_both_modes(spec: ArchSpec, config: Config, inputs: ProbeInputs) -> DScores:
    """D on the probe's `real` placeholder in both modes, on the probe's variables (no dropout)."""
    no_dropout = config.replace(keep_prob=1.0)

    def d(training: bool) -> tf.Tensor:
        return call_network(
            spec.discriminator, "discriminator", True, inputs.real, training, no_dropout, Layers()
        )

    with tf.name_scope("d_training_mode"):
        training = d(True)
    with tf.name_scope("d_inference_mode"):
        inference = d(False)
    return DScores(training, inference)


class Score(NamedTuple):
    real: float  # mean D(x) on real images
    fake: float  # mean D(G(z)) on generated images
    correct: float  # share of images on the right side of 0.5 (real > 0.5, fake < 0.5)
    n: int  # images of each kind


class DBatchOfOne(NamedTuple):
    batch_size: int
    scores: dict[str, Score]  # way of scoring -> numbers
    alone_vs_batch: tuple[float, float]  # |D alone - D in a batch| on the same images: (max, mean)
    probabilities: dict[str, np.ndarray]  # way -> D(x) of the real images, for the figure


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))


def score_in_batches(probe, logits: tf.Tensor, images: np.ndarray, batch: int) -> np.ndarray:
    """D's probabilities for `images`, `batch` at a time (each batch all real or all fake, as in training)."""
    chunks = [
        probe.run(logits, {probe.graph.inputs.real: images[i : i + batch]})
        for i in range(0, len(images), batch)
    ]
    return sigmoid(np.concatenate(chunks))


def measure(runs: Runs) -> DBatchOfOne:
    n, size = runs.size.eval_samples, runs.size.batch_size
    weights = runs.weights()
    real = scaled(runs.train_images[-n:])
    fake = scaled(runs.evaluator.generator(weights, "recalibrated").images(runs.evaluator.noise))
    ways = {
        f"training=True, batches of {size} (as in training)": ("training", size),
        "training=True, one image at a time": ("training", 1),
        "training=False (moving statistics), one at a time": ("inference", 1),
    }
    scores, probabilities = {}, {}
    with open_probe(runs, d_both_modes) as probe:
        probe.load(weights)
        for label, (mode, batch) in ways.items():
            logits = getattr(probe.part, mode)
            p_real = score_in_batches(probe, logits, real, batch)
            p_fake = score_in_batches(probe, logits, fake, batch)
            correct = (np.sum(p_real > 0.5) + np.sum(p_fake < 0.5)) / (2 * n)
            scores[label] = Score(float(p_real.mean()), float(p_fake.mean()), float(correct), n)
            probabilities[label] = p_real
    batched, alone = (probabilities[label] for label in list(ways)[:2])
    difference = np.abs(alone - batched)
    return DBatchOfOne(size, scores, (float(difference.max()), float(difference.mean())), probabilities)


SNIPPET = """
# scoring single images with D: use the moving statistics, not the batch of one's
d_logits_eval = discriminator(x_eval, training=False, reuse=True)  # a function of each image alone
scores = sess.run(tf.sigmoid(d_logits_eval), {x_eval: one_image[None]})
# (training=True here normalizes each image with its own statistics: a different D)
"""


def share_word(first: Score, second: Score) -> str:
    """better / worse / the same: D's share right, against two binomial standard errors of the difference."""
    error = np.hypot(
        np.sqrt(first.correct * (1 - first.correct) / (2 * first.n)),
        np.sqrt(second.correct * (1 - second.correct) / (2 * second.n)),
    )
    if abs(first.correct - second.correct) <= 2 * error:
        return "the same"
    return "better" if first.correct > second.correct else "worse"


def section(result: DBatchOfOne, out: Path) -> Section:
    labels = list(result.scores)

    def histogram(ax) -> None:
        for label in labels:
            ax.hist(result.probabilities[label], bins=40, range=(0, 1), histtype="step", label=label)
        ax.set_xlabel("D(x) on real images")
        ax.set_ylabel("images")
        ax.legend(fontsize=7)

    lines_figure(out / FIGURE, {"D's score of the same real images": histogram}, "D on a batch of one")
    rows = [
        [label, f"{s.real:.3f}", f"{s.fake:.3f}", f"{s.correct:.3f}", s.n]
        for label, s in result.scores.items()
    ]
    batched, alone, inference = (result.scores[label] for label in labels)
    text = f"""
**Symptom.** D scores an image differently alone than in a batch, or scores every single image about the
same, when it is used at inference (to rank samples, to filter them, in a test).

**Cause.** Called with `training=True`, D's batch norms normalize with the statistics of the batch they
are given; one image has only its own spatial positions, so its features are normalized against
themselves and what set it apart from other images is erased. Called with `training=False`, D uses the
moving statistics it kept, and each score is a function of its image alone (in this project's D, which
D's training updated twice a step, once from a real batch and once from a fake one).

**The code that ran** (the fixed run's final weights; real images from the training set, generated ones
from the recalibrated sampler):

{code(source(d_both_modes, score_in_batches))}

**Measured** (n = {batched.n} real and {batched.n} generated images each; *right*: real above 0.5,
generated below):

{table(["D called", "mean D(x)", "mean D(G(z))", "share right", "n of each"], rows)}

- The same real image, alone vs in a batch of {result.batch_size}: D(x) differs by up to
  {result.alone_vs_batch[0]:.3f} (mean {result.alone_vs_batch[1]:.3f}).
- Share right, one at a time in training mode vs in batches: **{share_word(alone, batched)}**
  ({alone.correct:.3f} vs {batched.correct:.3f}, two binomial standard errors); with the moving
  statistics vs in batches: **{share_word(inference, batched)}** ({inference.correct:.3f}).

![D on a batch of one]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

The project code that runs the same thing: every evaluator and sampler in the project calls D and G with
`training=False` (`common/step.py`'s `call_network(..., training=False, ...)`, as the lab's probe does
above).
"""
    headline = (
        f"same real image alone vs in a batch of {result.batch_size}: D(x) up to "
        f"{result.alone_vs_batch[0]:.3f} apart; share right {alone.correct:.3f} alone vs "
        f"{batched.correct:.3f} "
        f"batched (**{share_word(alone, batched)}**), n {batched.n}"
    )
    return Section("The discriminator on a batch of one", FIGURE, text, headline)
