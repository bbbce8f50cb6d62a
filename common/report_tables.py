"""The tables of `python -m common.compare`'s report.md: each a list of `Column`s, read from a `Run`
(common/report_runs.py) and printed as markdown.

The tables are lists of `Column`s: a later comparison (e.g. of architectures) adds a column or a whole
table by appending to `TABLES`, without touching the code that reads runs or writes the report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from common.data import CIFAR10_CLASSES
from common.report_runs import Run
from common.watch import DFAKE_HIGH, DFAKE_LOW, SUSTAINED_STEPS, Stretch, collapse_stretches

MISSING = "—"


class Column(NamedTuple):
    """One column of a report table: a header and how to read and print its value from a Run."""

    header: str
    value: Callable[[Run], Any]  # None when the run does not have it
    show: Callable[[Any], str] = str


class Table(NamedTuple):
    title: str
    columns: tuple[Column, ...]
    note: str = ""
    # a table whose rows would all be missing is left out (e.g. quality when no run was evaluated)
    needs: Callable[[Run], bool] = lambda run: True


def integer(value: float) -> str:
    return f"{int(round(value)):,}"


def fixed(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}"


def giga(value: float) -> str:
    return f"{value / 1e9:.3f}"


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds:.1f} s ({seconds / 60:.1f} min)"


def architecture(run: Run, *keys: str) -> Any:
    value: Any = run.record.get("architecture", {})
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def class_name(run: Run) -> str | None:
    label = run.config.get("class_label")
    if label is None:
        return None
    if run.config.get("dataset") == "cifar10" and 0 <= label < len(CIFAR10_CLASSES):
        return f"{CIFAR10_CLASSES[label]} ({label})"
    return str(label)


def median_images_per_second(run: Run) -> float | None:
    rates = [row["images_per_second"] for row in run.history if "images_per_second" in row]
    return statistics.median(rates) if rates else None


def history_value(key: str) -> Callable[[Run], Any]:
    return lambda run: run.last.get(key)


def images_seen(run: Run) -> float | None:
    return run.images_seen(run.last) if run.history else None


def parameters(run: Run, network: str | None = None) -> int | None:
    counts = architecture(run, "parameters")
    if not isinstance(counts, dict):
        return None
    return counts.get(network) if network else sum(counts.values())


def train_flops_per_step(run: Run) -> float | None:
    per_image = architecture(run, "train_step_flops_per_image")
    return per_image * run.batch_size if per_image is not None else None


def achieved_flops(run: Run) -> float | None:
    """Training FLOP/s: train-step FLOPs per image (config.json) times the median images/s (history)."""
    per_image, rate = architecture(run, "train_step_flops_per_image"), median_images_per_second(run)
    return per_image * rate if per_image is not None and rate is not None else None


def evaluated(*keys: str) -> Callable[[Run], Any]:
    def value(run: Run) -> Any:
        found: Any = run.evaluation
        for key in keys:
            if not isinstance(found, dict) or found.get(key) is None:
                return None
            found = found[key]
        return found

    return value


def kid_with_error(section: str) -> Callable[[Run], Any]:
    def value(run: Run) -> tuple[float, float] | None:
        kid, error = evaluated(section, "kid")(run), evaluated(section, "kid_stderr")(run)
        return None if kid is None else (kid, error)

    return value


def plus_minus(pair: tuple[float, float | None]) -> str:
    kid, error = pair
    return f"{kid:.4f}" if error is None else f"{kid:.4f} ± {error:.4f}"


def quality_columns(section: str, prefix: str) -> tuple[Column, ...]:
    return (
        Column(f"{prefix}FID", evaluated(section, "fid"), fixed(2)),
        Column(f"{prefix}KID", kid_with_error(section), plus_minus),
        Column(f"{prefix}class entropy", evaluated(section, "class_entropy"), fixed(3)),
        Column(f"{prefix}confident share", evaluated(section, "confident_share"), fixed(3)),
        Column(f"{prefix}target-class share", evaluated(section, "target_class_share"), fixed(3)),
    )


def last_evaluated(run: Run, key: str) -> tuple[float, float] | None:
    """(value, step) of the last history row that has `key`."""
    rows = [row for row in run.history if key in row]
    return (rows[-1][key], rows[-1]["step"]) if rows else None


def at_step(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.4g} (step {int(pair[1])})"


def tracked_rows(run: Run) -> list[dict[str, float]]:
    """history.csv's rows with a tracked FID."""
    return [row for row in run.history if "fid" in row]


def lowest_tracked_row(run: Run) -> dict[str, float] | None:
    return min(tracked_rows(run), key=lambda row: row["fid"], default=None)


def lowest_fid(run: Run) -> tuple[float, float] | None:
    best = lowest_tracked_row(run)
    return None if best is None else (best["fid"], best["step"])


def best_checkpoint(run: Run) -> tuple[float, float] | None:
    """(FID, step) of the run's kept best checkpoint (config.json's `best`, written while training)."""
    best = run.record.get("best")
    return (best["fid"], best["step"]) if isinstance(best, dict) and "fid" in best else None


def tracking(run: Run) -> dict[str, Any]:
    """config.json's `tracking` (the tracked evaluation's n, floor and noise ceiling), or {}."""
    value = run.record.get("tracking")
    return value if isinstance(value, dict) else {}


def run_stretches(run: Run) -> list[Stretch]:
    """The run's collapse stretches (common.watch), as config.json's noise ceiling and history.csv show."""
    return collapse_stretches(run.history, tracking(run).get("noise_fid"))


def collapses(run: Run) -> str:
    return "; ".join(stretch.describe() for stretch in run_stretches(run)) or "none"


RUN_COLUMNS = (
    Column("arch", lambda run: run.config.get("arch")),
    Column("schedule", lambda run: architecture(run, "schedule")),  # g_then_d, d_then_g, simultaneous
    Column("D batches", lambda run: architecture(run, "d_batches")),  # separate or concat
    Column("dataset", lambda run: run.config.get("dataset")),
    Column("class", class_name),
    Column("image", lambda run: "x".join(str(d) for d in architecture(run, "image_shape") or []) or None),
    Column("batch", lambda run: run.batch_size or None),
    Column("quirks", lambda run: run.config.get("quirks")),
    Column("upsample", lambda run: run.config.get("upsample", "transpose")),  # runs from before: transpose
    Column("seed", lambda run: run.config.get("seed")),
    Column("device", lambda run: run.record.get("device")),
)
SPEED_COLUMNS = (
    Column("steps", history_value("step"), integer),
    Column("epochs", history_value("epoch"), fixed(2)),
    Column("images seen", images_seen, integer),
    Column("wall time", history_value("seconds"), duration),
    Column("images/s (median)", median_images_per_second, fixed(1)),
    Column("train GFLOP/s", achieved_flops, lambda v: f"{v / 1e9:.1f}"),
)
SIZE_COLUMNS = (
    Column("G parameters", lambda run: parameters(run, "generator"), integer),
    Column("D parameters", lambda run: parameters(run, "discriminator"), integer),
    Column("total parameters", parameters, integer),
    Column(
        "G forward GFLOP/image", lambda run: architecture(run, "forward_flops_per_image", "generator"), giga
    ),
    Column(
        "D forward GFLOP/image",
        lambda run: architecture(run, "forward_flops_per_image", "discriminator"),
        giga,
    ),
    Column("train GFLOP/step", train_flops_per_step, giga),
)
LOSS_COLUMNS = (
    Column("D loss", history_value("d_loss"), fixed(4)),
    Column("G loss", history_value("g_loss"), fixed(4)),
    Column("D(x)", history_value("d_real"), fixed(4)),
    Column("D(G(z))", history_value("d_fake"), fixed(4)),
)
EVAL_COLUMNS = (
    Column("checkpoint step", evaluated("step"), integer),
    Column("n", evaluated("n"), integer),
    Column("classifier test accuracy", evaluated("classifier", "test_accuracy"), fixed(4)),
    *quality_columns("generated", ""),
    Column("real-floor FID", evaluated("real_floor", "fid"), fixed(2)),
    Column("noise-ceiling FID", evaluated("noise_ceiling", "fid"), fixed(2)),
    # A target-class share means something only between these two: real images of the class the
    # classifier never learned from (its ceiling) and uniform noise (its floor).
    Column(
        "real target-class share (unseen)", evaluated("real_floor", "target_class_share_unseen"), fixed(3)
    ),
    Column("noise target-class share", evaluated("noise_ceiling", "target_class_share"), fixed(3)),
    Column(
        "other classes' target-class share", evaluated("real_floor", "other_classes_target_share"), fixed(3)
    ),
)
CHECKERBOARD_COLUMNS = (
    Column("generated", evaluated("generated", "checkerboard"), fixed(5)),
    Column("real", evaluated("real_floor", "checkerboard"), fixed(5)),
    Column("noise", evaluated("noise_ceiling", "checkerboard"), fixed(5)),
    Column("upsample", lambda run: run.config.get("upsample", "transpose")),
)
TRAINING_EVAL_COLUMNS = (
    Column("last FID", lambda run: last_evaluated(run, "fid"), at_step),
    Column("lowest FID", lowest_fid, at_step),
    Column("best checkpoint kept", best_checkpoint, at_step),
    Column("last KID", lambda run: last_evaluated(run, "kid"), at_step),
    Column("last class entropy", lambda run: last_evaluated(run, "class_entropy"), at_step),
    Column("last confident share", lambda run: last_evaluated(run, "confident_share"), at_step),
    Column("last target-class share", lambda run: last_evaluated(run, "target_class_share"), at_step),
)

TABLES: list[Table] = [
    Table("Runs", RUN_COLUMNS, "From config.json."),
    Table(
        "Speed and length",
        SPEED_COLUMNS,
        "From history.csv: the last logged row (wall time is its `seconds`, which includes sampling and "
        "checkpoints), the median of `images_per_second` (training steps only). Images seen = step x batch. "
        "Train GFLOP/s = config.json's train-step FLOPs per image x the median images/s.",
    ),
    Table(
        "Size",
        SIZE_COLUMNS,
        "From config.json's `architecture`: trainable parameters; multiply-adds x 2 of one image's forward "
        "pass; a training step's FLOPs (both updates, backward ~ 2 forwards) x batch size.",
    ),
    Table("Losses at the end", LOSS_COLUMNS, "The last history.csv row (a mean over its logging window)."),
    Table(
        "Collapse",
        (Column("collapse stretches", collapses),),
        f"From history.csv (common.watch): D(G(z)) <= {DFAKE_LOW} or >= {DFAKE_HIGH} for {SUSTAINED_STEPS} "
        "steps or more, or a tracked FID above the noise ceiling.",
    ),
    Table(
        "Sample quality (eval.json)",
        EVAL_COLUMNS,
        "From each run's eval.json (python -m common.evaluate): generated samples against real test "
        "images in a classifier's feature space; the real floor (real vs real) and the noise ceiling "
        "bracket the numbers.",
        needs=lambda run: run.evaluation is not None,
    ),
    Table(
        "Checkerboard (eval.json)",
        CHECKERBOARD_COLUMNS,
        "The mean share of each image's spectral energy (mean removed) at the Nyquist frequencies, the "
        "part that repeats every 2 pixels: the artifact of stride-2 transposed convolutions (`--upsample "
        "resize` avoids them). Generated samples, real test images, uniform noise (3 / (H W - 1)).",
        needs=lambda run: evaluated("generated", "checkerboard")(run) is not None,
    ),
    Table(
        "Sample quality during training (history.csv)",
        TRAINING_EVAL_COLUMNS,
        "The evaluator's columns of history.csv (train --eval-every N), with the step they were measured at.",
        needs=lambda run: bool(run.eval_columns),
    ),
]


def cell(column: Column, run: Run) -> str:
    value = column.value(run)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return column.show(value).replace("|", "\\|")


def markdown_table(table: Table, runs: Sequence[Run]) -> str:
    header = ["run", *(c.header for c in table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        lines.append("| " + " | ".join([run.label, *(cell(c, run) for c in table.columns)]) + " |")
    return "\n".join(lines)
