"""How good is a run? `python -m common.evaluate --run RUN_DIR [--n N]` writes RUN_DIR/eval.json.

The command line only: common/run_evaluation.py evaluates the run (eval.json's sections, the real floor
and the noise ceiling beside the run's numbers), common/metrics.py defines the numbers (FID, KID, the
class statistics, the checkerboard share).
"""

from __future__ import annotations

from common.quiet import start_quietly

start_quietly()  # before anything imports TensorFlow: its start-up lines only with --verbose

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from common.classifier import DATASETS as CLASSIFIER_DATASETS
from common.command import OneLineParser, UsageError, exit_code
from common.config import SAMPLER_STATS
from common.data import resolve_cifar_class
from common.run_evaluation import DEFAULT_N, EVAL_FILE, evaluate_run, write_eval
from common.rundir import RunDir, RunDirError, check_writable_dir
from common.sampling import WEIGHTS

PROG = "common.evaluate"


def summary_table(result: dict[str, Any]) -> str:
    if "not_measured" in result:  # an image folder without classes: the checkerboard shares alone
        lines = [f"measured: {result['measured']}; not measured: {result['not_measured']}"]
        for name, key in (("real", "real_floor"), ("generated", "generated"), ("noise", "noise_ceiling")):
            lines.append(f"{name:14} checkerboard {result[key]['checkerboard']:.5f}")
        return "\n".join(lines)
    target = result["class_label"] is not None
    header = f"{'':14} {'FID':>9} {'KID':>10} {'± se':>9} {'entropy':>8} {'confident':>9} {'checker':>8}"
    lines = [header + (f" {'target':>7}" if target else "")]
    for name, key in (
        ("real floor", "real_floor"),
        ("generated", "generated"),
        ("noise ceiling", "noise_ceiling"),
    ):
        s = result[key]
        stderr = (
            s["kid_stderr"] if s["kid_stderr"] is not None and math.isfinite(s["kid_stderr"]) else math.nan
        )
        line = (
            f"{name:14} {s['fid']:9.3f} {s['kid']:10.5f} {stderr:9.5f} "
            f"{s['class_entropy']:8.3f} {s['confident_share']:9.3f} {s['checkerboard']:8.5f}"
        )
        lines.append(line + (f" {s['target_class_share']:7.3f}" if target else ""))
    unseen = result["real_floor"].get("target_class_share_unseen")
    if target and unseen is not None:
        lines.append(
            f"target share of the {result['real_floor']['unseen_images']} real test images of the class "
            f"the classifier never learned from: {unseen:.3f}; of other classes' real test images: "
            f"{result['real_floor']['other_classes_target_share']:.3f}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=f"python -m {PROG}",
        description="Write RUN/eval.json: FID, KID and class statistics of a run's samples, with the "
        "real-data floor and the noise ceiling, in the feature space of the project's own classifier.",
    )
    parser.add_argument("--run", required=True, help="run directory (its latest checkpoint is evaluated)")
    parser.add_argument(
        "--n", type=int, help=f"generated and real images compared (default {DEFAULT_N}, or all the test set)"
    )
    parser.add_argument("--data-dir", help="where the data files are (default: the run's own setting)")
    parser.add_argument(
        "--checkpoint",
        help="best (the lowest tracked FID; the default when the run kept one), latest (the default "
        "otherwise) or a step number",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and of the image subsets (0)")
    parser.add_argument(
        "--sampler-stats",
        choices=SAMPLER_STATS,
        help="the sampler's batch-norm statistics: recalibrated before sampling, or the checkpoint's moving "
        "averages (default: the run's setting)",
    )
    parser.add_argument(
        "--weights",
        choices=WEIGHTS,
        help="the generator's weight average (runs trained with --g-ema-decay) or its trained weights "
        "(default: what the run samples from)",
    )
    parser.add_argument(
        "--dataset",
        choices=CLASSIFIER_DATASETS,
        help="score the run against this data set's classifier and test images instead of its own (the "
        "image shapes must agree): e.g. a run of an --images folder of CIFAR-10 horses with --dataset "
        "cifar10 --class horse",
    )
    parser.add_argument("--class", dest="class_label", help="with --dataset cifar10: the class (name or 0-9)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(PROG, lambda: command_evaluate(args))


def command_evaluate(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.class_label is not None and args.dataset != "cifar10":
        raise UsageError("--class needs --dataset cifar10")
    against = None
    if args.dataset is not None:
        label = resolve_cifar_class(args.class_label) if args.class_label is not None else None
        against = (args.dataset, label)
    run = RunDir(args.run)
    if not run.path.is_dir():
        raise RunDirError(f"{run.path} is not a run directory (no such folder)")
    if run.has_run():
        check_writable_dir(run.path)  # eval.json goes there: say so before the work, not after it
    [result] = evaluate_run(
        run,
        args.n,
        args.data_dir,
        args.seed,
        progress=not args.no_progress,
        sampler_stats=args.sampler_stats,
        checkpoint=run.chosen_checkpoint(args.checkpoint),
        weights=[args.weights],
        against=against,
    )
    write_eval(run, result)
    print(summary_table(result))
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    print(f"wrote {os.path.join(str(run.path), EVAL_FILE)} (step {result['step']}, n {result['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
