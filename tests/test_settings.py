"""Every flag of `train` is declared once (common.settings): the parser, --help's groups, validation,
config.json and the resume check come from the declarations, so a new setting is one declaration, its
Config field and the code that uses it."""

import argparse
import collections
import dataclasses
import json
import math
import re

import pytest

import common.cli
import common.config
from common import settings
from common.cli import build_parser, check_arch_options, check_resume, config_flags, resolve_train_config
from common.config import Config, ConfigError, config_json
from common.settings import SETTINGS, Setting
from dcgan_cifar.__main__ import MODULE as CIFAR
from dcgan_mnist.__main__ import MODULE as MNIST
from dcgan_mnist.__main__ import cli
from tests.conftest import synthetic_mnist_dir

MODULES = (MNIST, CIFAR)
# The flags of the command itself, not settings: nothing of them is saved in config.json.
COMMAND_FLAGS = {"-h", "--help", "--resume", "--no-progress", "--verbose"}
NUMBERS = [s for s in (*SETTINGS, *CIFAR.settings) if s.low is not None or s.high is not None]
NOT_FREE = [s for s in SETTINGS if s.resume != settings.FREE]


def train_parser(module) -> argparse.ArgumentParser:
    parser = build_parser(module)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["train"]


def help_groups(module) -> dict[str, list[str]]:
    """`train --help` as {section title: the flags listed under it}."""
    groups: dict[str, list[str]] = {}
    title = None
    for line in train_parser(module).format_help().splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            groups[title] = []
        elif title is not None and (found := re.match(r"^  (-[-\w]+)", line)):
            groups[title].append(found.group(1))
    return groups


# --------------------------------------------------------------------------------------- structure
def test_every_config_field_is_declared_exactly_once():
    declared = collections.Counter(s.field for s in (*SETTINGS, *(s for m in MODULES for s in m.settings)))
    fields = [f.name for f in dataclasses.fields(Config)]
    assert sorted(declared) == sorted(fields)  # a declaration names a Config field, and every field has one
    assert set(declared.values()) == {1}
    # a module's own setting is declared by that module only, and its flag clashes with no shared one
    for module in MODULES:
        options = [s.option for s in (*SETTINGS, *module.settings)]
        assert len(options) == len(set(options))
        assert not {s.field for s in module.settings} & {s.field for s in SETTINGS}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.prog)
def test_every_train_flag_comes_from_a_declaration(module):
    flags = {option for action in train_parser(module)._actions for option in action.option_strings}
    assert flags - COMMAND_FLAGS == {s.option for s in (*SETTINGS, *module.settings)}
    # and it lands on its Config field, through the declaration's parse
    args = train_parser(module).parse_args([])
    assert set(config_flags(args, module)) == {s.field for s in (*SETTINGS, *module.settings)}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.prog)
def test_help_shows_each_flag_under_its_group_in_the_groups_order(module):
    groups = help_groups(module)
    assert [title for title in groups if title in settings.GROUPS] == list(settings.GROUPS)
    for setting in (*SETTINGS, *module.settings):
        assert setting.option in groups[setting.group], setting.field
    assert set(groups["options"]) == COMMAND_FLAGS - {"--help"}  # "-h, --help": one line
    # the notebook's hyper-parameters apart from the recipe's ingredients, the outputs and the speed
    assert {"--learning-rate", "--keep-prob", "--batch-size", "--quirks"} <= set(groups[settings.NOTEBOOK])
    assert {"--recipe", "--g-ema-decay", "--info-codes", "--d-norm"} <= set(groups[settings.RECIPE])
    assert {"--seed", "--eval-every", "--out"} <= set(groups[settings.OUTPUTS])
    assert set(groups[settings.SPEED]) == {"--precision", "--nondeterministic"}


def test_help_shows_the_modules_own_defaults():
    text = {m.prog: " ".join(train_parser(m).format_help().split()) for m in MODULES}
    assert "epochs over the training set (default: 5)" in text["dcgan_mnist"]
    assert "epochs over the training set (default: 50)" in text["dcgan_cifar"]  # the CIFAR notebook's
    assert "(default: horse)" in text["dcgan_cifar"]
    assert "images (InfoGAN); --arch notebook only (default: 0, off)" in text["dcgan_mnist"]  # needs_arch


# -------------------------------------------------------------------------------------- validation
def just_outside(setting: Setting) -> list:
    """A value just past each finite end of the setting's range (past a special value there too)."""
    values = []
    for end, is_open, step in ((setting.low, setting.open_low, -1), (setting.high, setting.open_high, 1)):
        if end is None:
            continue
        if setting.kind is int:
            value = end if is_open else end + step
            while setting.meaning(value):
                value += step
        else:
            value = end if is_open else math.nextafter(end, step * math.inf)
        values.append(value)
    return values


def just_inside(setting: Setting) -> list:
    ends = ((setting.low, setting.open_low, 1), (setting.high, setting.open_high, -1))
    if setting.kind is int:
        return [end + step if is_open else end for end, is_open, step in ends if end is not None]
    return [
        math.nextafter(end, step * math.inf) if is_open else end
        for end, is_open, step in ends
        if end is not None
    ]


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.option)
def test_validate_enforces_each_declared_range(setting):
    extra = CIFAR.settings if setting in CIFAR.settings else ()
    for value in just_outside(setting):
        with pytest.raises(ConfigError, match=f"^{re.escape(setting.option)} must be .*, got "):
            Config(**{setting.field: value}).validate(extra)
    for value in just_inside(setting):
        Config(**{setting.field: value}).validate(extra)
    for value, _ in setting.special:
        Config(**{setting.field: value}).validate(extra)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.kind is not str], ids=lambda s: s.option)
def test_validate_enforces_each_declared_type(setting):
    wrong = "3" if setting.kind is bool else float("nan") if setting.kind is float else 1.5
    with pytest.raises(ConfigError, match=f"^{re.escape(setting.option)}"):
        Config(**{setting.field: wrong}).validate()
    if setting.unset:
        Config(**{setting.field: None}).validate()
    else:
        with pytest.raises(ConfigError, match=f"^{re.escape(setting.option)}"):
            Config(**{setting.field: None}).validate()


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.choices], ids=lambda s: s.option)
def test_validate_enforces_each_declared_choice(setting):
    with pytest.raises(
        ConfigError, match=f"^{re.escape(setting.option)} must be one of {', '.join(setting.choices)}"
    ):
        Config(**{setting.field: "no-such-value"}).validate()


def test_messages_name_the_flag_the_user_gave(tmp_path, capsys):
    argv = ["train", "--data-dir", synthetic_mnist_dir(), "--no-progress", "--out", str(tmp_path / "run")]
    assert cli([*argv, "--g-ema-decay", "1.5"]) == 2
    assert "--g-ema-decay must be in [0, 1) (0: off), got 1.5" in capsys.readouterr().err
    assert cli([*argv, "--recipe", "improved", "--sampler-stats", "moving"]) == 2
    err = capsys.readouterr().err
    assert "--recipe improved samples an average of G's weights" in err and "recalibrated" in err
    assert "--g-ema " not in err
    assert cli([*argv, "--g-ema-decay", "0.9", "--sampler-stats", "moving"]) == 2
    assert "--g-ema-decay 0.9 samples an average" in capsys.readouterr().err
    assert cli([*argv, "--eval-samples", "-5", "--eval-every", "0"]) == 2  # was accepted: FID needs 2
    assert "--eval-samples must be at least 2, got -5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------- architectures and resume
@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.needs_arch], ids=lambda s: s.option)
def test_a_setting_an_architecture_lacks_is_refused(setting):
    spec = MNIST.architectures["tf_tutorial"]
    offered = getattr(spec, setting.needs_arch)
    value = 10 if isinstance(offered, bool) else next(c for c in setting.choices if c not in offered)
    config = Config(arch="tf_tutorial", **{setting.field: value}).validate()
    with pytest.raises(
        ConfigError, match=f"^{re.escape(setting.option)}.* not available for arch 'tf_tutorial'"
    ):
        check_arch_options(spec, config)
    check_arch_options(MNIST.architectures["notebook"], config.replace(arch="notebook"))


def another_value(setting: Setting, saved):
    """A value of the setting other than `saved` that a run could start with."""
    if setting.module_choices:
        return next(c for c in getattr(MNIST, setting.module_choices) if c != saved)
    candidates = [*setting.choices, *(v for v, _ in setting.special), *just_inside(setting)]
    return next(v for v in candidates if v != saved)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.option)
def test_check_resume_follows_each_declared_rule(setting, tmp_path):
    saved = Config()
    if setting.kind is bool:
        other = not getattr(saved, setting.field)
    elif setting.kind is str and not setting.choices and not setting.module_choices:
        other = "elsewhere"
    else:
        other = another_value(setting, getattr(saved, setting.field))
    flags = {setting.field: other}
    if setting.resume == settings.FREE:
        check_resume(saved, flags, SETTINGS, tmp_path)
    else:
        with pytest.raises(ConfigError, match="^--resume with "):
            check_resume(saved, flags, SETTINGS, tmp_path)
    check_resume(saved, {setting.field: getattr(saved, setting.field)}, SETTINGS, tmp_path)  # the same


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("settings") / "run"
    argv = ["train", "--data-dir", synthetic_mnist_dir(), "--batch-size", "16", "--no-progress"]
    assert cli([*argv, "--out", str(out), "--max-steps", "2", "--eval-every", "0"]) == 0
    return argv, out


@pytest.mark.parametrize("setting", NOT_FREE, ids=lambda s: s.option)
def test_resume_refuses_a_change_of_each_fixed_setting(two_step_run, capsys, setting):
    argv, out = two_step_run
    saved = Config.from_dict(json.loads((out / "config.json").read_text())["config"])
    before = (out / "config.json").read_text(), sorted(p.name for p in (out / "checkpoints").iterdir())
    other = another_value(setting, getattr(saved, setting.field))
    assert cli([*argv, "--out", str(out), "--resume", setting.option, str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    expected = {
        settings.FIXED: f"different architecture: {setting.field} is {getattr(saved, setting.field)!r}",
        settings.FIXED_ORDER: f"--resume with another {setting.option} ",
        settings.FIXED_RECIPE: "--resume with another recipe",
        settings.FIXED_PRECISION: f"--resume with another {setting.option} ",
    }[setting.resume]
    assert expected in err
    assert (
        (out / "config.json").read_text(),
        sorted(p.name for p in (out / "checkpoints").iterdir()),
    ) == before


# ---------------------------------------------------------------------------- one declaration is enough
def test_a_new_declaration_is_a_flag_with_help_validation_config_json_and_a_resume_rule(
    monkeypatch, tmp_path, capsys
):
    new = Setting(
        "d_warmup_steps", int, settings.RECIPE, "steps D trains alone before G starts", low=0, high=10_000,
        resume=settings.FIXED_ORDER,
    )  # fmt: skip
    # what else a new setting adds: its Config field (with the notebook's value) and the code that reads it
    extended = dataclasses.make_dataclass(
        "Config", [("d_warmup_steps", int, 0)], bases=(Config,), frozen=True
    )
    monkeypatch.setattr(settings, "SETTINGS", (*SETTINGS, new))
    monkeypatch.setattr(common.config, "Config", extended)
    monkeypatch.setattr(common.cli, "Config", extended)

    assert "--d-warmup-steps" in help_groups(MNIST)[settings.RECIPE]
    assert "steps D trains alone before G starts (default: 0)" in " ".join(
        train_parser(MNIST).format_help().split()
    )
    monkeypatch.chdir(tmp_path)
    parser = build_parser(MNIST)
    _, config, _ = resolve_train_config(parser.parse_args(["train", "--d-warmup-steps", "50"]), MNIST)
    assert config.d_warmup_steps == 50
    assert json.loads(config_json(config, {}))["config"]["d_warmup_steps"] == 50
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--d-warmup-steps", "many"])  # its type, from the declaration
    assert "invalid int value" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--d-warmup-steps must be a non-negative integer, got -1"):
        resolve_train_config(parser.parse_args(["train", "--d-warmup-steps", "-1"]), MNIST)
    with pytest.raises(ConfigError, match="--d-warmup-steps must be at most 10000"):
        extended(d_warmup_steps=10_001).validate()
    with pytest.raises(ConfigError, match="--resume with another --d-warmup-steps"):
        check_resume(config, {"d_warmup_steps": 60}, settings.SETTINGS, tmp_path)
