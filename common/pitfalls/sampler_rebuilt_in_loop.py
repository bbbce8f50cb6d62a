"""Pitfall 6: a new sampler built inside the training loop, as the notebook did every 101 steps.

Each one adds a whole generator to the graph, which grows without bound; a finalized graph refuses.
Measured on a graph of its own (the project's `build_gan`), not on the trained runs' weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.pitfalls.harness import Runs
from common.pitfalls.sections import Section, code, lines_figure, source
from common.sampling import build_sampler
from common.step import build_gan
from common.train import build_training_graph, session_config

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "short_steps"
FIGURE = "sampler_rebuilt_in_loop.png"
VARIANTS = ()  # trains its own graph


class SamplerRebuilt(NamedTuple):
    rebuilds: int
    nodes: list[int]  # graph ops before the first rebuild, then after each
    graph_bytes: list[int]  # serialized GraphDef size, same points
    build_seconds: list[float]  # building one more sampler
    first_sample_seconds: list[float]  # the first run of each new sampler
    step_seconds: list[float]  # median training step after each rebuild
    finalized_error: str  # type: message, when the finalized graph is asked for one more sampler


def timed(function, *args) -> float:
    tick = time.perf_counter()
    function(*args)
    return time.perf_counter() - tick


def rebuild_loop(sess, graph, gan, spec, config, noise, rebuilds: int, steps_per_rebuild: int) -> None:
    """The notebook's loop: a new sampler (generator(..., reuse=True, is_train=False)) every few steps."""
    for _ in range(rebuilds):
        with graph.as_default():
            sampler = build_sampler(spec, config)  # the pitfall: one more generator in the graph
        sess.run(sampler.images, {sampler.noise: noise})
        for _ in range(steps_per_rebuild):
            sess.run(gan.train.step)


def measure(runs: Runs) -> SamplerRebuilt:
    """The notebook's loop: a new `generator(..., reuse=True, is_train=False)` every few steps."""
    spec, size, config = runs.spec, runs.size, runs.config
    noise = runs.noise()
    graph = tf.Graph()
    with graph.as_default():
        gan = build_gan(spec, config, len(runs.train_images))
    nodes, graph_bytes = [len(graph.get_operations())], [graph.as_graph_def().ByteSize()]
    build_seconds, first_sample, step_seconds = [], [], []
    with v1.Session(graph=graph, config=session_config()) as sess:
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: runs.train_images})
        sess.run(gan.inputs.shuffle)
        sess.run(gan.train.step)  # the first run pays the one-time setup
        for _ in range(size.rebuilds):
            tick = time.perf_counter()
            with graph.as_default():
                sampler = build_sampler(spec, config)  # the pitfall: one more generator in the graph
            build_seconds.append(time.perf_counter() - tick)
            first_sample.append(timed(sess.run, sampler.images, {sampler.noise: noise}))
            seconds = [timed(sess.run, gan.train.step) for _ in range(size.steps_per_rebuild)]
            step_seconds.append(float(np.median(seconds)))
            nodes.append(len(graph.get_operations()))
            graph_bytes.append(graph.as_graph_def().ByteSize())
    graph.finalize()
    try:
        with graph.as_default():
            build_sampler(spec, config)
        finalized_error = "none: the finalized graph accepted a new sampler"
    except RuntimeError as err:
        finalized_error = f"{type(err).__name__}: {err}"
    return SamplerRebuilt(
        size.rebuilds, nodes, graph_bytes, build_seconds, first_sample, step_seconds, finalized_error
    )


SNIPPET = """
sample = generator(z, training=False, reuse=True)  # built once, before the loop
tf.compat.v1.get_default_graph().finalize()        # an op built later raises instead of leaking
for step in range(steps):
    sess.run([d_train_op, g_train_op], {z: z_batch(), real: next_batch()})
    if step % 100 == 0:
        images = sess.run(sample, {z: z_grid})     # runs what exists
"""


def section(result: SamplerRebuilt, out: Path) -> Section:
    rebuilt = np.arange(len(result.nodes))

    def nodes(ax) -> None:
        ax.plot(rebuilt, result.nodes, marker=".")
        ax.set_xlabel("samplers rebuilt")
        ax.set_ylabel("ops in the graph")

    def times(ax) -> None:
        for seconds, label in (
            (result.step_seconds, "training step"),
            (result.first_sample_seconds, "first run of the new sampler"),
            (result.build_seconds, "building the sampler"),
        ):
            ax.plot(rebuilt[1:], np.array(seconds) * 1000, marker=".", label=label)
        ax.set_xlabel("samplers rebuilt")
        ax.set_ylabel("ms")
        ax.legend(fontsize=7)

    lines_figure(out / FIGURE, {"graph size": nodes, "time": times}, "The sampler rebuilt inside the loop")
    per_rebuild = (result.nodes[-1] - result.nodes[0]) / result.rebuilds
    text = f"""
**Symptom.** The graph, and with it the checkpoint's `.meta` file, grows with every grid drawn.

**Cause.** The notebook called `generator(input_z, reuse=True, is_train=False)` inside its
training loop, every 101 steps, to draw samples. Each call adds a whole new generator to the graph: the
graph, and everything that serializes it (checkpoint `.meta` files, TensorBoard's graph), grows without
bound, and each new sampler is a new subgraph the Session must prepare on its first run.

**The code that ran** (the notebook's loop, on the project's `build_gan`; the timing lines left out):

{code(source(rebuild_loop))}

**Measured** over {result.rebuilds} rebuilds:

- Ops in the graph: {result.nodes[0]} before, {result.nodes[-1]} after (**+{per_rebuild:.0f} per rebuild**);
  the serialized graph grew from {result.graph_bytes[0] / 1e3:.0f} kB to {
        result.graph_bytes[-1] / 1e3:.0f} kB.
- Building one more sampler: {result.build_seconds[0] * 1000:.0f} ms (first) to
  {result.build_seconds[-1] * 1000:.0f} ms (last); its first run: {
        result.first_sample_seconds[0] * 1000:.0f} ms
  to {result.first_sample_seconds[-1] * 1000:.0f} ms; the median training step:
  {result.step_seconds[0] * 1000:.0f} ms to {result.step_seconds[-1] * 1000:.0f} ms.
- After `graph.finalize()`, building one more sampler raises `{result.finalized_error}`.

![rebuilt sampler]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

**The project code that runs the same thing:**
build the sampler once, before the loop, inside the graph builder, and finalize
the graph (`common/train.py`); the loop only runs what exists:

{code(source(build_training_graph))}
"""
    headline = (
        f"+{per_rebuild:.0f} ops per rebuild; a finalized graph raises {result.finalized_error.split(':')[0]}"
    )
    return Section("Rebuilding the sampler inside the training loop", FIGURE, text, headline)
