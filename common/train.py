"""The training loop: build the graph once, finalize it, then one `sess.run` per step in a Session.

Everything a step depends on (weights, Adam slots, moving statistics, the step counter from which the
batch order, the noise and the dropout masks are derived) is in the checkpoint, so `--resume` continues
exactly where the last checkpoint left off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.architecture import ArchSpec
from common.command import Terminated, sigterm_as_interrupt
from common.config import Config, ConfigError
from common.flops import forward_flops_per_image, parameter_counts, train_step_flops_per_image
from common.machine import cpu_count, cpu_model
from common.modules import run_settings as read_run_config
from common.rundir import (
    HISTORY_COLUMNS,
    DiskFullError,
    HistoryWriter,
    RunDir,
    RunDirError,
    atomic_write_bytes,
    checkpoint_problem,
    grid_image,
    is_disk_full,
    save_grid,
    save_loss_plot,
    save_progress_gif,
)
from common.sampling import Generator, generator_variables
from common.speed import SpeedSettings, op_determinism, resolve_precision
from common.step import GANGraph, build_training_graph, gpu_visible, total_steps
from common.streams import sample_noise
from common.watch import CollapseWatch, Stretch, collapse_stretches

if TYPE_CHECKING:
    from common.data import ImageSet

v1 = tf.compat.v1


class NanLossError(RuntimeError):
    """The losses stopped being finite. The CLI prints it on one line and exits 2."""


class TrainResult(NamedTuple):
    run_dir: Path
    steps: int
    seconds: float  # wall time of this invocation
    images_per_second: float  # training throughput of this invocation (steps only, not sampling)
    best: dict[str, Any] | None = None  # the kept best checkpoint: step, fid (with --eval-every)
    collapses: tuple[Stretch, ...] = ()  # the run's collapse stretches (common.watch), over its history


class BestKeeper:
    """Keeps checkpoints/best/ at the lowest FID the run has tracked, apart from the rotating ones.

    Resumed, it starts from the kept best (checkpoints/best/best.json), so a kill never loses it and a
    resumed run only replaces it with a better one. A damaged best is said on one line and never replaced
    by a worse one: a damaged best.json beside a checkpoint that reads whole is rebuilt from the FID
    history.csv tracked at its step; a best it cannot vouch for is left as it is, and only a FID below the
    lowest history.csv tracked (or best.json's, when that reads) replaces it.
    """

    def __init__(self, run: RunDir, history: Sequence[Mapping[str, float]] = ()) -> None:
        self.run = run
        self.best: dict[str, Any] | None = None  # step, fid, checkpoint of the kept best
        self.bar: float | None = None  # the FID a new best must beat
        tracked = {int(row["step"]): row["fid"] for row in history if "fid" in row}
        folders, notes = run.best_folders(), []
        for found in folders:  # best/, then a best.old a kill left
            checkpoint = found.checkpoint
            problem = checkpoint_problem(checkpoint) if checkpoint else "no checkpoint in its folder"
            record = found.record
            if problem is None and record is None and found.step in tracked:
                record = {"step": found.step, "fid": tracked[found.step]}
                atomic_write_bytes(found.json, (json.dumps(record, indent=2) + "\n").encode())
                notes.append(
                    f"{found.json} was damaged ({found.problem}): rebuilt it from history.csv (step "
                    f"{found.step}, FID {record['fid']:.6g})"
                )
            elif problem is None and record is None:
                notes.append(
                    f"{found.json} is damaged ({found.problem}) and history.csv has no FID of its step"
                )
                continue
            elif problem is not None:
                damage = f"{found.json} is damaged ({found.problem}), and " if record is None else ""
                notes.append(
                    f"{damage}the best checkpoint {checkpoint or found.folder} is damaged ({problem})"
                )
                continue
            self.best, self.bar = {**record, "checkpoint": checkpoint}, record["fid"]
            if notes:
                _warn("; ".join(notes))
            return
        if notes:  # a best that nothing vouches for: left as it is, never replaced by a worse one
            known = [found for found in folders if found.record is not None]
            self.bar = min([*tracked.values(), *(found.record["fid"] for found in known)], default=None)
            if known:  # what it was, as config.json keeps saying
                self.best = {**known[0].record, "checkpoint": known[0].checkpoint}
            bar = f"a tracked FID below {self.bar:.6g}" if self.bar is not None else "the next tracked FID"
            _warn(f"{'; '.join(notes)}: left as it is until {bar} replaces it")

    def offer(self, sess: v1.Session, gan: GANGraph, step: int, fid: float) -> bool:
        """Save the session's state as the best checkpoint if `fid` beats the kept one."""
        if self.bar is not None and not fid < self.bar:
            return False
        self.run.keep_best(lambda prefix: gan.best_saver.save(sess, prefix), {"step": step, "fid": fid})
        self.best = {"step": step, "fid": float(fid), "checkpoint": str(self.run.best / f"model.ckpt-{step}")}
        self.bar = float(fid)
        return True


def _warn(text: str) -> None:
    tqdm.write(f"warning: {text}", file=sys.stderr)


# A hook called after a logged step with (the generator at this step, the step); returns extra columns
# for history.csv. `samples()` loads the step's weights into the sampler-only Generator on first use.
# A hook with a `columns` attribute gets those columns in the CSV header (empty where it returns none).
StepHook = Callable[[Callable[[], Generator], int], dict[str, float]]


class StepSamples:
    """The training session's current generator, copied into a sampler-only Generator when asked for.

    The copy (weights and moving statistics; then recalibration if the run's sampler uses it) is made
    at most once per step, however many grids and evaluations ask; the training graph gains no op.
    """

    def __init__(self, sess: v1.Session, graph: tf.Graph, generator: Generator) -> None:
        self.sess, self.generator = sess, generator
        self.variables = generator_variables(graph)
        self.step: int | None = None

    def at(self, step: int) -> Generator:
        if self.step != step:
            self.generator.load(self.sess.run(self.variables))
            self.step = step
        return self.generator


def device_description() -> str:
    if gpu_visible():
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return f"GPU ({details.get('device_name', 'unknown')})"
    return f"CPU ({cpu_model()}, {cpu_count()} cores)"


def session_config(settings: SpeedSettings | None = None) -> v1.ConfigProto:
    """The training Session's config: precision, threads, XLA (common.speed; defaults: float32, DCGAN_*)."""
    settings = SpeedSettings.default_settings() if settings is None else settings
    # Soft placement lets the few ops without a GPU kernel fall back to the CPU.
    return settings.apply(v1.ConfigProto(allow_soft_placement=True))


def with_precision(config: Config) -> Config:
    """The config with its precision made concrete for this machine (`auto` -> float32 or bfloat16)."""
    return config.replace(precision=resolve_precision(config.precision, gpu_visible()))


def run_record(
    spec: ArchSpec, config: Config, data: ImageSet, graph: tf.Graph, settings: SpeedSettings
) -> dict[str, Any]:
    """What config.json holds besides the settings: enough to read, compare and reproduce a run."""
    import numpy

    with graph.as_default():
        parameters = parameter_counts()
    steps_per_epoch = len(data.images) // config.batch_size
    return {
        "config": config.to_dict(),
        "architecture": {
            "name": spec.name,
            "description": spec.description,
            "image_shape": list(spec.image_shape),
            "schedule": spec.schedule,
            "d_batches": spec.d_batches,
            "g_noise_batches": spec.g_noise_batches,
            "smooth_g_target": spec.smooth_g_target,
            "parameters": parameters,
            "forward_flops_per_image": forward_flops_per_image(spec, config),
            "train_step_flops_per_image": train_step_flops_per_image(spec, config),
        },
        "data": {
            "source": data.source,
            "images": len(data.images),
            "class_names": list(data.class_names),
            **({"folder": data.record} if data.record else {}),
        },
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps(config, len(data.images)),
        "device": device_description(),
        "session": settings.describe(),  # precision, threads, XLA
        "layer_impl": dataclasses.asdict(settings.layer_impl),
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "numpy": numpy.__version__,
        },
        "command": " ".join(sys.argv),
    }


def write_samples(generator: Generator, run: RunDir, writer: Any, noise: np.ndarray, step: int) -> None:
    """The fixed noise batch through the sampler: samples/step_XXXXXX.png, and that grid in TensorBoard."""
    images = generator.images(noise)
    path = run.samples / f"step_{step:06d}.png"
    save_grid(images, path)
    height, width, channels = grid_image(images).shape
    picture = v1.Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=path.read_bytes()
    )
    writer.add_summary(v1.Summary(value=[v1.Summary.Value(tag="sample_grid", image=picture)]), step)


def write_figures(run: RunDir, title: str) -> None:
    save_loss_plot(run.read_history(), run.loss_plot, title)
    save_progress_gif(run.sample_grids(), run.progress_gif)


def run_settings(config: Config) -> tuple[Config, SpeedSettings]:
    """The config with its precision made concrete for this machine, and the session settings for it
    (threads, XLA, the layers' implementation: `settings.layer_impl`). Call it before anything is
    written: a bad --precision leaves no trace."""
    config = with_precision(config)
    return config, SpeedSettings.default_settings(config.precision)


def train(
    spec: ArchSpec,
    config: Config,
    data: ImageSet,
    run: RunDir,
    resume: bool = False,
    hooks: tuple[StepHook, ...] = (),
    progress: bool = True,
) -> TrainResult:
    """Train the architecture `spec` on `data` into `run`: its module's graph (model_inputs, model_opt)
    built by build_training_graph, then run_session. The write-ups' `train` and the tests use it; the
    notebooks' model files compose their graph themselves (dcgan_mnist/model.py: train)."""
    config, settings = run_settings(config)
    graph, gan = build_training_graph(spec, config, len(data.images), settings.layer_impl)
    return run_session(graph, gan, config, data, run, settings, resume, hooks, progress)


def run_session(
    graph: tf.Graph,
    gan: GANGraph,
    config: Config,
    data: ImageSet,
    run: RunDir,
    settings: SpeedSettings,
    resume: bool = False,
    hooks: tuple[StepHook, ...] = (),
    progress: bool = True,
) -> TrainResult:
    """Run the finalized training graph `gan` on `data` into `run`, from scratch or from its latest
    checkpoint: one `sess.run` per step, with grids, history, checkpoints and the best checkpoint.

    Nothing in `run` is written until the checkpoint is restored. A new run that fails before its first
    checkpoint removes what it wrote (so the same command starts it again); a full disk raises
    DiskFullError after removing the half-written files; SIGTERM saves a checkpoint like Ctrl-C.
    """
    record = run_record(gan.spec, config, data, graph, settings)
    for hook in hooks:  # what a hook measured once, e.g. the evaluator's noise ceiling
        record.update(getattr(hook, "record", {}))
    # The newest checkpoint that reads whole (a damaged newest one is skipped, saying so).
    checkpoint = run.latest_checkpoint() if resume else None
    created_folder = not run.path.exists()
    try:
        with (
            op_determinism(config.deterministic),
            sigterm_as_interrupt(),
            v1.Session(graph=graph, config=session_config(settings)) as sess,
            Generator(gan.spec, config) as generator,
        ):
            session = _TrainingSession(sess, gan, generator, config, data, run, record, hooks, progress)
            return session.run(checkpoint, resume)
    except _Failure as failure:
        _raise_failure(failure, run, resume, created_folder)


def carry_forward(record: dict[str, Any], saved: dict[str, Any], checkpoint: str | None) -> None:
    """A resumed run's config.json: this invocation's `record`, with what the run learned before (its
    config.json, `saved`): the command that started it and every later one, the checkpoints it resumed
    from, and how quality was tracked and collapses found (until this invocation says anew). So it reads
    as the record of the run that never stopped, but for the list of commands."""
    command = record["command"]
    record["command"] = saved.get("command", command)  # the command that started the run
    record["commands"] = [*(saved.get("commands") or [record["command"]]), command]
    record["resumed"] = [*saved.get("resumed", []), checkpoint]
    for key in ("tracking", "collapses"):
        if key not in record and key in saved:
            record[key] = saved[key]


def check_checkpoint_fits(checkpoint: str, graph: tf.Graph) -> None:
    """RunDirError unless every variable of `graph` has its shape in `checkpoint`: a restore does not
    check shapes (it assigns whatever it reads), so a config.json edited by hand would otherwise only
    fail at the first step, after the run's files were rewritten."""
    saved = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    for variable in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
        name, shape = variable.op.name, variable.shape.as_list()
        if name in saved and list(saved[name]) != shape:
            raise RunDirError(
                f"cannot restore {checkpoint}: {name} has shape {list(saved[name])} there but {shape} in "
                "this run's graph (config.json does not match the checkpoints)"
            )


# ---------------------------------------------------------------------------------- the session
class _Failure(Exception):
    """How a training session failed: the error, what it was writing, the step and the last checkpoint."""

    def __init__(self, error: BaseException, writing: str, step: int, saved_step: int | None) -> None:
        super().__init__(str(error))
        self.error, self.writing, self.step, self.saved_step = error, writing, step, saved_step


class _TrainingSession:
    """One invocation of training in an open Session: `run` restores, writes the run's files and steps.

    The state a failure report needs (what was being written, the step, the last checkpoint saved) is
    kept on the object, so that any failure comes out of `run` as a _Failure saying so.
    """

    def __init__(
        self,
        sess: v1.Session,
        gan: GANGraph,
        generator: Generator,
        config: Config,
        data: ImageSet,
        run: RunDir,
        record: dict[str, Any],
        hooks: tuple[StepHook, ...],
        progress: bool,
    ) -> None:
        self.sess, self.gan, self.config, self.data, self.run_dir = sess, gan, config, data, run
        self.record, self.hooks, self.progress = record, hooks, progress
        self.samples = StepSamples(sess, sess.graph, generator)
        self.title = f"{gan.spec.name} on {config.dataset}"
        self.steps, self.steps_per_epoch = record["total_steps"], record["steps_per_epoch"]
        self.started = time.perf_counter()
        self.train_seconds, self.steps_done = 0.0, 0
        self.writing, self.step, self.saved_step = "config.json", 0, None
        self.figures_step: int | None = None  # the step loss.png and progress.gif were last drawn at
        self.bar = self.log = self.writer = None
        # the losses of the steps run since the last history row, and their seconds
        self.window: list[tuple[float, float, float, float]] = []
        self.window_seconds = 0.0
        self.pending: dict[str, float] | None = None  # the row being made (log_row), until it is written

    def run(self, checkpoint: str | None, resume: bool) -> TrainResult:
        failing = False
        try:
            self.restore(checkpoint, resume)
            self.open_run_files(checkpoint, resume)
            try:
                self.loop()
            except KeyboardInterrupt as err:
                self.save_interrupted(err)
                raise
        except BaseException as err:
            failing = True
            raise _Failure(err, self.writing, self.step, self.saved_step) from err
        finally:
            self.close(failing)
        return self.result()

    def restore(self, checkpoint: str | None, resume: bool) -> None:
        """The graph's initial state, the data set on the device, then the checkpoint's state if any."""
        sess, gan = self.sess, self.gan
        sess.run(gan.init)
        sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: self.data.images})
        if checkpoint:
            check_checkpoint_fits(checkpoint, sess.graph)
            try:
                gan.saver.restore(sess, checkpoint)
            except (tf.errors.OpError, ValueError) as err:
                text = str(getattr(err, "message", err)).strip().splitlines()
                raise RunDirError(f"cannot restore {checkpoint}: {text[0] if text else err}") from None
        elif resume:
            tqdm.write(
                f"no checkpoint in {self.run_dir.checkpoints} yet: starting the run from step 0",
                file=sys.stderr,
            )
        self.step = int(sess.run(gan.inputs.global_step))
        self.figures_step = self.step if checkpoint else None
        if resume and self.step >= self.steps:
            config = self.config
            ends = f"--max-steps {config.max_steps}" if config.max_steps else f"--epochs {config.epochs}"
            raise ConfigError(
                f"--resume: {self.run_dir.path} is at step {self.step} already, and {ends} ends it at step "
                f"{self.steps}; give a --max-steps above {self.step} to train on"
            )

    def open_run_files(self, checkpoint: str | None, resume: bool) -> None:
        """Only now, with the checkpoint restored, is anything in the run directory written."""
        run, record = self.run_dir, self.record
        history: list[dict[str, float]] = []
        if resume:  # the run's files checked before anything is written
            carry_forward(record, read_run_config(run)[0], checkpoint)
            history = run.read_history()
            run.remove_temporary_files()  # what a kill -9 left: a half-written best/, a .tempstate file
            if checkpoint:
                self.rotate_checkpoints(checkpoint)
        else:
            record["commands"] = [record["command"]]
        self.keeper = BestKeeper(run, history)  # a damaged best.json it rebuilds from history.csv
        if self.keeper.best is not None:
            record["best"] = {k: self.keeper.best[k] for k in ("step", "fid")}
        else:
            record.pop("best", None)
        # config.json first, then the subfolders: a kill -9 between the two leaves a run that --resume
        # takes, never a folder of empty run subfolders without config.json (refused as a damaged run).
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(record)
        run.create()
        # Columns a hook adds (a `columns` attribute, e.g. the evaluator's fid, kid) join the header.
        columns = list(HISTORY_COLUMNS) + [c for hook in self.hooks for c in getattr(hook, "columns", ())]
        self.tracked = "fid" in columns
        if self.tracked:
            columns.append("best_fid")
        tracking = record.get("tracking") or {}
        self.noise_fid = next(
            (hook.noise_fid for hook in self.hooks if hasattr(hook, "noise_fid")), tracking.get("noise_fid")
        )
        self.watch = CollapseWatch(self.noise_fid)
        self.writing = "history.csv"
        columns, history = run.resume_history(self.step, columns)
        self.seconds_before = history[-1]["seconds"] if history else 0.0
        self.writing = "events/"
        self.writer = v1.summary.FileWriter(str(run.events), graph=None if checkpoint else self.sess.graph)
        self.writing = "history.csv"
        self.log = HistoryWriter(run.history, columns)
        self.fixed_noise = sample_noise(self.config, self.config.grid_size, self.config.seed)
        tqdm.write(
            f"{self.title}: {len(self.data.images)} images, {self.steps} steps on {record['device']}",
            file=sys.stderr,
        )
        if self.step == 0:
            self.writing = "samples/step_000000.png"
            write_samples(self.samples.at(0), run, self.writer, self.fixed_noise, 0)

    def rotate_checkpoints(self, restored: str) -> None:
        """--keep-checkpoints over all of the run's checkpoints, those of earlier invocations too (the
        Saver rotates only those it knows of): the oldest beyond the number kept go now, never the one
        restored, and the Saver takes the others over, oldest first."""
        kept = list(reversed(self.run_dir.checkpoint_prefixes()))
        for prefix in kept[: max(len(kept) - self.config.keep_checkpoints, 0)]:
            if prefix != restored:
                self.run_dir.remove_checkpoint(int(prefix.rsplit("-", 1)[1]))
                kept.remove(prefix)
        self.gan.saver.recover_last_checkpoints(kept)

    def loop(self) -> None:
        """One `sess.run` per step: the G update, the D update and global_step += 1, in the graph."""
        gan, config = self.gan, self.config
        self.bar = tqdm(
            total=self.steps, initial=self.step, unit="step", disable=not self.progress, dynamic_ncols=True
        )
        shuffled_epoch = None
        while self.step < self.steps:
            if self.step // self.steps_per_epoch != shuffled_epoch:  # each epoch's order, also on resume
                self.sess.run(gan.inputs.shuffle)
                shuffled_epoch = self.step // self.steps_per_epoch
            logging = (self.step + 1) % config.log_every == 0 or self.step + 1 == self.steps
            fetches = {"step": gan.train.step, "losses": gan.losses}
            if logging:
                fetches["summary"] = gan.summaries.scalars
            tick = time.perf_counter()
            out = self.sess.run(fetches)
            elapsed = time.perf_counter() - tick
            self.step += 1
            self.steps_done += 1
            self.train_seconds += elapsed
            self.window_seconds += elapsed
            losses = tuple(float(v) for v in out["losses"])
            if not all(math.isfinite(v) for v in losses):
                last = self.run_dir.latest_checkpoint() or "none yet"
                raise NanLossError(
                    f"non-finite loss at step {self.step} (d_loss={losses[0]}, g_loss={losses[1]}); "
                    f"stopped, the last good checkpoint is intact: {last}"
                )
            self.window.append(losses)
            self.bar.update(1)
            if logging:
                self.log_row(out["summary"])
            if self.step % config.sample_every == 0 or self.step == self.steps:
                self.writing = f"samples/step_{self.step:06d}.png"
                write_samples(
                    self.samples.at(self.step), self.run_dir, self.writer, self.fixed_noise, self.step
                )
            if self.step % config.checkpoint_every == 0 or self.step == self.steps:
                self.save_checkpoint()
                self.writing = "loss.png and progress.gif"
                write_figures(self.run_dir, self.title)
                self.figures_step = self.step

    def log_row(self, summary: bytes) -> None:
        """history.csv's row of the logged steps since the last row (the hooks' columns, e.g. FID, and
        the best checkpoint and the collapse watch with them), and the step's TensorBoard scalars."""
        step = self.step
        row = self.pending = self.window_row()  # what an interruption of the hooks still writes
        for hook in self.hooks:
            row.update(hook(functools.partial(self.samples.at, step), step))
        self.write_row(row)
        self.writer.add_summary(summary, step)
        self.bar.set_postfix(
            d_loss=f"{row['d_loss']:.3f}",
            g_loss=f"{row['g_loss']:.3f}",
            img_s=f"{row['images_per_second']:.0f}",
        )

    def window_row(self) -> dict[str, float]:
        """The training columns of the steps run since the last row (their means), at this step."""
        means = np.mean(self.window, axis=0)
        row = {
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "d_loss": means[0],
            "g_loss": means[1],
            "d_real": means[2],
            "d_fake": means[3],
            "seconds": self.seconds_before + time.perf_counter() - self.started,
            "images_per_second": len(self.window) * self.config.batch_size / self.window_seconds,
        }
        self.window, self.window_seconds = [], 0.0
        return row

    def write_row(self, row: dict[str, float]) -> None:
        """The best checkpoint (a row with a FID), the collapse watch, and the row into history.csv."""
        step, writer = int(row["step"]), self.writer
        if "fid" in row:
            self.writing = "checkpoints/best"
            if self.keeper.offer(self.sess, self.gan, step, row["fid"]):
                self.record["best"] = {k: self.keeper.best[k] for k in ("step", "fid")}
                self.run_dir.write_config(self.record)
            if self.keeper.bar is not None:
                row["best_fid"] = self.keeper.bar
                writer.add_summary(scalar_summary("eval/best_fid", self.keeper.bar), step)
        warning = self.watch.update(row)
        if warning:
            tqdm.write(warning, file=sys.stderr)
        row["collapsed"] = int(self.watch.active())
        writer.add_summary(scalar_summary("watch/collapsed", row["collapsed"]), step)
        self.writing = "history.csv"
        self.log.write(row)
        self.pending = None

    def save_checkpoint(self) -> None:
        self.writing = f"checkpoint model.ckpt-{self.step}"
        self.gan.saver.save(self.sess, self.run_dir.checkpoint_prefix, global_step=self.step)
        self.saved_step = self.step

    def save_interrupted(self, err: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM between two sess.run calls, where the state is consistent: keep it, so
        --resume goes on from here, with the history row of the steps since the last one (an evaluation
        the interruption cut short is left out of it; one it finished is kept, with the best checkpoint)."""
        self.step = int(self.sess.run(self.gan.inputs.global_step))
        self.save_checkpoint()
        row = self.pending
        if row is None and self.window and self.log is not None:
            row = self.window_row()
        if row is not None and self.log is not None and self.log.last_step != row["step"]:
            row["step"] = self.step  # the checkpoint's: the row is kept on resume
            self.write_row(row)
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        tqdm.write(f"{what}: saved a checkpoint at step {self.step}; --resume continues", file=sys.stderr)
        err.reported = True  # this line is the message: exit_code adds none

    def close(self, failing: bool) -> None:
        # On a failure these only tidy up: an error here (the same full disk) must not hide the first.
        with contextlib.suppress(Exception) if failing else contextlib.nullcontext():
            for opened in (self.bar, self.log, self.writer):
                if opened is not None:
                    opened.close()
        if failing and self.log is not None and self.figures_step != self.step:
            # A crash or Ctrl-C between checkpoints: draw what was logged (derived files, best effort).
            with contextlib.suppress(Exception):
                write_figures(self.run_dir, self.title)

    def result(self) -> TrainResult:
        """The run's summary, also written to config.json for its readers."""
        seconds = time.perf_counter() - self.started
        ips = self.steps_done * self.config.batch_size / self.train_seconds if self.train_seconds else 0.0
        collapses = tuple(collapse_stretches(self.run_dir.read_history(), self.noise_fid))
        if collapses or self.tracked or "collapses" in self.record:  # how the run went, for config.json
            self.record["collapses"] = [stretch._asdict() for stretch in collapses]
            self.run_dir.write_config(self.record)
        return TrainResult(self.run_dir.path, self.step, seconds, ips, self.keeper.best, collapses)


def _raise_failure(failure: _Failure, run: RunDir, resume: bool, created_folder: bool) -> None:
    """Tidy up after a failed session and raise what the user should read."""
    writing, saved_step, err = failure.writing, failure.saved_step, failure.error
    if not resume and saved_step is None and not isinstance(err, KeyboardInterrupt):
        # A new run that never reached a checkpoint: take back what it wrote, and only that (the folder
        # held no run files when it started), so that the same command can start it again.
        if created_folder:
            shutil.rmtree(run.path, ignore_errors=True)
        else:
            run.remove_run_files()
        note = f"; removed the run's files from {run.path}, so the same command starts it again"
    else:
        note = ""
    if is_disk_full(err):
        if run.path.exists():
            run.remove_temporary_files()
            if writing.startswith("checkpoint ") and failure.step != saved_step:
                run.remove_checkpoint(failure.step)  # a half-written one
        last = (run.latest_checkpoint() if run.path.exists() else None) or "none yet"
        raise DiskFullError(
            f"no space left on {run.path} while writing {writing}; the last good checkpoint is intact: "
            f"{last}{note}"
        ) from err
    if isinstance(err, NanLossError) and note:
        raise NanLossError(f"{err}{note}") from None
    raise err from None


def scalar_summary(tag: str, value: float) -> v1.Summary:
    """A TensorBoard scalar as a protocol buffer: no op in the finalized graph."""
    return v1.Summary(value=[v1.Summary.Value(tag=tag, simple_value=float(value))])
