"""The run directory: everything a run writes, and reads back to resume, sample, evaluate or compare.

    config.json            every setting, versions, device, data source, parameter counts
    history.csv            one row per logged step (HISTORY_COLUMNS)
    samples/step_XXXXXX.png  grids of a fixed noise batch, from the inference sampler
    loss.png, progress.gif figures rebuilt from history.csv and the grids
    events/                TensorBoard event files
    checkpoints/           tf.compat.v1.train.Saver checkpoints (the last few)
    checkpoints/best/      the checkpoint of the lowest tracked FID, with best.json (step, fid)
    eval.json              what python -m common.evaluate measured

Files are replaced atomically (write to a temporary file, then rename), so a crash leaves either the
old file or the new one, never half of one; a temporary a kill left is removed by the next write. Each
file that is read back has one checking reader here (config.json's settings: common.modules.run_settings),
and a damaged one is a RunDirError naming it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

# collapsed: 1 while common.watch sees a sustained collapse (D(G(z)) pinned near 0 or 1, or worse than noise)
HISTORY_COLUMNS = (
    "step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "seconds", "images_per_second", "collapsed",
)  # fmt: skip


class RunDirError(ValueError):
    """An output directory a run cannot use. The CLI prints it on one line and exits 2."""


class DiskFullError(RunDirError):
    """The disk filled up while a run wrote its files. The CLI prints it on one line and exits 2."""


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC, from Python (OSError) or from TensorFlow's C++ writers (an OpError whose text says so)."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return "No space left on device" in str(err)  # TensorFlow's errors carry only the text


# The files and folders a run writes: a folder holding any of them holds a run (or what is left of one).
RUN_FILES = ("config.json", "history.csv", "samples", "checkpoints", "events", "loss.png", "progress.gif")
_CHECKPOINT_FILE = re.compile(r"model\.ckpt-(\d+)\.(index|meta|data-\d+-of-\d+)")


# A temporary file or folder of ours is named after its target and the process writing it,
# `.NAME.~PID~RANDOM.SUFFIX` (atomic_path) or `best.~PID~RANDOM.tmp` (keep_best): what a kill -9 left is
# recognized, and removed by the next write of the same target once that process is gone.
_TEMPORARY = re.compile(r"(?P<target>.*)\.~(?P<pid>\d+)~[A-Za-z0-9_]+(?P<suffix>\.[^.]*)?")


def temporary_prefix(stem: str) -> str:
    """The start of the name of a temporary of ours for the target named `stem` (see _TEMPORARY)."""
    return f"{stem}.~{os.getpid()}~"


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False


def remove_stale_temporaries(folder: str | os.PathLike, stem: str | None = None) -> list[Path]:
    """Remove the temporaries (files or folders) in `folder` that a killed writer left: ours by their name,
    whose process is gone; only those of the target named `stem` when given. Returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        found = _TEMPORARY.fullmatch(entry.name)
        if (
            not found
            or (stem is not None and found["target"] != stem)
            or not _process_gone(int(found["pid"]))
        ):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def make_temporary_dir(folder: Path, stem: str, suffix: str = "") -> Path:
    """A fresh folder in `folder` named as our temporaries are, with the mode the user's umask gives new
    folders (mkdtemp makes 0700), after removing those a killed writer of the same target left."""
    remove_stale_temporaries(folder, stem)
    fresh = Path(tempfile.mkdtemp(prefix=temporary_prefix(stem), suffix=suffix, dir=folder))
    os.chmod(fresh, 0o777 & ~_umask())
    return fresh


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure remove it.
    A temporary of the same target that a killed writer left is removed first."""
    path = Path(path)
    remove_stale_temporaries(path.parent, f".{path.stem}")
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(f".{path.stem}"), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the user's usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def check_writable_dir(path: str | os.PathLike) -> None:
    """Refuse, before anything is written, an out dir that is a file or cannot be created or written.

    Probes with a real temporary file in the nearest existing folder: permission bits alone do not
    tell (root ignores them; read-only file systems do not show in them).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"output path {path} exists and is not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(f"cannot create {path}: {existing} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise RunDirError(f"output directory {existing} is not writable ({err.strerror})") from err


def grid_image(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*H + gaps, cols*W + gaps, C] image with 1-pixel gaps."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = image
    return grid


def save_grid(images: np.ndarray, path: Path, scale: int = 3, columns: int | None = None) -> None:
    """Save a sample grid as PNG, upscaled (nearest) so 28x28 digits are readable."""
    from PIL import Image

    grid = grid_image(images, columns)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def _reason(err: BaseException) -> str:
    """An OSError's or a decoding error's reason, without the path the message names already."""
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


def _history_numbers(row: Mapping[str, str], line: int) -> dict[str, float]:
    """One history.csv row as numbers (ValueError naming the line and the cell that is not one)."""
    numbers = {}
    for column, value in row.items():
        if value == "":
            continue
        try:
            numbers[column] = float(value)
        except ValueError:
            raise ValueError(f"line {line}: {column} is {value!r}, not a number") from None
    step = numbers.get("step")
    if step is None or not (math.isfinite(step) and step >= 0 and step == int(step)):
        raise ValueError(f"line {line}: step is {row.get('step')!r}, not a step number")
    return numbers


# best.json: the record of checkpoints/best/ ----------------------------------------------------------
BEST_FILE = "best.json"


def check_step(value: Any, what: str = "step") -> int:
    """A step number (or a count) as files record it: a non-negative integer (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {value!r} is not a non-negative integer")
    return value


def check_number(value: Any, what: str) -> float:
    """A finite number as files record it (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    return float(value)


def parse_best(record: Any) -> dict[str, Any]:
    """best.json's contents checked: an object with a step and a finite FID (ValueError saying what not)."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if "step" not in record or "fid" not in record:
        raise ValueError("no step and fid")
    return {**record, "step": check_step(record["step"]), "fid": check_number(record["fid"], "fid")}


class BestFolder(NamedTuple):
    """checkpoints/best/ (or a best.old a kill left), read: best.json's record when it is whole and names
    a checkpoint of the folder, else why not; and the steps of the checkpoints the folder holds."""

    folder: Path
    record: dict[str, Any] | None
    problem: str | None
    steps: tuple[int, ...]

    @property
    def json(self) -> Path:
        return self.folder / BEST_FILE

    @property
    def step(self) -> int | None:
        """best.json's step; when it is damaged, that of the one checkpoint the folder holds."""
        if self.record is not None:
            return self.record["step"]
        return self.steps[0] if len(self.steps) == 1 else None

    @property
    def checkpoint(self) -> str | None:
        return None if self.step is None else str(self.folder / f"model.ckpt-{self.step}")


def read_best_folder(folder: Path) -> BestFolder:
    """The one reader of a best folder and its best.json (BestFolder)."""
    try:
        names = [path.name for path in folder.iterdir()]
    except OSError:
        names = []
    steps = tuple(sorted({int(m[1]) for m in map(_CHECKPOINT_FILE.fullmatch, names) if m}, reverse=True))
    try:
        record = parse_best(json.loads((folder / BEST_FILE).read_text()))
    except FileNotFoundError:
        return BestFolder(folder, None, f"no {BEST_FILE}", steps)
    except OSError as err:
        return BestFolder(folder, None, _reason(err), steps)
    except ValueError as err:  # bad JSON, bad UTF-8, or the checks of parse_best
        reason = f"not JSON: {err}" if isinstance(err, json.JSONDecodeError) else str(err)
        return BestFolder(folder, None, reason, steps)
    if record["step"] not in steps:
        holds = ", ".join(f"model.ckpt-{step}" for step in steps) or "no checkpoint"
        return BestFolder(
            folder, None, f"it names step {record['step']}, but the folder holds {holds}", steps
        )
    return BestFolder(folder, record, None, steps)


# eval.json: what python -m common.evaluate measured -----------------------------------------------
EVAL_FILE = "eval.json"
EVAL_SECTIONS = ("generated", "real_floor", "noise_ceiling")
EVAL_NUMBERS = (
    "fid", "kid", "kid_stderr", "class_entropy", "confident_share", "target_class_share", "checkerboard",
    "target_class_share_unseen", "other_classes_target_share",
)  # fmt: skip


def _number_or_none(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{what} is {value!r}, not a number")


def check_eval(record: Any) -> None:
    """eval.json's contents checked where its readers use them (ValueError saying what is wrong)."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in ("step", "n"):
        if record.get(key) is not None:
            check_step(record[key], key)
    classifier = record.get("classifier")
    if classifier is not None:
        if not isinstance(classifier, dict):
            raise ValueError("classifier is not an object")
        _number_or_none(classifier.get("test_accuracy"), "classifier.test_accuracy")
    for section in EVAL_SECTIONS:
        values = record.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValueError(f"{section} is not an object")
        for key in EVAL_NUMBERS:
            _number_or_none(values.get(key), f"{section}.{key}")


class RunDir:
    """Paths and readers/writers of one run directory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.history = self.path / "history.csv"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.events = self.path / "events"
        self.loss_plot = self.path / "loss.png"
        self.progress_gif = self.path / "progress.gif"

    def create(self) -> None:
        for folder in (self.path, self.samples, self.checkpoints, self.events):
            folder.mkdir(parents=True, exist_ok=True)

    def has_run(self) -> bool:
        return self.config.exists()

    def run_files(self) -> list[str]:
        """The run files (RUN_FILES) this folder holds: any of them means a run was here."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def remove_run_files(self) -> None:
        """Delete what a run writes here (RUN_FILES), and nothing else: for a run that failed before its
        first checkpoint, in a folder that held no run files when it started."""
        for name in RUN_FILES:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

    # config.json ------------------------------------------------------------------------------------
    def write_config(self, record: Mapping[str, Any]) -> None:
        atomic_write_bytes(self.config, (json.dumps(record, indent=2, default=str) + "\n").encode())

    def read_config(self) -> dict[str, Any]:
        if not self.config.exists():
            raise RunDirError(f"{self.path} is not a run directory (no config.json)")
        try:
            return json.loads(self.config.read_text())
        except (OSError, ValueError) as err:  # ValueError: bad JSON and bad UTF-8 alike
            raise RunDirError(f"cannot read {self.config}: {err}") from err

    # eval.json ---------------------------------------------------------------------------------------
    @property
    def eval_json(self) -> Path:
        return self.path / EVAL_FILE

    def read_eval(self) -> dict[str, Any] | None:
        """eval.json (python -m common.evaluate), checked, the one way in: None when there is none,
        RunDirError when it is damaged."""
        again = f"`python -m common.evaluate --run {self.path}` writes it again"
        if not self.eval_json.exists():
            return None
        try:
            record = json.loads(self.eval_json.read_text())
        except (OSError, ValueError) as err:
            raise RunDirError(f"cannot read {self.eval_json}: {_reason(err)}; {again}") from err
        try:
            check_eval(record)
        except ValueError as err:
            raise RunDirError(f"{self.eval_json} is damaged ({err}); {again}") from err
        return record

    # checkpoints ------------------------------------------------------------------------------------
    def checkpoint_prefixes(self) -> list[str]:
        """Every checkpoint in checkpoints/, the newest step first, found by listing the folder: the
        `checkpoint` state file may be damaged or stale, the files themselves are the truth."""
        try:
            names = [p.name for p in self.checkpoints.iterdir()]
        except OSError:
            return []
        steps = {int(m[1]) for m in map(_CHECKPOINT_FILE.fullmatch, names) if m}
        return [str(self.checkpoints / f"model.ckpt-{step}") for step in sorted(steps, reverse=True)]

    def latest_checkpoint(self, warn: bool = True) -> str | None:
        """The newest checkpoint that reads whole; None when there is none at all.

        A damaged newest one (truncated data, a lost .index) is skipped with one line on stderr naming it
        and why (unless `warn` is False); when checkpoints exist but none reads, RunDirError names them (the
        CLI exits 2).
        """
        skipped = []
        for prefix in self.checkpoint_prefixes():
            problem = checkpoint_problem(prefix)
            if problem is None:
                if skipped and warn:
                    print(
                        f"warning: skipped {'; '.join(skipped)}; using {Path(prefix).name}", file=sys.stderr
                    )
                return prefix
            skipped.append(f"damaged checkpoint {Path(prefix).name} ({problem})")
        if skipped:
            raise RunDirError(f"no checkpoint in {self.checkpoints} restores: {'; '.join(skipped)}")
        return None

    def remove_temporary_files(self) -> list[Path]:
        """What interrupted writes left, garbage that may be large: in checkpoints/ (only training writes
        there) TensorFlow's *.tempstate* files and *_temp folders and the best checkpoint's *.tmp folders;
        elsewhere TensorFlow's *.tempstate* files and our temporaries whose writer is gone (atomic_path).
        Returns what was removed."""
        removed = []
        for path in list(self.path.rglob("*")):
            name = path.name
            in_checkpoints = path.parent == self.checkpoints
            if ".tempstate" in name or (in_checkpoints and (name.endswith("_temp") or name.endswith(".tmp"))):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        for folder in (self.path, self.samples):
            removed += remove_stale_temporaries(folder)
        return removed

    def remove_checkpoint(self, step: int) -> None:
        """Delete the files of the checkpoint of `step` (one whose save failed half way)."""
        for path in self.checkpoints.glob(f"model.ckpt-{step}.*"):
            if _CHECKPOINT_FILE.fullmatch(path.name):
                path.unlink(missing_ok=True)

    @property
    def checkpoint_prefix(self) -> str:
        return str(self.checkpoints / "model.ckpt")

    # the best checkpoint ----------------------------------------------------------------------------
    @property
    def best(self) -> Path:
        """checkpoints/best/: the checkpoint with the lowest tracked FID, never rotated away."""
        return self.checkpoints / "best"

    def best_folders(self) -> list[BestFolder]:
        """checkpoints/best/ and, where a kill interrupted a swap, best.old/: each read (BestFolder)."""
        return [
            read_best_folder(folder)
            for folder in (self.best, self.checkpoints / "best.old")
            if folder.is_dir() and not folder.is_symlink()
        ]

    def best_record(self) -> dict[str, Any] | None:
        """{"step", "fid", "checkpoint"} of the kept best checkpoint (checkpoints/best/best.json; best.old
        when a kill interrupted a swap), or None when there is none. RunDirError when there is one but its
        best.json is damaged (see RunDir.resolve_checkpoint and common.train.BestKeeper for what then)."""
        folders = self.best_folders()
        for found in folders:
            if found.record is not None:
                return {**found.record, "checkpoint": found.checkpoint}
        if folders:
            raise RunDirError(
                f"{folders[0].json} is damaged ({folders[0].problem}): `train --resume` rebuilds it from "
                "history.csv; --checkpoint best uses the checkpoint beside it"
            )
        return None

    def keep_best(self, save: Callable[[str], None], record: Mapping[str, Any]) -> None:
        """Replace checkpoints/best/ with a new checkpoint, atomically: `save(prefix)` writes it into a
        fresh folder together with best.json, and only then do the folders swap (a kill at any moment
        leaves the old best or the new one whole; best_folders reads a best.old left by a kill). The fresh
        folder is named as our temporaries are: a later one removes what a kill left of it."""
        record = {**record, "step": check_step(record["step"]), "fid": float(record["fid"])}
        fresh = make_temporary_dir(self.checkpoints, "best", ".tmp")
        try:
            save(str(fresh / f"model.ckpt-{record['step']}"))
            (fresh / BEST_FILE).write_text(json.dumps(record, indent=2) + "\n")
            old = self.checkpoints / "best.old"
            shutil.rmtree(old, ignore_errors=True)
            if self.best.exists():
                os.replace(self.best, old)
            os.replace(fresh, self.best)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise

    def checkpoint_steps(self) -> list[int]:
        """The steps of the rotating checkpoints that exist, newest first."""
        return [int(prefix.rsplit("-", 1)[1]) for prefix in self.checkpoint_prefixes()]

    def kept_steps(self) -> list[int]:
        """Every step --checkpoint STEP may name: the rotating checkpoints' and the best one's."""
        steps = set(self.checkpoint_steps())
        steps |= {found.step for found in self.best_folders() if found.step is not None}
        return sorted(steps)

    def default_checkpoint(self) -> tuple[str, str | None]:
        """Which checkpoint `sample`, `common.evaluate` and `export` use without --checkpoint: "best" when
        the run keeps one (a run can end worse than its best, in a collapse), else "latest"; with the line
        that says so for the best (None for the latest, which the commands name anyway)."""
        if not self.best_folders():
            return "latest", None
        try:
            record = self.best_record()
        except RunDirError:  # a damaged best.json: resolve_checkpoint("best") says so and falls back
            record = None
        what = f"step {record['step']}, tracked FID {record['fid']:.2f}" if record else "best.json damaged"
        return "best", f"using the run's best checkpoint ({what}); --checkpoint latest for the last one"

    def chosen_checkpoint(self, given: str | None) -> str:
        """--checkpoint as given, or the run's default (default_checkpoint), saying which on stderr."""
        if given is not None:
            return given
        which, line = self.default_checkpoint()
        if line:
            print(line, file=sys.stderr)
        return which

    def resolve_checkpoint(self, which: str | int | None) -> str:
        """`latest` (or None), `best`, or a step number -> that checkpoint's prefix.

        Each falls back and refuses the same way: a damaged checkpoint is skipped for the next that reads
        whole and can stand for it (latest: an older one; best: the checkpoint beside a damaged best.json,
        else a best.old a kill left; STEP: the best folder's copy of that step), with one line on stderr
        naming what was skipped and why; when none does, RunDirError names them (the CLI exits 2).
        """
        text = "latest" if which is None else str(which).strip().lower()
        if text == "latest":
            latest = self.latest_checkpoint()
            if not latest:
                raise RunDirError(
                    f"{self.path} has no checkpoint to evaluate, sample or export (train it first)"
                )
            return latest
        if text == "best":
            folders = self.best_folders()
            if not folders:
                raise RunDirError(
                    f"{self.path} has no best checkpoint: it is kept while training tracks quality "
                    "(--eval-every N); use --checkpoint latest or a step"
                )
            candidates = []
            for found in folders:
                if found.record is None:  # a damaged best.json: the checkpoint beside it still says its step
                    candidates.append(
                        (found.checkpoint, f"{self._name(found.json)} is damaged ({found.problem})")
                    )
                else:
                    candidates.append((found.checkpoint, None))
            return self._first_that_restores(candidates, "the best checkpoint")
        if not re.fullmatch(r"[0-9]+", text):  # not str.isdigit: "²" is a digit to it, not to int()
            raise RunDirError(f"--checkpoint must be best, latest or a step number, got {which!r}")
        step = int(text)
        candidates = (
            [(str(self.checkpoints / f"model.ckpt-{step}"), None)] if step in self.checkpoint_steps() else []
        )
        candidates += [(found.checkpoint, None) for found in self.best_folders() if found.step == step]
        if not candidates:
            kept = ", ".join(str(s) for s in self.kept_steps())
            raise RunDirError(f"{self.path} has no checkpoint of step {step}; kept steps: {kept or 'none'}")
        return self._first_that_restores(candidates, f"the checkpoint of step {step}")

    def _name(self, path: str | Path) -> str:
        """A checkpoint or file of this run as messages name it: relative to checkpoints/."""
        with contextlib.suppress(ValueError):
            return str(Path(path).relative_to(self.checkpoints))
        return str(path)

    def _first_that_restores(self, candidates: list[tuple[str | None, str | None]], what: str) -> str:
        """The first of (prefix, a note on why it stands in) whose checkpoint reads whole, with one warning
        line for what was skipped or stood in; RunDirError naming them all when none does."""
        notes = []
        for prefix, note in candidates:
            if note:
                notes.append(note)
            if prefix is None:
                continue
            problem = checkpoint_problem(prefix)
            if problem is None:
                if notes:
                    print(f"warning: skipped {'; '.join(notes)}; using {self._name(prefix)}", file=sys.stderr)
                return prefix
            notes.append(f"damaged checkpoint {self._name(prefix)} ({problem})")
        kept = ", ".join(str(s) for s in self.kept_steps())
        raise RunDirError(
            f"{what} of {self.path} does not restore: {'; '.join(notes)}; use --checkpoint latest (the "
            f"newest that restores) or another step (kept steps: {kept or 'none'})"
        )

    # history.csv ------------------------------------------------------------------------------------
    def _history_text(self) -> str:
        """history.csv up to its last complete line: a kill in the middle of an append leaves a torn last
        line without its newline, which is not a row."""
        if not self.history.exists():
            return ""
        text = self.history.read_text()
        return text if text.endswith("\n") else text[: text.rfind("\n") + 1]

    def _history_table(self) -> tuple[list[str], list[dict[str, str]], list[dict[str, float]]]:
        """history.csv read and checked, the one way in: its header, and its rows as written and as
        numbers (empty cells left out). RunDirError naming the line of a row that is none."""
        try:
            text = self._history_text()
        except (OSError, ValueError) as err:  # ValueError: bad UTF-8
            raise RunDirError(f"cannot read {self.history}: {_reason(err)}") from err
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader, [])
            if header and ("step" not in header or len(set(header)) != len(header) or "" in header):
                raise ValueError("its header is not one of a run's history (a step column, distinct names)")
            written, rows = [], []
            for values in reader:
                if not values:
                    continue
                if len(values) > len(header):
                    raise ValueError(f"line {reader.line_num} has more values than the header has columns")
                row = dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))
                rows.append(_history_numbers(row, reader.line_num))
                written.append(row)
        except (ValueError, csv.Error) as err:
            raise RunDirError(
                f"{self.history} is damaged: {err}; fix or delete that line (another program changed it)"
            ) from err
        return header, written, rows

    def read_history(self) -> list[dict[str, float]]:
        """history.csv's rows as numbers (empty cells left out), checked (RunDirError naming a bad line)."""
        return self._history_table()[2]

    def history_columns(self) -> list[str]:
        return self._history_table()[0]

    def resume_history(self, last_step: int, columns: list[str]) -> tuple[list[str], list[dict[str, float]]]:
        """Prepare history.csv for a run going on from `last_step`: drop the rows logged after it (they
        came after the checkpoint), and widen the header with any of `columns` it lacks (a resumed run
        that gains columns, e.g. --eval-every). Returns the header and the rows kept."""
        header, written, rows = self._history_table()
        if not header:  # no file, or a kill before its header was complete
            return list(columns), []
        header += [c for c in columns if c not in header]
        kept = [i for i, row in enumerate(rows) if row["step"] <= last_step]
        with atomic_path(self.history) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(written[i] for i in kept)
        return header, [rows[i] for i in kept]

    def sample_grids(self) -> list[Path]:
        return sorted(self.samples.glob("step_*.png"))


def checkpoint_problem(prefix: str) -> str | None:
    """Why the checkpoint `prefix` cannot be restored (a short reason), or None when every tensor in it
    reads back: the reader checks each tensor's checksum, so truncated or altered data is caught here."""
    if not Path(prefix + ".index").exists():
        return "no .index file"
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # DataLossError, OutOfRangeError, NotFoundError, ...: all mean "damaged"
        text = str(getattr(err, "message", err)).strip().splitlines()
        return f"{type(err).__name__}: {text[0][:120] if text else ''}".rstrip(": ")
    return None


class HistoryWriter:
    """Appends rows to history.csv, flushed at once so a crash loses nothing already logged."""

    def __init__(self, path: Path, columns: Iterable[str]) -> None:
        self.columns = list(columns)
        self.last_step: float | None = None  # the step of the last row written
        _drop_torn_line(Path(path))
        new = not Path(path).exists() or Path(path).stat().st_size == 0
        self.file = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run
        self.writer = csv.DictWriter(self.file, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.file.flush()

    def write(self, row: Mapping[str, float]) -> None:
        self.writer.writerow({k: _format(row.get(k)) for k in self.columns})
        self.file.flush()
        self.last_step = row.get("step")

    def close(self) -> None:
        self.file.close()


def _drop_torn_line(path: Path) -> None:
    """Cut a last line without its newline (a kill in the middle of an append), so that the next row
    starts a line of its own instead of gluing onto the torn one."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}"


# figures ---------------------------------------------------------------------------------------------
def save_loss_plot(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """D and G losses, and D(x) / D(G(z)), against the step."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in history]
    fig, (losses, probabilities) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    losses.plot(steps, [row["d_loss"] for row in history], label="discriminator loss")
    losses.plot(steps, [row["g_loss"] for row in history], label="generator loss")
    losses.set_ylabel("loss")
    losses.legend()
    losses.set_title(title)
    probabilities.plot(steps, [row["d_real"] for row in history], label="D(x)")
    probabilities.plot(steps, [row["d_fake"] for row in history], label="D(G(z))")
    probabilities.set_ylim(0, 1)
    probabilities.set_xlabel("step")
    probabilities.set_ylabel("mean probability")
    probabilities.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def save_progress_gif(grids: list[Path], path: Path, max_frames: int = 100, frame_ms: int = 200) -> None:
    """The sample grids as an animation (evenly thinned to max_frames, the last one always kept)."""
    if not grids:
        return
    from PIL import Image

    if len(grids) > max_frames:
        picks = np.linspace(0, len(grids) - 1, max_frames).round().astype(int)
        grids = [grids[i] for i in sorted(set(picks))]
    frames = [Image.open(p).convert("P") for p in grids]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
