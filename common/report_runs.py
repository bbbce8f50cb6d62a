"""The run directories `python -m common.compare` puts side by side, each read once into a `Run`:
config.json, history.csv, samples/ and eval.json (common/report.py writes the report from them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from common.modules import open_run
from common.rundir import EVAL_FILE, HISTORY_COLUMNS, RunDir, RunDirError

__all__ = ["EVAL_FILE", "Run", "read_run", "read_runs"]


class Run(NamedTuple):
    """One run directory, read once: what the tables and figures are made from."""

    label: str  # its name in the report (the folder name, numbered when two folders share it)
    run: RunDir
    record: dict[str, Any]  # config.json
    history: list[dict[str, float]]  # history.csv rows (empty cells left out)
    evaluation: dict[str, Any] | None  # eval.json, when the run was evaluated
    given: str = ""  # the folder as the command line named it (the report shows no machine's absolute path)

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
    """One run folder, every file through its checked reader (RunDirError naming a damaged one)."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise RunDirError(f"{run.path} is not a run directory (no such folder)")
    # config.json's one reader: a config.json another module rewrote (a data set beside another's image
    # shape) or one with values of the wrong type is not compared
    record, _, _ = open_run(run, None, f"common.compare {run.path}")
    return Run(label, run, record, run.read_history(), run.read_eval(), str(path))


def read_runs(paths: Sequence[str | Path]) -> list[Run]:
    if not paths:
        raise RunDirError("give at least one run directory")
    names = [Path(p).resolve().name or str(p) for p in paths]
    labels = [name if names.count(name) == 1 else f"{name} ({i + 1})" for i, name in enumerate(names)]
    return [read_run(path, label) for path, label in zip(paths, labels, strict=True)]
