"""The report: the pitfall modules in report order, and report.md assembled from their sections.

Each pitfall module breaks one thing, measures it and describes it, with the same few names:
`VARIANTS` (the broken training runs it trains beside the fixed one, often none), `measure(runs)` (its
result, from the trained runs) and `section(result, out)` (its prose, with its figure written to `out`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from common.pitfalls import (
    captured_before_layers,
    dropout_at_inference,
    no_update_deps,
    one_update_collection,
    sampler_rebuilt_in_loop,
    separate_vs_concat_d,
    trainable_only_saver,
    training_false_in_training,
    training_true_at_inference,
    unwarmed_moving_averages,
)
from common.pitfalls.harness import LabSize, Variant
from common.pitfalls.sections import table
from common.rundir import atomic_write_bytes

PITFALLS: tuple[ModuleType, ...] = (
    no_update_deps,
    one_update_collection,
    captured_before_layers,
    training_true_at_inference,
    training_false_in_training,
    sampler_rebuilt_in_loop,
    unwarmed_moving_averages,
    separate_vs_concat_d,
    dropout_at_inference,
    trainable_only_saver,
)


def pitfall_name(pitfall: ModuleType) -> str:
    """The key of a pitfall's result: its module's name (no_update_deps, ...)."""
    return pitfall.__name__.rsplit(".", 1)[-1]


def variants() -> tuple[Variant, ...]:
    """Every broken training run the pitfalls need, in report order."""
    return tuple(variant for pitfall in PITFALLS for variant in pitfall.VARIANTS)


def anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(character for character in title.lower() if character.isalnum() or character in " -_")
    return kept.replace(" ", "-")


def write_report(out: Path, results: Mapping[str, Any], about: Mapping[str, Any]) -> Path:
    """Write out/report.md and one figure per pitfall; return the report's path.

    results: pitfall name -> what its `measure` returned; about: command, seconds, device, tensorflow,
    data_source and size (the LabSize).
    """
    sections = [pitfall.section(results[pitfall_name(pitfall)], out) for pitfall in PITFALLS]
    size: LabSize = about["size"]
    summary = table(
        ["pitfall", "measured signature"],
        [[f"[{section.title}](#{anchor(section.title)})", section.headline] for section in sections],
    )
    header = f"""# Graph-mode batch-norm pitfalls, reproduced and measured

Batch norm in TensorFlow 1.x graph style is two programs in one graph: the training towers normalize
with each batch's statistics and *add* moving-average updates to `UPDATE_OPS`; the sampler normalizes
with the moving averages. Nothing forces the two to agree, so the mistakes are silent: the losses look
right and the samples do not. Each section below breaks one thing on purpose, on the notebook's DCGAN
and real MNIST, measures it against the project's fixed code, and shows the fix.

Produced by `{about["command"]}` in {about["seconds"] / 60:.1f} minutes on {about["device"]}
(TensorFlow {about["tensorflow"]}). Data: MNIST training images ({size.train_images} used) from
`{about["data_source"]}`; reference for distances: {size.reference_images} MNIST test images. Runs:
batch {size.batch_size}, {size.steps} steps (sections 1, 4, 7, 9, 10), {size.half_steps} (2, 5 and 8),
{size.short_steps} (3); every variant starts from the same initial weights and sees the same batches and
noise, so two runs differ only by the line that differs. Every number here is formatted from that run;
the code shown is the code that ran (one module per pitfall in `common/pitfalls/`, on `common/gan.py`).

{summary}
"""
    body = "\n".join(f"## {section.title}\n{section.text}" for section in sections)
    path = out / "report.md"
    atomic_write_bytes(path, (header + "\n" + body).encode())
    return path
