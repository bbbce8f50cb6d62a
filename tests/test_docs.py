"""The docs stay true: every `python -m` command of the project and every `--flag` that README.md and
docs/ name exists, as the commands' own --help says. A renamed or removed flag fails here, not in a
reader's terminal."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "dcgan_mnist", "dcgan_cifar", "benchmarks")
COMMAND = re.compile(r"python3? -m ([A-Za-z_][\w.]*)([^\n`|]*)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w])")
# Flags the docs name that belong to other programs (pip, pytest, TensorFlow's tools), not to a command of
# the project: checked against nothing.
OTHER_PROGRAMS = {"--upgrade", "--all", "--dir", "--durations", "--logdir"}
# Flags the docs name to say the project has none (docs/benchmarks.md: "The project has no `--schedule`").
NAMED_AS_ABSENT = {"--schedule"}


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def logical_lines(text: str) -> list[str]:
    """The text's lines, with shell continuations (a line ending in a backslash) joined."""
    return text.replace("\\\n", " ").splitlines()


def commands(text: str) -> list[tuple[str, str]]:
    """(module, the rest of the line) of every `python -m MODULE ...` of the project in `text`."""
    found = []
    for line in logical_lines(text):
        for match in COMMAND.finditer(line):
            module = match.group(1)
            if module.split(".")[0] in PACKAGES:
                found.append((module, match.group(2)))
    return found


HELP_SCRIPT = """
import contextlib, io, json, runpy, sys
helps = {}
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    sys.argv = [argv[0], *argv[1:], "--help"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        except SystemExit:
            pass
        except Exception as err:
            out.write(f"FAILED: {err!r}")
    helps[" ".join(argv)] = out.getvalue()
print(json.dumps(helps))
"""


def read_helps(invocations: list[list[str]]) -> dict[str, str]:
    """The --help text of each invocation ([module, subcommand...]), in one Python process."""
    run = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, json.dumps(invocations)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def subcommands(help_text: str) -> list[str]:
    """The subcommands a --help's usage line lists: `{a,b,c} ...` (an option's choices have no `...`)."""
    match = re.search(r"\{([a-z_,]+)\} \.\.\.", help_text)
    return match.group(1).split(",") if match else []


@functools.cache
def project_helps() -> dict[str, str]:
    """--help of every project command the docs name, and of each of their subcommands."""
    modules = sorted({module for path in doc_files() for module, _ in commands(path.read_text())})
    helps = read_helps([[module] for module in modules])
    nested = [[module, sub] for module in modules for sub in subcommands(helps[module])]
    return {**helps, **(read_helps(nested) if nested else {})}


def problems(text: str, helps: dict[str, str]) -> list[str]:
    """What `text` names that no command has: unknown commands, subcommands, and flags."""
    found = []
    everything = "\n".join(helps.values())
    for module, rest in commands(text):
        if module not in helps or not helps[module].strip() or helps[module].startswith("FAILED"):
            found.append(f"python -m {module}: no such command")
            continue
        words = rest.split()
        key = module
        subs = subcommands(helps[module])
        if subs and words and not words[0].startswith("-"):
            if words[0] not in subs:
                found.append(f"python -m {module} {words[0]}: no such subcommand")
                continue
            key = f"{module} {words[0]}"
        for flag in FLAG.findall(rest):
            if flag not in OTHER_PROGRAMS and not re.search(rf"{re.escape(flag)}(?![\w-])", helps[key]):
                found.append(f"python -m {key}: no {flag}")
    for line in logical_lines(text):
        if COMMAND.search(line):
            continue
        for flag in FLAG.findall(line):
            known = flag in OTHER_PROGRAMS or flag in NAMED_AS_ABSENT
            if not known and not re.search(rf"{re.escape(flag)}(?![\w-])", everything):
                found.append(f"{flag}: no command has it ({line.strip()[:80]})")
    return found


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_the_docs_name_exists(path):
    assert problems(path.read_text(), project_helps()) == []


def test_the_doc_check_finds_a_removed_flag():
    """The check can fail: a flag, a subcommand and a command that do not exist are each found."""
    helps = {k: v for k, v in project_helps().items() if k.startswith("dcgan_mnist")}
    text = (
        "Train: `python -m dcgan_mnist train --epochs 2 --no-such-flag 3`.\n"
        "```\npython -m dcgan_mnist sample --run runs/mnist \\\n    --out a.png --walkies 5\n```\n"
        "`python -m dcgan_mnist fly`, `python -m common.nothing --x`.\n"
        "And in prose, `--vanished` and `--epochs`.\n"
    )
    assert problems(text, helps) == [
        "python -m dcgan_mnist train: no --no-such-flag",
        "python -m dcgan_mnist sample: no --walkies",
        "python -m dcgan_mnist fly: no such subcommand",
        "python -m common.nothing: no such command",
        "--vanished: no command has it (And in prose, `--vanished` and `--epochs`.)",
    ]
