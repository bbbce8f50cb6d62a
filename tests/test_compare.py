"""python -m common.compare: the report's numbers are the runs' own, figures exist, bad input exits 2."""

import csv
import json
import shutil
import statistics

import pytest
from PIL import Image

from common.compare import main as compare
from dcgan_cifar.__main__ import cli as cifar_cli
from dcgan_mnist.__main__ import cli as mnist_cli
from tests.conftest import run_module, synthetic_cifar_dir, synthetic_mnist_dir

TINY = ["--batch-size", "16", "--no-progress", "--max-steps", "4", "--log-every", "2", "--sample-every", "2"]
EVALUATION = {
    "run": "cifar",
    "checkpoint": "model.ckpt-4",
    "step": 4,
    "n": 500,
    "dataset": "cifar10",
    "class_label": 7,
    "classifier": {"path": "classifier", "test_accuracy": 0.8125},
    "generated": {
        "fid": 123.456,
        "kid": 0.1234,
        "kid_stderr": 0.0056,
        "class_histogram": [50] * 10,
        "class_entropy": 0.987,
        "confident_share": 0.321,
        "target_class_share": 0.111,
        "checkerboard": 0.01234,
    },
    "real_floor": {
        "fid": 1.5,
        "kid": 0.0001,
        "kid_stderr": 0.0002,
        "class_histogram": [50] * 10,
        "class_entropy": 0.5,
        "confident_share": 0.9,
        "target_class_share": 0.8,
        "target_class_share_unseen": 0.77,
        "other_classes_target_share": 0.2,
        "checkerboard": 0.00051,
    },
    "noise_ceiling": {
        "fid": 456.75,
        "kid": 0.9,
        "kid_stderr": 0.01,
        "class_histogram": [50] * 10,
        "class_entropy": 0.1,
        "confident_share": 0.05,
        "target_class_share": 0.0,
        "checkerboard": 0.00293,
    },
}


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    mnist, cifar = root / "mnist", root / "cifar"
    assert mnist_cli(["train", *TINY, "--data-dir", synthetic_mnist_dir(), "--out", str(mnist)]) == 0
    assert cifar_cli(["train", *TINY, "--data-dir", synthetic_cifar_dir(), "--out", str(cifar)]) == 0
    # An evaluated copy of the CIFAR run: eval.json and the evaluator's history.csv columns.
    evaluated = root / "evaluated"
    shutil.copytree(cifar, evaluated)
    (evaluated / "eval.json").write_text(json.dumps(EVALUATION))
    rows = read_csv(evaluated / "history.csv")
    columns = [*rows[0], "fid", "kid", "class_entropy", "confident_share", "target_class_share"]
    quality = {2: ("250.5", "0.3", "0.7", "0.2", "0.4"), 4: ("200.5", "0.2", "0.8", "0.25", "0.5")}
    with open(evaluated / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {**row, **dict(zip(columns[-5:], quality.get(int(row["step"]), [""] * 5), strict=True))}
            )
    return {"mnist": mnist, "cifar": cifar, "evaluated": evaluated}


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tables(report: str) -> dict[str, dict[str, dict[str, str]]]:
    """{section title: {run label: {column header: cell}}} from the report's markdown tables."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    title, header = None, None
    for line in report.splitlines():
        if line.startswith("## "):
            title, header = line[3:], None
        elif line.startswith("|---"):
            continue
        elif line.startswith("| ") and title:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if header is None:
                header = cells
            else:
                found.setdefault(title, {})[cells[0]] = dict(zip(header, cells, strict=True))
    return found


def expected_row(run_dir) -> dict[str, str]:
    """What the report must show for a run, computed here from its files."""
    record = json.loads((run_dir / "config.json").read_text())
    history = read_csv(run_dir / "history.csv")
    batch = record["config"]["batch_size"]
    parameters = record["architecture"]["parameters"]
    rate = statistics.median(float(row["images_per_second"]) for row in history)
    return {
        "steps": history[-1]["step"],
        "images seen": f"{int(history[-1]['step']) * batch:,}",
        "wall time": f"{float(history[-1]['seconds']):.1f} s",
        "images/s (median)": f"{rate:.1f}",
        "G parameters": f"{parameters['generator']:,}",
        "D parameters": f"{parameters['discriminator']:,}",
        "train GFLOP/step": f"{record['architecture']['train_step_flops_per_image'] * batch / 1e9:.3f}",
        "D loss": f"{float(history[-1]['d_loss']):.4f}",
        "D(G(z))": f"{float(history[-1]['d_fake']):.4f}",
    }


def test_report_numbers_come_from_the_runs(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert compare([str(runs["mnist"]), str(runs["cifar"]), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    found = tables(report)
    assert found["Runs"]["mnist"]["dataset"] == "mnist" and found["Runs"]["mnist"]["class"] == "—"
    assert found["Runs"]["cifar"]["dataset"] == "cifar10" and found["Runs"]["cifar"]["class"] == "horse (7)"
    assert found["Runs"]["cifar"]["image"] == "32x32x3" and found["Runs"]["mnist"]["image"] == "28x28x1"
    for label in ("mnist", "cifar"):
        shown = {k: v for section in found.values() for k, v in section.get(label, {}).items()}
        for header, value in expected_row(runs[label]).items():
            assert shown[header] == value, (label, header)
    assert "Sample quality (eval.json)" not in found and "No run holds an eval.json" in report
    for name in ("losses.png", "probabilities.png", "samples.png"):
        assert f"]({name})" in report
        with Image.open(out / name) as figure:
            assert figure.format == "PNG" and figure.size[0] > 400
    assert not (out / "quality.png").exists()


def test_quality_numbers_when_evaluated(runs, tmp_path):
    out = tmp_path / "report"
    assert compare([str(runs["cifar"]), str(runs["evaluated"]), "--out", str(out)]) == 0
    found = tables((out / "report.md").read_text())
    quality = found["Sample quality (eval.json)"]
    assert list(quality) == ["evaluated"]  # only the evaluated run has a row
    row = quality["evaluated"]
    assert row["FID"] == "123.46" and row["KID"] == "0.1234 ± 0.0056"
    assert row["class entropy"] == "0.987" and row["target-class share"] == "0.111"
    assert row["real-floor FID"] == "1.50" and row["noise-ceiling FID"] == "456.75"
    assert row["classifier test accuracy"] == "0.8125" and row["n"] == "500"
    assert row["real target-class share (unseen)"] == "0.770" and row["noise target-class share"] == "0.000"
    assert row["other classes' target-class share"] == "0.200"
    checker = found["Checkerboard (eval.json)"]
    assert list(checker) == ["evaluated"]
    expected = {"generated": "0.01234", "real": "0.00051", "noise": "0.00293", "upsample": "transpose"}
    assert {key: checker["evaluated"][key] for key in expected} == expected
    during = found["Sample quality during training (history.csv)"]["evaluated"]
    assert during["last FID"] == "200.5 (step 4)" and during["lowest FID"] == "200.5 (step 4)"
    assert during["last target-class share"] == "0.5 (step 4)"
    with Image.open(out / "quality.png") as figure:
        assert figure.format == "PNG"


def test_one_run_and_the_same_folder_twice(runs, tmp_path):
    out = tmp_path / "report"
    assert compare([str(runs["cifar"]), "--out", str(out)]) == 0
    assert compare([str(runs["cifar"]), str(runs["cifar"]), "--out", str(out)]) == 0  # overwrites
    found = tables((out / "report.md").read_text())
    assert list(found["Runs"]) == ["cifar (1)", "cifar (2)"]


def test_folder_that_is_no_run(tmp_path, capsys):
    out = tmp_path / "report"
    assert compare([str(tmp_path), "--out", str(out)]) == 2
    assert "not a run directory" in error_line(capsys)
    assert compare([str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "not a run directory" in error_line(capsys)
    assert not out.exists()


def test_no_runs_or_no_out(capsys):
    for argv in (["--out", "x"], ["some-run"]):
        with pytest.raises(SystemExit) as exit_info:
            compare(argv)
        assert exit_info.value.code == 2
        assert error_line(capsys).startswith("common.compare: error:")


def test_out_is_a_file_or_eval_json_is_broken(runs, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert compare([str(runs["cifar"]), "--out", str(target)]) == 2
    assert "not a directory" in error_line(capsys)
    broken = tmp_path / "broken"
    shutil.copytree(runs["cifar"], broken)
    (broken / "eval.json").write_text("{not json")
    assert compare([str(broken), "--out", str(tmp_path / "out")]) == 2
    assert "eval.json" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_module_runs_without_traceback(tmp_path):
    result = run_module("common.compare", str(tmp_path), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("common.compare")]
    assert lines == [f"common.compare: error: {tmp_path} is not a run directory (no config.json)"]


def seeded_copy(source, target, seed: int, fid: float, collapse: bool = False, quality_fids=(400.0, 300.0)):
    """A copy of a tiny run as if trained with another seed: its eval.json's FID, a tracked FID per row, the
    tracking floor and ceiling in config.json, and (collapse) D(G(z)) pinned at 0.01 for 300 steps."""
    shutil.copytree(source, target)
    record = json.loads((target / "config.json").read_text())
    record["config"]["seed"] = seed
    record["config"]["out"] = str(target)
    module = "dcgan_cifar" if record["config"]["dataset"] == "cifar10" else "dcgan_mnist"
    record["commands"] = [f"{source.parent}/{module}/__main__.py train --out {target} --seed {seed}"]
    record["tracking"] = {"n": 500, "every": 2, "real_fid": 100.0, "noise_fid": 1100.0}
    (target / "config.json").write_text(json.dumps(record))
    evaluation = json.loads(json.dumps(EVALUATION))
    evaluation["generated"]["fid"] = fid  # floor 1.5, ceiling 456.75
    evaluation["dataset"] = record["config"]["dataset"]
    (target / "eval.json").write_text(json.dumps(evaluation))
    rows = read_csv(target / "history.csv")
    columns = [*rows[0], "fid"]
    with open(target / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row, tracked in zip(rows, quality_fids, strict=True):
            writer.writerow({**row, "fid": tracked})
        if collapse:  # a stretch of 300 steps with D(G(z)) at 0.01
            for step in (100, 250, 400):
                writer.writerow({**rows[-1], "step": step, "d_fake": 0.01, "fid": ""})
    return target


def section(report: str, title: str) -> str:
    return report.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_seeds_open_the_report_with_an_answer_and_mean_sd(runs, tmp_path):
    """Two settings over two seeds each: the answer and the tables are the runs' numbers, raw FIDs stay in
    the within-one-data-set table, and the report written elsewhere links its figures into --out."""
    root = tmp_path / "runs"
    given = [
        seeded_copy(runs["mnist"], root / "mnist-s0", 0, fid=1.5 + 0.1 * 455.25),
        seeded_copy(runs["mnist"], root / "mnist-s1", 1, fid=1.5 + 0.2 * 455.25),
        seeded_copy(runs["cifar"], root / "cifar-s0", 0, fid=1.5 + 0.3 * 455.25, collapse=True),
        seeded_copy(runs["cifar"], root / "cifar-s1", 1, fid=1.5 + 0.5 * 455.25, quality_fids=(600.0, 500.0)),
    ]
    out, report_file = tmp_path / "figures", tmp_path / "docs" / "comparison.md"
    report_file.parent.mkdir()
    note = "Two runs at a time, one thread each."
    assert compare([*map(str, given), "--out", str(out), "--report", str(report_file), "--note", note]) == 0
    report = report_file.read_text()
    assert not (out / "report.md").exists()
    assert report.startswith("# MNIST vs CIFAR-10 horse\n") and f"\n\n{note}\n\n## The answer" in report
    answer = section(report, "The answer")
    assert "MNIST 0.150 ± 0.071 (n = 500, 2 seeds); CIFAR-10 horse 0.400 ± 0.141" in answer
    assert "MNIST ends nearer its real data than CIFAR-10 horse" in answer
    # the matched budget: the most images both reached with a tracked FID (step 4 of batch 16)
    matched = (
        "At the same 64 images seen, the tracked distances are: MNIST 0.200 ± 0.000; CIFAR-10 horse 0.300"
    )
    assert matched in answer
    assert "MNIST on 0 of 2 seeds; CIFAR-10 horse on 1 of 2 seeds" in answer
    found = tables(report)
    across = found["Across seeds: numbers that compare across data sets"]
    within = found["Across seeds: numbers that compare only within one data set"]
    distance = across["evaluated checkpoint: floor-to-ceiling distance (eval.json)"]
    assert distance["MNIST (2 seeds)"] == "0.1500 ± 0.0707"
    assert distance["CIFAR-10 horse (2 seeds)"] == "0.4000 ± 0.1414"
    assert across["tracked distance at its best step"]["CIFAR-10 horse (2 seeds)"] == "0.3000 ± 0.1414"
    assert "FID" not in across and "KID" not in across  # raw distances never sit across data sets
    assert within["FID"]["MNIST (2 seeds)"] == f"{1.5 + 0.15 * 455.25:.2f} ± {0.1 * 455.25 / 2**0.5:.2f}"
    for name in ("distance.png", "losses.png", "samples.png", "quality.png"):
        assert f"](../figures/{name})" in report and (out / name).exists()
    made = section(report, "How the runs were made")
    assert "python -m dcgan_cifar train --out runs/cifar-s1 --seed 1" in made and str(tmp_path) not in made


def test_no_answer_without_a_repeated_setting(runs, tmp_path):
    out = tmp_path / "report"
    assert compare([str(runs["mnist"]), str(runs["cifar"]), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Comparison of runs\n") and "## The answer" not in report
