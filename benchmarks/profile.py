"""Where a training step's time goes: TensorFlow's own per-op timings of the project's step, by op type.

    python -m benchmarks.profile [--dataset mnist|cifar] [--precision auto|float32|bfloat16]
                                 [--filter-grad auto|matmul|native] [--steps N] [--top N]

Runs the step `common.train` runs (benchmarks.alternatives.ProjectStep), then `--steps` more with
`RunOptions.FULL_TRACE` and sums each op's time (`all_end_rel_micros` of the step stats) by op type and by
op name. Op times of the two threads add up, so the total exceeds the wall time of a step. This is how
docs/benchmarks.md found Conv2DBackpropFilter to be most of a bf16 step.
"""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Sequence

import tensorflow as tf

from benchmarks.alternatives import ProjectStep
from benchmarks.speed import DATASETS, architecture, load_images
from common.command import OneLineParser
from common.config import PRECISIONS, Config, ConfigError
from common.data import DataError
from common.layers import LayerImpl
from common.train import with_precision

v1 = tf.compat.v1
FILTER_GRADS = {"auto": None, "matmul": True, "native": False}


def op_times(step: ProjectStep, steps: int) -> tuple[collections.Counter, collections.Counter, int]:
    """Microseconds per step summed by op type and by op name, and the number of ops run per step."""
    by_type: collections.Counter = collections.Counter()
    by_name: collections.Counter = collections.Counter()
    ops = 0
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    for _ in range(steps):
        metadata = v1.RunMetadata()
        step.sess.run(step.gan.train.step, options=options, run_metadata=metadata)
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                # timeline_label is "name = OpType(inputs)": the kernel that ran, after grappler's rewrites
                # (oneDNN's _MklNative* ops, the casts of the bf16 rewrite), which the Python graph lacks.
                label = node.timeline_label
                op_type = label.split(" = ")[1].split("(")[0] if " = " in label else "?"
                by_type[op_type] += node.all_end_rel_micros / steps
                by_name[node.node_name] += node.all_end_rel_micros / steps
                ops += 1
    return by_type, by_name, ops // steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--filter-grad", choices=sorted(FILTER_GRADS), default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="traced steps (after 3 untimed and 10 timed)")
    parser.add_argument("--top", type=int, default=20, help="rows of each table")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1 or args.batch_size < 1:
        parser.error("--steps, --top and --batch-size must be at least 1")
    try:
        images, source = load_images(args.dataset, args.data_dir)
        config = Config(dataset=args.dataset, batch_size=args.batch_size, precision=args.precision).validate()
        layer_impl = LayerImpl(matmul_filter_grad=FILTER_GRADS[args.filter_grad])
        step = ProjectStep(architecture(args.dataset), config, images, layer_impl=layer_impl)
    except (ConfigError, DataError) as err:
        print(f"benchmarks.profile: error: {err}", file=sys.stderr)
        return 2
    try:
        for _ in range(3):
            step.step()
        tick = time.perf_counter()
        for _ in range(10):
            step.step()
        wall = (time.perf_counter() - tick) / 10
        by_type, by_name, ops = op_times(step, args.steps)
    finally:
        step.close()
    total = sum(by_type.values())
    precision = with_precision(config).precision
    print(f"data: {source}; batch {args.batch_size}; {precision}; filter gradients: {args.filter_grad}")
    print(f"untraced: {1000 * wall:.1f} ms per step, {args.batch_size / wall:.1f} images/s")
    print(f"traced: {ops} ops per step, {total / 1000:.1f} ms of op time per step (all threads)\n")
    print("| op type | ms per step | share |\n|---|---|---|")
    for name, micros in by_type.most_common(args.top):
        print(f"| {name} | {micros / 1000:.2f} | {100 * micros / total:.1f}% |")
    print("\n| op | ms per step |\n|---|---|")
    for name, micros in by_name.most_common(args.top):
        print(f"| {name} | {micros / 1000:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
