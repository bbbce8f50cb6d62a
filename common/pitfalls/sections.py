"""What a pitfall's report section is made of: its figure (sample grids, image rows, line plots) and its
markdown (tables, code blocks, the source of the code that ran)."""

from __future__ import annotations

import inspect
import io
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from common.pitfalls.harness import STATISTICS, LabEvaluator, Quality, to_levels
from common.rundir import atomic_path, grid_image


class Section(NamedTuple):
    title: str
    figure: str
    text: str
    headline: str  # one line for the summary table


# ------------------------------------------------------------------------------------ figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Images in [-1, 1] as one 8-bit grid, 2-D for grey images (what imshow wants)."""
    pixels = to_levels(images).astype(np.uint8)
    grid = grid_image(pixels, columns=min(columns, len(pixels)))
    return grid[..., 0] if grid.shape[-1] == 1 else grid


def show_grid(ax, images: np.ndarray, columns: int) -> None:
    ax.imshow(image_grid(images, columns), cmap="gray", vmin=0, vmax=255)
    ax.axis("off")


def _save(fig, path: Path) -> None:
    """PNG with a 64-colour palette: the figures are mostly gray, and stay small in the repository."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    _pyplot().close(fig)
    buffer.seek(0)
    picture = Image.open(buffer).convert("RGB").quantize(colors=64)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG", optimize=True)


def grids_figure(path: Path, panels: Mapping[str, np.ndarray], title: str, columns: int = 8) -> None:
    """Sample grids side by side, one titled panel each (at most 32 images per panel)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.9))
    for ax, (label, images) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        show_grid(ax, images[:32], columns)
        # Wrapped to the panel's width: a long label (setting and FID) would run into its neighbour's.
        ax.set_title(textwrap.fill(label, 36), fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def rows_figure(
    path: Path, rows: Mapping[str, np.ndarray], title: str, extra: Callable[[Any], None] | None = None
) -> None:
    """One row of images per label (a few images each); `extra(ax)` draws an optional plot on the right."""
    plt = _pyplot()
    n_rows = len(rows)
    width = 7 if extra is None else 11
    fig = plt.figure(figsize=(width, 1.05 * n_rows + 0.8))
    layout = fig.add_gridspec(n_rows, 2 if extra else 1, width_ratios=[7, 4] if extra else [1])
    for row, (label, images) in enumerate(rows.items()):
        ax = fig.add_subplot(layout[row, 0])
        show_grid(ax, images, len(images))
        ax.set_title(label, fontsize=7, loc="left", pad=2)
    if extra:
        extra(fig.add_subplot(layout[:, 1]))
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def lines_figure(path: Path, panels: Mapping[str, Callable[[Any], None]], title: str) -> None:
    """Panels side by side, each drawn by its function on its axes."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4))
    for ax, (label, draw) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        draw(ax)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def smooth(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Running mean over about 1/25 of the run (GAN losses are noisy step to step); (curve, window)."""
    window = max(len(values) // 25, 1)
    return np.convolve(values, np.ones(window) / window, mode="valid"), window


def plot_smoothed(ax, values: np.ndarray, label: str) -> int:
    curve, window = smooth(values)
    ax.plot(np.arange(len(curve)) + window, curve, label=label, alpha=0.85)
    return window


def loss_panel(
    losses: Mapping[str, np.ndarray], labels: Mapping[str, str], column: int, ylabel: str
) -> Callable[[Any], None]:
    """A panel drawing one loss column of every run, smoothed, against the step."""

    def plot(ax) -> None:
        for run, values in losses.items():
            window = plot_smoothed(ax, values[:, column], labels[run])
        ax.set_xlabel("step")
        ax.set_ylabel(f"{ylabel} (mean of {window} steps)")
        ax.legend(fontsize=7)

    return plot


# ------------------------------------------------------------------------------------ markdown
def source(*functions: Callable[..., Any]) -> str:
    """The code that ran, as it is in the repository."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(function)).strip() for function in functions)


def code(text: str) -> str:
    return f"```python\n{textwrap.dedent(text).strip()}\n```"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


QUALITY_HEADER = ["samples", "FID", "KID (± se)", "class entropy", "confident share"]
STATISTICS_LABEL = {"moving": "moving averages", "recalibrated": "recalibrated"}


def quality_cells(quality: Quality) -> list[str]:
    return [
        f"{quality.fid:.1f}",
        f"{quality.kid:.1f} (± {quality.kid_stderr:.1f})",
        f"{quality.class_entropy:.3f}",
        f"{quality.confident_share:.3f}",
    ]


def quality_table(rows: Mapping[str, Quality | Mapping[str, Quality]], evaluator: LabEvaluator) -> str:
    """The evaluator's numbers, one row per sample set (a mapping of statistics -> numbers: one row each),
    between the real-vs-real floor and the noise ceiling at the same n."""
    body = [["real floor (real vs real)", *quality_cells(evaluator.floor)]]
    for label, value in rows.items():
        if isinstance(value, Quality):
            body.append([label, *quality_cells(value)])
        else:
            body += [
                [f"{label}, {STATISTICS_LABEL[s]}", *quality_cells(value[s])]
                for s in STATISTICS
                if s in value
            ]
    body.append(["uniform noise (a reference, not a ceiling)", *quality_cells(evaluator.noise_ceiling)])
    return table(QUALITY_HEADER, body)


def quality_note(evaluator: LabEvaluator) -> str:
    return (
        f"n = {evaluator.n} generated vs {evaluator.n} real MNIST test images for every row (the "
        f"evaluator of "
        f"`common.evaluate`, in the feature space of the project's MNIST classifier, test accuracy "
        f"{evaluator.accuracy:.4f}; KID in eval.json's units: unscaled features make it larger than an "
        "Inception KID); lower FID and KID are better; *moving averages*: the sampler normalizes "
        "with the moving statistics training kept, *recalibrated*: with statistics recomputed from 1024 "
        "noise vectors before sampling (`--sampler-stats`, common/sampling.py)."
    )


def verdict(first: Quality, second: Quality) -> str:
    """How `first` compares with `second` by KID, against two standard errors of their difference."""
    difference = first.kid - second.kid
    spread = 2.0 * float(np.hypot(first.kid_stderr, second.kid_stderr))
    if abs(difference) <= spread:
        return f"the same within two standard errors of KID (difference {difference:.1f} ± {spread / 2:.1f})"
    word = "better" if difference < 0 else "worse"
    errors = abs(difference) / (spread / 2)
    return f"{word} (KID difference {difference:.1f}, {errors:.0f} standard errors)"


def fq(quality: Quality) -> str:
    """One evaluator number in prose: FID and KID with its standard error, and n."""
    return f"FID {quality.fid:.1f} (KID {quality.kid:.1f} ± {quality.kid_stderr:.1f}, n {quality.n})"


LOSS_COLUMNS = ["d_loss", "g_loss", "D(x)", "D(G(z))"]


def losses_table(first_column: str, late: Mapping[str, np.ndarray], labels: Mapping[str, str]) -> str:
    """One row per run of its late mean losses (harness.late_means), under the run's label."""
    rows = [[labels[run], *(f"{value:.3f}" for value in values)] for run, values in late.items()]
    return table([first_column, *LOSS_COLUMNS], rows)


def updates(counts: Mapping[str, int]) -> str:
    return f"{counts['generator']} G + {counts['discriminator']} D"


# ------------------------------------------------------------------------------------ verdicts over seeds
def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def seeds_word(first: Sequence[Quality], second: Sequence[Quality]) -> str:
    """better / worse / the same: `first`'s mean FID over seeds against `second`'s, against twice the
    standard error of the difference of the two means (the spread over seeds, not the evaluator's)."""
    (m1, s1), (m2, s2) = mean_sd([q.fid for q in first]), mean_sd([q.fid for q in second])
    error = float(np.hypot(s1 / np.sqrt(len(first)), s2 / np.sqrt(len(second))))
    if abs(m1 - m2) <= 2.0 * error:
        return "the same"
    return "better" if m1 < m2 else "worse"


def seeds_verdict(
    first: Sequence[Quality],
    second: Sequence[Quality],
    first_label: str,
    second_label: str,
    how: str = "recalibrated",
) -> str:
    """The verdict in words beside its numbers: mean ± sd of FID over seeds, n seeds, the evaluator's n.
    `how`: the statistics the numbers were sampled with, as the sentence should name them."""
    (m1, s1), (m2, s2) = mean_sd([q.fid for q in first]), mean_sd([q.fid for q in second])
    error = float(np.hypot(s1 / np.sqrt(len(first)), s2 / np.sqrt(len(second))))
    word = seeds_word(first, second)
    than = "as" if word == "the same" else "than"
    return (
        f"**{first_label}: {word}** {than} {second_label} over {len(first)} seeds "
        f"({how} FID {m1:.1f} ± {s1:.1f} vs {m2:.1f} ± {s2:.1f}, mean ± sd; difference "
        f"{m1 - m2:+.1f}, twice its standard error {2 * error:.1f}; each FID on the evaluator's "
        f"n = {first[0].n})"
    )


def seeds_table(rows: Mapping[str, Sequence[Quality]]) -> str:
    """FID and KID per seed and their mean ± sd, one row per run (recalibrated statistics)."""
    count = len(next(iter(rows.values())))
    header = [
        "run",
        *(f"FID seed {seed}" for seed in range(count)),
        "FID mean ± sd",
        "KID mean ± sd",
    ]
    body = []
    for label, values in rows.items():
        fid, kid = mean_sd([q.fid for q in values]), mean_sd([q.kid for q in values])
        body.append(
            [
                label,
                *(f"{q.fid:.1f}" for q in values),
                f"{fid[0]:.1f} ± {fid[1]:.1f}",
                f"{kid[0]:.1f} ± {kid[1]:.1f}",
            ]
        )
    return table(header, body)


def verdict_word(first: Quality, second: Quality) -> str:
    """better / worse / the same by KID against two standard errors (the evaluator's sampling noise only:
    for the same weights, or one training path)."""
    difference = first.kid - second.kid
    if abs(difference) <= 2.0 * float(np.hypot(first.kid_stderr, second.kid_stderr)):
        return "the same"
    return "better" if difference < 0 else "worse"
