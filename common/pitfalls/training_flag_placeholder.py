"""Pitfall: `training` as a bool placeholder (one graph, two modes) instead of a Python bool.

With a tensor, every batch norm becomes a tf.cond between batch and moving statistics (no fused kernel)
and every dropout a tf.cond too; the update ops are always in UPDATE_OPS and become no-ops (decay 0) when
the flag is False. The classic bugs are feeding the wrong value: a sampler run with the default True
(batch statistics: images depend on the batch), or a training step fed False (no normalization by the
batch, and no updates).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec, Network
from common.config import Config
from common.pitfalls.harness import (
    LabRun,
    Runs,
    TrainGraph,
    Variant,
    level_difference,
    weights_difference,
)
from common.pitfalls.notebook_step import model_opt, with_networks
from common.pitfalls.sections import Section, code, lines_figure, show_grid, source
from common.step import Inputs

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "short_steps"
FIGURE = "training_flag_placeholder.png"
RUNS = ("fixed", "training_placeholder")
FLAG_NAME = "is_training"
COND_OPS = ("If", "StatelessIf", "Switch")  # what tf.cond builds (control flow v2, or v1)


def with_flag(network: Network, flag: tf.Tensor) -> Network:
    """The network called with the graph's bool tensor wherever the project passes a Python bool."""
    return lambda x, training, config, layers: network(x, flag, config, layers)


def training_placeholder(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step with `training` a placeholder that defaults to True: one graph, two modes."""
    flag = v1.placeholder_with_default(True, [], name=FLAG_NAME)
    spec = with_networks(
        spec, generator=with_flag(spec.generator, flag), discriminator=with_flag(spec.discriminator, flag)
    )
    return model_opt(spec, config, inputs, total_steps=1)


VARIANTS = (Variant("training_placeholder", training_placeholder, "short_steps"),)


class FlagPlaceholder(NamedTuple):
    steps: int
    ops_per_step: dict[str, int]
    cond_ops: dict[str, int]  # run -> tf.cond ops in the graph (If / StatelessIf, or v1 Switch)
    step_seconds: dict[str, float]  # run -> median seconds of a step, the runs interleaved
    weights_difference: float  # after `steps`: same math, unfused vs fused kernels
    first_loss_difference: float  # largest |loss difference| at the first step: the same math
    loss_difference: float  # largest |loss difference| over the steps: GAN training amplifies rounding
    wrong_feed_moving_change: float  # a training step fed False: largest change of a moving statistic
    wrong_feed_losses: dict[str, float]  # d_loss of that step with True and with False
    sampler_spread: dict[str, tuple[float, float]]  # the same 8 z in two batches, fed False / left at True
    images: dict[str, np.ndarray]


def measure(runs: Runs) -> FlagPlaceholder:
    steps = runs.size.short_steps
    skip = min(5, steps // 2)
    lab = runs.graphs["training_placeholder"]
    flag = lab.graph.get_tensor_by_name(f"{FLAG_NAME}:0")
    weights = runs.weights("training_placeholder", steps)
    run = LabRun(lab, runs.train_images, 1, (), weights)
    try:
        # The first forward pass's d_loss on one batch (no train op runs), fed each way.
        d_loss = lab.towers[0].losses.d_loss
        right, wrong = (run.sess.run(d_loss, {flag: value}) for value in (True, False))
        # A training step fed training=False (a feed dict shared with evaluation, say).
        before = run.sess.run(lab.moving)
        run.sess.run(lab.train.step, {flag: False})
        after = run.sess.run(lab.moving)
        # The sampler rows with recalibrated statistics: after short_steps the moving averages have not
        # warmed up (section 1), and the figure is about the feed, not the warm-up.
        lab.loader.run(run.sess, runs.evaluator.recalibrated(weights))
        # The one graph's G as a sampler: fed False, or the default True left in place.
        fake = lab.towers[0].fake_images
        watched = runs.noise(8)
        batches = [np.concatenate([watched, runs.noise(24, seed_offset=s)]) for s in (1, 2)]
        spread, images = {}, {}
        for label, feed in (("fed training=False", {flag: False}), ("default training=True", {})):
            outputs = [run.sess.run(fake, {lab.inputs.noise: batch, **feed})[:8] for batch in batches]
            spread[label] = level_difference(*outputs)
            images[f"{label}, batch 1"] = outputs[0]
            images[f"{label}, batch 2"] = outputs[1]
    finally:
        run.close()
    graphs = {name: runs.graphs[name].graph for name in RUNS}
    losses = runs.losses(RUNS, steps)
    return FlagPlaceholder(
        steps,
        {name: runs.graphs[name].step_ops for name in RUNS},
        {name: sum(op.type in COND_OPS for op in graph.get_operations()) for name, graph in graphs.items()},
        {name: float(np.median(runs.traces[name].seconds[skip:steps])) for name in RUNS},
        weights_difference(weights, runs.weights("fixed", steps)),
        float(np.abs(losses["fixed"][0] - losses["training_placeholder"][0]).max()),
        float(np.abs(losses["fixed"] - losses["training_placeholder"]).max()),
        max(float(np.abs(after[n] - before[n]).max()) for n in before),
        {"True": float(right), "False": float(wrong)},
        spread,
        images,
    )


SNIPPET = """
fake = generator(z, training=True)                 # Python bools: two subgraphs sharing the variables,
sample = generator(z, training=False, reuse=True)  # instead of one graph with a bool placeholder
sess.run([d_train_op, g_train_op], {z: z_batch})   # batch statistics, update ops: no feed to forget
images = sess.run(sample, {z: z_grid})             # moving statistics, no update ops
"""


def section(result: FlagPlaceholder, out: Path) -> Section:
    def times(ax) -> None:
        names = ["Python bool (fixed)", "bool placeholder"]
        ax.bar(names, [result.step_seconds[name] * 1000 for name in RUNS])
        ax.set_ylabel("median training step (ms)")

    panels = {"step time": times}
    for label, images in result.images.items():
        panels[label] = lambda ax, images=images: show_grid(ax, images, 4)
    lines_figure(
        out / FIGURE,
        panels,
        "training as a Python bool vs a bool placeholder (samples: recalibrated statistics, same 8 z)",
    )
    fixed_s, flag_s = (result.step_seconds[name] for name in RUNS)
    text = f"""
**Symptom.** Either nothing visible (the graph just runs slower), or, after a wrong feed, samples that
change with the batch they are drawn in, or a training step that quietly stops normalizing.

**Cause.** With `training` a tensor, the graph holds both programs: each batch norm is a `tf.cond`
between batch and moving statistics (and cannot use the fused training kernel), each dropout another;
the update ops run in every training step, with decay 0 when the flag is False. Which program runs is
decided by a feed, and a forgotten or shared feed dict picks the wrong one without an error.

**The code that ran** (`common.layers.batch_norm` and `dropout` take a bool tensor as well as a bool):

{code(source(with_flag, training_placeholder))}

**Measured** over {result.steps} steps, interleaved with the fixed run from the same start:

- Ops one step runs: {result.ops_per_step["training_placeholder"]} with the placeholder vs
  {result.ops_per_step["fixed"]} with a Python bool; `tf.cond` ops in the graph:
  {result.cond_ops["training_placeholder"]} vs {result.cond_ops["fixed"]}.
- Median step: {flag_s * 1000:.0f} ms vs {fixed_s * 1000:.0f} ms (x{flag_s / fixed_s:.2f}).
- The same math: the first step's losses differ by at most {result.first_loss_difference:.2g} (the fused
  and unfused kernels round differently); GAN training amplifies that rounding, so over the {result.steps}
  steps the losses come to differ by up to {result.loss_difference:.2g} and the weights by
  {result.weights_difference:.2g} at the end.
- Wrong feed 1, training fed `False`: on the same batch and weights, D's loss is
  {result.wrong_feed_losses["False"]:.3f} instead of {result.wrong_feed_losses["True"]:.3f} (batch norm on
  the moving statistics, no dropout: another network is being trained), and a training step fed `False`
  moves the moving statistics by {result.wrong_feed_moving_change:g}.
- Wrong feed 2, G sampled without feeding `False`: the same 8 z in two batches differ by up to
  **{result.sampler_spread["default training=True"][0]:.0f}** levels (mean
  {result.sampler_spread["default training=True"][1]:.2f}), against
  {result.sampler_spread["fed training=False"][0]:.0f} when `False` is fed (both with recalibrated
  statistics, so that the `False` row shows what G draws rather than its unwarmed averages after
  {result.steps} steps); what that does to sample quality is the section on `training=True` at inference.
- The same holds for an export: a graph frozen or saved for serving (`convert_variables_to_constants`,
  a SavedModel signature on the sample tensor) keeps `placeholder_with_default(True)` as it is, so the
  exported sampler runs the "default training=True" row above unless the export feeds or rewrites the
  flag; export a sampler built with `training=False` instead.

![flag]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

**The project code that runs the same thing:**
build each mode as its own subgraph with a Python bool (the training towers with
`True`, the sampler with `False`, sharing variables), as `common.step` does; then no feed can pick the
wrong one and the training step keeps the fused kernel:

{code(source(_python_bool_modes))}
"""
    headline = (
        f"step x{flag_s / fixed_s:.2f} ({result.ops_per_step['training_placeholder']} vs "
        f"{result.ops_per_step['fixed']} ops); sampler left at True: same z up to "
        f"{result.sampler_spread['default training=True'][0]:.0f} levels apart"
    )
    return Section("training as a bool placeholder (one graph, two modes)", FIGURE, text, headline)


def _python_bool_modes(spec: ArchSpec, config: Config, inputs: Inputs):
    """Illustration of the project's layout (dcgan_mnist.model.model_opt and build_sampler)."""
    from common.sampling import build_sampler

    towers, losses, train = model_opt(spec, config, inputs, total_steps=1)  # training=True inside
    sampler = build_sampler(spec, config)  # training=False, reuse=True: the same variables
    return towers, losses, train, sampler
