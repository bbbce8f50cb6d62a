"""The shape of the house: who may import whom, and the dataset modules reading as the notebooks."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from common.config import Config
from common.gan import build_gan
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


@pytest.mark.parametrize("model", [mnist_model, cifar_model], ids=["mnist", "cifar"])
def test_model_file_reads_as_the_notebook(model):
    path = Path(model.__file__)
    assert len(path.read_text().splitlines()) < 150
    functions = [node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)]
    assert tuple(f for f in functions if f in NOTEBOOK_ORDER) == NOTEBOOK_ORDER


@pytest.mark.parametrize("model", [mnist_model, cifar_model], ids=["mnist", "cifar"])
def test_model_file_steps_build_the_training_graph(model):
    """model_inputs + model_opt (through model_loss) are the ops build_gan trains with, op for op."""
    config = Config(batch_size=8)

    def step_ops(build) -> list[tuple[str, str]]:
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(config.seed)
            build()
        return [
            (op.name, op.type) for op in graph.get_operations() if op.name.startswith(("step", "second_step"))
        ]

    def from_model() -> None:
        model.model_opt(model.model_inputs(64, config), config, total_steps=10)

    ops = step_ops(from_model)
    assert ops and ops == step_ops(lambda: build_gan(model.NOTEBOOK, config, 64, 10))
    graph = tf.Graph()
    with graph.as_default():
        tower = model.model_loss(model.model_inputs(64, config), config)
    assert tower.fake_images.shape.as_list()[1:] == list(model.IMAGE_SHAPE)


def test_dataset_modules_are_found_through_their_entry_points():
    assert {m.prog for m in registered_modules()} == {"dcgan_mnist", "dcgan_cifar"}
    assert module_for_dataset("fashion_mnist").architectures is mnist_model.ARCHITECTURES
    assert module_for_dataset("cifar10").architectures is cifar_model.ARCHITECTURES


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
