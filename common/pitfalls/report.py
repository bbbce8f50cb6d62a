"""The report: the pitfall modules in report order, and report.md assembled from their sections.

Each pitfall module breaks one thing, measures it and describes it, with the same few names:
`VARIANTS` (the broken training runs it trains beside the fixed one, often none), `measure(runs)` (its
result, from the trained runs) and `section(result, out)` (its prose, with its figure written to `out`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from common.config import ConfigError
from common.pitfalls import (
    bn_momentum,
    captured_before_layers,
    contrib_batch_norm_defaults,
    d_batch_of_one,
    dropout_at_inference,
    ema_variables_to_restore,
    frozen_generator_updates,
    frozen_training_flag,
    in_place_updates,
    keras_layers_in_v1_graph,
    multi_tower_updates,
    no_update_deps,
    one_update_collection,
    sampler_rebuilt_in_loop,
    separate_vs_concat_d,
    statistics_of_the_test_batch,
    trainable_only_saver,
    training_false_in_training,
    training_flag_placeholder,
    training_true_at_inference,
    unwarmed_moving_averages,
)
from common.pitfalls.harness import LabSize, Variant
from common.pitfalls.sections import table
from common.rundir import atomic_write_bytes

# Report order: the warm-up first, since every comparison of samples after it depends on it; then where
# the updates come from and who runs them; then the training flag; then the rest.
PITFALLS: tuple[ModuleType, ...] = (
    unwarmed_moving_averages,
    no_update_deps,
    captured_before_layers,
    one_update_collection,
    multi_tower_updates,
    in_place_updates,
    keras_layers_in_v1_graph,
    frozen_generator_updates,
    training_true_at_inference,
    training_flag_placeholder,
    training_false_in_training,
    separate_vs_concat_d,
    dropout_at_inference,
    trainable_only_saver,
    sampler_rebuilt_in_loop,
    # The third edition's sections, after the first fifteen so that their numbers stay.
    bn_momentum,
    d_batch_of_one,
    statistics_of_the_test_batch,
    # The fourth edition's: contrib's defaults, a weight average restored, a frozen training flag.
    contrib_batch_norm_defaults,
    ema_variables_to_restore,
    frozen_training_flag,
)
# Not batch norm (dropout) or not silent (a finalized graph raises): counted apart in the README.
NOT_SILENT_BATCH_NORM = (dropout_at_inference, sampler_rebuilt_in_loop)


def pitfall_name(pitfall: ModuleType) -> str:
    """The key of a pitfall's result: its module's name (no_update_deps, ...)."""
    return pitfall.__name__.rsplit(".", 1)[-1]


def variants(pitfalls: Sequence[ModuleType] = PITFALLS) -> tuple[Variant, ...]:
    """Every broken training run these pitfalls need, in report order."""
    return tuple(variant for pitfall in pitfalls for variant in pitfall.VARIANTS)


def number(pitfall: ModuleType) -> int:
    """The pitfall's section number in the full report (1-based), whichever sections run."""
    return PITFALLS.index(pitfall) + 1


def select(names: Sequence[str] | None) -> tuple[ModuleType, ...]:
    """The pitfalls named (section numbers or module names), in report order; every one for None."""
    if not names:
        return PITFALLS
    by_name = {pitfall_name(pitfall): pitfall for pitfall in PITFALLS}
    by_name.update({str(number(pitfall)): pitfall for pitfall in PITFALLS})
    unknown = [name for name in names if name.strip() not in by_name]
    if unknown:
        raise ConfigError(
            f"--only: unknown section {', '.join(map(repr, unknown))}; choose numbers 1-{len(PITFALLS)} "
            f"or names: {', '.join(pitfall_name(pitfall) for pitfall in PITFALLS)}"
        )
    chosen = {by_name[name.strip()] for name in names}
    return tuple(pitfall for pitfall in PITFALLS if pitfall in chosen)


def fixed_steps(size: LabSize, pitfalls: Sequence[ModuleType]) -> int:
    """How long the fixed run must be for these sections (each module's FIXED_STEPS, default the full run)."""
    return max(getattr(size, getattr(pitfall, "FIXED_STEPS", "steps")) for pitfall in pitfalls)


def anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(character for character in title.lower() if character.isalnum() or character in " -_")
    return kept.replace(" ", "-")


def write_report(
    out: Path, results: Mapping[str, Any], about: Mapping[str, Any], pitfalls: Sequence[ModuleType] = PITFALLS
) -> Path:
    """Write out/report.md and one figure per pitfall; return the report's path.

    results: pitfall name -> what its `measure` returned; about: command, seconds, device, tensorflow,
    data_source and size (the LabSize).
    """
    sections = [pitfall.section(results[pitfall_name(pitfall)], out) for pitfall in pitfalls]
    titles = [
        f"{number(pitfall)}. {section.title}" for pitfall, section in zip(pitfalls, sections, strict=True)
    ]
    size: LabSize = about["size"]
    summary = table(
        ["pitfall", "measured signature"],
        [
            [f"[{title}](#{anchor(title)})", section.headline]
            for title, section in zip(titles, sections, strict=True)
        ],
    )
    quality = about["quality"]
    every = [number(pitfall) for pitfall in pitfalls]
    sections_run = (
        ""
        if len(every) == len(PITFALLS)
        else f"Sections run (`--only`): {', '.join(map(str, every))} of {len(PITFALLS)}. "
    )
    header = f"""# Graph-mode batch-norm pitfalls, reproduced and measured

Batch norm in TensorFlow 1.x graph style is two programs in one graph: the training towers normalize
with each batch's statistics and *add* moving-average updates to `UPDATE_OPS`; the sampler normalizes
with the moving averages. Nothing forces the two to agree, so the mistakes are silent: the losses look
right and the samples do not. Each section below breaks one thing on purpose, on the notebook's DCGAN
and real MNIST, measures it against the project's fixed code, and ends with the fix as code: symptom,
cause, the code that ran, the numbers, a figure, the fix.

Produced by `{about["command"]}` in {about["seconds"] / 60:.1f} minutes on {about["device"]}
(TensorFlow {about["tensorflow"]}), {about["load"]}{about.get("classifier", "")}. {sections_run}Data: MNIST
training images ({size.train_images} used) from {about["data_source"]}. Runs: batch {size.batch_size};
the fixed run {about.get("fixed_steps", size.steps)} steps, the variants {size.steps}, {size.half_steps} or
{size.short_steps} steps (each section says which); every variant starts from the same initial weights and
sees the same batches and noise, so two runs differ only by the line that differs. Every number is
formatted from that run, and the code that ran is shown from the repository (one module per pitfall in
`common/pitfalls/`, on `dcgan_mnist/model.py` and `common/layers.py`); each section ends with a short
`tf.compat.v1` fix to paste into one's own code, and the project code that runs the same thing.

**How samples are judged.** Every claim about sample quality is a number of the project's evaluator
(`common.evaluate`: FID and KID in the feature space of the project's MNIST classifier, test accuracy
{quality.accuracy:.4f}, class entropy, confident share) on n = {quality.n} generated vs {quality.n} real
test images, beside the real-vs-real floor (FID {quality.floor.fid:.1f}, KID
{quality.floor.kid:.1f} ± {quality.floor.kid_stderr:.1f}) and uniform noise (FID
{quality.noise_ceiling.fid:.1f}) at the same n: a reference, not a ceiling, since a generator can score
worse than noise.

**The warm-up rule.** A moving average with momentum m keeps a share m^t of its initial value after t
updates and trails the weights by about 1 / (1 - m) steps (section 1: at these budgets the fixed run's
moving-average samples are not warmed up, and the variants run {size.half_steps} steps, where 0.99^t is
{0.99**size.half_steps:.2f}). So **no verdict (better / worse / the same) has an unwarmed moving-average
sample set as its baseline**: the baseline side is always judged with recalibrated statistics (one
training-mode pass over 1024 noise vectors sets the batch norm statistics:
`common.sampling.Generator(sampler_stats="recalibrated")`, what the weights can do). The side under test
is judged recalibrated too, unless the pitfall *is* the statistics it samples with (training=False towers,
contrib's decay, a restored weight average, an exported flag): then it is judged as its sampler samples it,
and the section says so. Moving-average numbers are shown beside the others as what a checkpoint samples.
Where the two sides share one training path (the same weights), the verdict counts the evaluator's
sampling noise (KID, 10 blocks, two standard errors); where their weights differ, it comes from the spread
over {about.get("seeds", 1)} seeds at {size.half_steps} steps (mean ± sd of FID, the difference against
twice its standard error). Pixel statistics (8-bit level
differences on the same z) are used only for claims about pixels.

{summary}
"""
    body = "\n".join(f"## {title}\n{section.text}" for title, section in zip(titles, sections, strict=True))
    path = out / "report.md"
    atomic_write_bytes(path, (header + "\n" + body).encode())
    return path
