"""The ``fomolab`` command: a thin layer over the Python API.

Exit codes: 0 success; 1 some runs failed (recorded, retried next time);
2 bad input (spec, results folder, arguments), with one message that names the
file, the key, the value and the rule, and nothing written.  ``fomolab check``:
0 a sound, complete folder; 1 sound with runs still to compute; 2 not sound.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

__all__ = ["main"]

EXIT_FAILED_RUNS = 1
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    from fomolab import __version__

    p = argparse.ArgumentParser(
        prog="fomolab",
        description="A laboratory for FOMO tactics in live-shopping streams.",
        epilog="Specs are described in the README and docs/MODEL.md; tables in docs/schema.md.",
    )
    p.add_argument("--version", action="version", version=f"fomolab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run an experiment spec into a results folder")
    r.add_argument("spec", help="experiment spec (TOML)")
    r.add_argument("--out", help="results folder (default: results/<experiment name>)")
    r.add_argument("--replicates", type=_positive_int, help="number of replicates (overrides the spec)")
    r.add_argument("--seed", type=_nonneg_int, help="master seed (overrides the spec)")
    r.add_argument("--workers", type=_positive_int, default=None,
                   help="local worker processes (default: one per core, fewer for small work; 1 runs serially)")
    r.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on a Dask distributed cluster (its workers must see the results folder)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary table")
    _format_option(r, "the per-arm summary")
    r.add_argument("--allow-other-version", action="store_true",
                   help="extend a results folder that another fomolab version wrote (both are recorded)")

    v = sub.add_parser("validate", help="check a spec and print its design without running it")
    v.add_argument("spec", help="experiment spec (TOML)")
    v.add_argument("--strict", action="store_true",
                   help="treat warnings (tactics that cannot act as the spec sets them) as errors: exit 2")
    _format_option(v, "the arms (json: the sweep and warnings too)")

    a = sub.add_parser("analyze", help="statistics of a results folder: print the headline, write analysis/ tables")
    a.add_argument("results", help="results folder (written by `fomolab run`)")
    a.add_argument("--control", help="reference arm (default: the experiment's control)")
    a.add_argument("--boot", type=_nonneg_int, default=200, metavar="N",
                   help="bootstrap resamples of replicates for the median shift (default 200; 0 skips it)")
    a.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the bootstraps (default 0)")
    a.add_argument("--out", help="analysis folder (default: RESULTS/analysis)")
    a.add_argument("--horizon", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="seconds since arrival for the share who buy and the restricted mean time to purchase "
                        "(default: the control's median visit)")
    a.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="compute the per-point tables on a Dask distributed cluster, one task per sweep point "
                        "(its workers must see the results folder); the tables are the serial ones")
    a.add_argument("--workers", type=_positive_int, default=None,
                   help="compute the per-point tables on a local Dask cluster of N worker processes")
    a.add_argument("--quiet", "-q", action="store_true", help="write the tables, print nothing")
    _format_option(a, "the headline (json: the consumer impact too)")

    rp = sub.add_parser("report", help="write an HTML report with figures (PNG, SVG) of a results folder")
    rp.add_argument("results", help="results folder (an experiment or a sweep)")
    rp.add_argument("--out", help="report folder (default: RESULTS/report); never a results folder or a "
                                  "non-empty folder that `fomolab report` did not write")
    rp.add_argument("--quiet", "-q", action="store_true", help="no progress display (the paths are still printed)")

    ck = sub.add_parser("check", help="check a results folder: finished, missing, damaged and foreign files")
    ck.add_argument("results", help="results folder (written by `fomolab run`)")

    ft = sub.add_parser("fit", help="estimate spec parameters from field data (visits and purchases, or viewers "
                        "and sales per minute); check the fit")
    ft.add_argument("spec", help="experiment spec (TOML): the stream's design and starting values")
    ft.add_argument("--data", required=True, metavar="DIR",
                    help="folder with visits and purchases, or per-minute minutes (CSV or Parquet)")
    ft.add_argument("--arm", required=True, help="the arm whose tactics were on in the field")
    ft.add_argument("--param", required=True, action="append", metavar="PATH[=LOW:HIGH]",
                    help="dotted spec path of a parameter to estimate, optionally bounded (repeatable)")
    ft.add_argument("--out", help="output folder (default: results/<experiment name>_fit)")

    sc = sub.add_parser("selfcheck", help="rerun the validation of model and statistics (docs/VALIDATION.md)")
    sc.add_argument("--quick", action="store_true", help="the test suite's smaller Monte Carlo sizes")
    sc.add_argument("--items", type=_items, default=None, metavar="1,2,...", help="only these items (default: all)")
    sc.add_argument("--write", default=None, metavar="PATH",
                    help="also write the validation page (Markdown) to PATH, e.g. docs/VALIDATION.md; "
                         "'-' prints it on stdout (default: write nothing)")
    return p


def _format_option(p: argparse.ArgumentParser, main: str) -> None:
    p.add_argument("--format", choices=("text", "csv", "json", "markdown"), default="text",
                   help=f"text: tables that fit the terminal (default); csv: {main} on stdout; json: every "
                        "table and the figures of the header as one object on stdout; markdown: the tables "
                        "as printed, in Markdown")


def _console(stderr: bool = False):
    """A rich console as wide as the terminal (``COLUMNS`` where set; 80 without a terminal)."""
    from rich.console import Console

    return Console(stderr=stderr)


def _warn(text: str) -> None:
    """A warning on stderr, wrapped to the terminal's width."""
    _console(stderr=True).print(f"fomolab: warning: {text}", markup=False, highlight=False)


def _items(text: str) -> list[int]:
    try:
        items = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be item numbers separated by commas: {text!r}") from None
    from fomolab.validation import ITEMS

    bad = [k for k in items if k not in ITEMS]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"items are {ITEMS[0]} to {ITEMS[-1]}: {text!r}")
    return items


def _int_at_least(low: int):
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}: {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _positive_seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fomolab`` console script."""
    args = _parser().parse_args(argv)
    from fomolab.errors import FomolabError, ResultsError, SchedulerError, SpecError

    received, previous = _terminate_like_interrupt()
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "run":
            return _run(args)
        if args.command == "report":
            return _report(args)
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "selfcheck":
            return _selfcheck(args)
        if args.command == "check":
            return _check(args)
        if args.command == "fit":
            return _fit(args)
    except SpecError as exc:
        for problem in exc.errors:  # one line per problem of the spec
            print(f"fomolab: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ResultsError, SchedulerError) as exc:
        print(f"fomolab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FomolabError as exc:
        print(f"fomolab: {exc}", file=sys.stderr)
        return EXIT_FAILED_RUNS
    except KeyboardInterrupt:
        how = "terminated" if received else "interrupted"
        if args.command == "run":
            print(f"fomolab: {how}; finished runs are kept, run the same command to resume", file=sys.stderr)
        else:
            print(f"fomolab: {how}; nothing half-written was left", file=sys.stderr)
        return 128 + (received[0] if received else signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0  # pragma: no cover - argparse requires a command


def _terminate_like_interrupt() -> tuple[list[int], dict]:
    """Make SIGTERM (and SIGHUP) stop the command as Ctrl-C does.

    Returns the list the signal numbers received go to, and the handlers to
    restore when the command ends.  Only the main thread can install handlers;
    elsewhere (fomolab called from a thread) the signals keep their defaults.
    """
    received: list[int] = []
    signums = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        for s in signums:  # a second signal while stopping does not interrupt the clean-up
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in signums:
            previous[s] = signal.signal(s, handler)
    return received, previous


def _validate(args: argparse.Namespace) -> int:
    import json

    from fomolab._terminal import Column, Table, emit
    from fomolab.spec import load_experiment
    from fomolab.spec.advice import arm_overrides, arm_warnings

    exp = load_experiment(args.spec)
    overrides = arm_overrides(exp)
    warnings = arm_warnings(exp)
    points = len({json.dumps(p.values, sort_keys=True, default=str) for p in exp.points})
    runs = len(exp.arms) * points * exp.replicates

    def shown(v: object) -> str:
        return json.dumps(v) if isinstance(v, str | bool) or v is None else str(v)

    def setting(arm, key: str, value: object) -> str:
        parts = key.split(".")
        off = len(parts) > 3 and parts[0] == "lineup" and parts[2] == "tactics" \
            and f"{parts[1]}.{parts[3]}" not in arm.tactics
        return f"{key} = {shown(value)}" + (" (its tactic is off in this arm)" if off else "")

    arms = Table("arms", "Arms", (Column("arm", numeric=False, key=True),
                                  Column("tactics on", numeric=False, wrap=True),
                                  Column("set", numeric=False, wrap=True),
                                  Column("description", numeric=False, wrap=True)),
                 tuple((a.name + (" (control)" if a.name == exp.control else ""), ", ".join(a.tactics) or "none",
                        "; ".join(setting(a, k, v) for k, v in overrides[a.name].items()) or "none",
                        a.description) for a in exp.arms.values()),
                 records=[{"arm": a.name, "control": a.name == exp.control, "tactics": list(a.tactics),
                           "set": overrides[a.name], "description": a.description} for a in exp.arms.values()])
    tables = [arms]
    if exp.generated:  # a [lineup_template]: the products it made
        from fomolab.spec.template import lineup_rows

        heads = ("product", "slot_s", "price", "base_rate_per_s", "stock", "tactics")
        tables.append(Table("lineup", f"Lineup: {len(exp.generated)} products made by the lineup template",
                            tuple(Column(h, numeric=h not in ("product", "slot_s", "tactics"), key=h == "product",
                                         wrap=h == "tactics") for h in heads),
                            tuple(lineup_rows(exp.spec["lineup"], exp.generated))))
    if exp.sweep is not None:
        rows, recs = [], []
        for path in exp.swept:
            vals = sorted({p.values[path] for p in exp.points}, key=str)
            text = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in vals[:6])
            rows.append((path, text + (f", ... ({len(vals)} values)" if len(vals) > 6 else "")))
            recs.append({"parameter": path, "values": vals})
        tables.append(Table("sweep", f"Sweep: {exp.sweep.design} design, {points} points",
                            (Column("parameter", numeric=False, wrap=True), Column("values", numeric=False, wrap=True)),
                            tuple(rows), records=recs))
    total = (f"{len(exp.arms)} arms x {points} point{'s' * (points != 1)} x {exp.replicates} replicates = "
             f"{runs} runs; master seed {exp.seed}")
    for w in warnings:
        _warn(w)
    failed = args.strict and warnings
    if args.format != "text":
        emit(args.format, tables, meta={"experiment": exp.name, "description": exp.description,
                                        "spec": str(args.spec), "control": exp.control, "points": points,
                                        "replicates": exp.replicates, "runs": runs, "seed": exp.seed,
                                        "warnings": warnings},
             notes=[total] if args.format == "markdown" else ())
        return EXIT_BAD_INPUT if failed else 0
    from rich.text import Text

    from fomolab._terminal import print_text

    console = _console()
    console.print(Text.assemble((exp.name, "bold"), f": {exp.description}"))
    _print_arms(console, arms)
    print_text(console, tables[1:])
    console.print(Text.assemble(total.split(" = ")[0] + " = ", (f"{runs} runs", "bold"),
                                total.split(" = ", 1)[1].removeprefix(f"{runs} runs")))
    if failed:
        print(f"fomolab: error: {len(warnings)} warning(s) and --strict: {args.spec}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console.print(f"spec OK: {args.spec}" + (f" ({len(warnings)} warning{'s' * (len(warnings) != 1)} on stderr)"
                                             if warnings else ""), markup=False, highlight=False)
    return 0


def _print_arms(console, arms) -> None:
    """The arms as blocks: name and description, then what is on and what is set, indented."""
    from rich.padding import Padding
    from rich.text import Text

    console.print(Text("Arms", style="bold"))
    for name, tactics, sets, description in arms.rows:
        console.print(Text.assemble((name, "bold"), f": {description}" if description else ""))
        console.print(Padding(Text(f"tactics on: {tactics}"), (0, 0, 0, 2), expand=False))
        if sets != "none":
            for item in sets.split("; "):
                console.print(Padding(Text(f"set {item}"), (0, 0, 0, 2), expand=False))


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from fomolab.runner import run
    from fomolab.spec import load_experiment

    exp = load_experiment(args.spec)
    workers = args.workers  # None: one per core, as many as the work pays for
    console = Console(stderr=True)
    failures = 0
    log = None if args.quiet or console.is_terminal else _ProgressLog(exp.name)  # batch jobs: timed lines
    if args.quiet or log is not None:
        progress_bar = None
    else:
        progress_bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[failed]}"), console=console, transient=False,
        )
    task_id: TaskID | None = None

    def on_start(todo: int, total: int) -> None:
        nonlocal task_id
        if log is not None:
            log.start(todo, total)
        if progress_bar is not None:
            task_id = progress_bar.add_task(exp.name, total=total, completed=total - todo, rate="", failed="")
            progress_bar.start()

    def progress(outcome, done: int, total: int) -> None:
        nonlocal failures
        failures += not outcome.ok
        if log is not None:
            log.update(done, failures)
        if progress_bar is not None and task_id is not None:
            task = progress_bar.tasks[task_id]
            rate = f"{task.speed:.1f} runs/s" if task.speed else ""
            progress_bar.update(task_id, completed=done, rate=rate,
                                failed=f"[red]{failures} failed[/red]" if failures else "")

    try:
        results = run(exp, out=args.out, replicates=args.replicates, seed=args.seed, workers=workers,
                      scheduler=args.scheduler, progress=progress, on_start=on_start,
                      allow_other_version=args.allow_other_version)
    finally:  # failures, Ctrl-C and SIGTERM too: leave the terminal as it was
        if progress_bar is not None:
            progress_bar.stop()
    if log is not None:
        log.finish(failures)
    if not args.quiet:
        _print_summary(results, args.format)
    return 0


class _ProgressLog:
    """Progress of ``fomolab run`` without a terminal: one line on stderr every ``FOMOLAB_LOG_EVERY_S``
    seconds (default 10), with runs done of the total, rate, time to go and failures, and one at the end."""

    def __init__(self, name: str) -> None:
        import os
        import time

        self.name, self.clock = name, time.monotonic
        try:
            self.every = max(0.0, float(os.environ.get("FOMOLAB_LOG_EVERY_S", "10")))
        except ValueError:
            self.every = 10.0
        self.t0 = self.last = self.clock()
        self.done0 = self.done = self.total = 0

    def start(self, todo: int, total: int) -> None:
        self.done0 = self.done = total - todo
        self.total = total
        self.t0 = self.last = self.clock()
        self._line(0, f"{todo} to compute" + (f", {total - todo} already finished" if total > todo else ""))

    def update(self, done: int, failures: int) -> None:
        self.done = done
        if self.clock() - self.last >= self.every:
            self._line(failures)

    def finish(self, failures: int) -> None:
        self._line(failures, "finished")

    def _line(self, failures: int, note: str = "") -> None:
        now = self.clock()
        self.last = now
        elapsed = now - self.t0
        computed = self.done - self.done0
        rate = computed / elapsed if elapsed > 0 and computed else 0.0
        left = self.total - self.done
        eta = f"ETA {_clock(left / rate)}" if rate and left else ""
        parts = [f"{self.done}/{self.total} runs", f"{rate:.2f} runs/s" if rate else "", eta,
                 f"{failures} failed" if failures else "", f"{_clock(elapsed)} elapsed", note]
        print(f"fomolab: {self.name}: " + ", ".join(p for p in parts if p), file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    """``75.0`` -> ``'1m15s'``; ``3725`` -> ``'1h02m05s'``."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fomolab.errors import ResultsError
    from fomolab.outputs import check_target
    from fomolab.report import report
    from fomolab.results import Results

    folder = Path(args.results)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such folder (give a results folder written by `fomolab run`)")
    check_target(args.out if args.out is not None else folder / "report", "report", folder)
    results = Results(folder)
    if results.runs.empty:
        raise ResultsError(f"{folder}: no finished runs to report (run the experiment first: "
                           f"`fomolab run SPEC --out {folder}`)")
    _memory_check(results, "reporting on")
    with _working(f"drawing the report of {folder}", args.quiet):
        rep = report(results, out=args.out)
    for note in rep.notes:
        print(f"fomolab: note: {note}", file=sys.stderr)
    print(f"report: {rep.path}")
    print(f"figures: {rep.path.parent / 'figures'}/*.png, *.svg ({len(rep.figures) // 2} figures)")
    return 0


def _available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _memory_check(results, what: str) -> None:
    """Warn, before any per-visit work, when ``what`` (analysing, reporting) is likely to need more memory
    than the system has available: the system may then stop the process without a message of its own."""
    from fomolab.analysis import peak_memory_estimate

    free = _available_memory()
    visits, need = peak_memory_estimate(results)
    if free is not None and need > free:
        _warn(f"{what} {visits:,} visits needs about {need / 2**30:.1f} GB of memory at its peak and "
              f"{free / 2**30:.1f} GB are available now: the system may stop it (use a machine with more "
              f"memory, or fewer replicates: fomolab.Results(FOLDER, replicates=N) in Python)")


def _working(what: str, quiet: bool):
    """A live progress display on stderr while long work runs: on a terminal, unless ``quiet``
    (without a terminal, in logs, pipes and batch jobs, nothing)."""
    import contextlib

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return contextlib.nullcontext()
    bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                   console=console, transient=True)
    bar.add_task(what, total=None)
    return bar


def _print_summary(results, fmt: str = "text") -> None:
    from fomolab._terminal import Column, Table, emit, print_text, records

    s = results.summary()
    name = results.manifest["experiment"]
    heads = ("arm", "runs", "viewers", "buyers", "conversion", "median s to buy", "units", "revenue")
    rows = []
    for arm, row in s.iterrows():
        runs = f"{row.runs:.0f}" if row.runs >= row.runs_expected else f"{row.runs:.0f} of {row.runs_expected:.0f}"
        rows.append((str(arm), runs, f"{row.viewers_per_run:,.1f}", f"{row.buyers_per_run:,.1f}",
                     f"{row.conversion:.2%}", f"{row.median_time_to_purchase_s:,.1f}",
                     f"{row.units_per_run:,.1f}", f"{row.revenue_per_run:,.2f}"))
    table = Table("summary", f"{name}: per arm (means per run; conversion pooled; median time to buy over the "
                             "arm's buyers)",
                  tuple(Column(h, numeric=h != "arm", key=h == "arm") for h in heads), tuple(rows),
                  records=records(s.reset_index()) if len(s) else [])
    done = results.completeness
    notes = [] if done.complete else [f"incomplete: {done.describe()}; the table covers the finished runs only; "
                                      "run the same command again to finish"]
    held = int(results.manifest.get("replicates", 0))
    if results.replicates is not None and results.replicates < held:
        from fomolab.results import Results

        notes.append(f"shown: the first {results.replicates} replicates, as asked; the folder holds more: "
                     f"{Results(results.path).completeness.describe()}")
    notes.append(f"tables: {results.path}/{{runs,shoppers,events}}/*.parquet (docs/schema.md)")
    if fmt != "text":
        emit(fmt, [table], meta={"experiment": name, "results": str(results.path),
                                 "complete": done.complete, "completeness": done.describe()},
             notes=notes if fmt == "markdown" else ())
        return
    print_text(_console(), [table], notes)


def _fit(args: argparse.Namespace) -> int:
    """Fit, check, write; bad data exit 2 with one line per problem."""
    from fomolab.errors import DataError
    from fomolab.fit import fit

    try:
        done = fit(args.spec, args.data, args.arm, args.param, args.out)
    except DataError as exc:
        for line in getattr(exc, "problems", None) or [str(exc)]:
            print(f"fomolab: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"method: {done.result.method}")
    print(done.result.table.to_string(index=False))
    for line in done.result.messages + done.checks.warnings:
        print(f"fomolab: warning: {line}", file=sys.stderr)
    print(f"checks: {'passed' if done.checks.passed else 'FAILED (see the report)'}; written to {done.out}/"
          "{estimates.csv,fitted.toml,report.md}")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Report a results folder's state; exit 0 sound and complete, 1 unfinished runs, 2 not sound."""
    from fomolab.results import check

    found = check(args.results)
    print(f"{found.path}:")
    for line in found.lines():
        print(f"  {line}")
    return found.exit_code


def _analyze(args: argparse.Namespace) -> int:
    import math
    from pathlib import Path

    from fomolab._terminal import Column, Table, emit, print_text, records
    from fomolab.analysis import analyze
    from fomolab.outputs import check_target

    target = Path(args.out) if args.out is not None else Path(args.results) / "analysis"
    check_target(target, "analysis", args.results)
    if args.scheduler is not None and args.workers is not None:
        from fomolab.errors import SchedulerError

        raise SchedulerError(f"--scheduler {args.scheduler} and --workers {args.workers}: give one of them "
                             "(a cluster's scheduler, or local worker processes); nothing was written")
    _memory_check(args.results, "analysing")
    with _working(f"analysing {args.results}", args.quiet or args.format != "text"):
        a = analyze(args.results, control=args.control, n_boot=args.boot, seed=args.seed, horizon=args.horizon,
                    scheduler=args.scheduler, workers=args.workers)
        out = a.write(target)
    if args.quiet:
        return 0

    def num(v: float, fmt: str) -> str:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    def ci(est: float, lo: float, hi: float, fmt: str) -> str:
        if est is None or math.isnan(est):
            return "n/a"
        if math.isnan(lo) and math.isnan(hi):
            return format(est, fmt)
        return f"{format(est, fmt)} ({num(lo, fmt) or '-'}, {num(hi, fmt) or '-'})"

    from fomolab.stats.replicates import format_p as pval  # never below what a few replicates support

    h = a.headline
    sweep = h.point.nunique() > 1
    text = args.format == "text"
    shown = h.head(20) if text else h
    from fomolab.results import Results

    name = Results(args.results).manifest.get("experiment", Path(args.results).name)
    hz = float(h.horizon_s.iloc[0]) if len(h) else float("nan")
    first = [Column("point", key=True)] if sweep else []
    arm = Column("arm", numeric=False, key=True)

    rows = []
    for row in shown.itertuples():
        ctrl = row.arm == a.control
        rows.append((*([str(row.point)] if sweep else []), row.arm, num(100 * row.cuminc, ".2f"),
                     "" if ctrl else ci(100 * row.cuminc_diff, 100 * row.cuminc_diff_ci_lower,
                                        100 * row.cuminc_diff_ci_upper, "+.2f"),
                     pval(row.cuminc_diff_p), num(row.rmst_s, ",.1f"),
                     "" if ctrl else ci(row.rmst_diff_s, row.rmst_diff_ci_lower, row.rmst_diff_ci_upper, "+.1f"),
                     pval(row.rmst_diff_p)))
    headline = Table("headline", f"{name}: buying before leaving, within {hz:,.0f} s of arrival (95 % CI; against "
                                 "the control within each replicate, t over replicates)",
                     (*first, arm, *(Column(c) for c in ("bought %", "difference (pp)", "p", "wait (s)",
                                                         "difference (s)", "p"))),
                     tuple(rows), records=records(h),
                     notes=("bought %: cumulative incidence of buying (leaving competes); wait: restricted mean "
                            f"time to purchase within {hz:,.0f} s",))
    rows = []
    for row in shown.itertuples():
        rows.append((*([str(row.point)] if sweep else []), row.arm, f"{row.viewers:,}", f"{row.conversion:.2%}",
                     ci(row.hazard_ratio, row.hr_ci_lower, row.hr_ci_upper, ".3f"), pval(row.hr_p_holm),
                     "" if math.isnan(row.deadline_share) else
                     f"{row.deadline_share:.1%} ({row.deadline_expected_share:.1%}) p {pval(row.deadline_p)}"))
    by_end = Table("by_end", "by the end of the visit; cause-specific hazard ratio of buying (within each "
                             "replicate, t over replicates, p Holm-adjusted); deadline bunching",
                   (*first, arm, *(Column(c) for c in ("viewers", "conversion", "hazard ratio", "p",
                                                       "deadline share (exp.)"))), tuple(rows))
    tables = [headline, by_end]
    notes = []
    if len(h) > len(shown):
        notes.append(f"... {len(h) - len(shown)} more rows in {out / 'headline.csv'}")
    notes += [f"note: {n}" for n in sorted({n for n in h.note if n})]
    if h.median_s.isna().any():
        notes.append("Kaplan-Meier median time to purchase not shown where it is not reached or too few viewers "
                     "are still at risk at it (headline.csv, median_note); the restricted mean time answers "
                     "how soon")
    changes = _changes_table(a.changes, sweep, a.conf_level) if a.changes is not None and len(a.changes) else None
    if changes is not None:
        tables.append(changes)
    impact = _impact_table(a.impact, limit=20 if text else None) if a.impact is not None else None
    if impact is not None:
        tables.append(impact)
    notes.append(f"tables: {out}/{{{','.join(a.tables())}}}.{{csv,md}} (docs/schema.md); {a.seconds:.1f} s")
    if not text:
        machine = [headline, *([changes] if changes is not None else []), *([impact] if impact is not None else [])]
        emit(args.format, machine if args.format == "json" else [headline, by_end, *machine[1:]],
             meta={"experiment": name, "results": str(args.results), "analysis": str(out), "control": a.control,
                   "horizon_s": hz, "tables": list(a.tables())},
             notes=notes if args.format != "csv" else ())
        if args.format == "csv":
            for n in notes:
                print(f"fomolab: {n}", file=sys.stderr)
        return 0
    console = _console()
    print_text(console, tables[:2], notes[:-1])
    if changes is not None:
        print_text(console, [changes])
    if impact is not None:
        print_text(console, [impact])
    console.print(notes[-1], markup=False, highlight=False)
    return 0


def _changes_table(changes, sweep: bool, conf_level: float):
    """What each arm changes against the control, per run (coupling-free; t intervals over replicates)."""
    from fomolab._format import ci
    from fomolab._terminal import Column, Table, records

    shown = {"buyers": ("buyers", 1.0, 4), "purchases": ("purchases", 1.0, 4), "revenue": ("revenue", 1.0, 4),
             "conversion": ("conversion (pp)", 100.0, 3)}
    keys = ["point", "arm"] if sweep else ["arm"]
    rows = []
    for key, g in changes.groupby(keys, sort=False):
        g = g.set_index("measure")
        cells = [ci(k * g.loc[m, "change"], k * g.loc[m, "ci_lower"], k * g.loc[m, "ci_upper"], d)
                 if m in g.index else "" for m, (_, k, d) in shown.items()]
        rows.append((*(str(v) for v in (key if isinstance(key, tuple) else (key,))), *cells))
    return Table("changes", f"what each arm changes against the control, per run ({100 * conf_level:g} % CI; "
                            "within each replicate, t over replicates)",
                 (*(Column(k, numeric=k == "point", key=True) for k in keys),
                  *(Column(label) for label, _, _ in shown.values())),
                 tuple(rows), records=records(changes))


def _impact_table(impact, limit: int | None = 20):
    """Consumer impact per arm (and sweep point), summed over impulsiveness quintiles (means per replicate)."""
    from fomolab._terminal import Column, Table, records

    cols = {"induced_purchases": "induced", "accelerated_purchases": "accelerated",
            "regretted_added": "regretted added", "consumer_surplus_lost": "surplus lost",
            "seller_revenue_gained": "revenue gained"}
    sweep = "point" in impact.columns and impact["point"].nunique() > 1
    keys = ["point", "arm"] if sweep else ["arm"]
    quintiles = impact[impact.group.astype(str).str.fullmatch(r"Q\d")]
    tot = quintiles.groupby([*keys, "measure"], sort=False)["mean"].sum().unstack()
    q5 = quintiles[(quintiles.group == "Q5") & (quintiles.measure == "induced_purchases")]
    q5 = q5.groupby(keys, sort=False)["mean"].sum()
    rows, recs = [], []
    for index, row in (tot.head(limit) if limit is not None else tot).iterrows():
        key = index if isinstance(index, tuple) else (index,)
        induced = float(row.get("induced_purchases", float("nan")))
        share = float(q5.get(key if sweep else key[0], float("nan"))) / induced if induced else float("nan")
        cells = [f"{float(row[m]):,.1f}" if m in row.index else "" for m in cols]
        rows.append((*(str(k) for k in key), *cells, "" if share != share else f"{share:.0%}"))
        recs.append({**dict(zip(keys, key, strict=True)), **{m: row.get(m) for m in cols},
                     "induced_q5_share": share})
    notes = (f"... {len(tot) - limit} more rows in analysis/impact.csv",) if limit is not None and len(tot) > limit \
        else ()
    return Table("impact", "consumer impact against the same viewers in the control (per replicate; Q5 = most "
                           "impulsive fifth; 'accelerated' is a property of the model's coupling)",
                 (*(Column(k, numeric=k == "point", key=True) for k in keys),
                  *(Column(c) for c in [*cols.values(), "induced in Q5"])),
                 tuple(rows), records=records(_frame(recs)), notes=notes)


def _frame(recs: list[dict]):
    import pandas as pd

    return pd.DataFrame(recs)


def _selfcheck(args: argparse.Namespace) -> int:
    """Run the validation checks; exit 1 if any fails.  Writes only where ``--write`` says."""
    from pathlib import Path

    from rich.console import Console

    from fomolab.errors import ResultsError
    from fomolab.validation import render_report, run_checks, write_report

    to_stdout = args.write == "-"
    if args.write is not None and not to_stdout:
        target = Path(args.write)
        if target.is_dir() or not target.parent.is_dir():
            raise ResultsError(f"--write {args.write}: must be a file in an existing folder")
    console = Console(stderr=to_stdout)  # the page alone goes to stdout
    scale = "quick" if args.quick else "full"
    seconds: dict[int, float] = {}

    def progress(item, title, checks, secs):
        seconds[item] = secs
        console.print(f"[bold]{item}. {title}[/bold] ({secs:.1f} s)")
        for c in checks:
            mark = "[green]pass[/green]" if c.passed else "[red]FAIL[/red]"
            console.print(f"   {mark}  {c.name}: {c.figure}  (target {c.target})")

    checks = run_checks(scale, args.items, progress=progress)
    failed = sum(not c.passed for c in checks)
    if to_stdout:
        sys.stdout.write(render_report(checks, scale=scale, seconds=seconds))
        sys.stdout.flush()
    elif args.write is not None:
        path = write_report(checks, args.write, scale=scale, seconds=seconds)
        console.print(f"wrote {path}")
    console.print(f"{len(checks) - failed} of {len(checks)} checks pass ({sum(seconds.values()):.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
