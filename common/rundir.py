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
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

HISTORY_COLUMNS = ("step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "seconds", "images_per_second")


class RunDirError(ValueError):
    """An output directory a run cannot use. The CLI prints it on one line and exits 2."""


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

    # config.json ------------------------------------------------------------------------------------
    def write_config(self, record: Mapping[str, Any]) -> None:
        atomic_write_bytes(self.config, (json.dumps(record, indent=2, default=str) + "\n").encode())

    def read_config(self) -> dict[str, Any]:
        if not self.config.exists():
            raise RunDirError(f"{self.path} is not a run directory (no config.json)")
        try:
            return json.loads(self.config.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunDirError(f"cannot read {self.config}: {err}") from err

    # checkpoints ------------------------------------------------------------------------------------
    def latest_checkpoint(self) -> str | None:
        import tensorflow as tf

        return tf.train.latest_checkpoint(str(self.checkpoints))

    @property
    def checkpoint_prefix(self) -> str:
        return str(self.checkpoints / "model.ckpt")

    # history.csv ------------------------------------------------------------------------------------
    def read_history(self) -> list[dict[str, float]]:
        if not self.history.exists():
            return []
        with self.history.open(newline="") as f:
            return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(f)]

    def history_columns(self) -> list[str]:
        if not self.history.exists():
            return []
        with self.history.open(newline="") as f:
            return next(csv.reader(f), [])

    def resume_history(self, last_step: int, columns: list[str]) -> tuple[list[str], list[dict[str, float]]]:
        """Prepare history.csv for a run going on from `last_step`: drop the rows logged after it (they
        came after the checkpoint), and widen the header with any of `columns` it lacks (a resumed run
        that gains columns, e.g. --eval-every). Returns the header and the rows kept."""
        if not self.history.exists():
            return list(columns), []
        header = self.history_columns()
        header += [c for c in columns if c not in header]
        with self.history.open(newline="") as f:
            rows = [row for row in csv.DictReader(f) if int(float(row["step"])) <= last_step]
        with atomic_path(self.history) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        return header, [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in rows]

    def sample_grids(self) -> list[Path]:
        return sorted(self.samples.glob("step_*.png"))


class HistoryWriter:
    """Appends rows to history.csv, flushed at once so a crash loses nothing already logged."""

    def __init__(self, path: Path, columns: Iterable[str]) -> None:
        self.columns = list(columns)
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
