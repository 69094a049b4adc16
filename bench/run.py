"""The benchmark suite: promptcast against DSPy 3.4.1, both measured in the same run.

    python3 bench/run.py                     # sections import, overhead, optimize, footprint
    python3 bench/run.py --quick             # the same in a few minutes (fewer repetitions)
    python3 bench/run.py --section overhead --section optimize
    python3 bench/run.py --section quality [--api-base URL --model qwen0.5b]   # real model, ~1 h
    python3 bench/run.py --section quality --quick     # zero-shot + bootstrap, both tasks: minutes
    python3 bench/run.py --section quality --size full # issue #6's sizes: ~2 h a task
    python3 bench/run.py --section quality --size new  # simba, knn, ensemble vs DSPy (issue 22)

Writes `bench/results/latest.md` (figure, promptcast, DSPy, ratio, target), `latest.json` (rows
and raw measurements) and one PNG per section. Sections not run this time keep their rows from
the previous `latest.json` (marked as such). DSPy lives in `bench/.venv-dspy`, matplotlib in
`bench/.venv-plot` (both made on first use by `setup_dspy.sh` / `setup_plot.sh`), never in the
project's `.venv`. Sections run one after another: the machine is small and shared, so
nothing is measured while something else of ours runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from benchlib import RESULTS, Row, SectionResult, dspy_python, plot_python, run
from section_quality import NEW_OPTIMIZERS, OPTIMIZERS, SIZES

SECTIONS = ("import", "overhead", "optimize", "quality", "footprint", "scale")
DEFAULT_SECTIONS = ("import", "overhead", "optimize", "footprint")
EARLIER = "(These rows are from an earlier run; the latest run skipped this section.)"


def _runner(name: str, args: argparse.Namespace) -> Callable[[bool, str], SectionResult]:
    if name == "import":
        from section_import import run_section
    elif name == "overhead":
        from section_overhead import run_section
    elif name == "optimize":
        from section_optimize import run_section
    elif name == "footprint":
        from section_footprint import run_section
    elif name == "scale":  # opt-in (--section scale): ~10 min against a rate-limited server
        from section_scale import run_section
    else:
        from section_quality import run_section as quality

        def run_section(quick: bool, python: str) -> SectionResult:
            return quality(
                quick,
                python,
                live=True,
                api_base=args.api_base,
                model=args.model,
                size=args.size,
                labeled=args.labeled,
                candidates=args.candidates,
                tasks=tuple(args.task) if args.task else None,
                optimizers=tuple(args.optimizer) if args.optimizer else None,
                lm_server=args.lm_server,
                dspy_optimizers=None
                if args.dspy_optimizer is None
                else tuple(o for o in args.dspy_optimizer if o != "none"),
            )

    return run_section


def _previous() -> dict[str, SectionResult]:
    """Sections from the last `latest.json`, to keep beside the ones run now."""
    path = RESULTS / "latest.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {
        name: SectionResult(
            name,
            [Row(**row) for row in section["rows"]],
            section["raw"],
            list(section["notes"]),
        )
        for name, section in data.get("sections", {}).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: minutes")
    parser.add_argument("--section", action="append", choices=SECTIONS, help="repeatable")
    parser.add_argument("--api-base", default="http://127.0.0.1:8765/v1", help="quality only")
    parser.add_argument("--model", default="qwen0.5b", help="quality only (served alias)")
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        help="quality: how much to run (default: quick with --quick, else hour; "
        "see section_quality.SIZES)",
    )
    parser.add_argument(
        "--labeled", type=int, help="quality: max labeled demos (default: the size's)"
    )
    parser.add_argument("--candidates", type=int, default=2, help="quality: random search")
    parser.add_argument(
        "--task",
        action="append",
        choices=("trec", "sentiment"),
        help="quality: repeatable (default: the size's)",
    )
    parser.add_argument(
        "--optimizer",
        action="append",
        choices=(*OPTIMIZERS, *NEW_OPTIMIZERS),
        help="quality: repeatable (default: the size's)",
    )
    parser.add_argument(
        "--dspy-optimizer",
        action="append",
        choices=(*OPTIMIZERS, *NEW_OPTIMIZERS, "none"),
        help="quality: DSPy's optimizers to run, repeatable (default: as --optimizer; "
        "none: only ours, DSPy's rows stay as on file)",
    )
    parser.add_argument(
        "--lm-server",
        default="prefix-cache",
        help="quality: how the server was started (stamped on rows; rows of different settings "
        "are never compared): prefix-cache (scripts/lm/start.sh) or from-scratch "
        "(start.sh --no-prefix-cache, the workspace kit's server)",
    )
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    chosen = args.section or list(DEFAULT_SECTIONS)
    python = str(dspy_python())
    results: dict[str, SectionResult] = {}
    for name in SECTIONS:
        if name in chosen:
            start = time.perf_counter()
            print(f"== {name}", file=sys.stderr, flush=True)
            results[name] = _runner(name, args)(args.quick, python)
            print(f"   {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if "quality" not in results:  # never measured here by default: show what is on file
        from section_quality import run_section as quality

        results["quality"] = quality(args.quick, python)
    earlier = _previous()
    for name, section in earlier.items():
        if name not in results:
            if EARLIER not in section.notes:
                section.notes.append(EARLIER)
            results[name] = section
    ordered = [results[n] for n in SECTIONS if n in results]
    command = "python3 bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    from report import write

    md = write(ordered, RESULTS, command.strip())
    print(md.read_text())
    if not args.no_plots:
        run([plot_python(), RESULTS.parent / "plots.py", RESULTS / "latest.json"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
