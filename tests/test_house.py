"""The shape of the house: who may import whom, and the dataset modules reading as the notebooks."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from common.modules import module_for_dataset, registered_modules
from dcgan_cifar import model as cifar_model
from dcgan_mnist import model as mnist_model

v1 = tf.compat.v1
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "dcgan_mnist", "dcgan_cifar", "benchmarks")
NOTEBOOK_ORDER = ("model_inputs", "generator", "discriminator", "model_loss", "model_opt", "train")


def project_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (at any depth of its code)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            targets = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    targets |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets.add(node.module)
                    targets |= {f"{node.module}.{alias.name}" for alias in node.names}
            graph[name] = {t for t in targets if t.split(".")[0] in PACKAGES}
    modules = set(graph)
    # `from common import gan` names the module common.gan; keep only names that are modules.
    return {name: {t for t in targets if t in modules and t != name} for name, targets in graph.items()}


def test_common_never_imports_a_dataset_package():
    offenders = {
        (name, target)
        for name, targets in project_imports().items()
        if name.startswith("common")
        for target in targets
        if target.startswith(("dcgan_mnist", "dcgan_cifar"))
    }
    assert not offenders


def test_dcgan_cifar_does_not_import_dcgan_mnist():
    imports = project_imports()
    assert not {
        t for n, ts in imports.items() if n.startswith("dcgan_cifar") for t in ts if "dcgan_mnist" in t
    }


def import_cycle(imports: dict[str, set[str]]) -> list[str] | None:
    """One loop of imports, as a path of module names, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(imports.get(name, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target, path + [target])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(imports):
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return None


def test_no_import_cycle():
    assert import_cycle(project_imports()) is None


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The cycle check can fail: a two-module loop in a scratch tree is found."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "common" / "a.py").write_text("from common.b import x\n")
    (tmp_path / "common" / "b.py").write_text("import common.a\nx = 1\n")
    assert import_cycle(project_imports(tmp_path)) == ["common.a", "common.b", "common.a"]


MODELS = {"mnist": mnist_model, "cifar": cifar_model}


@pytest.mark.parametrize("model", list(MODELS.values()), ids=list(MODELS))
def test_model_file_reads_as_the_notebook(model):
    """The notebook's functions in its order, holding its TF code: the placeholders, the smoothed sigmoid
    cross-entropy, and each Adam under a control dependency on UPDATE_OPS."""
    text = Path(model.__file__).read_text()
    functions = [node.name for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)]
    assert tuple(f for f in functions if f in NOTEBOOK_ORDER) == NOTEBOOK_ORDER
    for code in (
        "v1.placeholder_with_default(",
        "tf.nn.sigmoid_cross_entropy_with_logits(",
        "tf.control_dependencies(",
        "v1.get_collection(UPDATE_OPS",
        "v1.train.AdamOptimizer(",
        ".minimize(",
    ):
        assert code in text, code
    assert text.count("v1.train.AdamOptimizer(") == 2 and text.count("v1.get_collection(UPDATE_OPS") == 2


class Reached(Exception):
    """Raised by a model function the test swapped in: the command reached it."""


def _cli_run(prog: str, data_dir: str, out: Path) -> None:
    import importlib

    cli = importlib.import_module(f"{prog}.__main__").cli
    cli(["train", "--data-dir", data_dir, "--out", str(out), "--max-steps", "2", "--batch-size", "8",
         "--no-progress", "--precision", "float32"])  # fmt: skip


@pytest.mark.parametrize(
    "function", ("model_inputs", "generator", "discriminator", "model_loss", "model_opt")
)
@pytest.mark.parametrize("dataset", list(MODELS))
def test_train_command_runs_the_model_files_functions(function, dataset, monkeypatch, tmp_path):
    """`python -m dcgan_X train` builds its graph with the model file's own functions: each one, replaced
    in turn by one that raises, is reached by the command (and the command would not run without it)."""
    from tests.conftest import synthetic_horse_dir, synthetic_mnist_dir

    model = MODELS[dataset]

    def reached(*args, **kwargs):
        raise Reached(function)

    monkeypatch.setattr(model, function, reached)
    data_dir, prog = (synthetic_mnist_dir(), "dcgan_mnist") if dataset == "mnist" else (
        synthetic_horse_dir(), "dcgan_cifar")  # fmt: skip
    with pytest.raises(Reached, match=function):
        _cli_run(prog, data_dir, tmp_path / "run")


@pytest.mark.parametrize("dataset", list(MODELS))
def test_train_command_trains_through_the_model_files_train(dataset, monkeypatch, tmp_path):
    """The command hands the run to the model file's `train` (which the README sends a reader to)."""
    from tests.conftest import synthetic_horse_dir, synthetic_mnist_dir

    model = MODELS[dataset]
    calls = []
    real_train = model.train

    def recorded(*args, **kwargs):
        calls.append(args)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(model, "train", recorded)
    data_dir, prog = (synthetic_mnist_dir(), "dcgan_mnist") if dataset == "mnist" else (
        synthetic_horse_dir(), "dcgan_cifar")  # fmt: skip
    _cli_run(prog, data_dir, tmp_path / "run")
    assert len(calls) == 1 and (tmp_path / "run" / "checkpoints").is_dir()


def test_every_architecture_is_a_module_with_the_notebooks_functions():
    """Each architecture (the notebook and each write-up) is a module holding the notebook's functions,
    and the shared code reaches them through its spec."""
    from common.architecture import MODEL_FUNCTIONS

    for module in registered_modules():
        for name, spec in module.architectures.items():
            assert spec.name == name
            assert spec.model.SPEC is spec
            for function in MODEL_FUNCTIONS:
                assert callable(getattr(spec.model, function)), (name, function)
            assert spec.generator is spec.model.generator


def test_dataset_modules_are_found_through_their_entry_points():
    from dcgan_mnist.__main__ import ARCHITECTURES

    assert {m.prog for m in registered_modules()} == {"dcgan_mnist", "dcgan_cifar"}
    assert module_for_dataset("fashion_mnist").architectures is ARCHITECTURES
    assert module_for_dataset("cifar10").architectures["notebook"] is cifar_model.SPEC
    assert ARCHITECTURES["notebook"] is mnist_model.SPEC


# One job per file: the metrics are pure numbers, `python -m common.evaluate` and `python -m common.compare`
# are command lines over modules that do the work.
COMMAND_LINES = ("common.evaluate", "common.compare")
PRINTING_HELPERS = {"summary_table"}  # what a command line may define besides build_parser/main/command_*


def module_path(name: str, root: Path = ROOT) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def test_metrics_import_neither_tensorflow_nor_a_command_line():
    """common.metrics is numbers on arrays: it imports no TensorFlow and no argparse itself (scipy loads
    argparse on its own), and loading it loads no TensorFlow and no project module but the data layer's
    (for DataError)."""
    tree = ast.parse(module_path("common.metrics").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name.split(".")[0] for name in imported} & {"tensorflow", "argparse"}
    code = "import sys, common.metrics; print(sorted(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(run.stdout)
    assert "common.metrics" in loaded and not [m for m in loaded if m.split(".")[0] == "tensorflow"]
    project = [m for m in loaded if m.split(".")[0] in PACKAGES]
    assert {m for m in project if not m.startswith("common.data")} == {"common", "common.metrics"}


def command_line_definitions(path: Path) -> list[str]:
    """The top-level classes and functions of a command-line module that are not its command line."""
    return [
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.ClassDef)
        or (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name not in {"build_parser", "main", *PRINTING_HELPERS}
            and not node.name.startswith("command_")
        )
    ]


@pytest.mark.parametrize("name", COMMAND_LINES)
def test_command_line_modules_define_only_the_command_line(name):
    assert command_line_definitions(module_path(name)) == []


def test_the_command_line_check_finds_work_done_in_a_command_line(tmp_path):
    """The check can fail: a metric or a class defined beside main is found."""
    path = tmp_path / "evaluate.py"
    path.write_text(
        "class Run:\n    pass\n\ndef build_parser(): ...\n\ndef main(): ...\n\ndef fid(a, b): ...\n"
    )
    assert command_line_definitions(path) == ["Run", "fid"]


def test_no_module_imports_a_command_line():
    """The work is imported from the modules that do it, never from a command line (tests may run them)."""
    offenders = {
        (name, target)
        for name, targets in project_imports().items()
        for target in targets
        if target in COMMAND_LINES
    }
    assert not offenders


def called_names(function: ast.FunctionDef) -> set[str]:
    """The names a function calls: `f(...)` as f, `module.f(...)` as module.f."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            target = node.func
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                names.add(f"{target.value.id}.{target.attr}")
    return names


@pytest.mark.parametrize("model", list(MODELS.values()), ids=list(MODELS))
def test_batch_size_reaches_the_graph_in_three_calls(model):
    """--batch-size: the command hands the Config to the model file's `train` (1), which calls its
    `model_inputs` (2), which calls common.pipeline.step_batches (3), where the batch is sliced; `train`
    itself calls model_opt and runs the finalized graph through the shared Session loop."""
    functions = {
        node.name: node for node in ast.parse(Path(model.__file__).read_text()).body
        if isinstance(node, ast.FunctionDef)
    }  # fmt: skip
    assert {"model_inputs", "model_opt", "loop.run_session"} <= called_names(functions["train"])
    assert "pipeline.step_batches" in called_names(functions["model_inputs"])
    cli = ast.parse((ROOT / "common" / "cli.py").read_text())
    command_train = next(n for n in cli.body if isinstance(n, ast.FunctionDef) and n.name == "command_train")
    calls = {ast.unparse(node.func) for node in ast.walk(command_train) if isinstance(node, ast.Call)}
    assert "spec.model.train" in calls
    pipeline = ast.parse((ROOT / "common" / "pipeline.py").read_text())
    step_batches = next(
        n for n in pipeline.body if isinstance(n, ast.FunctionDef) and n.name == "step_batches"
    )
    assert "config.batch_size" in ast.unparse(step_batches)
