"""Training-recipe ingredients against the notebook's recipe, over seeds: `python -m benchmarks.recipes`.

Each candidate is a set of `train` flags (`dcgan_mnist train`, or `dcgan_cifar train` with --dataset
cifar10: the horse class, the module's default). Every (candidate, seed) run trains from scratch
with the same budget, then `common.evaluate` scores its last checkpoint (recalibrated sampler, n real
test images against n samples). The table gives each candidate's mean and spread (sample standard
deviation over seeds) of FID, KID, class entropy and confident share, with the wall time of training.
Runs already complete in --out are evaluated again but not retrained, so an interrupted sweep resumes.

The generator's weight average is one candidate that costs no run of its own: it does not feed back into
training (a run with --g-ema-decay trains bit for bit as one without: every shared variable of two
200-step runs is equal), so every run keeps one and is scored twice, with its trained weights (the
candidate's row) and with their average (the row "+ G weight average").
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.machine import this_machine
from common.command import OneLineParser
from common.machine import load_average
from common.run_evaluation import evaluate_run, write_eval
from common.rundir import RunDir

# name -> flags over the notebook's defaults (the candidates of docs/quality.md)
CANDIDATES: dict[str, list[str]] = {
    "notebook": [],
    "Adam 2e-4, beta1 0.5 (DCGAN paper)": ["--learning-rate", "2e-4", "--beta1", "0.5"],
    "no dropout in G": ["--g-keep-prob", "1.0"],
    "no dropout in G or D": ["--keep-prob", "1.0"],
    "two time-scales (D lr 4x: 4e-3)": ["--d-learning-rate", "4e-3"],
    "hinge loss": ["--loss", "hinge"],
    "top-k training, half the fakes (Sinha et al. 2020)": ["--g-top-k", "0.5"],
    "resize-convolution upsampling": ["--upsample", "resize"],
    "spectral norm in D instead of batch norm (Miyato et al. 2018)": ["--d-norm", "spectral"],
    "spectral norm in D beside batch norm": ["--d-norm", "both"],
    "no label smoothing (G's target 1 as well)": ["--label-smoothing", "0"],
    # twice the updates in the same epochs: run it with twice the --steps
    "batch 32": ["--batch-size", "32"],
    "categorical code of 10 values (InfoGAN, Chen et al. 2016)": ["--info-codes", "10"],
    "learning rate linear to 0": ["--lr-decay", "linear"],
    "recipe improved": ["--recipe", "improved"],
    # the recipe as it was defined before, so that the older rows of docs/quality.md stay reproducible:
    # until 2026-12-06 without the categorical code, until 2026-12-03 with D's dropout as well
    "recipe improved of 2026-12-03": ["--recipe", "improved", "--info-codes", "0"],
    "recipe improved of 2026-12-01": ["--recipe", "improved", "--info-codes", "0", "--keep-prob", "0.8"],
}

# --dataset -> (the dataset module whose `train` runs, its flags for that data set)
DATASET_TRAIN: dict[str, tuple[str, list[str]]] = {
    "mnist": ("dcgan_mnist", []),
    "fashion_mnist": ("dcgan_mnist", ["--dataset", "fashion_mnist"]),
    "cifar10": ("dcgan_cifar", []),
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmarks.recipes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=937, help="training steps per run (937: one epoch)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=5000, help="samples and real images per evaluation")
    parser.add_argument(
        "--ema-decay", type=float, default=0.999, help="decay of the weight average every run keeps (0.999)"
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="train's own quality tracking (default 0: off, so the training time is training alone)",
    )
    parser.add_argument(
        "--only", nargs="*", help="candidate names (default: all; none: only the --combine candidate)"
    )
    parser.add_argument(
        "--combine", nargs="+", default=[], help="extra candidate: these candidates' flags together"
    )
    parser.add_argument(
        "--dataset", choices=sorted(DATASET_TRAIN), default="mnist", help="what the runs train on (mnist)"
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="runs/recipes")
    return parser


def train_once(name: str, flags: list[str], seed: int, args: argparse.Namespace) -> RunDir:
    module, dataset_flags = DATASET_TRAIN[args.dataset]
    cli = importlib.import_module(f"{module}.__main__").cli
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    run = RunDir(Path(args.out) / f"{slug}-seed{seed}")
    latest = run.latest_checkpoint()  # reads every tensor to check it: once
    if latest and latest.endswith(f"-{args.steps}"):
        return run  # done earlier
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    argv = [
        "train",
        "--out",
        str(run.path),
        "--max-steps",
        str(args.steps),
        "--seed",
        str(seed),
        "--no-progress",
        "--eval-every",
        str(args.eval_every),
        "--g-ema-decay",
        str(args.ema_decay),
    ]
    if run.has_run():
        argv.append("--resume")
    code = cli([*argv, *dataset_flags, *data, *flags])
    if code != 0:
        raise SystemExit(f"{name}, seed {seed}: training exited {code}")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()).union(args.combine) - set(CANDIDATES))
    if unknown:
        parser.error(
            f"unknown candidate {', '.join(map(repr, unknown))}; the candidates: {', '.join(CANDIDATES)}"
        )
    candidates = {k: v for k, v in CANDIDATES.items() if args.only is None or k in args.only}
    if args.combine:
        candidates[" + ".join(args.combine)] = [flag for part in args.combine for flag in CANDIDATES[part]]
    rows = []
    for name, flags in candidates.items():
        scores: dict[str, list[dict]] = {"live": [], "average": []}
        for seed in args.seeds:
            run = train_once(name, flags, seed, args)
            # the loop's own clock (resumes included, start-up excluded)
            trained = run.read_history()[-1]["seconds"]
            results = evaluate_run(run, args.n, args.data_dir, seed=0, progress=False, weights=list(scores))
            for (weights, kept), result in zip(scores.items(), results, strict=True):
                if weights == "average":
                    write_eval(run, result)
                kept.append({**result["generated"], "seconds": trained, "seed": seed})
                print(
                    f"{name}, seed {seed}, {weights} weights: FID {kept[-1]['fid']:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
        # how the runs trained (both rows are the same runs, scored with other weights)
        flag_text = " ".join([*flags, "--g-ema-decay", str(args.ema_decay)])
        rows.append((name, flag_text, scores["live"]))
        rows.append((f"{name} + G weight average {args.ema_decay}", flag_text, scores["average"]))
    print(table(rows, args))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "recipes.json").write_text(json.dumps([list(r) for r in rows], indent=2) + "\n")
    return 0


def spread(values: list[float], digits: int) -> str:
    mean = statistics.mean(values)
    return (
        f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"
        if len(values) > 1
        else f"{mean:.{digits}f}"
    )


def table(rows: list, args: argparse.Namespace) -> str:
    lines = [
        f"{args.dataset}, {args.steps} steps of 64, seeds {' '.join(map(str, args.seeds))}; n = {args.n}, "
        "recalibrated sampler; mean ± sd over seeds",
        f"training s measured on {this_machine().describe()}, load {load_average()}",
        "",
        "| candidate | flags | FID | KID | class entropy | confident share | training s | per-seed FID |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, flags, scores in rows:
        fids = [s["fid"] for s in scores]
        lines.append(
            f"| {name} | `{flags}` | {spread(fids, 1)} | {spread([s['kid'] for s in scores], 1)} | "
            f"{spread([s['class_entropy'] for s in scores], 3)} | "
            f"{spread([s['confident_share'] for s in scores], 3)} | "
            f"{spread([s['seconds'] for s in scores], 0)} | {', '.join(f'{f:.1f}' for f in fids)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
