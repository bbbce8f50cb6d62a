"""The training loop: build the graph once, finalize it, then one `sess.run` per step in a Session.

Everything a step depends on (weights, Adam slots, moving statistics, the step counter from which the
batch order, the noise and the dropout masks are derived) is in the checkpoint, so `--resume` continues
exactly where the last checkpoint left off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.architecture import ArchSpec
from common.command import Terminated, sigterm_as_interrupt
from common.config import Config
from common.flops import forward_flops_per_image, parameter_counts, train_step_flops_per_image
from common.machine import cpu_count, cpu_model
from common.rundir import (
    HISTORY_COLUMNS,
    DiskFullError,
    HistoryWriter,
    RunDir,
    RunDirError,
    grid_image,
    is_disk_full,
    save_grid,
    save_loss_plot,
    save_progress_gif,
)
from common.sampling import Generator, generator_variables
from common.speed import SpeedSettings, resolve_precision
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
    resumed run only replaces it with a better one.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.best = run.best_record()

    def offer(self, sess: v1.Session, gan: GANGraph, step: int, fid: float) -> bool:
        """Save the session's state as the best checkpoint if `fid` beats the kept one."""
        if self.best is not None and not fid < self.best["fid"]:
            return False
        self.run.keep_best(lambda prefix: gan.best_saver.save(sess, prefix), {"step": step, "fid": fid})
        self.best = self.run.best_record()
        return True


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


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """TensorFlow's op determinism on (or off) for a block, restored afterwards.

    On the CPU some multi-threaded kernels sum in an order that depends on thread timing, so without it
    two identical runs drift apart in the last bits after a few dozen steps (seen here under load).
    """
    from tensorflow.python.framework import config as tf_config  # the public API can only enable it

    before = tf_config.is_op_determinism_enabled()
    if enabled:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
    try:
        yield
    finally:
        if before:
            tf_config.enable_op_determinism()
        else:
            tf_config.disable_op_determinism()


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
        "data": {"source": data.source, "images": len(data.images), "class_names": list(data.class_names)},
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


def with_op_determinism(function: Callable[..., TrainResult]) -> Callable[..., TrainResult]:
    """Run `function(spec, config, ...)` with the op determinism `config.deterministic` asks for."""

    @functools.wraps(function)
    def wrapper(spec: ArchSpec, config: Config, *args: Any, **kwargs: Any) -> TrainResult:
        with op_determinism(config.deterministic):
            return function(spec, config, *args, **kwargs)

    return wrapper


@with_op_determinism
def train(
    spec: ArchSpec,
    config: Config,
    data: ImageSet,
    run: RunDir,
    resume: bool = False,
    hooks: tuple[StepHook, ...] = (),
    progress: bool = True,
) -> TrainResult:
    """Train `spec` on `data` into `run`, from scratch or from its latest checkpoint.

    Nothing in `run` is written until the checkpoint is restored. A new run that fails before its first
    checkpoint removes what it wrote (so the same command starts it again); a full disk raises
    DiskFullError after removing the half-written files; SIGTERM saves a checkpoint like Ctrl-C.
    """
    config = with_precision(config)  # before anything is written: a bad --precision leaves no trace
    n_images = len(data.images)
    settings = SpeedSettings.default_settings(config.precision)
    graph, gan = build_training_graph(spec, config, n_images, settings.layer_impl)
    record = run_record(spec, config, data, graph, settings)
    for hook in hooks:  # what a hook measured once, e.g. the evaluator's noise ceiling
        record.update(getattr(hook, "record", {}))
    # The newest checkpoint that reads whole (a damaged newest one is skipped, saying so).
    checkpoint = run.latest_checkpoint() if resume else None
    created_folder = not run.path.exists()
    try:
        with sigterm_as_interrupt():
            return _train_session(
                spec, config, data, run, resume, hooks, progress, graph, gan, record, checkpoint, settings
            )
    except _Failure as failure:
        writing, saved_step, err = failure.writing, failure.saved_step, failure.error
        if not resume and saved_step is None and not isinstance(err, KeyboardInterrupt):
            # A new run that never reached a checkpoint: take back what it wrote, and only that (the
            # folder held no run files when it started), so that the same command can start it again.
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


class _Failure(Exception):
    """How _train_session failed: the error, what it was writing, the step and the last checkpoint saved."""

    def __init__(self, error: BaseException, writing: str, step: int, saved_step: int | None) -> None:
        super().__init__(str(error))
        self.error, self.writing, self.step, self.saved_step = error, writing, step, saved_step


def _train_session(
    spec: ArchSpec,
    config: Config,
    data: ImageSet,
    run: RunDir,
    resume: bool,
    hooks: tuple[StepHook, ...],
    progress: bool,
    graph: tf.Graph,
    gan: GANGraph,
    record: dict[str, Any],
    checkpoint: str | None,
    settings: SpeedSettings,
) -> TrainResult:
    """The Session of `train`: restore, then write the run's files and step; a failure comes out as
    _Failure, with what was being written when it happened."""
    n_images = len(data.images)
    steps = record["total_steps"]
    steps_per_epoch = record["steps_per_epoch"]
    title = f"{spec.name} on {config.dataset}"
    started = time.perf_counter()
    train_seconds = 0.0
    steps_done = 0
    writing, saved_step, step = "config.json", None, 0
    bar = log = writer = None
    failing = False
    figures_step = None  # the step loss.png and progress.gif were last drawn at
    with (
        v1.Session(graph=graph, config=session_config(settings)) as sess,
        Generator(spec, config) as generator,
    ):
        try:
            sess.run(gan.init)
            sess.run(gan.inputs.load_dataset, {gan.inputs.dataset_feed: data.images})
            if checkpoint:
                check_checkpoint_fits(checkpoint, graph)
                try:
                    gan.saver.restore(sess, checkpoint)
                except (tf.errors.OpError, ValueError) as err:
                    text = str(getattr(err, "message", err)).strip().splitlines()
                    raise RunDirError(f"cannot restore {checkpoint}: {text[0] if text else err}") from None
            elif resume:
                tqdm.write(
                    f"no checkpoint in {run.checkpoints} yet: starting the run from step 0", file=sys.stderr
                )
            step = int(sess.run(gan.inputs.global_step))
            figures_step = step if checkpoint else None
            # Only now, with the checkpoint restored, is anything in the run directory written.
            if resume:
                record["resumed"] = run.read_config().get("resumed", []) + [checkpoint]
            # config.json first, then the subfolders: a kill -9 between the two leaves a run that --resume
            # takes, never a folder of empty run subfolders without config.json (refused as a damaged run).
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_config(record)
            run.create()
            # Columns a hook adds (a `columns` attribute, e.g. common.evaluate's fid, kid) join the header.
            columns = list(HISTORY_COLUMNS) + [c for hook in hooks for c in getattr(hook, "columns", ())]
            tracked = "fid" in columns
            if tracked:
                columns.append("best_fid")
            keeper = BestKeeper(run)
            noise_fid = next((hook.noise_fid for hook in hooks if hasattr(hook, "noise_fid")), None)
            watch = CollapseWatch(noise_fid)
            writing = "history.csv"
            columns, history = run.resume_history(step, columns)
            seconds_before = history[-1]["seconds"] if history else 0.0
            writing = "events/"
            writer = v1.summary.FileWriter(str(run.events), graph=None if checkpoint else graph)
            writing = "history.csv"
            log = HistoryWriter(run.history, columns)
            samples = StepSamples(sess, graph, generator)
            fixed_noise = sample_noise(config, config.grid_size, config.seed)
            tqdm.write(f"{title}: {n_images} images, {steps} steps on {record['device']}", file=sys.stderr)
            if step == 0:
                writing = "samples/step_000000.png"
                write_samples(samples.at(0), run, writer, fixed_noise, 0)
            bar = tqdm(total=steps, initial=step, unit="step", disable=not progress, dynamic_ncols=True)
            window: list[tuple[float, float, float, float]] = []
            window_seconds = 0.0
            shuffled_epoch = None
            try:
                while step < steps:
                    # each epoch's order, also mid-epoch on resume
                    if step // steps_per_epoch != shuffled_epoch:
                        sess.run(gan.inputs.shuffle)
                        shuffled_epoch = step // steps_per_epoch
                    logging = (step + 1) % config.log_every == 0 or step + 1 == steps
                    fetches = {"step": gan.train.step, "losses": gan.losses}
                    if logging:
                        fetches["summary"] = gan.summaries.scalars
                    tick = time.perf_counter()
                    out = sess.run(fetches)
                    elapsed = time.perf_counter() - tick
                    step += 1
                    steps_done += 1
                    train_seconds += elapsed
                    window_seconds += elapsed
                    losses = tuple(float(v) for v in out["losses"])
                    if not all(math.isfinite(v) for v in losses):
                        last = run.latest_checkpoint() or "none yet"
                        raise NanLossError(
                            f"non-finite loss at step {step} (d_loss={losses[0]}, g_loss={losses[1]}); "
                            f"stopped, the last good checkpoint is intact: {last}"
                        )
                    window.append(losses)
                    bar.update(1)
                    if logging:
                        means = np.mean(window, axis=0)
                        row = {
                            "step": step,
                            "epoch": step / steps_per_epoch,
                            "d_loss": means[0],
                            "g_loss": means[1],
                            "d_real": means[2],
                            "d_fake": means[3],
                            "seconds": seconds_before + time.perf_counter() - started,
                            "images_per_second": len(window) * config.batch_size / window_seconds,
                        }
                        for hook in hooks:
                            row.update(hook(functools.partial(samples.at, step), step))
                        if "fid" in row:
                            writing = "checkpoints/best"
                            if keeper.offer(sess, gan, step, row["fid"]):
                                record["best"] = {k: keeper.best[k] for k in ("step", "fid")}
                                run.write_config(record)
                            row["best_fid"] = keeper.best["fid"]
                            writer.add_summary(scalar_summary("eval/best_fid", keeper.best["fid"]), step)
                        warning = watch.update(row)
                        if warning:
                            tqdm.write(warning, file=sys.stderr)
                        row["collapsed"] = int(watch.active())
                        writer.add_summary(scalar_summary("watch/collapsed", row["collapsed"]), step)
                        writing = "history.csv"
                        log.write(row)
                        writer.add_summary(out["summary"], step)
                        bar.set_postfix(
                            d_loss=f"{means[0]:.3f}",
                            g_loss=f"{means[1]:.3f}",
                            img_s=f"{row['images_per_second']:.0f}",
                        )
                        window, window_seconds = [], 0.0
                    if step % config.sample_every == 0 or step == steps:
                        writing = f"samples/step_{step:06d}.png"
                        write_samples(samples.at(step), run, writer, fixed_noise, step)
                    if step % config.checkpoint_every == 0 or step == steps:
                        writing = f"checkpoint model.ckpt-{step}"
                        gan.saver.save(sess, run.checkpoint_prefix, global_step=step)
                        saved_step = step
                        writing = "loss.png and progress.gif"
                        write_figures(run, title)
                        figures_step = step
            except KeyboardInterrupt as err:
                # Between two sess.run calls the state is consistent: keep it, so --resume goes on from here.
                step = int(sess.run(gan.inputs.global_step))
                writing = f"checkpoint model.ckpt-{step}"
                gan.saver.save(sess, run.checkpoint_prefix, global_step=step)
                saved_step = step
                what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
                tqdm.write(f"{what}: saved a checkpoint at step {step}; --resume continues", file=sys.stderr)
                err.reported = True  # this line is the message: exit_code adds none
                raise
        except BaseException as err:
            failing = True
            raise _Failure(err, writing, step, saved_step) from err
        finally:
            # On a failure these only tidy up: an error here (the same full disk) must not hide the first.
            with contextlib.suppress(Exception) if failing else contextlib.nullcontext():
                if bar is not None:
                    bar.close()
                if log is not None:
                    log.close()
                if writer is not None:
                    writer.close()
            if failing and log is not None and figures_step != step:
                # A crash or Ctrl-C between checkpoints: draw what was logged (derived files, best effort).
                with contextlib.suppress(Exception):
                    write_figures(run, title)
    seconds = time.perf_counter() - started
    ips = steps_done * config.batch_size / train_seconds if train_seconds else 0.0
    collapses = tuple(collapse_stretches(run.read_history(), noise_fid))
    if collapses or tracked:  # the summary of how the run went, for readers of config.json
        record["collapses"] = [stretch._asdict() for stretch in collapses]
        run.write_config(record)
    return TrainResult(run.path, step, seconds, ips, keeper.best, collapses)


def scalar_summary(tag: str, value: float) -> v1.Summary:
    """A TensorBoard scalar as a protocol buffer: no op in the finalized graph."""
    return v1.Summary(value=[v1.Summary.Value(tag=tag, simple_value=float(value))])
