"""Generate images from a run directory's latest checkpoint, with the inference sampler alone.

Used by `python -m dcgan_mnist sample` (and the CIFAR module), and by the evaluator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.config import Config
from common.gan import ArchSpec, Sampler, build_sampler, sample_noise
from common.rundir import RunDir, RunDirError, atomic_path, save_grid

v1 = tf.compat.v1


def generate_images(
    sess: v1.Session, sampler: Sampler, noise: np.ndarray, batch_size: int = 500, progress: bool = False
) -> np.ndarray:
    """uint8 images of the inference sampler for `noise`, in batches: the one way every caller samples
    (a live training session's sampler, or a Generator's)."""
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


class Generator:
    """A Session holding only the generator of a trained run, restored from its latest checkpoint."""

    def __init__(self, run: RunDir, spec: ArchSpec, config: Config, checkpoint: str | None = None) -> None:
        checkpoint = checkpoint or run.latest_checkpoint()
        if not checkpoint:
            raise RunDirError(f"{run.path} has no checkpoint to sample from (train it first)")
        self.config = config
        self.spec = spec
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.sampler = build_sampler(spec, config, reuse=False)
            variables = v1.get_collection(v1.GraphKeys.GLOBAL_VARIABLES, scope="generator/")
            saver = v1.train.Saver(var_list=variables)
        self.graph.finalize()
        self.session = v1.Session(graph=self.graph)
        with self.graph.as_default():  # outside its graph, Saver.restore takes the eager path and fails
            saver.restore(self.session, checkpoint)
        self.checkpoint = checkpoint

    def generate(self, n: int, seed: int, batch_size: int = 1000) -> np.ndarray:
        """n uint8 images [n, H, W, C] from the run's noise distribution, seeded."""
        return generate_images(self.session, self.sampler, sample_noise(self.config, n, seed), batch_size)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_images(images: np.ndarray, out: Path) -> None:
    """`.png`: a grid; `.npy`: the uint8 array itself. Written atomically."""
    out = Path(out)
    if out.suffix == ".png":
        save_grid(images, out)
    else:
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, images)
