"""`python -m common.compare RUN_A RUN_B [...] --out DIR`: put finished runs side by side.

Writes DIR/report.md (or --report FILE) and its figures (losses.png, probabilities.png, samples.png
and, when the runs were evaluated during training, quality.png). Every number is read from the runs'
own files: config.json (settings, architecture, parameter and FLOP counts), history.csv (losses,
D outputs, speed, and the evaluator's columns when present), samples/ (the final grid) and eval.json
(written by the evaluator). Runs that repeat one setting over seeds open the report with an answer
and mean ± sd tables.

The command line only: common/report_runs.py reads the runs, common/report.py writes the report with
the tables of common/report_tables.py and the figures of common/report_figures.py.
"""

from __future__ import annotations

from common.quiet import start_quietly

start_quietly()  # before anything imports TensorFlow: its start-up lines only with --verbose

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from common.command import OneLineParser, exit_code
from common.report import write_report
from common.report_runs import read_runs
from common.rundir import check_writable_dir

PROG = "common.compare"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Compare run directories: losses, D outputs, samples, speed, size, quality."
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (one or more)")
    parser.add_argument("--out", required=True, help="folder for report.md and its figures")
    parser.add_argument(
        "--report",
        metavar="FILE",
        help="write the report here instead of OUT/report.md (its figure links point into OUT)",
    )
    parser.add_argument(
        "--note",
        default="",
        help="a paragraph under the report's title: what the files do not say (e.g. the load)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    def command() -> int:
        out = Path(args.out)
        check_writable_dir(out)  # before reading anything: a bad --out is the cheapest error to report
        runs = read_runs(args.runs)
        path = Path(args.report) if args.report else None
        # the note is the paragraph under the title: the command line names it instead of repeating it
        shown = ["TEXT" if i and argv[i - 1] == "--note" else word for i, word in enumerate(argv)]
        command_line = shlex.join(["python", "-m", "common.compare", *shown])
        report = write_report(runs, out, command_line, path, args.note)
        print(f"wrote {report.path} and {len(report.figures)} figures ({len(runs)} runs)")
        return 0

    return exit_code(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
