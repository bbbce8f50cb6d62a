"""The command line both dataset modules share: `train` and `sample`, and exit-2 error handling.

Every hyper-parameter is a flag whose default is None, meaning "not given": the architecture's default
applies (the notebook's values for the notebook model), and on --resume the run's own setting applies.
Bad input exits with status 2 and a one-line message, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.architecture import ArchSpec
from common.command import OneLineParser, UsageError, exit_code
from common.config import (
    ARCHITECTURE_FIELDS,
    D_NORMS,
    LOSSES,
    LR_DECAYS,
    PRECISIONS,
    RECIPES,
    RESUME_FIXED_FIELDS,
    SAMPLER_STATS,
    UPSAMPLES,
    Config,
    ConfigError,
    resolve,
)
from common.modules import DatasetModule, open_run
from common.rundir import RunDir, RunDirError, check_writable_dir
from common.sampling import WEIGHTS

# `sample` holds all its images in memory and a grid of them in one PNG: past this it is not a sample.
MAX_SAMPLES = 100_000


def build_parser(module: DatasetModule) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=module.prog, description=f"DCGAN in TensorFlow 1.x graph style: {module.prog}"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser("train", help="train a GAN into a run directory")
    train.add_argument("--dataset", choices=module.datasets, help=f"default {module.datasets[0]}")
    train.add_argument("--arch", choices=sorted(module.architectures), help=f"default {module.default_arch}")
    train.add_argument(
        "--data-dir", help="where the data files are (else $DCGAN_DATA_DIR, the Keras cache, download)"
    )
    train.add_argument(
        "--out", help="run directory (default runs/DATASET, runs/DATASET-ARCH or runs/DATASET-RECIPE)"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    train.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        help="notebook (default): the notebook's settings; improved: the measured better recipe of "
        "docs/quality.md (" + ", ".join(f"{k}={v}" for k, v in module.recipe("improved").items()) + "); "
        "flags given beside it override its settings",
    )
    defaults = Config()
    hyper = train.add_argument_group("hyper-parameters (defaults: the architecture's; notebook shown)")
    for flag, kind, help_text in (
        ("epochs", int, "epochs over the training set"),
        ("max-steps", int, "stop after this many steps in total (also on resume)"),
        ("batch-size", int, "images per step"),
        ("noise-dim", int, "length of z"),
        ("learning-rate", float, "Adam learning rate of both networks"),
        ("beta1", float, "Adam beta1"),
        ("label-smoothing", float, "one-sided: real targets are 1 - this"),
        ("lrelu-alpha", float, "leaky ReLU slope"),
        ("keep-prob", float, "dropout keep probability"),
        ("bn-momentum", float, "batch-norm moving-average momentum"),
        ("bn-epsilon", float, "batch-norm epsilon"),
        ("d-learning-rate", float, "D's own Adam learning rate, two time-scales (None: --learning-rate)"),
        ("g-keep-prob", float, "the generator's dropout keep probability (None: --keep-prob)"),
        (
            "g-ema-decay",
            float,
            "sample from an exponential moving average of G's weights, e.g. 0.999 (0: off)",
        ),
        (
            "g-top-k",
            float,
            "top-k training: G's loss over this share of each batch's fakes, those D scores highest",
        ),
    ):
        field = flag.replace("-", "_")
        hyper.add_argument(f"--{flag}", type=kind, help=f"{help_text} (notebook: {getattr(defaults, field)})")
    hyper.add_argument("--noise", choices=("uniform", "normal"), help="z distribution (notebook: uniform)")
    hyper.add_argument("--loss", choices=LOSSES, help="bce: sigmoid cross-entropy; hinge (notebook: bce)")
    hyper.add_argument(
        "--lr-decay",
        choices=LR_DECAYS,
        help="learning-rate schedule: constant; linear to 0; inverse_time: lr / (1 + step * lr / epochs), "
        "Keras's legacy Adam decay (notebook: constant)",
    )
    hyper.add_argument(
        "--quirks",
        choices=("fixed", "original"),
        help="original: reproduce the notebook's bugs (one UPDATE_OPS for both optimizers, dropout when "
        "sampling, a lost leaky ReLU in D), for study (default fixed)",
    )
    hyper.add_argument(
        "--upsample",
        choices=UPSAMPLES,
        help="how the generator doubles the image size: transpose (the notebook's stride-2 transposed "
        "convolutions) or resize (nearest-neighbour x2 + a stride-1 convolution, against checkerboard "
        "artifacts; the notebook architecture only) (default transpose)",
    )
    hyper.add_argument(
        "--d-norm",
        choices=D_NORMS,
        help="how D's layers are normalized: batch (the notebook's batch norm on layers 2 and 3), "
        "spectral (every kernel divided by its largest singular value, no batch norm) or both; "
        "the notebook architecture only (default batch)",
    )
    hyper.add_argument(
        "--info-codes",
        type=int,
        help="z also holds a categorical code of this many values that D's extra head learns to read "
        "back from G's images (InfoGAN); the notebook architecture only (default 0: off)",
    )
    outputs = train.add_argument_group("reproducibility and outputs")
    outputs.add_argument("--seed", type=int, help="seed of weights, data order, noise, dropout (0)")
    for flag, help_text in (
        ("log-every", "steps per history.csv row and TensorBoard point"),
        ("sample-every", "steps between sample grids"),
        ("checkpoint-every", "steps between checkpoints"),
        ("keep-checkpoints", "checkpoints kept"),
        ("grid-size", "images in the fixed sample grid"),
        ("eval-every", "steps between quality evaluations (0: never)"),
        ("eval-samples", "generated images per evaluation during training"),
    ):
        field = flag.replace("-", "_")
        outputs.add_argument(f"--{flag}", type=int, help=f"{help_text} ({getattr(defaults, field)})")
    outputs.add_argument(
        "--nondeterministic",
        dest="deterministic",
        action="store_const",
        const=False,
        help="allow TensorFlow's nondeterministic kernels (a little faster; reruns and resumes may differ in "
        "the last bits)",
    )
    outputs.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto: what measured fastest at the same sample quality on this kind of CPU "
        "(common.speed.CPU_KINDS): bf16 mixed precision with AMX and on AMD with AVX512_BF16, float32 "
        "elsewhere and on a GPU (default auto; config.json records the choice; docs/benchmarks.md)",
    )
    outputs.add_argument(
        "--sampler-stats",
        choices=SAMPLER_STATS,
        help="batch-norm statistics of the sampler (grids, sample, evaluations): recalibrated (one exact "
        "training-mode pass before sampling) or the moving averages (default recalibrated; "
        "docs/quality.md measures both)",
    )
    outputs.add_argument("--no-progress", action="store_true", help="no progress bar")
    if module.add_arguments:
        module.add_arguments(train)

    sample = commands.add_parser("sample", help="generate images from a run's latest checkpoint")
    sample.add_argument("--run", required=True, help="run directory")
    sample.add_argument("--n", type=int, default=64, help="number of images (64)")
    sample.add_argument("--out", required=True, help="FILE.png (a grid) or FILE.npy (uint8 array)")
    sample.add_argument("--seed", type=int, help="noise seed (the run's seed)")
    sample.add_argument(
        "--checkpoint",
        default="latest",
        help="which checkpoint: latest (default), best (the lowest tracked FID), or a step number",
    )
    sample.add_argument(
        "--sampler-stats", choices=SAMPLER_STATS, help="batch-norm statistics (default: the run's setting)"
    )
    sample.add_argument(
        "--weights",
        choices=WEIGHTS,
        help="the generator's weight average (runs trained with --g-ema-decay) or its trained weights "
        "(default: what the run samples from)",
    )
    sample.add_argument(
        "--by-code",
        action="store_true",
        help="runs trained with --info-codes K: K rows, one per code value, each row the same n // K "
        "noise vectors",
    )
    return parser


def config_flags(args: argparse.Namespace, module: DatasetModule) -> dict[str, Any]:
    """The Config fields the user gave on the command line (None: not given)."""
    given = {k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__}
    if module.flags_to_config:
        given.update(module.flags_to_config(vars(args)))
    return given


def resolve_train_config(args: argparse.Namespace, module: DatasetModule) -> tuple[ArchSpec, Config, RunDir]:
    flags = config_flags(args, module)
    if args.out is not None and not args.out.strip():
        raise UsageError("--out is empty: name the run directory (default runs/DATASET)")
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out RUN_DIR, the run to continue")
        run = RunDir(args.out)
        if not run.has_run():
            raise RunDirError(f"--resume: {run.path} holds no run (no config.json)")
        record, _, _ = open_run(run, module, f"train --resume --out {run.path}")
        # Runs from before --precision existed trained in float32: resume them in it, not in `auto`.
        saved = Config.from_dict({"precision": "float32", **record["config"]})
        if flags.get("recipe") is not None and flags["recipe"] != saved.recipe:
            raise ConfigError(
                f"--resume with another recipe: {run.path} was started with --recipe {saved.recipe}, not "
                f"{flags['recipe']}; start a new run with another --out"
            )
        for field in ARCHITECTURE_FIELDS:
            if flags.get(field) is not None and flags[field] != getattr(saved, field):
                raise ConfigError(
                    f"--resume with a different architecture: {field} is {getattr(saved, field)!r} in "
                    f"{run.path}, not {flags[field]!r}; start a new run with another --out"
                )
        for field in RESUME_FIXED_FIELDS:
            if flags.get(field) is not None and flags[field] != getattr(saved, field):
                raise ConfigError(
                    f"--resume with another --{field.replace('_', '-')} ({flags[field]!r}; the run has "
                    f"{getattr(saved, field)!r}) would change the data order, so the run would no longer be "
                    "the one that never stopped; start a new run with another --out"
                )
        given = {k: v for k, v in flags.items() if v is not None and k != "out"}  # out: the run's own path
        config = saved.replace(**given, out=str(run.path))
        return module.architectures[config.arch], config.validate(), run

    arch = flags.get("arch") or module.default_arch
    spec = module.architectures[arch]
    dataset = (
        flags.get("dataset")
        or spec.defaults.get("dataset")
        or module.defaults.get("dataset")
        or module.datasets[0]
    )
    name = module.run_name(dataset, flags) if module.run_name else dataset
    default_out = f"runs/{name}" if arch == module.default_arch else f"runs/{name}-{arch}"
    if flags.get("recipe") not in (None, "notebook"):
        default_out += f"-{flags['recipe']}"  # beside the default recipe's run, not in it
    recipe = module.recipe(flags.get("recipe") or "notebook")  # an unknown name: validate() says so
    base = {
        **module.defaults,
        **spec.defaults,
        **recipe,
        "arch": arch,
        "dataset": dataset,
        "out": default_out,
    }
    config = resolve(base, flags)
    check_arch_options(spec, config)
    run = RunDir(config.out)
    check_writable_dir(run.path)
    found = run.run_files()
    if found:
        what = "a run" if run.has_run() else f"run files ({', '.join(found)}) but no config.json"
        raise RunDirError(
            f"{run.path} already holds {what}: add --resume to continue it, or choose another --out"
        )
    return spec, config, run


def check_arch_options(spec: ArchSpec, config: Config) -> None:
    """Refuse a setting the architecture's networks never read, rather than ignore it silently."""
    for flag, value, offered in (
        ("upsample", config.upsample, spec.upsamples),
        ("d-norm", config.d_norm, spec.d_norms),
    ):
        if value not in offered:
            raise ConfigError(
                f"--{flag} {value} is not available for arch {spec.name!r}, which offers {', '.join(offered)}"
            )
    if config.info_codes and not spec.info_codes:
        raise ConfigError(f"--info-codes is not available for arch {spec.name!r}: its D has no code head")


def command_train(args: argparse.Namespace, module: DatasetModule) -> int:
    from common.step import total_steps
    from common.train import NanLossError

    spec, config, run = resolve_train_config(args, module)
    data = module.load_data(config)  # before anything is written: bad data leaves no run directory
    evaluator = None
    # Quality is tracked when the run is long enough to reach an evaluation (the classifier it needs is
    # trained once per data set and cached: a short smoke run should not pay for it).
    if 0 < config.eval_every <= total_steps(config, len(data.images)):
        from common.run_evaluation import TrainingEvaluator

        evaluator = TrainingEvaluator(config, run, progress=not args.no_progress)
    try:
        hooks = (evaluator,) if evaluator else ()
        # The architecture's own module builds and trains its graph (dcgan_mnist/model.py: train).
        result = spec.model.train(config, data, run, args.resume, hooks, progress=not args.no_progress)
    except NanLossError as err:
        print(f"{module.prog}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if evaluator:
            evaluator.close()
    print(
        f"trained to step {result.steps}: {result.seconds:.1f} s in this run of the command "
        f"({result.images_per_second:.1f} images/s); run directory: {result.run_dir}"
    )
    if result.best:
        print(
            f"best tracked FID {result.best['fid']:.2f} at step {result.best['step']}, kept in "
            f"{run.best} (sample it with --checkpoint best)"
        )
    for stretch in result.collapses:
        print(f"collapse: {stretch.describe()}")
    return 0


def command_sample(args: argparse.Namespace, module: DatasetModule) -> int:
    from common.sampling import Generator, weights_config, write_images
    from common.streams import code_rows_noise

    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out must end in .png (a grid) or .npy (a uint8 array), got {out.name!r}")
    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    if args.n > MAX_SAMPLES:
        raise UsageError(
            f"--n {args.n} is more than the {MAX_SAMPLES} images one sample command writes (they are held "
            "in memory); run it several times with different --seed values"
        )
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out} is a directory")
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    run = RunDir(args.run)
    _, config, spec = open_run(run, module, f"sample --run {run.path} --out {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = run.resolve_checkpoint(args.checkpoint)
    sampled, weights = weights_config(config, args.weights)
    seed = config.seed if args.seed is None else args.seed
    columns = None
    if args.by_code:
        if not config.info_codes:
            raise UsageError(f"--by-code: {run.path} was trained without --info-codes, so z holds no code")
        columns = max(args.n // config.info_codes, 1)
    with Generator.from_run(run, spec, sampled, checkpoint, args.sampler_stats) as generator:
        if args.by_code:
            images = generator.images(code_rows_noise(config, columns, seed))
        else:
            images = generator.generate(args.n, seed)
    write_images(images, out, columns)
    source = f"{generator.checkpoint}, {weights} weights, {generator.sampler_stats} statistics"
    print(f"wrote {len(images)} images to {out} (from {source})")
    return 0


def main(module: DatasetModule, argv: Sequence[str] | None = None) -> int:
    args = build_parser(module).parse_args(argv)
    command = command_train if args.command == "train" else command_sample
    return exit_code(module.prog, lambda: command(args, module))
