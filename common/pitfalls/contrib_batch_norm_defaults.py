"""Pitfall: `tf.contrib.layers.batch_norm`'s defaults, decay=0.999 and scale=False (no gamma).

Porting `tf.layers.batch_normalization(h, training=...)` to `tf.contrib.layers.batch_norm(h,
is_training=...)` silently changes two numbers: the moving averages' decay goes from 0.99 to 0.999 (ten
times the lag, section 16) and the learnt per-channel scale gamma disappears (`scale=False`). The decay
touches only the sampler; the missing gamma changes training, so the two runs take different paths and
are compared over seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec, Network
from common.config import Config
from common.pitfalls.harness import Quality, Runs, TrainGraph, Variant
from common.pitfalls.notebook_step import model_opt, with_networks
from common.pitfalls.sections import (
    Section,
    code,
    fq,
    grids_figure,
    mean_sd,
    quality_note,
    quality_table,
    seeds_table,
    seeds_verdict,
    seeds_word,
    source,
)
from common.step import Inputs

v1 = tf.compat.v1

# How long the fixed run must be for this section (a LabSize field): `--only` trains no more.
FIXED_STEPS = "half_steps"
FIGURE = "contrib_batch_norm_defaults.png"
RUNS = ("fixed", "contrib_defaults")
CONTRIB_DECAY = 0.999  # tf.contrib.layers.batch_norm(decay=0.999, center=True, scale=False, epsilon=0.001)


def with_contrib_defaults(network: Network) -> Network:
    """The network with contrib's defaults in every batch norm: decay 0.999, and gamma held at 1 (out of
    the trainable variables), which is what scale=False computes (contrib multiplies by no gamma)."""

    def called(tensor: tf.Tensor, training, config: Config, layers) -> tf.Tensor:
        out = network(tensor, training, config.replace(bn_momentum=CONTRIB_DECAY), layers)
        trainable = v1.get_collection_ref(v1.GraphKeys.TRAINABLE_VARIABLES)
        trainable[:] = [variable for variable in trainable if not variable.op.name.endswith("/gamma")]
        return out

    return called


def contrib_defaults(spec: ArchSpec, config: Config, inputs: Inputs) -> TrainGraph:
    """The project's step with both networks' batch norms at tf.contrib.layers.batch_norm's defaults."""
    spec = with_networks(
        spec,
        generator=with_contrib_defaults(spec.generator),
        discriminator=with_contrib_defaults(spec.discriminator),
    )
    return model_opt(spec, config, inputs, total_steps=1)


VARIANTS = (Variant("contrib_defaults", contrib_defaults, "half_steps"),)
# No gamma changes training: the verdicts come from the spread over seeds.
SEEDED, SEEDED_STEPS = ("contrib_defaults",), "half_steps"
# As a user of contrib samples it: its sampler normalizes with the decay-0.999 averages.
AS_SAMPLED = {"fixed": "recalibrated", "contrib_defaults": "moving"}
LABELS = {"fixed": "tf.layers defaults (fixed)", "contrib_defaults": "contrib's defaults"}


class ContribDefaults(NamedTuple):
    steps: int
    trainable: dict[str, int]  # run -> trainable variables of G and D
    gamma_change: float  # the contrib run: largest change of a gamma from 1 (0: held, as scale=False)
    quality: dict[str, dict[str, Quality]]  # run -> statistics -> numbers (seed 0)
    images: dict[str, np.ndarray]  # label with its FID -> the same z's samples
    table: str
    note: str
    scale_seeds: dict[str, list[Quality]]  # run -> recalibrated numbers per seed: scale=False alone
    sampled_seeds: dict[str, list[Quality]]  # run -> numbers per seed as AS_SAMPLED says


def measure(runs: Runs) -> ContribDefaults:
    steps = runs.size.half_steps
    quality = {run: runs.both(run, steps) for run in RUNS}
    weights = runs.weights("contrib_defaults", steps)
    noise = runs.noise()
    shown = (("fixed", "recalibrated"), ("contrib_defaults", "moving"), ("contrib_defaults", "recalibrated"))
    images = {
        f"{LABELS[run]}, {stats}: FID {quality[run][stats].fid:.1f}": runs.samples(run, stats, noise, steps)
        for run, stats in shown
    }
    return ContribDefaults(
        steps,
        {run: len(runs.graphs[run].graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)) for run in RUNS},
        max(float(np.abs(value - 1.0).max()) for name, value in weights.items() if name.endswith("/gamma")),
        quality,
        images,
        quality_table({LABELS[run]: quality[run] for run in RUNS}, runs.evaluator),
        quality_note(runs.evaluator),
        runs.over_seeds(RUNS, steps),
        runs.over_seeds(RUNS, steps, AS_SAMPLED),
    )


SNIPPET = """
# tf.contrib.layers.batch_norm(h, is_training=training) means decay=0.999 and scale=False: say what you mean
h = tf.contrib.layers.batch_norm(h, is_training=training, decay=0.99, scale=True,
                                 updates_collections=tf.compat.v1.GraphKeys.UPDATE_OPS)
# or, without contrib (TF 2.x): the same numbers as tf.layers' defaults, on v1 variables
h = tf.compat.v1.layers.batch_normalization(h, training=training, momentum=0.99, scale=True)  # TF 1.x
"""


def section(result: ContribDefaults, out: Path) -> Section:
    grids_figure(
        out / FIGURE,
        result.images,
        f"The same z after {result.steps} steps: tf.layers' defaults vs contrib's (seed 0)",
    )
    fixed, contrib = result.quality["fixed"], result.quality["contrib_defaults"]
    scale, sampled = result.scale_seeds, result.sampled_seeds
    scale_word = seeds_word(scale["contrib_defaults"], scale["fixed"])
    sampled_word = seeds_word(sampled["contrib_defaults"], sampled["fixed"])
    text = f"""
**Symptom.** Code ported from `tf.layers.batch_normalization` (or Keras) to
`tf.contrib.layers.batch_norm(h, is_training=training)` trains, and its samples are washed out for far
longer than before; a network whose last batch norm feeds a linear layer also loses a degree of freedom.

**Cause.** contrib's batch norm has other defaults than `tf.layers`': `decay=0.999` (not 0.99: a time
constant of 1000 updates instead of 100, section 16) and `scale=False` (no gamma: the normalized output is
only shifted by beta, never rescaled; harmless before a ReLU, whose next layer can absorb the scale, not in
general). The decay touches only the sampler's averages; the missing gamma changes what trains.

**The code that ran** (gamma is created but held at 1, out of the trainable variables: what
`scale=False` computes):

{code(source(with_contrib_defaults, contrib_defaults))}

**Measured** over {result.steps} steps from the same start on the same batches: trainable variables
{result.trainable["fixed"]} (tf.layers' defaults) vs {result.trainable["contrib_defaults"]} (contrib's:
no gammas); largest change of a contrib gamma from 1: {result.gamma_change:g}. Seed 0:

{result.table}

{result.note}

A contrib user samples with the decay-0.999 averages: {fq(contrib["moving"])} after {result.steps}
steps, against {fq(fixed["recalibrated"])} for the fixed run recalibrated (its 0.99 averages give
{fq(fixed["moving"])}: not warmed up either, so never a baseline here).

Two training paths, so over {len(scale["fixed"])} seeds. **scale=False alone** (both sides
recalibrated: the weights, whatever the averages):

{seeds_table({f"{LABELS[run]}, recalibrated": values for run, values in scale.items()})}

{seeds_verdict(scale["contrib_defaults"], scale["fixed"], "scale=False", "scale=True (fixed)")}.

**contrib's defaults as sampled** (its decay-0.999 moving averages) against the fixed run recalibrated:

{seeds_table({f"{LABELS[run]}, {AS_SAMPLED[run]}": values for run, values in sampled.items()})}

{
        seeds_verdict(
            sampled["contrib_defaults"],
            sampled["fixed"],
            "contrib's defaults as sampled",
            "the fixed run recalibrated",
            "moving-average (contrib) vs recalibrated (fixed)",
        )
    }.

![contrib's defaults]({FIGURE})

**The fix, as code** (plain `tf.compat.v1`, to paste): name both arguments, and recalibrate before
sampling a short run whatever the decay:

{code(SNIPPET)}

The project code that runs the same thing: every `batch_norm` of `common/layers.py` creates gamma and
beta and takes `Config.bn_momentum` (0.99, `--bn-momentum`); the sampler recalibrates by default
(`common/sampling.py`).
"""
    (m1, s1), (m2, s2) = (mean_sd([q.fid for q in scale[run]]) for run in ("contrib_defaults", "fixed"))
    (m3, s3), _ = (mean_sd([q.fid for q in sampled[run]]) for run in ("contrib_defaults", "fixed"))
    headline = (
        f"scale=False **{scale_word}**: recalibrated FID {m1:.1f} ± {s1:.1f} vs {m2:.1f} ± {s2:.1f}; "
        f"as sampled (decay 0.999) **{sampled_word}**: FID {m3:.1f} ± {s3:.1f} "
        f"({len(scale['fixed'])} seeds, n {fixed['moving'].n})"
    )
    return Section(
        "tf.contrib.layers.batch_norm's defaults: decay 0.999 and scale=False", FIGURE, text, headline
    )
