"""The inference generator in a graph and Session of its own: grids, `sample`, and the evaluator.

The sampler runs batch norm on fixed statistics. Which ones is a run setting, `--sampler-stats`
(config.json; eval.json says which were used):

- "moving": the moving averages that training kept (momentum 0.99). They lag the batch statistics
  for hundreds of steps (0.99^t of the initial value is left after t steps) and trail a generator
  that keeps changing, so early samples show the averages' lag more than the generator's progress.
- "recalibrated" (precise batch norm): before sampling, the generator runs once in training mode,
  without dropout, on RECALIBRATION_SAMPLES noise vectors of its own stream, and each layer's
  statistics are set to the exact mean and variance of that pass. The weights are the same; only the
  statistics the sampler normalizes with change. The checkpoint's moving averages are left as they are.

Training is never touched: the training loop copies the generator's weights into this graph
(`Generator.load`) each time it samples, so the training graph and its checkpoints are the same
whichever statistics the samples use.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.architecture import ArchSpec
from common.command import UsageError
from common.config import SAMPLER_STATS, Config
from common.layers import UPDATE_OPS, Layers, SeedStream
from common.rundir import RunDir, RunDirError, atomic_path, save_grid
from common.step import call_network
from common.streams import RECALIBRATION_STREAM, SAMPLE_STREAM, latent_noise, sample_noise

v1 = tf.compat.v1

# Noise vectors of the recalibration pass: one batch whose statistics are the new ones. 1024 x the
# smallest layer's 4x4 positions is 16k values per channel: the statistics' sampling error is ~1%.
RECALIBRATION_SAMPLES = 1024
# Images per sess.run of `sample` (Generator.generate), and per step of an exported SavedModel's `sample`
# signature (common.export), which runs the same batches so that it gives the same bits.
SAMPLE_BATCH = 1000
# Which weights a run's checkpoint is sampled with: the generator's weight average (--g-ema-decay) or
# the trained weights themselves (both are in every checkpoint of a run that keeps an average).
WEIGHTS = ("average", "live")


class Sampler(NamedTuple):
    noise: tf.Tensor  # placeholder [None, latent_dim]
    seed: tf.Tensor  # placeholder_with_default: the dropout seed, used only in quirks=original
    images: tf.Tensor  # [-1, 1]
    images_uint8: tf.Tensor


def build_sampler(spec: ArchSpec, config: Config, reuse: bool = True) -> Sampler:
    """The inference generator: BN on moving statistics, no dropout; variables shared (reuse=True).

    Built once, before the graph is finalized: the notebook rebuilt it every 101 steps, adding a whole
    generator to the graph each time. reuse=False builds it alone (to sample from a checkpoint).
    """
    with tf.name_scope("sampler"):
        noise = v1.placeholder(tf.float32, [None, config.latent_dim], name="sample_noise")
        seed = v1.placeholder_with_default(
            tf.constant([config.seed, SAMPLE_STREAM], tf.int64), [2], name="seed"
        )
        # quirks=original keeps dropout on at sampling time, so it needs random masks.
        layers = Layers(seeds=SeedStream(seed) if config.original_quirks else None)
        images = call_network(spec.generator, "generator", reuse, noise, False, config, layers)
        return Sampler(noise, seed, images, to_uint8(images))


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """The generator's [-1, 1] images as pixels: (x + 1) * 127.5, rounded, clipped to [0, 255]."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def weights_config(
    config: Config, weights: str | None, sampler_stats: str | None = None
) -> tuple[Config, str]:
    """The config to build a Generator with for `weights` (None: what the run samples from), and the
    weights' name. A UsageError for an average the run never kept, and for the average sampled with
    `sampler_stats` "moving" (None: the run's): no moving average tracked the averaged weights' batch-norm
    statistics, so they are always recalibrated (training refuses that pair too)."""
    weights = weights or ("average" if config.g_ema_decay > 0 else "live")
    if weights not in WEIGHTS:
        raise UsageError(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if weights == "average" and config.g_ema_decay == 0:
        raise UsageError("--weights average: the run kept no weight average (trained without --g-ema-decay)")
    if weights == "average" and (sampler_stats or config.sampler_stats) == "moving":
        raise UsageError(
            "--sampler-stats moving with the run's weight average: no moving average tracked the averaged "
            "weights' batch-norm statistics, so they are recalibrated (leave --sampler-stats out, or sample "
            "the trained weights with --weights live)"
        )
    return (config if weights == "average" else config.replace(g_ema_decay=0.0)), weights


def generate_images(
    sess: v1.Session, sampler: Sampler, noise: np.ndarray, batch_size: int = 500, progress: bool = False
) -> np.ndarray:
    """uint8 images of the inference sampler for `noise`, in batches: the one way every caller samples."""
    chunks = []
    for start in tqdm(
        range(0, len(noise), batch_size),
        desc="generating",
        unit="batch",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ):
        chunks.append(sess.run(sampler.images_uint8, {sampler.noise: noise[start : start + batch_size]}))
    if not chunks:
        return np.zeros((0, *sampler.images_uint8.shape[1:]), np.uint8)
    return np.concatenate(chunks)


class Latent(NamedTuple):
    """`sample`'s noise in the graph (common.streams.latent_noise): n vectors of z from a seed."""

    n: tf.Tensor  # int32 scalar placeholder
    seed: tf.Tensor  # int64 scalar placeholder
    z: tf.Tensor  # float32 [n, latent_dim]


def build_latent(config: Config, stream: int) -> Latent:
    with tf.name_scope("sample_latent"):
        n = v1.placeholder(tf.int32, [], name="n")
        seed = v1.placeholder(tf.int64, [], name="seed")
        return Latent(n, seed, latent_noise(config, n, seed, stream))


class Generator:
    """The generator alone, in its own finalized graph and Session, with its chosen batch-norm statistics.

    Weights come from a checkpoint (`restore`) or from a live training session (`load`); either way the
    statistics are then recalibrated when `sampler_stats` is "recalibrated".
    """

    def __init__(self, spec: ArchSpec, config: Config, sampler_stats: str | None = None) -> None:
        self.sampler_stats = sampler_stats or config.sampler_stats
        if self.sampler_stats not in SAMPLER_STATS:
            raise ValueError(f"unknown sampler_stats {self.sampler_stats!r}")
        self.config, self.spec = config, spec
        self.graph = tf.Graph()
        with self.graph.as_default():
            v1.set_random_seed(config.seed)  # initializers need one under op determinism (never run here)
            self.sampler = build_sampler(spec, config, reuse=False)
            self.variables = {
                v.op.name: v for v in v1.get_collection(v1.GraphKeys.GLOBAL_VARIABLES, scope="generator/")
            }
            # Where each variable's value comes from in a checkpoint or a training graph: the same name,
            # or, with --g-ema, the weights' moving average (generator_ema/...; statistics recalibrated).
            trainable = {v.op.name for v in v1.trainable_variables("generator/")}
            self.sources = {
                name: "generator_ema/" + name[len("generator/") :]
                if config.g_ema_decay > 0 and name in trainable
                else name
                for name in self.variables
            }
            with tf.name_scope("recalibrate"):
                # Momentum 0: one training-mode pass sets each statistic to that pass's own. No dropout
                # (the sampler has none), unless the notebook's quirk keeps it on when sampling.
                recalibration = config.replace(bn_momentum=0.0)
                if not config.original_quirks:
                    recalibration = recalibration.replace(keep_prob=1.0)
                layers = Layers(seeds=SeedStream(self.sampler.seed))
                call_network(
                    spec.generator, "generator", True, self.sampler.noise, True, recalibration, layers
                )
                self.recalibration = tf.group(*v1.get_collection(UPDATE_OPS, scope="recalibrate/"))
            with tf.name_scope("load"):
                self.feeds = {
                    name: v1.placeholder(v.dtype.base_dtype, v.shape, name=name.replace("/", "_"))
                    for name, v in self.variables.items()
                }
                self.load_op = tf.group(*(v1.assign(self.variables[n], ph) for n, ph in self.feeds.items()))
            self.saver = v1.train.Saver(var_list={self.sources[n]: v for n, v in self.variables.items()})
            self.latent_ops = build_latent(config, SAMPLE_STREAM)
        self.graph.finalize()
        self.session = v1.Session(graph=self.graph)
        self.recalibration_noise = sample_noise(
            config, RECALIBRATION_SAMPLES, config.seed, RECALIBRATION_STREAM
        )
        self.checkpoint: str | None = None

    @classmethod
    def from_run(
        cls,
        run: RunDir,
        spec: ArchSpec,
        config: Config,
        checkpoint: str | None = None,
        sampler_stats: str | None = None,
    ) -> Generator:
        """The generator of a run's checkpoint (default: the latest)."""
        checkpoint = checkpoint or run.latest_checkpoint()
        if not checkpoint:
            raise RunDirError(f"{run.path} has no checkpoint to sample from (train it first)")
        generator = cls(spec, config, sampler_stats)
        generator.restore(checkpoint)
        return generator

    def restore(self, checkpoint: str) -> None:
        with self.graph.as_default():  # outside its graph, Saver.restore takes the eager path and fails
            self.saver.restore(self.session, checkpoint)
        self.checkpoint = checkpoint
        self._set_statistics()

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        """Take the generator's variables from another session, keyed by `sources`' names."""
        missing = set(self.sources.values()) - set(weights)
        if missing:
            raise KeyError(f"no values for {sorted(missing)}")
        self.session.run(self.load_op, {ph: weights[self.sources[name]] for name, ph in self.feeds.items()})
        self._set_statistics()

    def _set_statistics(self) -> None:
        if self.sampler_stats == "recalibrated":
            self.session.run(self.recalibration, {self.sampler.noise: self.recalibration_noise})

    def statistics(self) -> dict[str, np.ndarray]:
        """The batch-norm statistics the sampler normalizes with now (by variable name)."""
        return self.session.run({n: v for n, v in self.variables.items() if "/moving_" in n})

    def images(self, noise: np.ndarray, batch_size: int = 500, progress: bool = False) -> np.ndarray:
        return generate_images(self.session, self.sampler, noise, batch_size, progress)

    def latent(self, n: int, seed: int) -> np.ndarray:
        """`sample`'s z: n vectors drawn in the graph from `seed` (common.streams.latent_noise of
        SAMPLE_STREAM; for uniform noise, sample_noise's very numbers)."""
        latent = self.latent_ops
        return self.session.run(latent.z, {latent.n: n, latent.seed: seed})

    def generate(self, n: int, seed: int, batch_size: int = SAMPLE_BATCH) -> np.ndarray:
        """n uint8 images [n, H, W, C] from the run's noise distribution, seeded: `sample`'s images, and an
        exported SavedModel's `sample` signature's."""
        return self.images(self.latent(n, seed), batch_size)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def generator_variables(graph: tf.Graph) -> dict[str, tf.Variable]:
    """A training graph's generator variables by name, its weight average (generator_ema/) included:
    what `Generator.load` takes its values from (fetch them first)."""
    with graph.as_default():
        return {
            v.op.name: v
            for v in v1.global_variables()
            if v.op.name.startswith(("generator/", "generator_ema/"))
        }


def write_images(images: np.ndarray, out: Path, columns: int | None = None) -> None:
    """`.png`: a grid (`columns` wide; None: square); `.npy`: the uint8 array itself. Written atomically."""
    out = Path(out)
    if out.suffix == ".png":
        save_grid(images, out, columns=columns)
    else:
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, images)
