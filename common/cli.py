"""The command line both dataset modules share: `train`, `sample` and `export`, and exit-2 error handling.

`train`'s flags come from the settings' declarations (common.settings: one per setting, with its flag,
type, range, help group and resume rule, and the dataset module's own). Every such flag's default is None,
meaning "not given": the architecture's default applies (the notebook's values for the notebook model),
and on --resume the run's own setting applies. Bad input exits with status 2 and a one-line message,
before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import settings
from common.architecture import ArchSpec
from common.command import OneLineParser, UsageError, exit_code
from common.config import SAMPLER_STATS, Config, ConfigError, resolve
from common.data import DataError, ImageSet, load_image_folder
from common.modules import DatasetModule, open_run
from common.rundir import EVAL_FILE, RUN_FILES, RunDir, RunDirError, check_writable_dir
from common.sampling import WEIGHTS
from common.settings import Setting

# `sample` holds all its images in memory and a grid of them in one PNG: past this it is not a sample.
MAX_SAMPLES = 100_000
DEFAULT_SAMPLES, DEFAULT_WALKS, DEFAULT_WALK_STEPS = 64, 8, 8
MAX_WALK_FRAMES = 1_000  # frames of one walk: the GIF holds them all


def build_parser(module: DatasetModule) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=module.prog, description=f"DCGAN in TensorFlow 1.x graph style: {module.prog}"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser(
        "train",
        help="train a GAN into a run directory",
        description=f"Train a GAN into a run directory. The defaults shown are {module.prog}'s with --arch "
        f"{module.default_arch}; another --arch or --recipe brings its own, --resume keeps the run's, and "
        "a flag given always wins.",
    )
    # The two flags of the command itself; every other one is a setting, saved in config.json.
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    groups = {title: train.add_argument_group(title, text) for title, text in settings.GROUPS.items()}
    defaults = shown_defaults(module)
    for setting in declared(module):
        add_setting(groups[setting.group], setting, module, defaults[setting.field])

    sample = commands.add_parser("sample", help="generate images from a run's latest checkpoint")
    sample.add_argument("--run", required=True, help="run directory")
    sample.add_argument(
        "--n",
        type=int,
        help=f"number of images ({DEFAULT_SAMPLES}); with --walk, of walks, one per row ({DEFAULT_WALKS})",
    )
    sample.add_argument(
        "--out",
        required=True,
        help="FILE.png (a grid) or FILE.npy (uint8 array); with --walk, FILE.png and FILE.gif (both written)",
    )
    sample.add_argument("--seed", type=int, help="noise seed (the run's seed)")
    add_sampler_choices(sample, "sample")
    sample.add_argument(
        "--by-code",
        action="store_true",
        help="runs trained with --info-codes K: K rows, one per code value, each row the same n // K "
        "noise vectors; with --walk, each row the same walk, at its code value",
    )
    sample.add_argument(
        "--walk",
        type=int,
        metavar="K",
        help="latent walks: each row passes through K points of z (sample's noise), spherical "
        "interpolation between them, --walk-steps steps from each to the next; writes a grid (a row per "
        "walk) and an animated GIF",
    )
    sample.add_argument(
        "--walk-steps",
        type=int,
        default=DEFAULT_WALK_STEPS,
        help=f"with --walk: steps from one point to the next, the same in every row ({DEFAULT_WALK_STEPS})",
    )

    export = commands.add_parser(
        "export",
        help="write a run's sampler as a TensorFlow SavedModel (signatures generate and sample)",
        description="Write a run's sampler as a TensorFlow SavedModel that serves without this project: "
        "signature `generate` (z float32 [N, latent length] -> images uint8 [N, H, W, C]) and `sample` (n, "
        "seed int32 scalars -> the images of `sample --n N --seed SEED`, bit for bit).",
    )
    export.add_argument("--run", required=True, help="run directory")
    export.add_argument("--out", required=True, help="the SavedModel's folder (must not exist, or be empty)")
    add_sampler_choices(export, "export")
    return parser


def add_sampler_choices(parser: argparse.ArgumentParser, command: str) -> None:
    """--checkpoint, --sampler-stats and --weights: which generator `sample` and `export` take."""
    parser.add_argument(
        "--checkpoint",
        help="which checkpoint: best (the lowest tracked FID; the default when the run kept one), latest "
        "(the default otherwise), or a step number",
    )
    parser.add_argument(
        "--sampler-stats", choices=SAMPLER_STATS, help="batch-norm statistics (default: the run's setting)"
    )
    parser.add_argument(
        "--weights",
        choices=WEIGHTS,
        help="the generator's weight average (runs trained with --g-ema-decay) or its trained weights "
        "(default: what the run samples from)"
        + ("; the SavedModel's `sample` is `sample` with the same choice" if command == "export" else ""),
    )


def declared(module: DatasetModule) -> tuple[Setting, ...]:
    """Every setting of `train` in `module`: the shared declarations, then the module's own."""
    return (*settings.SETTINGS, *module.settings)


def default_dataset(module: DatasetModule, spec: ArchSpec, flags: dict[str, Any]) -> str:
    return (
        flags.get("dataset")
        or spec.defaults.get("dataset")
        or module.defaults.get("dataset")
        or module.datasets[0]
    )


def shown_defaults(module: DatasetModule) -> dict[str, Any]:
    """The settings of a new run of `module` given no flag: --help's defaults."""
    spec = module.architectures[module.default_arch]
    values = {**Config().to_dict(), **module.defaults, **spec.defaults, "arch": module.default_arch}
    return {**values, "dataset": default_dataset(module, spec, {})}


def add_setting(group: Any, setting: Setting, module: DatasetModule, default: Any) -> None:
    """The flag of one declared setting; its default stays None ("not given": see resolve_train_config)."""
    text = setting.help_text(module)
    if setting.needs_arch:
        notebook = getattr(Config(), setting.field)
        names = [n for n, spec in module.architectures.items() if setting.arch_offers_more(spec, notebook)]
        if len(names) < len(module.architectures):
            text += f"; --arch {', '.join(names)} only" if names else f"; no --arch of {module.prog} has it"
    options: dict[str, Any] = {"dest": setting.field}
    if setting.kind is bool:  # a flag without a value, which sets the other value than the default
        options.update(action="store_const", const=not default)
    else:
        text += f" (default: {setting.default_text or setting.show(default)})"
        choices = setting.choices or tuple(getattr(module, setting.module_choices, ()))
        if choices:
            options["choices"] = choices
        elif setting.parse is None and setting.kind is not str:
            options["type"] = setting.kind
        if setting.metavar:
            options["metavar"] = setting.metavar
    group.add_argument(setting.option, help=text.replace("%", "%%"), **options)


def config_flags(args: argparse.Namespace, module: DatasetModule) -> dict[str, Any]:
    """The Config fields the user gave on the command line (None: not given), each through its
    declaration's `parse` (e.g. --class NAME|LABEL -> class_label)."""
    given = {}
    for setting in declared(module):
        value = getattr(args, setting.field)
        given[setting.field] = setting.parse(value) if value is not None and setting.parse else value
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
        check_resume(saved, flags, declared(module), run.path)
        if flags.get("images") is not None and saved.images is None:
            raise ConfigError(
                f"--resume --images: {run.path} learned {saved.dataset}, not a folder of images"
            )
        given = {k: v for k, v in flags.items() if v is not None and k != "out"}  # out: the run's own path
        config = saved.replace(**given, out=str(run.path)).validate(module.settings)
        # the folder a resume writes in, before the data and the classifier are loaded
        for folder in (run.path, run.checkpoints, run.samples, run.events):
            if folder.is_dir():
                check_writable_dir(folder)
        check_max_steps(run, flags.get("max_steps"))
        return module.architectures[config.arch], config, run

    arch = flags.get("arch") or module.default_arch
    spec = module.architectures[arch]
    images = flags.get("images")
    if images is not None:  # the run learns the folder: its data set is the module's folder data set
        if flags.get("dataset") is not None:
            raise ConfigError("--images DIR and --dataset NAME: a run learns one of the two")
        if flags.get("class_label") is not None:
            raise ConfigError("--class picks a CIFAR-10 class; an --images run learns its whole folder")
        dataset = module.folder_dataset
        name = f"images-{Path(images).name or 'folder'}"
    else:
        dataset = default_dataset(module, spec, flags)
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
        **({"class_label": None} if images is not None else {}),
    }
    config = resolve(base, flags, module.settings)
    check_arch_options(spec, config, declared(module))
    run = RunDir(config.out)
    check_writable_dir(run.path)
    found = run.run_files()
    if found:
        what = "a run" if run.has_run() else f"run files ({', '.join(found)}) but no config.json"
        raise RunDirError(
            f"{run.path} already holds {what}: add --resume to continue it, or choose another --out"
        )
    return spec, config, run


def check_max_steps(run: RunDir, max_steps: int | None) -> None:
    """Refuse, on --resume, a --max-steps at or below the step the run goes on from (its newest checkpoint
    that reads whole): it would train nothing, and record a shorter run than the one in the folder."""
    checkpoint = run.latest_checkpoint(warn=False)  # the training says which one it skips, once
    step = int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0
    if max_steps is not None and max_steps <= step:
        raise ConfigError(
            f"--resume --max-steps {max_steps}: {run.path} is at step {step} already; give a --max-steps "
            f"above {step} to train on"
        )


def check_resume(saved: Config, flags: dict[str, Any], declared: Sequence[Setting], run: Path) -> None:
    """Refuse, on --resume of the run in `run` (whose settings are `saved`), a flag that changes a setting
    its declaration fixes (settings.FIXED: the graph's variables or the data; FIXED_ORDER: the data order;
    FIXED_RECIPE: --recipe)."""
    for setting in declared:
        refusal = setting.resume_refusal(getattr(saved, setting.field), flags.get(setting.field), run)
        if refusal:
            raise ConfigError(refusal)


def check_arch_options(spec: ArchSpec, config: Config, declared: Sequence[Setting] | None = None) -> None:
    """Refuse a setting the architecture's networks never read (its declaration's `needs_arch` names the
    ArchSpec attribute that says what they implement), rather than ignore it silently; `declared`:
    settings.SETTINGS when None."""
    notebook = Config()
    for setting in settings.SETTINGS if declared is None else declared:
        refusal = setting.arch_refusal(spec, getattr(config, setting.field), getattr(notebook, setting.field))
        if refusal:
            raise ConfigError(refusal)


def command_train(args: argparse.Namespace, module: DatasetModule) -> int:
    from common.step import total_steps
    from common.train import NanLossError

    spec, config, run = resolve_train_config(args, module)
    # before anything is written: bad data leaves no run directory
    data = load_training_data(module, spec, config, run if args.resume else None, not args.no_progress)
    evaluator = None
    # Quality is tracked when the run is long enough to reach an evaluation (the classifier it needs is
    # trained once per data set and cached: a short smoke run should not pay for it).
    if 0 < config.eval_every <= total_steps(config, len(data.images)):
        from common.run_evaluation import TrainingEvaluator, untrackable

        problem = untrackable(config, data)
        if problem:
            print(problem, file=sys.stderr)
        else:
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
            f"{run.best} (sample, evaluate and export use it unless --checkpoint latest)"
        )
    for stretch in result.collapses:
        print(f"collapse: {stretch.describe()}")
    return 0


def load_training_data(
    module: DatasetModule, spec: ArchSpec, config: Config, resumed: RunDir | None, progress: bool
) -> ImageSet:
    """The run's training images: the dataset module's loader, or with --images the folder (converted to
    the architecture's image shape, cached; DataError, exit 2, for fewer images than one batch, and on
    --resume for a folder whose contents are not those the run learned)."""
    if config.images is None:
        return module.load_data(config)
    data = load_image_folder(config.images, spec.image_shape, progress)
    if len(data.images) < config.batch_size:
        raise DataError(
            f"--images {config.images} holds {len(data.images)} readable images, fewer than one batch of "
            f"{config.batch_size}: add images, or lower --batch-size"
        )
    if resumed is not None:
        learned = resumed.read_config().get("data", {}).get("folder", {})
        if learned.get("checksum") != data.record["checksum"]:
            raise DataError(
                f"--resume: the images in {config.images} are not those {resumed.path} learned (now "
                f"{len(data.images)} images, checksum {data.record['checksum'][:12]}; the run learned "
                f"{learned.get('count', '?')}, checksum {str(learned.get('checksum'))[:12]}): restore the "
                "folder, or start a new run with another --out"
            )
    return data


def command_sample(args: argparse.Namespace, module: DatasetModule) -> int:
    from common.sampling import Generator, weights_config, write_images
    from common.streams import code_rows

    out = Path(args.out)
    walk = args.walk is not None
    check_sample_args(args, out, walk)
    run = RunDir(args.run)
    _, config, spec = open_run(run, module, f"sample --run {run.path} --out {out}")
    for path in {out, out.with_suffix(".png"), out.with_suffix(".gif")} if walk else {out}:
        own = run_file(run, path)
        if own:
            raise UsageError(
                f"--out {path} is the run's own {own}: sample would overwrite what training wrote; choose a "
                f"path outside {run.path}'s run files"
            )
    n = args.n or DEFAULT_SAMPLES
    columns = None
    if args.by_code:
        if not config.info_codes:
            raise UsageError(f"--by-code: {run.path} was trained without --info-codes, so z holds no code")
        if not walk and n < config.info_codes:
            raise UsageError(
                f"--by-code draws a row for each of the run's {config.info_codes} code values: --n "
                f"{n} is fewer; give --n {config.info_codes} or more (rows of n // {config.info_codes})"
            )
        columns = n // config.info_codes
    sampled, weights = weights_config(config, args.weights, args.sampler_stats)
    checkpoint = run.resolve_checkpoint(run.chosen_checkpoint(args.checkpoint))
    seed = config.seed if args.seed is None else args.seed
    out.parent.mkdir(parents=True, exist_ok=True)
    with Generator.from_run(run, spec, sampled, checkpoint, args.sampler_stats) as generator:
        if walk:
            written = sample_walks(generator, args, config, seed, out)
        elif args.by_code:
            noise = generator.latent(columns, seed)[:, : config.noise_dim]
            images = generator.images(code_rows(noise, config.info_codes))
            write_images(images, out, columns)
            rounded = (
                f"; --n {n} rounded down to a multiple of {config.info_codes}" if len(images) != n else ""
            )
            written = f"{len(images)} images ({config.info_codes} code rows of {columns}{rounded}) to {out}"
        else:
            images = generator.generate(n, seed)
            write_images(images, out)
            written = f"{len(images)} images to {out}"
    source = f"{generator.checkpoint}, {weights} weights, {generator.sampler_stats} statistics"
    print(f"wrote {written} (from {source})")
    return 0


def check_sample_args(args: argparse.Namespace, out: Path, walk: bool) -> None:
    """`sample`'s arguments, refused (UsageError, exit 2) before the run is opened."""
    suffixes = (".png", ".gif") if walk else (".png", ".npy")
    if out.suffix not in suffixes:
        what = "FILE.png or FILE.gif (both are written)" if walk else ".png (a grid) or .npy (a uint8 array)"
        raise UsageError(f"--out must end in {what}, got {out.name!r}")
    if args.n is not None and args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    if walk:
        if args.walk < 2:
            raise UsageError(f"--walk must be at least 2 (points to walk between), got {args.walk}")
        if args.walk_steps < 1:
            raise UsageError(f"--walk-steps must be at least 1, got {args.walk_steps}")
        frames = (args.walk - 1) * args.walk_steps + 1
        if frames > MAX_WALK_FRAMES:
            raise UsageError(
                f"--walk {args.walk} with --walk-steps {args.walk_steps} makes {frames} frames, more than "
                f"{MAX_WALK_FRAMES}"
            )
        if args.by_code and args.n is not None:
            raise UsageError("--walk --by-code draws one walk per code value: leave out --n")
        rows = args.n or DEFAULT_WALKS
        if rows * frames > MAX_SAMPLES:
            raise UsageError(f"{rows} walks of {frames} frames are more than {MAX_SAMPLES} images")
    elif args.walk_steps != DEFAULT_WALK_STEPS:
        raise UsageError("--walk-steps needs --walk K")
    if args.n is not None and args.n > MAX_SAMPLES:
        raise UsageError(
            f"--n {args.n} is more than the {MAX_SAMPLES} images one sample command writes (they are held "
            "in memory); run it several times with different --seed values"
        )
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be a non-negative integer below 2^63, got {args.seed}")
    for path in {out, out.with_suffix(".png"), out.with_suffix(".gif")} if walk else {out}:
        if path.exists() and path.is_dir():
            raise UsageError(f"--out {path} is a directory")
    check_writable_dir(out.parent if str(out.parent) else Path("."))


def sample_walks(generator: Any, args: argparse.Namespace, config: Config, seed: int, out: Path) -> str:
    """--walk K: the walks' images, written as a grid and a GIF; what was written, for the last line."""
    from common.walks import code_walk_points, walk_latents, walk_points, write_walk

    if args.by_code:
        noise = generator.latent(args.walk, seed)[:, : config.noise_dim]
        points = code_walk_points(noise, config.info_codes)
    else:
        rows = args.n or DEFAULT_WALKS
        points = walk_points(generator.latent(rows * args.walk, seed), rows, args.walk)
    z = walk_latents(points, args.walk_steps, config.noise_dim)
    images = generator.images(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:2], *generator.spec.image_shape)
    png, gif = write_walk(images, out)
    return f"{len(points)} walks of {z.shape[1]} frames through {args.walk} points to {png} and {gif}"


def command_export(args: argparse.Namespace, module: DatasetModule) -> int:
    from common.export import check_exportable, describe, export_generator
    from common.sampling import Generator, weights_config

    out = Path(args.out)
    if not str(args.out).strip():
        raise UsageError("--out is empty: name the SavedModel's folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(f"--out {out} exists and is not an empty folder: choose another, or remove it")
    run = RunDir(args.run)
    _, config, spec = open_run(run, module, f"export --run {run.path} --out {out}")
    check_exportable(config)
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    sampled, weights = weights_config(config, args.weights, args.sampler_stats)
    checkpoint = run.resolve_checkpoint(run.chosen_checkpoint(args.checkpoint))
    with Generator.from_run(run, spec, sampled, checkpoint, args.sampler_stats) as generator:
        info = describe(generator, run.path, weights, module.prog)
        export_generator(generator, out, info, MAX_SAMPLES)
    print(
        f"wrote the SavedModel {out} (from {generator.checkpoint}, {weights} weights, "
        f"{generator.sampler_stats} statistics): signatures generate (z float32 [N, {config.latent_dim}]) "
        f"and sample (n, seed int32); saved_model_cli show --dir {out} --all"
    )
    return 0


def run_file(run: RunDir, path: Path) -> str | None:
    """The run's own file or folder (RUN_FILES, eval.json) that `path` is or lies in, or None."""
    target, root = path.resolve(), run.path.resolve()
    for name in (*RUN_FILES, EVAL_FILE):
        own = root / name
        if target == own or own in target.parents:
            return name
    return None


def main(module: DatasetModule, argv: Sequence[str] | None = None) -> int:
    args = build_parser(module).parse_args(argv)
    command = {"train": command_train, "sample": command_sample, "export": command_export}[args.command]
    return exit_code(module.prog, lambda: command(args, module))
