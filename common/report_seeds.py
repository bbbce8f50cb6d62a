"""The opening of `python -m common.compare`'s report when runs repeat one setting over seeds: the runs
grouped by setting (data set, class, every flag but the seed and the paths), an answer in one paragraph,
then tables of mean ± sd over seeds.

Numbers that compare across data sets are kept apart from those that do not. A FID lives in the
feature space of its data set's classifier, so raw FIDs of MNIST and CIFAR-10 never sit in one row as if
they were one scale; what does: the distance from the real floor to the noise ceiling, scaled to 0..1
((FID - floor) / (ceiling - floor), each measured at the same n by the same classifier), the
target-class share against the real unseen images' share, the collapse count, and wall time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from common.data import CIFAR10_CLASSES
from common.report_runs import Run
from common.report_tables import (
    evaluated,
    lowest_fid,
    lowest_tracked_row,
    run_stretches,
    tracked_rows,
    tracking,
)

# config.json fields that differ between repeats of one setting without making it another setting
PER_RUN_FIELDS = frozenset({"seed", "out", "data_dir", "images", "resume", "no_progress", "verbose"})
REAL_SHARE = "real unseen images' target-class share"
DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


class Group(NamedTuple):
    """Runs of one setting that differ only in their seeds (and paths)."""

    label: str
    runs: tuple[Run, ...]


def setting(run: Run) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in run.config.items() if k not in PER_RUN_FIELDS))


def data_label(run: Run) -> str:
    dataset = run.config.get("dataset", "?")
    name = DATASET_NAMES.get(dataset, dataset)
    label = run.config.get("class_label")
    if dataset == "cifar10" and isinstance(label, int) and 0 <= label < len(CIFAR10_CLASSES):
        name += f" {CIFAR10_CLASSES[label]}"
    if run.config.get("images"):
        name += " (own images)"
    return name


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs grouped by setting, in the order they were given; a group's label is its data set, with the
    settings that tell it from another group of the same data set."""
    settings: dict[tuple, list[Run]] = {}
    for run in runs:
        settings.setdefault(setting(run), []).append(run)
    groups = []
    for key, members in settings.items():
        label = data_label(members[0])
        siblings = [k for k, m in settings.items() if k != key and data_label(m[0]) == label]
        if siblings:
            mine = dict(key)
            differing = sorted(
                {name for other in siblings for name, value in other if mine.get(name) != value}
            )
            differing += sorted(name for name in mine if all(name not in dict(o) for o in siblings))
            # a recipe brings its own settings: it is what tells its runs apart
            shown = ["recipe"] if "recipe" in differing else list(dict.fromkeys(differing))
            config = members[0].config
            label += ", " + ", ".join(f"--{name.replace('_', '-')} {config.get(name)}" for name in shown)
        groups.append(Group(label, tuple(members)))
    return groups


def repeated(groups: Sequence[Group]) -> bool:
    """Whether some setting was run over two seeds or more (the report then opens with the seed tables)."""
    return any(len({run.config.get("seed") for run in group.runs}) > 1 for group in groups)


# --- per-run numbers -------------------------------------------------------------------------------


def scaled(fid: float | None, floor: float | None, ceiling: float | None) -> float | None:
    """Where a FID lies between the real floor (0) and the noise ceiling (1) of the same evaluation."""
    if None in (fid, floor, ceiling) or ceiling == floor:
        return None
    return (fid - floor) / (ceiling - floor)


def evaluation(run: Run, *keys: str) -> Any:
    """eval.json's value at keys (None when the run has no eval.json or not that value)."""
    return evaluated(*keys)(run)


def evaluated_distance(run: Run) -> float | None:
    return scaled(
        evaluation(run, "generated", "fid"),
        evaluation(run, "real_floor", "fid"),
        evaluation(run, "noise_ceiling", "fid"),
    )


def tracked_distance(run: Run, row: dict[str, float] | None) -> float | None:
    if row is None:
        return None
    return scaled(row["fid"], tracking(run).get("real_fid"), tracking(run).get("noise_fid"))


def row_at_images(run: Run, images: float) -> dict[str, float] | None:
    """The last tracked row at or before `images` images seen."""
    rows = [row for row in tracked_rows(run) if run.images_seen(row) <= images]
    return rows[-1] if rows else None


def matched_images(runs: Sequence[Run]) -> float | None:
    """The most images seen that every run reached with a tracked evaluation: the matched budget."""
    reached = [max((run.images_seen(row) for row in tracked_rows(run)), default=None) for run in runs]
    return None if not reached or None in reached else min(reached)


def collapse_count(run: Run) -> int:
    return len(run_stretches(run))


def fid_over_floor(run: Run) -> float | None:
    fid, floor = evaluation(run, "generated", "fid"), evaluation(run, "real_floor", "fid")
    return None if fid is None or not floor else fid / floor


def target_share_gap(run: Run) -> float | None:
    share = evaluation(run, "generated", "target_class_share")
    real = evaluation(run, "real_floor", "target_class_share_unseen")
    return None if share is None or real is None else share - real


class Measure(NamedTuple):
    """One row of the seed tables: a number per run, shown per group as mean ± sd over its seeds."""

    name: str
    value: Callable[[Run], float | None]
    digits: int = 3


def measures(budget: float | None) -> tuple[list[Measure], list[Measure]]:
    """(numbers that compare across data sets, numbers that compare only within one)."""
    last_row = lambda run: (tracked_rows(run) or [None])[-1]  # noqa: E731
    across = [
        Measure("evaluated checkpoint: floor-to-ceiling distance (eval.json)", evaluated_distance, 4),
        Measure(
            f"tracked distance at the matched budget ({budget or 0:,.0f} images seen)",
            lambda run: tracked_distance(run, row_at_images(run, budget)) if budget else None,
            4,
        ),
        Measure("tracked distance at the run's end", lambda run: tracked_distance(run, last_row(run)), 4),
        Measure(
            "tracked distance at its best step", lambda run: tracked_distance(run, lowest_tracked_row(run)), 4
        ),
        Measure(
            "target-class share (eval.json)", lambda run: evaluation(run, "generated", "target_class_share")
        ),
        Measure(
            REAL_SHARE,
            lambda run: evaluation(run, "real_floor", "target_class_share_unseen"),
        ),
        Measure("target-class share minus the real unseen images'", target_share_gap),
        Measure(
            "class entropy (eval.json; real images' below)",
            lambda run: evaluation(run, "generated", "class_entropy"),
        ),
        Measure("real images' class entropy", lambda run: evaluation(run, "real_floor", "class_entropy")),
        Measure("collapse stretches (common.watch)", collapse_count, 1),
        Measure("images seen", lambda run: run.images_seen(run.last) if run.history else None, 0),
        Measure("wall time, s (history.csv)", lambda run: run.last.get("seconds"), 0),
        Measure(
            "images/s (median of history.csv)",
            lambda run: (
                statistics.median(r["images_per_second"] for r in run.history if "images_per_second" in r)
                if any("images_per_second" in r for r in run.history)
                else None
            ),
            1,
        ),
    ]
    within = [
        Measure("evaluated checkpoint's step", lambda run: evaluation(run, "step"), 0),
        Measure("n (generated and real images)", lambda run: evaluation(run, "n"), 0),
        Measure("FID", lambda run: evaluation(run, "generated", "fid"), 2),
        Measure("FID over the real floor's", fid_over_floor, 2),
        Measure("real-floor FID", lambda run: evaluation(run, "real_floor", "fid"), 2),
        Measure("noise-ceiling FID", lambda run: evaluation(run, "noise_ceiling", "fid"), 2),
        Measure("KID", lambda run: evaluation(run, "generated", "kid"), 4),
        Measure("KID's standard error", lambda run: evaluation(run, "generated", "kid_stderr"), 4),
        Measure(
            "best tracked FID (n in config.json's tracking)", lambda run: (lowest_fid(run) or (None,))[0], 2
        ),
        Measure("classifier test accuracy", lambda run: evaluation(run, "classifier", "test_accuracy"), 4),
    ]
    return across, within


class Spread(NamedTuple):
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan


def spread(measure: Measure, group: Group) -> Spread | None:
    values = [measure.value(run) for run in group.runs]
    kept = tuple(float(v) for v in values if v is not None and math.isfinite(float(v)))
    return Spread(kept) if len(kept) == len(values) and kept else None


def show(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def mean_sd(found: Spread | None, digits: int) -> str:
    if found is None:
        return "—"
    if len(found.values) == 1:
        return show(found.mean, digits)
    return f"{show(found.mean, digits)} ± {show(found.sd, digits)}"


def seeds(count: int) -> str:
    return f"{count} seed" if count == 1 else f"{count} seeds"


def group_table(rows: Sequence[Measure], groups: Sequence[Group]) -> str:
    header = ["measure", *(f"{g.label} ({seeds(len(g.runs))})" for g in groups)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for measure in rows:
        cells = [mean_sd(spread(measure, group), measure.digits) for group in groups]
        if any(cell != "—" for cell in cells):
            lines.append("| " + " | ".join([measure.name, *cells]) + " |")
    return "\n".join(lines)


def per_seed_table(rows: Sequence[Measure], groups: Sequence[Group]) -> str:
    header = ["setting", "seed", "run", *(m.name for m in rows)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in groups:
        for run in group.runs:
            cells = []
            for measure in rows:
                value = measure.value(run)
                cells.append("—" if value is None else show(float(value), measure.digits))
            lines.append(
                "| " + " | ".join([group.label, str(run.config.get("seed")), run.label, *cells]) + " |"
            )
    return "\n".join(lines)


# --- the answer --------------------------------------------------------------------------------------


def apart(a: Spread, b: Spread) -> bool:
    """Whether two groups' means differ by more than their seeds' spread (each sd, added)."""
    sds = [s.sd for s in (a, b) if not math.isnan(s.sd)]
    return abs(a.mean - b.mean) > (sum(sds) if sds else 0.0)


def answer(groups: Sequence[Group], budget: float | None) -> str:
    """One paragraph, every number read from the runs: which setting ends nearer its real data, at the
    run's own budget and at the matched one, and how often each collapsed."""
    across, _ = measures(budget)
    by_name = {m.name: m for m in across}
    distance, at_budget = across[0], across[1]
    parts = []
    found = [(g, spread(distance, g)) for g in groups]
    ranked = sorted((pair for pair in found if pair[1] is not None), key=lambda pair: pair[1].mean)
    if ranked:
        described = "; ".join(
            f"{g.label} {mean_sd(s, 3)} (n = {', '.join(sorted({str(evaluation(r, 'n')) for r in g.runs}))}, "
            f"{seeds(len(g.runs))})"
            for g, s in ranked
        )
        parts.append(
            "Scaled so that 0 is the real data's own floor and 1 is uniform noise, the evaluated checkpoints "
            f"end at: {described}."
        )
        if len(ranked) > 1:
            (g0, s0), (g1, s1) = ranked[0], ranked[-1]
            verdict = (
                f"{g0.label} ends nearer its real data than {g1.label}"
                if apart(s0, s1)
                else f"{g0.label} and {g1.label} are within their seeds' spread of each other"
            )
            parts.append(f"So {verdict}.")
    if budget:
        matched = [(g, spread(at_budget, g)) for g in groups]
        shown = "; ".join(f"{g.label} {mean_sd(s, 3)}" for g, s in matched if s is not None)
        if shown:
            parts.append(f"At the same {budget:,.0f} images seen, the tracked distances are: {shown}.")
    collapses = by_name["collapse stretches (common.watch)"]
    counts = [
        f"{g.label} on {sum(collapses.value(r) > 0 for r in g.runs)} of {seeds(len(g.runs))}" for g in groups
    ]
    parts.append("Runs with a collapse stretch: " + "; ".join(counts) + ".")
    gap = by_name["target-class share minus the real unseen images'"]
    shares = [
        f"{g.label} {mean_sd(spread(by_name['target-class share (eval.json)'], g), 3)} against "
        f"{mean_sd(spread(by_name[REAL_SHARE], g), 3)}"
        for g in groups
        if spread(gap, g) is not None
    ]
    if shares:
        parts.append(
            "How often the classifier calls the samples their class, against unseen real images of it: "
            + "; ".join(shares)
            + "."
        )
    return " ".join(parts)


def seeds_section(runs: Sequence[Run], groups: Sequence[Group]) -> list[str]:
    """The report's opening lines when a setting was repeated over seeds (groups: group_runs(runs))."""
    budget = matched_images(runs)
    across, within = measures(budget)
    lines = [
        "## The answer",
        "",
        answer(groups, budget),
        "",
        "## Across seeds: numbers that compare across data sets",
        "",
        "Mean ± sd over each setting's seeds. A distance is (FID - real floor) / (noise ceiling - floor), "
        "each FID by the same classifier at the same n: 0 is the real test images, 1 uniform noise. The "
        "evaluated checkpoint is the one eval.json names (by default the run's best); tracked distances "
        "come from history.csv's FIDs during training and the floor and ceiling of config.json's "
        "`tracking`. The matched budget is the most images seen that every run reached with an "
        "evaluation. Wall time and images/s are the runs' own clocks on the machine each ran on.",
        "",
        group_table(across, groups),
        "",
        "## Across seeds: numbers that compare only within one data set",
        "",
        "Raw FID and KID are distances in one classifier's feature space: they compare runs of one data set "
        "(and one classifier, at one n), never MNIST with CIFAR-10.",
        "",
        group_table(within, groups),
        "",
        "## Each seed: numbers that compare across data sets",
        "",
        per_seed_table(across, groups),
        "",
        "## Each seed: numbers that compare only within one data set",
        "",
        per_seed_table(within, groups),
        "",
        "## How the runs were made",
        "",
        *how_made(groups),
    ]
    return lines


def as_typed(command: str, run: Run) -> str:
    """A recorded command as a user types it: `python -m PACKAGE` for the package's __main__.py path, and
    the run folder by its name in this report rather than the machine's absolute path."""
    words = command.split()
    if words and words[0].endswith("/__main__.py"):
        words[0] = "python -m " + words[0].split("/")[-2]
    out = run.config.get("out")
    return " ".join(f"runs/{run.label}" if word == out else word for word in words)


def how_made(groups: Sequence[Group]) -> list[str]:
    """Each group's commands, machines and versions, as its runs' config.json recorded them."""
    lines = []
    for group in groups:
        machines = sorted({f"{run.record.get('device')}; {run.record.get('session')}" for run in group.runs})
        versions = sorted(
            {
                ", ".join(f"{k} {v}" for k, v in (run.record.get("versions") or {}).items())
                for run in group.runs
            }
        )
        lines += [f"- **{group.label}**: on {' / '.join(machines)} ({' / '.join(versions)})", "", "  ```"]
        for run in group.runs:
            commands = run.record.get("commands") or [run.record.get("command", "")]
            lines += [f"  {as_typed(command, run)}" for command in commands]
        lines += ["  ```", ""]
    return lines
