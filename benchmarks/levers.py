"""Each speed lever of the project's step, on and off, timed side by side (interleaved, medians).

    python -m benchmarks.levers [--dataset mnist|cifar] [--steps N] [--rounds R] [--only NAME]
    python -m benchmarks.levers --layout    (NHWC vs NCHW, on the discriminator's convolutions)

Rows are the project's step with one thing changed from the default (`default` first): the data fed
through feed_dict instead of sliced in-graph, the layer kernels, thread settings, XLA, bf16, a larger
batch. docs/benchmarks.md records what each gives and which are on by default.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from benchmarks.alternatives import ProjectStep, original_tf1
from benchmarks.machine import this_machine
from benchmarks.speed import (
    Candidate,
    architecture,
    build_parser,
    format_table,
    load_images,
    time_interleaved,
)
from common.architecture import ArchSpec
from common.config import Config, ConfigError
from common.data import DataError
from common.flops import forward_flops_per_image, train_step_flops_per_image
from common.layers import LayerImpl
from common.speed import SpeedSettings, bf16_supported
from common.train import gpu_visible, session_config, with_precision


class FedProjectStep(ProjectStep):
    """The project's graph, but each batch and its noise made in numpy and fed (the notebook's input side)."""

    def __init__(
        self,
        spec: ArchSpec,
        config: Config,
        images: np.ndarray,
        settings: SpeedSettings,
        layer_impl: LayerImpl,
    ) -> None:
        super().__init__(spec, config, images, settings, layer_impl)
        from benchmarks.alternatives import NumpyBatches

        self.batches = NumpyBatches(images, config)

    def step(self) -> dict:
        real, noise = self.batches.next()
        feed = {self.gan.inputs.real_images: real, self.gan.inputs.noise: noise}
        return self.sess.run({"step": self.gan.train.step, "losses": self.gan.losses}, feed)


@dataclasses.dataclass(frozen=True)
class Lever:
    name: str
    settings: SpeedSettings
    batch_size: int | None = None  # None: the benchmark's
    layer_impl: LayerImpl = LayerImpl()  # None fields follow the precision
    precision: str | None = None  # a --precision value; None: the default config's (auto)
    fed: bool = False
    original_step: bool = False  # the notebook's TF1 step with per-network update ops instead


def levers(default: SpeedSettings, bf16: bool) -> list[Lever]:
    """The default step (`default`: its threads and XLA), then one thing changed at a time."""
    replace = dataclasses.replace
    chosen = [
        Lever("default", default),
        Lever("TF1 step: feed_dict + 2 runs (per-network update ops)", default, original_step=True),
        Lever("feed_dict batches and numpy noise, one run", default, fed=True),
        Lever("batch norm unfused (tf.nn.moments)", default, layer_impl=LayerImpl(fused_batch_norm=False)),
        Lever("dropout as a precomputed mask (opt-in)", default, layer_impl=LayerImpl(mask_dropout=True)),
        Lever("leaky ReLU as max(alpha * x, x)", default, layer_impl=LayerImpl(fused_leaky_relu=False)),
        Lever(
            "leaky ReLU gradient from its output: D's conv+bias+ReLU fused (opt-in)",
            default,
            layer_impl=LayerImpl(lrelu_grad_from_output=True),
        ),
        Lever("batch norm and leaky ReLU as before", default, layer_impl=LayerImpl(False, False, False)),
        Lever("threads intra 2, inter 1", replace(default, intra_op_threads=2, inter_op_threads=1)),
        Lever("threads intra 1, inter 2", replace(default, intra_op_threads=1, inter_op_threads=2)),
        Lever("threads intra 2, inter 2", replace(default, intra_op_threads=2, inter_op_threads=2)),
        Lever("XLA auto-clustering (global_jit_level ON_1)", replace(default, xla=True)),
        Lever("batch 256 (img/s at 4x the batch)", default, batch_size=256),
        Lever("float32 (--precision float32)", default, precision="float32"),
    ]
    # The bf16 kernels, each in the other precision and each left out of bf16.
    float32_kernels = {
        "matmul filter gradients": {"matmul_filter_grad": True},
        "16-bit dropout draws": {"dropout_bits16": True},
    }
    for name, fields in float32_kernels.items():
        chosen.append(Lever(f"float32, {name}", default, layer_impl=LayerImpl(**fields), precision="float32"))
    if bf16:
        chosen.append(Lever("bf16 (--precision bfloat16)", default, precision="bfloat16"))
        without = {
            "bf16, Conv2DBackpropFilter filter gradients": {"matmul_filter_grad": False},
            "bf16, float32 dropout uniforms": {"dropout_bits16": False},
            "bf16 with neither (the grappler rewrite alone)": {
                "matmul_filter_grad": False,
                "dropout_bits16": False,
            },
        }
        for name, fields in without.items():
            chosen.append(Lever(name, default, layer_impl=LayerImpl(**fields), precision="bfloat16"))
        chosen.append(Lever("bf16, batch 256", default, batch_size=256, precision="bfloat16"))
    return chosen


def lever_candidate(lever: Lever, spec: ArchSpec, config: Config, images: np.ndarray) -> Candidate:
    lever_config = config.replace(batch_size=lever.batch_size) if lever.batch_size else config
    if lever.precision:
        lever_config = lever_config.replace(precision=lever.precision)

    def build() -> ProjectStep:
        if lever.original_step:
            return original_tf1(scoped=True)(spec, lever_config, images)
        maker: Callable[..., ProjectStep] = FedProjectStep if lever.fed else ProjectStep
        return maker(spec, lever_config, images, lever.settings, lever.layer_impl)

    return Candidate(lever.name, build, train_step_flops_per_image(spec, lever_config), project=True)


class ConvStackStep:
    """The discriminator's three stride-2 convolutions, forward and backward, in one data layout.

    common.layers is NHWC only (what TensorFlow's CPU kernels and checkpoints use); this measures what
    NCHW would give before anyone rewrites the layers for it.
    """

    def __init__(self, image_shape: tuple[int, int, int], batch_size: int, data_format: str) -> None:
        self.graph = tf.Graph()
        with self.graph.as_default():
            height, width, channels = image_shape
            shape = [batch_size, height, width, channels]
            if data_format == "NCHW":
                shape = [batch_size, channels, height, width]
            x = tf.random.stateless_uniform(shape, seed=[0, 0])
            rng = np.random.default_rng(0)
            kernels = []
            for filters in (128, 256, 512):
                kernel = tf.Variable(rng.normal(0, 0.05, (3, 3, channels, filters)).astype(np.float32))
                kernels.append(kernel)
                strides = [1, 1, 2, 2] if data_format == "NCHW" else [1, 2, 2, 1]
                x = tf.nn.leaky_relu(tf.nn.conv2d(x, kernel, strides, "SAME", data_format=data_format), 0.01)
                channels = filters
            self.gradients = tf.gradients(tf.reduce_sum(x * x), kernels)
            init = tf.compat.v1.global_variables_initializer()
        self.graph.finalize()
        self.sess = tf.compat.v1.Session(graph=self.graph, config=session_config())
        self.sess.run(init)

    def step(self) -> None:
        self.sess.run(self.gradients)

    def close(self) -> None:
        self.sess.close()


def layout_candidates(spec: ArchSpec, config: Config) -> list[Candidate]:
    """NHWC vs NCHW on the discriminator's convolutions (3 x 2 x forward FLOPs: forward and backward)."""
    d_flops = forward_flops_per_image(spec, config)["discriminator"]
    return [
        Candidate(
            f"D convolutions only, {layout}",
            lambda layout=layout: ConvStackStep(spec.image_shape, config.batch_size, layout),
            3 * d_flops,
            project=layout == "NCHW",
        )
        for layout in ("NHWC", "NCHW")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.prog = "python -m benchmarks.levers"
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument(
        "--layout", action="store_true", help="instead: NHWC vs NCHW on the discriminator's convolutions"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "rounds", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        spec = architecture(args.dataset)
        images, source = load_images(args.dataset, args.data_dir)
        config = Config(dataset=args.dataset, batch_size=args.batch_size).validate()
        default = SpeedSettings.default_settings(with_precision(config).precision)
    except (ConfigError, DataError) as err:
        print(f"benchmarks.levers: error: {err}", file=sys.stderr)
        return 2
    chosen = [
        lever
        for lever in levers(default, bf16_supported() and not gpu_visible())
        if lever.name == "default" or not args.only or any(s.lower() in lever.name.lower() for s in args.only)
    ]
    candidates = [lever_candidate(lever, spec, config, images) for lever in chosen]
    if args.layout:
        candidates = layout_candidates(spec, config)
        chosen = []
    timings = time_interleaved(
        candidates,
        args.batch_size,
        args.steps,
        args.rounds,
        args.warmup,
        progress=not args.no_progress,
    )
    # time_interleaved counts img/s at the benchmark's batch; a lever with its own batch moves more images.
    for lever, timing in zip(chosen, timings, strict=False):
        if lever.batch_size:
            timing.images_per_second = [
                v * lever.batch_size / args.batch_size for v in timing.images_per_second
            ]
    # Ratios against the default: it is the only row not counted as "the project".
    timings[0].project = False
    print(this_machine().describe())
    print(f"data: {source}; batch {args.batch_size}; default session: {default.describe()}")
    print(f"{args.rounds} rounds x {args.steps} steps each, interleaved; medians over rounds\n")
    print(format_table(timings, this_machine()).replace("vs fastest alternative", "vs default"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
