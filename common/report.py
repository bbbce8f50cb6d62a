"""`python -m common.compare`'s report: DIR/report.md with its tables (common/report_tables.py) and
figures (common/report_figures.py), of runs read by common/report_runs.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from common.report_figures import plot_distance, plot_losses, plot_probabilities, plot_quality, plot_samples
from common.report_runs import EVAL_FILE, Run
from common.report_seeds import group_runs, repeated, seeds_section
from common.report_tables import TABLES, markdown_table, tracking
from common.rundir import atomic_write_bytes, check_writable_dir


class Report(NamedTuple):
    path: Path
    figures: tuple[Path, ...]


def history_eval_keys(runs: Sequence[Run]) -> list[str]:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.eval_columns if k not in keys]
    return keys


def link(figure: Path, report: Path) -> str:
    """The figure's path as the report's markdown links it: relative to the report's folder."""
    return Path(os.path.relpath(figure, report.parent)).as_posix()


def write_report(
    runs: Sequence[Run], out: Path, command: str, report: Path | None = None, note: str = ""
) -> Report:
    """The report at `report` (default OUT/report.md), its figures in OUT. Runs that repeat a setting over
    seeds open it with the answer and the seed tables (common/report_seeds.py)."""
    check_writable_dir(out)
    report = report or out / "report.md"
    check_writable_dir(report.parent)
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
    groups = group_runs(runs)
    over_seeds = repeated(groups)
    # the distance over training belongs beside the seed tables, not with the per-run figures
    distance = out / "distance.png" if over_seeds and any(tracking(run) for run in runs) else None
    if distance:
        plot_distance(runs, distance)

    title = " vs ".join(g.label for g in groups) if over_seeds else "Comparison of runs"
    lines = [
        f"# {title}",
        "",
        f"Made by `{command}`. Every number below is read from the runs' files.",
        "",
    ]
    if note:
        lines += [note, ""]
    if over_seeds:
        lines += seeds_section(runs, groups)
        if distance:
            lines += ["", f"![distance]({link(distance, report)})", ""]
        lines += ["## Each run's files", ""]
    for run in runs:
        grid = run.final_grid
        grid_text = f"{grid.name}" if grid else "none"
        evaluation = EVAL_FILE if run.evaluation is not None else f"no {EVAL_FILE}"
        lines.append(
            f"- **{run.label}**: `{run.given}` ({len(run.history)} history rows, final grid {grid_text}, "
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
        lines += ["", f"## {title}", "", f"![{title}]({link(out / name, report)})"]
    atomic_write_bytes(report, ("\n".join(lines) + "\n").encode())
    drawn = [out / name for _, name, _ in figures] + ([distance] if distance else [])
    return Report(report, tuple(drawn))
