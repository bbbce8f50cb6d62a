"""The run directory: everything a run writes, and reads back to resume, sample, evaluate or compare.

    config.json            every setting, versions, device, data source, parameter counts
    history.csv            one row per logged step (HISTORY_COLUMNS)
    samples/step_XXXXXX.png  grids of a fixed noise batch, from the inference sampler
    loss.png, progress.gif figures rebuilt from history.csv and the grids
    events/                TensorBoard event files
    checkpoints/           tf.compat.v1.train.Saver checkpoints (the last few)

Files are replaced atomically (write to a temporary file, then rename), so a crash leaves either the
old file or the new one, never half of one.
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
from typing import Any

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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure remove it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
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

    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint that reads whole; None when there is none at all.

        A damaged newest one (truncated data, a lost .index) is skipped with one line on stderr naming it
        and why; when checkpoints exist but none reads, RunDirError names them (the CLI exits 2).
        """
        skipped = []
        for prefix in self.checkpoint_prefixes():
            problem = checkpoint_problem(prefix)
            if problem is None:
                if skipped:
                    print(
                        f"warning: skipped {'; '.join(skipped)}; using {Path(prefix).name}", file=sys.stderr
                    )
                return prefix
            skipped.append(f"damaged checkpoint {Path(prefix).name} ({problem})")
        if skipped:
            raise RunDirError(f"no checkpoint in {self.checkpoints} restores: {'; '.join(skipped)}")
        return None

    def remove_temporary_files(self) -> None:
        """What an interrupted write leaves (TensorFlow's *.tempstate* files and *_temp folders, our own
        atomic_path temporaries): after a failed write they are garbage, and may be large."""
        for path in list(self.path.rglob("*")):
            name = path.name
            in_checkpoints = path.parent == self.checkpoints
            if ".tempstate" in name or (in_checkpoints and (name.endswith("_temp") or name.endswith(".tmp"))):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

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

    def best_record(self) -> dict[str, Any] | None:
        """{"step", "fid", ...} of the kept best checkpoint (checkpoints/best/best.json), or None."""
        for folder in (self.best, self.checkpoints / "best.old"):  # best.old: a swap a kill interrupted
            try:
                record = json.loads((folder / "best.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and {"step", "fid"} <= set(record):
                return {**record, "checkpoint": str(folder / f"model.ckpt-{int(record['step'])}")}
        return None

    def keep_best(self, save: Callable[[str], None], record: Mapping[str, Any]) -> None:
        """Replace checkpoints/best/ with a new checkpoint, atomically: `save(prefix)` writes it into a
        fresh folder together with best.json, and only then do the folders swap (a kill at any moment
        leaves the old best or the new one whole; best_record reads a best.old left by a kill)."""
        fresh = Path(tempfile.mkdtemp(prefix="best.", suffix=".tmp", dir=self.checkpoints))
        try:
            save(str(fresh / f"model.ckpt-{int(record['step'])}"))
            (fresh / "best.json").write_text(json.dumps(dict(record), indent=2) + "\n")
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

    def resolve_checkpoint(self, which: str | int | None) -> str:
        """`latest` (or None), `best`, or a step number -> that checkpoint's prefix (RunDirError naming
        what exists when there is no such checkpoint)."""
        text = "latest" if which is None else str(which).strip().lower()
        if text == "latest":
            latest = self.latest_checkpoint()
            if not latest:
                raise RunDirError(
                    f"{self.path} has no checkpoint to evaluate, sample or export (train it first)"
                )
            return latest
        best = self.best_record()
        if text == "best":
            if best is None:
                raise RunDirError(
                    f"{self.path} has no best checkpoint: it is kept while training tracks quality "
                    "(--eval-every N); use --checkpoint latest or a step"
                )
            return best["checkpoint"]
        if not text.isdigit():
            raise RunDirError(f"--checkpoint must be best, latest or a step number, got {which!r}")
        steps = self.checkpoint_steps()
        if int(text) in steps:
            return str(self.checkpoints / f"model.ckpt-{int(text)}")
        if best is not None and int(text) == int(best["step"]):
            return best["checkpoint"]
        kept = ", ".join(str(s) for s in sorted(set(steps) | ({int(best["step"])} if best else set())))
        raise RunDirError(f"{self.path} has no checkpoint of step {text}; kept steps: {kept or 'none'}")

    # history.csv ------------------------------------------------------------------------------------
    def _history_text(self) -> str:
        """history.csv up to its last complete line: a kill in the middle of an append leaves a torn last
        line without its newline, which is not a row."""
        if not self.history.exists():
            return ""
        text = self.history.read_text()
        return text if text.endswith("\n") else text[: text.rfind("\n") + 1]

    def read_history(self) -> list[dict[str, float]]:
        rows = csv.DictReader(io.StringIO(self._history_text(), newline=""))
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in rows]

    def history_columns(self) -> list[str]:
        return next(csv.reader(io.StringIO(self._history_text(), newline="")), [])

    def resume_history(self, last_step: int, columns: list[str]) -> tuple[list[str], list[dict[str, float]]]:
        """Prepare history.csv for a run going on from `last_step`: drop the rows logged after it (they
        came after the checkpoint), and widen the header with any of `columns` it lacks (a resumed run
        that gains columns, e.g. --eval-every). Returns the header and the rows kept."""
        header = self.history_columns()
        if not header:  # no file, or a kill before its header was complete
            return list(columns), []
        header += [c for c in columns if c not in header]
        rows = [
            row
            for row in csv.DictReader(io.StringIO(self._history_text(), newline=""))
            if int(float(row["step"])) <= last_step
        ]
        with atomic_path(self.history) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        return header, [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in rows]

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
