"""The shape of the house: who may import whom, and the dataset modules reading as the notebooks."""

import ast
from pathlib import Path

import pytest
import tensorflow as tf

from common.config import Config
from common.modules import module_for_dataset, registered_modules
from common.step import build_gan
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
    assert ops and ops == step_ops(lambda: build_gan(model.SPEC, config, 64, 10))
    graph = tf.Graph()
    with graph.as_default():
        tower = model.model_loss(model.model_inputs(64, config), config)
    assert tower.fake_images.shape.as_list()[1:] == list(model.IMAGE_SHAPE)


def test_dataset_modules_are_found_through_their_entry_points():
    assert {m.prog for m in registered_modules()} == {"dcgan_mnist", "dcgan_cifar"}
    assert module_for_dataset("fashion_mnist").architectures is mnist_model.ARCHITECTURES
    assert module_for_dataset("cifar10").architectures is cifar_model.ARCHITECTURES
