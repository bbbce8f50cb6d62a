"""A choice, not only a mistake: normalizing with the test batch's own statistics (pix2pix does it).

pix2pix (Isola et al. 2017) runs its generator with batch norm in training mode at test time, batch size
one: "apply dropout at test time, and we apply batch normalization using the statistics of the test batch
at test time rather than aggregated statistics of the training batch". With batch one and convolutions,
that is instance normalization. Whether it helps depends on what it replaces: unwarmed moving averages, or
statistics that match the weights; and on the batch it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from common.pitfalls.harness import Quality, Runs, open_probe
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
from common.pitfalls.training_true_at_inference import sample_in_training_mode

FIGURE = "statistics_of_the_test_batch.png"
VARIANTS = ()  # the fixed run's snapshots
LARGE_BATCH = 500  # the evaluator's generation batch: a large test batch


class BatchAtTest(NamedTuple):
    steps: tuple[int, ...]
    batch_size: int  # the training batch
    quality: dict[int, dict[str, Quality]]  # step -> way of sampling -> numbers
    note: str


def ways(batch_size: int) -> tuple[str, ...]:
    return (
        "moving averages",
        "recalibrated",
        f"test batch of {LARGE_BATCH}",
        f"test batch of {batch_size} (the training batch)",
        "test batch of 1 (pix2pix)",
    )


def measure(runs: Runs) -> BatchAtTest:
    steps = tuple(step for step in runs.size.warmup_steps if step >= 10) or runs.size.warmup_steps[-1:]
    size = runs.size.batch_size
    names = ways(size)
    quality: dict[int, dict[str, Quality]] = {}
    evaluator = runs.evaluator
    with open_probe(runs) as probe:
        for step in steps:
            probe.load(runs.weights("fixed", step))
            quality[step] = {names[0]: runs.quality("fixed", "moving", step)}
            quality[step][names[1]] = runs.quality("fixed", "recalibrated", step)
            for name, batch in zip(names[2:], (LARGE_BATCH, size, 1), strict=True):
                quality[step][name] = evaluator.of_images(
                    sample_in_training_mode(probe, evaluator.noise, batch)
                )
    return BatchAtTest(steps, size, quality, quality_note(evaluator))


SNIPPET = """
# pix2pix's choice: the generator in training mode at test time, normalizing with the test batch
sample = generator(z, training=True, reuse=True)  # batch statistics of whatever batch is fed
images = sess.run(sample, {z: z_test})  # an image now depends on its batch: feed a large one,
# and never run the update ops here (fetch `sample` only, not a train op)
"""


def section(result: BatchAtTest, out: Path) -> Section:
    names = ways(result.batch_size)
    large, train_batch, one = names[2], names[3], names[4]

    def fids(ax) -> None:
        for name in names:
            ax.plot(result.steps, [result.quality[s][name].fid for s in result.steps], "o-", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("step of the fixed run")
        ax.set_ylabel("FID (lower is better)")
        ax.legend(fontsize=7)

    lines_figure(out / FIGURE, {"the same weights, five ways to normalize": fids}, "Test-batch statistics")
    rows = [[step, *(f"{result.quality[step][name].fid:.1f}" for name in names)] for step in result.steps]
    fid_table = table(["step", *(f"FID, {name}" for name in names)], rows)
    first, last = result.steps[0], result.steps[-1]

    def said(step: int, a: str, b: str) -> str:
        qa, qb = result.quality[step][a], result.quality[step][b]
        return f"**{verdict_word(qa, qb)}** ({verdict(qa, qb)}; FID {qa.fid:.1f} vs {qb.fid:.1f})"

    text = f"""
**Symptom.** None: it is a choice. pix2pix samples with batch norm in training mode and batch size one,
and people porting it, or reading section 9, ask whether that is a bug.

**Cause.** In training mode batch norm normalizes with the statistics of the batch it is given. That
replaces the moving averages: better where they are wrong (early, unwarmed; or a test distribution that
differs from training, as in image-to-image models whose inputs vary), worse where they are right, and it
makes each output depend on its batch (section 9). With batch one and convolutions it becomes instance
normalization; after a dense layer, a batch of one has one value per channel and normalization erases it.

**The code that ran** (the fixed run's weights at each step; the probe's G with `training=True`, fed the
evaluator's noise {LARGE_BATCH}, {result.batch_size} or 1 z at a time):

{code(source(sample_in_training_mode))}

**Measured** (FID on the evaluator's n; the same weights in every row):

{fid_table}

{result.note}

- When it helps: at step {first}, a test batch of {LARGE_BATCH} vs the moving averages is
  {said(first, large, names[0])}; at step {last}, {said(last, large, names[0])}.
- Against statistics that match the weights (recalibrated), a test batch of {LARGE_BATCH} is
  {said(last, large, names[1])} at step {last}: recalibration is the test-batch statistics of one large
  batch, frozen, without the batch dependence.
- When it hurts: a batch of 1 vs a batch of {LARGE_BATCH}, step {last}: {said(last, one, large)}; the
  training batch ({result.batch_size}) vs {LARGE_BATCH}: {said(last, train_batch, large)}.

So: test-batch statistics are a fair choice for a model trained and used that way with large test batches,
or one whose test inputs shift; for this DCGAN, recalibrated statistics ({fq(result.quality[last][names[1]])}
at step {last}) give the same benefit without tying an image to its batch.

![test batch statistics]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste; a choice, made on purpose):

{code(SNIPPET)}

The project code that runs the same thing: the lab's probe (`common/pitfalls/harness.py`, `batch_mode`:
G called with `training=True`, no update ops run) above; the project's own sampler normalizes with
recalibrated statistics instead (`common/sampling.py`).
"""
    early = verdict_word(result.quality[first][large], result.quality[first][names[0]])
    small = verdict_word(result.quality[last][one], result.quality[last][large])
    headline = (
        f"step {first}: test batch of {LARGE_BATCH} FID {result.quality[first][large].fid:.1f} vs moving "
        f"{result.quality[first][names[0]].fid:.1f} (**{early}**); step {last}: batch of 1 "
        f"{result.quality[last][one].fid:.1f} vs {result.quality[last][large].fid:.1f} (**{small}**), "
        f"n {result.quality[last][one].n}"
    )
    return Section("Test-batch statistics as a choice (pix2pix)", FIGURE, text, headline)
