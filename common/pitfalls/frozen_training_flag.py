"""Pitfall: a generator exported for serving with its training flag left at its default.

An export (a SavedModel, or `graph_util.convert_variables_to_constants`) keeps whatever program the
exported tensor runs. With `training` a `placeholder_with_default(True)` (the one-graph-two-modes pattern,
section 10) the served graph normalizes each request with that request's own batch statistics; fed False
(or built with a Python False) it normalizes with the moving averages as they were at export.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.export import export_generator
from common.layers import Layers
from common.pitfalls.harness import (
    Quality,
    Runs,
    level_difference,
    model_variables,
    open_probe,
    to_levels,
    weight_loader,
)
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
from common.pitfalls.training_flag_placeholder import FLAG_NAME
from common.step import call_network

v1 = tf.compat.v1

FIGURE = "frozen_training_flag.png"
VARIANTS = ()  # the fixed run's weights, exported


def generator_with_flag(spec: ArchSpec, config: Config) -> tuple[tf.Tensor, tf.Tensor]:
    """The mistake as it is exported: G on a training flag that defaults to True; (noise, images)."""
    noise = v1.placeholder(tf.float32, [None, config.latent_dim], name="z")
    training = v1.placeholder_with_default(True, [], name=FLAG_NAME)
    images = call_network(spec.generator, "generator", False, noise, training, config, Layers())
    return noise, tf.identity(images, name="images")


def save(build, spec: ArchSpec, config: Config, weights: Mapping[str, np.ndarray], path: Path) -> None:
    """The graph `build` makes, its variables loaded with `weights`, as a SavedModel (z -> images)."""
    graph = tf.Graph()
    with graph.as_default():
        noise, images = build(spec, config)
        loader = weight_loader(model_variables())
        init = v1.global_variables_initializer()
        signature = v1.saved_model.signature_def_utils.predict_signature_def({"z": noise}, {"images": images})
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        loader.run(sess, weights)
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            sess, [v1.saved_model.tag_constants.SERVING], signature_def_map={"generate": signature}
        )
        builder.save()


class Served(NamedTuple):
    """An exported generator loaded as a server loads it: the SavedModel's "generate" signature only."""

    sess: v1.Session
    noise: tf.Tensor
    images: tf.Tensor
    flag: tf.Tensor | None  # the training flag, where it survived the export

    def run(self, noise: np.ndarray, batch: int, feed_flag: bool | None = None) -> np.ndarray:
        """Images in [-1, 1], `batch` z per request; the flag fed only when `feed_flag` is given."""
        extra = {} if feed_flag is None else {self.flag: feed_flag}
        chunks = [
            self.sess.run(self.images, {self.noise: noise[i : i + batch], **extra})
            for i in range(0, len(noise), batch)
        ]
        images = np.concatenate(chunks)
        return images / 127.5 - 1.0 if images.dtype == np.uint8 else images


def serve(path: Path) -> Served:
    graph = tf.Graph()
    sess = v1.Session(graph=graph)
    with graph.as_default():
        meta = v1.saved_model.loader.load(sess, [v1.saved_model.tag_constants.SERVING], str(path))
    graph.finalize()
    signature = meta.signature_def["generate"]
    names = {op.name for op in graph.get_operations()}
    return Served(
        sess,
        graph.get_tensor_by_name(signature.inputs["z"].name),
        graph.get_tensor_by_name(signature.outputs["images"].name),
        graph.get_tensor_by_name(f"{FLAG_NAME}:0") if FLAG_NAME in names else None,
    )


# The ways a request is served: (label, the export, z per request, the flag fed or not).
WAYS = (
    ("flag at its default, 500 z per request", "flag", 500, None),
    ("flag at its default, one z per request", "flag", 1, None),
    ("flag fed False", "flag", 500, False),
    ("the project's export (recalibrated)", "fix", 500, None),
)


class FrozenFlag(NamedTuple):
    steps: int
    flag_exported: dict[str, bool]  # export -> whether its graph still holds the training flag
    matches: dict[str, dict[str, float]]  # way -> program ('batch statistics', ...) -> max level difference
    quality: dict[str, Quality]  # way -> evaluator numbers
    images: dict[str, np.ndarray]
    table: str
    note: str


def measure(runs: Runs) -> FrozenFlag:
    steps = runs.size.steps
    weights = runs.weights("fixed", steps)
    grid = runs.noise()
    config = runs.config.replace(keep_prob=1.0)  # a sampler has no dropout
    with tempfile.TemporaryDirectory() as folder:
        save(generator_with_flag, runs.spec, config, weights, Path(folder) / "flag")
        # The project's own export of its sampler, statistics recalibrated (common/export.py).
        generator = runs.evaluator.generator(weights, "recalibrated")
        export_generator(
            generator, Path(folder) / "fix", {"made by": "the pitfalls lab"}, runs.size.eval_samples
        )
        served = {name: serve(Path(folder) / name) for name in ("flag", "fix")}
    try:
        # Which statistics each program uses: its images against the probe's on the same 64 z.
        with open_probe(runs) as probe:
            probe.load(weights)
            programs = {"batch statistics": probe.batch_mode(grid), "moving averages": probe.inference(grid)}
            probe.load(runs.evaluator.recalibrated(weights))
            programs["recalibrated statistics"] = probe.inference(grid)
        matches, quality, images = {}, {}, {}
        for label, graph, batch, flag in WAYS:
            shown = served[graph].run(grid, min(batch, len(grid)), flag)
            matches[label] = {
                program: level_difference(shown, images_of)[0] for program, images_of in programs.items()
            }
            quality[label] = runs.evaluator.of_images(
                to_levels(served[graph].run(runs.evaluator.noise, batch, flag)).astype(np.uint8)
            )
            images[f"{label}: FID {quality[label].fid:.1f}"] = shown
    finally:
        for one in served.values():
            one.sess.close()
    return FrozenFlag(
        steps,
        {graph: one.flag is not None for graph, one in served.items()},
        matches,
        quality,
        images,
        quality_table(quality, runs.evaluator),
        quality_note(runs.evaluator),
    )


SNIPPET = """
# export the sampler, never the training tensor: a Python False leaves no flag to forget
z = tf.compat.v1.placeholder(tf.float32, [None, z_dim], name="z")
images = generator(z, training=False, reuse=True)  # batch norm on the statistics saved with it
sess.run(recalibrate_ops, {z_train: np.random.uniform(-1, 1, [1024, z_dim])})  # statistics for these weights
builder = tf.compat.v1.saved_model.Builder(export_dir)
signature = tf.compat.v1.saved_model.predict_signature_def({"z": z}, {"images": images})
builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"generate": signature})
builder.save()
"""


def uses(matches: Mapping[str, float]) -> str:
    """The program a way's images are closest to (the smallest largest level difference)."""
    return min(matches, key=matches.get)


def section(result: FrozenFlag, out: Path) -> Section:
    grids_figure(
        out / FIGURE,
        result.images,
        f"The same z through exported generators ({result.steps} steps)",
    )
    q = result.quality
    fix = q[WAYS[-1][0]]
    programs = list(next(iter(result.matches.values())))
    rows = [
        [label, *(f"{result.matches[label][p]:.0f}" for p in programs), uses(result.matches[label])]
        for label, *_ in WAYS
    ]
    match_table = table(["export, served", *(f"vs {p} (max levels)" for p in programs), "uses"], rows)
    lines = "\n".join(
        f"- {label}: {fq(q[label])}: **{verdict_word(q[label], fix)}** ({verdict(q[label], fix)})."
        for label, *_ in WAYS[:-1]
    )
    text = f"""
**Symptom.** The served model's images differ from the notebook's grids, change with how many z a request
holds, and a request of one z comes back grey.

**Cause.** An export (a SavedModel signature, or `tf.compat.v1.graph_util.convert_variables_to_constants`)
keeps the program the exported tensor runs. A training flag that is a `placeholder_with_default(True)`
survives the export as a placeholder, so a server that feeds only z runs batch norm on each request's own
statistics; fed False (or built with a Python False) the graph uses the moving averages *as they were at
export*: their lag (section 1) goes with them.

**The code that ran** (the mistake, saved as a SavedModel with one "generate" signature; the fix is the
project's own export, `common.export.export_generator`; both from the fixed run's weights after
{result.steps} steps, each loaded into a fresh graph with `tf.compat.v1.saved_model.loader.load` as a
server would):

{code(source(generator_with_flag, save))}

**Measured.** The training flag is still in the exported graph: {
        "yes" if result.flag_exported["flag"] else "no"
    } (the mistake), {"yes" if result.flag_exported["fix"] else "no"} (the project's export). Which
statistics each served program uses, from its images of the same z against the three programs of the same
weights in the lab's probe (largest difference in 8-bit levels; the closest is the program it runs):

{match_table}

{result.table}

{result.note}

The same weights on every row, so the verdicts count the evaluator's noise (KID, two standard errors),
each against the fix (the project's export, statistics recalibrated):

{lines}

![exported]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste):

{code(SNIPPET)}

The project code that runs the same thing (the fix row above ran it): `python -m dcgan_mnist export`
(`common/export.py`) writes a SavedModel of the project's sampler (`training=False`, a Python bool) with
the statistics the sampler uses (recalibrated by default) saved as its values.
"""
    default, single = q[WAYS[0][0]], q[WAYS[1][0]]
    headline = (
        f"flag left at True: uses {uses(result.matches[WAYS[0][0]])}; FID {default.fid:.1f} (500 z per "
        f"request), {single.fid:.1f} (one z) vs {fix.fid:.1f} fixed: one z **{verdict_word(single, fix)}** "
        f"(n {fix.n})"
    )
    return Section("An exported generator with its training flag left at its default", FIGURE, text, headline)
