"""The figures of `python -m common.compare`'s report (matplotlib, imported only when one is drawn):
losses.png, probabilities.png, samples.png and quality.png, from the runs' history.csv and sample grids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.report_runs import Run
from common.rundir import atomic_path


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


def plot_distance(runs: Sequence[Run], path: Path) -> None:
    """The tracked floor-to-ceiling distance against images seen: one colour per setting, one line per
    seed, on a log scale (0 is the real data, 1 uniform noise, in each data set's own evaluator)."""
    from common.report_seeds import group_runs, tracked_distance
    from common.report_tables import tracked_rows

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    for i, group in enumerate(group_runs(runs)):
        for j, run in enumerate(group.runs):
            points = [(run.images_seen(row), tracked_distance(run, row)) for row in tracked_rows(run)]
            points = [(x, y) for x, y in points if y is not None and y > 0]
            if points:
                label = group.label if j == 0 else None
                ax.plot(*zip(*points, strict=True), color=f"C{i}", alpha=0.8, marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel(X_AXES["images"])
    ax.set_ylabel("(FID - floor) / (ceiling - floor)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Distance from the real data during training, one line per seed (history.csv)")
    fig.tight_layout()
    save_figure(fig, path)
