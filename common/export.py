"""`export`: a run's sampler as a TensorFlow SavedModel that serves without this project.

The SavedModel holds the generator exactly as `sample` runs it: the checkpoint's weights (the weight
average where the run keeps one), batch norm on the sampler's statistics (recalibrated where the run
samples recalibrated: that pass's means and variances are the values saved, so nothing is recomputed when
serving), no dropout, and the same pixel conversion. Two serving signatures (tag "serve"):

- `generate`: z, float32 [N, latent length] (the noise, then any one-hot code) -> images, uint8 [N, H, W, C]
- `sample`: n and seed, int32 scalars -> images, uint8 [n, H, W, C]: `sample --n N --seed SEED`'s very
  images. Its noise is drawn in the graph by the ops `sample` draws it with (common.streams.latent_noise:
  numpy's generator in integer ops for uniform noise), and the generator runs on the same batches of
  SAMPLE_BATCH images, in a loop, so that every kernel sees the shapes it sees in `sample`.

Written as a TF1 SavedModel (tf.compat.v1.saved_model.Builder) of a graph of its own, into a temporary
folder beside the destination that is renamed into place only when complete: a killed export leaves no
folder under the destination's name. `assets.extra/dcgan.json` says what was exported (TensorFlow Serving
ignores that folder).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from common.architecture import ArchSpec
from common.config import Config
from common.layers import Layers
from common.rundir import RunDirError
from common.sampling import SAMPLE_BATCH, Generator, build_sampler, to_uint8
from common.step import call_network
from common.streams import SAMPLE_STREAM, latent_noise

v1 = tf.compat.v1

SIGNATURES = ("generate", "sample")
INFO_FILE = "assets.extra/dcgan.json"


def sample_images(spec: ArchSpec, config: Config, z: tf.Tensor, batch: int = SAMPLE_BATCH) -> tf.Tensor:
    """uint8 images of z through the (already built) generator, `batch` rows per step of a while loop:
    the batches `Generator.generate` runs, one sess.run each."""
    shape = [None, *spec.image_shape]
    rows = tf.shape(z)[0]
    steps = (rows + batch - 1) // batch

    def step(i: tf.Tensor, images: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
        part = z[i * batch : (i + 1) * batch]
        out = call_network(spec.generator, "generator", True, part, False, config, Layers())
        return i + 1, images.write(i, to_uint8(out))

    images = tf.TensorArray(tf.uint8, size=steps, infer_shape=False, element_shape=shape)
    _, images = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), images))
    out = images.concat()
    out.set_shape(shape)
    return out


def check_exportable(config: Config) -> None:
    if config.original_quirks:
        raise RunDirError(
            "the run samples with dropout on (--quirks original, the notebook's bug), so no sampler without "
            "dropout gives its images; export takes runs trained with --quirks fixed"
        )


def export_generator(generator: Generator, out: Path, info: dict[str, Any], max_samples: int) -> None:
    """Write `generator` (restored, its statistics set) as a SavedModel at `out`, atomically."""
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the notices that the SavedModel Builder is a TF1 API: this is a TF1 graph
    try:
        _export(generator, Path(out), info, max_samples)
    finally:
        logger.setLevel(level)


def _export(generator: Generator, out: Path, info: dict[str, Any], max_samples: int) -> None:
    spec, config = generator.spec, generator.config
    check_exportable(config)
    values = generator.session.run(generator.variables)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(config.seed)  # the initializers need one under op determinism; never run
        sampler = build_sampler(spec, config, reuse=False)
        with tf.name_scope("sample"):
            n = v1.placeholder(tf.int32, [], name="n")
            seed = v1.placeholder(tf.int32, [], name="seed")
            checks = [
                tf.debugging.assert_positive(n, message="n must be at least 1"),
                tf.debugging.assert_less_equal(n, max_samples, message=f"n must be at most {max_samples}"),
            ]
            with tf.control_dependencies(checks):
                z = latent_noise(config, tf.identity(n), tf.cast(seed, tf.int64), SAMPLE_STREAM)
            images = sample_images(spec, config, z)
        variables = {v.op.name: v for v in v1.global_variables()}
        signatures = {
            "generate": v1.saved_model.signature_def_utils.predict_signature_def(
                {"z": sampler.noise}, {"images": sampler.images_uint8}
            ),
            "sample": v1.saved_model.signature_def_utils.predict_signature_def(
                {"n": n, "seed": seed}, {"images": images}
            ),
        }
    if set(variables) != set(values):
        raise RuntimeError(f"export graph variables {sorted(variables)} differ from {sorted(values)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(out)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".export", dir=out.parent))
    try:
        with graph.as_default(), v1.Session(graph=graph) as sess:
            for name, variable in variables.items():  # the sampler's values, fed to the initializers
                sess.run(variable.initializer, {variable.initial_value: values[name]})
            target = scratch / "model"
            builder = v1.saved_model.Builder(str(target))
            builder.add_meta_graph_and_variables(
                sess,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map=signatures,
                strip_default_attrs=True,
            )
            builder.save()
        (target / "assets.extra").mkdir()
        (target / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        os.chmod(target, 0o777 & ~_umask())
        replace_folder(target, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_stale_scratch(out: Path) -> None:
    """Remove what an export to `out` that was killed left beside it (.NAME.PID.*.export of a PID that
    no longer runs): never a folder under the destination's name, but worth tidying."""
    for folder in out.parent.glob(f".{out.name}.*.export"):
        pid = folder.name[len(out.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # alive, another user's


def replace_folder(source: Path, out: Path) -> None:
    """Rename the finished `source` to `out`: an empty folder `out` is replaced, anything else refused."""
    try:
        os.rename(source, out)  # atomic; over an empty folder too
    except OSError as err:
        raise RunDirError(f"cannot write {out}: it exists and is not empty ({err.strerror})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def describe(generator: Generator, run: Path, weights: str, prog: str) -> dict[str, Any]:
    """assets.extra/dcgan.json: what the SavedModel holds and how to feed it."""
    config, spec = generator.config, generator.spec
    noise = "uniform(-1, 1)" if config.noise == "uniform" else "normal(0, 1)"
    shape = ", ".join(str(d) for d in spec.image_shape)
    latent = f"{config.noise_dim} values of {noise}"
    if config.info_codes:
        latent += f", then a one-hot categorical code of {config.info_codes} values"
    return {
        "run": str(run),
        "checkpoint": generator.checkpoint,
        "step": int(str(generator.checkpoint).rsplit("-", 1)[1]),
        "dataset": config.dataset,
        "architecture": spec.name,
        "weights": weights,
        "sampler_stats": generator.sampler_stats,
        "image_shape": list(spec.image_shape),
        "latent_dim": config.latent_dim,
        "latent": latent,
        "signatures": {
            "generate": f"z float32 [N, {config.latent_dim}] -> images uint8 [N, {shape}]",
            "sample": f"n int32 [], seed int32 [] -> images uint8 [n, {shape}]: the images of "
            f"`python -m {prog} sample --run RUN --n N --seed SEED`",
        },
        "versions": {"tensorflow": tf.__version__, "numpy": np.__version__},
    }
