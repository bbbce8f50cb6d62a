"""`python -m common.compare RUN_A RUN_B [...] --out DIR`: put finished runs side by side.

Writes DIR/report.md and its figures (losses.png, probabilities.png, samples.png and, when the runs were
evaluated during training, quality.png). Every number is read from the runs' own files: config.json
(settings, architecture, parameter and FLOP counts), history.csv (losses, D outputs, speed, and the
evaluator's columns when present), samples/ (the final grid) and eval.json (written by the evaluator).

The tables are lists of `Column`s: a later comparison (e.g. of architectures) adds a column or a whole
table by appending to `TABLES`, without touching the code that reads runs or writes the report.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from common.command import OneLineParser, exit_code
from common.config import Config
from common.data import CIFAR10_CLASSES
from common.modules import run_architecture
from common.rundir import (
    HISTORY_COLUMNS,
    RunDir,
    RunDirError,
    atomic_path,
    atomic_write_bytes,
    check_writable_dir,
)
from common.watch import DFAKE_HIGH, DFAKE_LOW, SUSTAINED_STEPS, collapse_stretches

PROG = "common.compare"
MISSING = "—"
EVAL_FILE = "eval.json"


# ------------------------------------------------------------------------------------------ reading runs
class Run(NamedTuple):
    """One run directory, read once: what the tables and figures are made from."""

    label: str  # its name in the report (the folder name, numbered when two folders share it)
    run: RunDir
    record: dict[str, Any]  # config.json
    history: list[dict[str, float]]  # history.csv rows (empty cells left out)
    evaluation: dict[str, Any] | None  # eval.json, when the run was evaluated

    @property
    def config(self) -> dict[str, Any]:
        return self.record.get("config", {})

    @property
    def batch_size(self) -> int:
        return int(self.config.get("batch_size", 0))

    def images_seen(self, row: dict[str, float]) -> float:
        return row["step"] * self.batch_size

    @property
    def last(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}

    @property
    def final_grid(self) -> Path | None:
        grids = self.run.sample_grids()
        return grids[-1] if grids else None

    @property
    def eval_columns(self) -> list[str]:
        """history.csv columns beyond the training ones: the evaluator's (fid, kid, ...)."""
        return [c for c in self.run.history_columns() if c not in HISTORY_COLUMNS]


def read_run(path: str | Path, label: str) -> Run:
    run = RunDir(path)
    if not run.path.is_dir():
        raise RunDirError(f"{run.path} is not a run directory (no such folder)")
    record = run.read_config()  # RunDirError when there is no config.json
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RunDirError(f"{run.config} is not a run's config.json (no 'config' settings)")
    # A config.json another module rewrote (a data set beside another's image shape) is not compared.
    run_architecture(Config.from_dict(record["config"]), record)
    try:
        history = run.read_history()
    except (ValueError, KeyError, OSError) as err:
        raise RunDirError(f"cannot read {run.history}: {err}") from err
    if any("step" not in row for row in history):
        raise RunDirError(f"{run.history} has a row without a step")
    evaluation = None
    eval_path = run.path / EVAL_FILE
    if eval_path.exists():
        try:
            evaluation = json.loads(eval_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunDirError(f"cannot read {eval_path}: {err}") from err
        if not isinstance(evaluation, dict):
            raise RunDirError(f"{eval_path} is not an evaluation (not a JSON object)")
    return Run(label, run, record, history, evaluation)


def read_runs(paths: Sequence[str | Path]) -> list[Run]:
    if not paths:
        raise RunDirError("give at least one run directory")
    names = [Path(p).resolve().name or str(p) for p in paths]
    labels = [name if names.count(name) == 1 else f"{name} ({i + 1})" for i, name in enumerate(names)]
    return [read_run(path, label) for path, label in zip(paths, labels, strict=True)]


# ---------------------------------------------------------------------------------------------- columns
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


def lowest_fid(run: Run) -> tuple[float, float] | None:
    rows = [row for row in run.history if "fid" in row]
    if not rows:
        return None
    best = min(rows, key=lambda row: row["fid"])
    return best["fid"], best["step"]


def best_checkpoint(run: Run) -> tuple[float, float] | None:
    """(FID, step) of the run's kept best checkpoint (config.json's `best`, written while training)."""
    best = run.record.get("best")
    return (best["fid"], best["step"]) if isinstance(best, dict) and "fid" in best else None


def collapses(run: Run) -> str:
    """The run's collapse stretches (common.watch), as config.json's noise ceiling and history.csv show."""
    noise = (
        run.record.get("tracking", {}).get("noise_fid")
        if isinstance(run.record.get("tracking"), dict)
        else None
    )
    stretches = collapse_stretches(run.history, noise)
    return "; ".join(stretch.describe() for stretch in stretches) or "none"


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


# ---------------------------------------------------------------------------------------------- figures
def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    pyplot().close(fig)


def series(run: Run, key: str, x: str) -> tuple[list[float], list[float]]:
    """(x values, key values) over the history rows that have `key`; x: epoch, images, seconds or step."""
    rows = [row for row in run.history if key in row]
    if x == "images":
        xs = [run.images_seen(row) for row in rows]
    else:
        xs = [row.get(x, math.nan) for row in rows]
    return xs, [row[key] for row in rows]


X_AXES = {"epoch": "epoch", "images": "images seen (step x batch)", "seconds": "wall-clock seconds"}


def plot_losses(runs: Sequence[Run], path: Path) -> None:
    """D and G losses of every run against epochs and against images seen."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex="col")
    for column, x in enumerate(("epoch", "images")):
        for row, (key, name) in enumerate((("d_loss", "discriminator loss"), ("g_loss", "generator loss"))):
            ax = axes[row][column]
            for i, run in enumerate(runs):
                ax.plot(*series(run, key, x), color=f"C{i}", label=run.label)
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
        axes[1][column].set_xlabel(X_AXES[x])
    axes[0][0].legend()
    fig.suptitle("Losses: per epoch (left) and per image seen (right)")
    fig.tight_layout()
    save_figure(fig, path)


def plot_probabilities(runs: Sequence[Run], path: Path) -> None:
    """Mean D(x) (solid) and D(G(z)) (dashed) against images seen and against wall-clock seconds."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, x in zip(axes, ("images", "seconds"), strict=True):
        for i, run in enumerate(runs):
            ax.plot(*series(run, "d_real", x), color=f"C{i}", label=f"{run.label}: D(x)")
            ax.plot(*series(run, "d_fake", x), color=f"C{i}", linestyle="--", label=f"{run.label}: D(G(z))")
        ax.set_xlabel(X_AXES[x])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean probability")
    axes[0].legend(fontsize="small")
    fig.suptitle("D(x) and D(G(z))")
    fig.tight_layout()
    save_figure(fig, path)


def grid_step(path: Path) -> int | None:
    found = re.fullmatch(r"step_(\d+)\.png", path.name)
    return int(found.group(1)) if found else None


def plot_samples(runs: Sequence[Run], path: Path) -> None:
    """Each run's last sample grid (the fixed noise batch), side by side at its own resolution."""
    from PIL import Image

    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 5), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        grid = run.final_grid
        ax.set_axis_off()
        if grid is None:
            ax.set_title(f"{run.label}\n(no sample grid)")
            continue
        with Image.open(grid) as picture:
            image = picture.convert("RGB")
        ax.imshow(image, interpolation="nearest")
        ax.set_title(f"{run.label}\nstep {grid_step(grid)}")
    fig.tight_layout()
    save_figure(fig, path)


def plot_quality(runs: Sequence[Run], keys: Sequence[str], path: Path) -> None:
    """Each evaluator column of history.csv against images seen and against wall-clock seconds."""
    plt = pyplot()
    fig, axes = plt.subplots(len(keys), 2, figsize=(12, 3.5 * len(keys)), squeeze=False)
    for row, key in enumerate(keys):
        for ax, x in zip(axes[row], ("images", "seconds"), strict=True):
            for i, run in enumerate(runs):
                xs, ys = series(run, key, x)
                if ys:
                    ax.plot(xs, ys, marker="o", color=f"C{i}", label=run.label)
            ax.set_xlabel(X_AXES[x])
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle("Sample quality during training (history.csv)")
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- report
class Report(NamedTuple):
    path: Path
    figures: tuple[Path, ...]


def history_eval_keys(runs: Sequence[Run]) -> list[str]:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.eval_columns if k not in keys]
    return keys


def write_report(runs: Sequence[Run], out: Path, command: str) -> Report:
    check_writable_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        ("Losses", "losses.png", plot_losses),
        ("D(x) and D(G(z))", "probabilities.png", plot_probabilities),
        ("The final sample grids", "samples.png", plot_samples),
    ]
    quality_keys = history_eval_keys(runs)
    if quality_keys:
        figures.append(
            ("Sample quality during training", "quality.png", lambda r, p: plot_quality(r, quality_keys, p))
        )
    for _, name, plot in figures:
        plot(runs, out / name)

    lines = [
        "# Comparison of runs",
        "",
        f"Made by `{command}`. Every number below is read from the runs' files.",
        "",
    ]
    for run in runs:
        grid = run.final_grid
        grid_text = f"{grid.name}" if grid else "none"
        evaluation = EVAL_FILE if run.evaluation is not None else f"no {EVAL_FILE}"
        lines.append(
            f"- **{run.label}**: `{run.run.path}` ({len(run.history)} history rows, final grid {grid_text}, "
            f"{evaluation})"
        )
    for table in TABLES:
        shown = [run for run in runs if table.needs(run)]
        if not shown:
            continue
        lines += ["", f"## {table.title}", ""]
        if table.note:
            lines += [table.note, ""]
        lines.append(markdown_table(table, shown))
    if not any(run.evaluation is not None for run in runs):
        lines += [
            "",
            f"No run holds an {EVAL_FILE}: `python -m common.evaluate --run RUN_DIR` adds quality numbers.",
        ]
    for title, name, _ in figures:
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    report = out / "report.md"
    atomic_write_bytes(report, ("\n".join(lines) + "\n").encode())
    return Report(report, tuple(out / name for _, name, _ in figures))


# ---------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Compare run directories: losses, D outputs, samples, speed, size, quality."
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (one or more)")
    parser.add_argument("--out", required=True, help="folder for report.md and its figures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    def command() -> int:
        out = Path(args.out)
        check_writable_dir(out)  # before reading anything: a bad --out is the cheapest error to report
        runs = read_runs(args.runs)
        report = write_report(runs, out, " ".join(["python -m common.compare", *argv]))
        print(f"wrote {report.path} and {len(report.figures)} figures ({len(runs)} runs)")
        return 0

    return exit_code(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
