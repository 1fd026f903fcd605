"""The end-of-run summary a user reads in a terminal or a CI log, and the ``--dry-run`` plan.

The summary reads top to bottom in the order a user asks questions: did each check pass, what
failed and why, what was flaky, how the slices went against their plan, where the time went; its
last line is pytest's (``== 3 failed, 120 passed, 2 skipped in 4.21s ==``) so that log scrapers
and eyes trained on pytest find it.

Both functions return text and print nothing; the CLI decides where it goes and whether it is
coloured (``color=False`` for ``NO_COLOR``, ``--json`` and non-terminals).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass

from dagpar_cli.model import CheckResult, Plan, RunResult, SliceResult, Status, TestResult
from dagpar_cli.reporting._text import clean_text
from dagpar_cli.reporting.counts import Counts

__all__ = ["RunOutput", "format_seconds", "render_plan", "render_result", "render_summary"]

#: Lines of a failure's details shown under its message.
DETAIL_LINES = 12
#: Failures whose details are shown; later ones get their message only, so that a run with
#: hundreds of failures still ends with a readable summary.
DETAILED_FAILURES = 30
#: How many of the slowest tests are listed.
SLOWEST = 5

_RESET = "\x1b[0m"
_STYLES = {"red": "\x1b[31m", "green": "\x1b[32m", "yellow": "\x1b[33m", "bold": "\x1b[1m"}


@dataclass(frozen=True, slots=True)
class _Painter:
    """Applies ANSI styles when colour is on, and nothing otherwise."""

    color: bool

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        return "".join(_STYLES[s] for s in styles) + text + _RESET


def format_seconds(seconds: float) -> str:
    """``4.21s``, or ``65.00s (0:01:05)`` past a minute, as pytest writes durations.

    :param seconds: a duration.
    """
    text = f"{seconds:.2f}s"
    if seconds >= 60:
        whole = int(seconds)
        text += f" ({whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d})"
    return text


def _delta(planned: float, actual: float) -> str:
    """The overrun of *actual* over *planned* as a signed percentage."""
    if planned <= 0:
        return "n/a"
    return f"{(actual - planned) / planned * 100:+.0f}%"


def _one_line(text: str, width: int) -> str:
    """*text* cleaned for a terminal and cut to *width* columns with an ellipsis."""
    text = clean_text(text).replace("\t", "    ")
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _bar(title: str, width: int, paint: _Painter, *styles: str, char: str = "=") -> str:
    """``==== title ====`` centred in *width* columns, as pytest's section lines."""
    inner = f" {title} "
    side = max((width - len(inner)) // 2, 3)
    line = char * side + inner + char * side
    if len(line) < width:
        line += char
    return paint(line, *styles)


# --------------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------------


def _count_parts(counts: Counts, paint: _Painter) -> list[str]:
    """The non-zero counts in pytest's order and wording, coloured like pytest's."""
    parts: list[str] = []
    if counts.failed:
        parts.append(paint(f"{counts.failed} failed", "red", "bold"))
    if counts.passed:
        parts.append(paint(f"{counts.passed} passed", "green"))
    if counts.skipped:
        parts.append(paint(f"{counts.skipped} skipped", "yellow"))
    if counts.flaky:
        parts.append(paint(f"{counts.flaky} flaky", "yellow"))
    if counts.errors:
        noun = "error" if counts.errors == 1 else "errors"
        parts.append(paint(f"{counts.errors} {noun}", "red", "bold"))
    return parts


def _check_status(check: CheckResult, paint: _Painter) -> str:
    if check.interrupted:
        return paint("INTERRUPTED", "yellow", "bold")
    return paint("PASSED", "green", "bold") if check.passed else paint("FAILED", "red", "bold")


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------


def _checks_section(run: RunResult, paint: _Painter, width: int) -> list[str]:
    lines: list[str] = []
    name_width = min(max((len(c.name) for c in run.checks), default=0), 40)
    for check in run.checks:
        counts = Counts.of(check.results)
        parts = _count_parts(counts, paint) or ["no tests"]
        slices = len(check.slices)
        where = f" · {slices} slice" + ("" if slices == 1 else "s") if slices else ""
        head = f"{check.name:<{name_width}}  {_check_status(check, paint)}"
        tail = f"{', '.join(parts)}{where} · {format_seconds(check.seconds)}"
        if len(_strip(head)) + 2 + len(_strip(tail)) <= width:
            lines.append(f"{head}  {tail}")
        else:
            # A narrow terminal: the counts go on their own line rather than being cut.
            lines += [head, f"  {tail}"]
        if check.error:
            prefix = "  error: "
            for i, line in enumerate(check.error.splitlines()[:DETAIL_LINES]):
                text = _one_line(line, width - len(prefix))
                lines.append((prefix if i == 0 else " " * len(prefix)) + paint(text, "red"))
    return lines


def _where(result: TestResult) -> str:
    parts = [result.check] if result.check else []
    if result.slice:
        parts.append(f"slice {result.slice}")
    return f"  ({', '.join(parts)})" if parts else ""


def _failures_section(failures: Sequence[TestResult], paint: _Painter, width: int) -> list[str]:
    lines: list[str] = []
    for n, result in enumerate(failures):
        label = "FAILED" if result.status is Status.FAILED else "ERROR"
        head = f"{label} {result.id}{_where(result)}"
        # Test ids are never cut: a reader copies them into the next command.
        lines.append(paint(clean_text(head), "red", "bold"))
        if result.message:
            lines.append("    " + _one_line(result.message.splitlines()[0], width - 4))
        if n >= DETAILED_FAILURES or not result.details:
            continue
        details = [line.rstrip() for line in result.details.splitlines()]
        for line in details[:DETAIL_LINES]:
            lines.append("    " + _one_line(line, width - 4))
        if len(details) > DETAIL_LINES:
            more = len(details) - DETAIL_LINES
            lines.append(paint(f"    … {more} more lines (see the JUnit report)", "yellow"))
    if len(failures) > DETAILED_FAILURES:
        lines.append(f"(details of the first {DETAILED_FAILURES} failures only)")
    return lines


def _flaky_section(flaky: Sequence[TestResult], width: int) -> list[str]:
    """Each flaky test, then one line per failed attempt."""
    lines: list[str] = []
    for result in flaky:
        tries = len(result.attempts) + 1
        lines.append(clean_text(f"{result.id}{_where(result)}  passed on try {tries}"))
        for attempt in result.attempts:
            message = attempt.message.splitlines()[0] if attempt.message else attempt.status.value
            lines.append("    " + _one_line(f"{attempt.status.value}: {message}", width - 4))
    return lines


def _planned(check: CheckResult, slice_result: SliceResult) -> float:
    """A slice's predicted seconds, from the slice itself or else from its plan."""
    if slice_result.predicted_seconds or len(check.plans) != 1:
        return slice_result.predicted_seconds
    for planned in check.plans[0].slices:
        if planned.index == slice_result.index:
            return planned.predicted_seconds
    return 0.0


def _slices_section(run: RunResult, paint: _Painter, width: int) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for check in run.checks:
        total = len(check.slices)
        for s in check.slices:
            planned = _planned(check, s)
            rows.append(
                (
                    check.name,
                    f"{s.index}/{total}",
                    str(len(s.items)),
                    str(len(s.results)),
                    f"{planned:.2f}s" if planned else "-",
                    f"{s.seconds:.2f}s",
                    _delta(planned, s.seconds),
                    _replaced(s.replacements) + s.error,
                )
            )
    if not rows:
        return []
    header = ("check", "slice", "items", "tests", "planned", "actual", "diff")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}

    def fmt(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[: len(header)])
        ]
        return "  ".join(cells).rstrip()

    lines = [paint(fmt(header), "bold")]
    for row in rows:
        line = fmt(row)
        error = row[-1]
        if error:
            line += "  " + paint(_one_line(error, max(width - len(line) - 2, 20)), "red")
        lines.append(line)
    return lines


def _replaced(replacements: int) -> str:
    """The note of a slice that replaced its dead runner with fresh runs of it."""
    if not replacements:
        return ""
    return f"{replacements} runner replacement{'' if replacements == 1 else 's'}; "


def _wall_line(run: RunResult) -> str:
    planned = run.predicted_seconds or sum(
        plan.predicted_wall_seconds for check in run.checks for plan in check.plans
    )
    actual = format_seconds(run.seconds)
    if planned <= 0:
        return f"wall time: {actual} (no plan to compare with)"
    # The plan predicts the slices, not listing tests and loading toolchains before them:
    # compare it with the span from the first slice's start to the last slice's end.
    # Checks run side by side and each lists its tests first: measure each check's own span.
    span = max(
        (
            max(s.started + s.seconds for s in check.slices) - min(s.started for s in check.slices)
            for check in run.checks
            if check.slices
        ),
        default=0.0,
    )
    if span <= 0:
        return (
            f"wall time: planned {format_seconds(planned)}, actual {actual} "
            f"({_delta(planned, run.seconds)})"
        )
    return (
        f"wall: planned {format_seconds(planned)}, slices {format_seconds(span)} "
        f"({_delta(planned, span)}), run {actual}"
    )


def _slowest_section(results: Sequence[TestResult]) -> list[str]:
    ran = (r for r in results if r.status is not Status.SKIPPED)
    # sorted(...)[:SLOWEST] without sorting a whole run's results.
    slowest = heapq.nsmallest(SLOWEST, ran, key=lambda r: (-r.seconds, r.id))
    return [clean_text(f"{r.seconds:8.2f}s  {r.id}{_where(r)}") for r in slowest]


def _final_line(run: RunResult, paint: _Painter, width: int) -> str:
    counts = Counts.of(run.results)
    parts = _count_parts(counts, paint)
    # A check can fail without a failed test (its own code raised, a slice crashed).
    broken = sum(1 for c in run.checks if c.error and not any(r.status.is_bad for r in c.results))
    if broken:
        parts.append(paint(f"{broken} check error" + ("" if broken == 1 else "s"), "red", "bold"))
    if not parts:
        parts.append(paint("no tests ran", "yellow"))
    text = ", ".join(parts) + f" in {format_seconds(run.seconds)}"
    if run.shard is not None:
        text += f" (shard {run.shard[0]}/{run.shard[1]})"
    if run.interrupted:
        text += " (interrupted)"
    failed = any(not c.passed for c in run.checks)
    style = "red" if failed else ("yellow" if run.interrupted or counts.flaky else "green")
    plain = _strip(text)
    rule = _bar(plain, width, _Painter(False))
    if not paint.color:
        return rule
    # The counts carry their own colours; the rule around them takes the overall one.
    left, right = rule.split(f" {plain} ", 1)
    return f"{paint(left, style)} {text} {paint(right, style)}"


def _strip(text: str) -> str:
    for code in (*_STYLES.values(), _RESET):
        text = text.replace(code, "")
    return text


def render_summary(run: RunResult, *, color: bool, width: int = 100) -> str:
    """The end-of-run summary of *run*, ending with a newline.

    Sections, each only when it has something to say: checks (status and counts per check),
    failures (every failed or errored test with its message and the first lines of its details),
    flaky tests, slices (planned against actual seconds per slice) with the planned against
    actual wall time, the slowest tests; then a final pytest-style line of counts.

    :param run: the merged result.
    :param color: emit ANSI colours (only for a terminal that wants them).
    :param width: the terminal's width in columns.
    """
    paint = _Painter(color)
    width = max(width, 40)
    lines: list[str] = [_bar("dagpar summary", width, paint, "bold")]
    lines += _checks_section(run, paint, width)

    results = run.results
    failures = [r for r in results if r.status.is_bad]
    if failures:
        lines += ["", _bar("failures", width, paint, "red", char="-")]
        lines += _failures_section(failures, paint, width)
    flaky = [r for r in results if r.flaky]
    if flaky:
        lines += ["", _bar("flaky tests", width, paint, "yellow", char="-")]
        lines += _flaky_section(flaky, width)
    slices = _slices_section(run, paint, width)
    lines += ["", _bar("slices", width, paint, char="-"), *slices, _wall_line(run)]
    slowest = _slowest_section(results)
    if slowest:
        lines += ["", _bar(f"slowest {len(slowest)} tests", width, paint, char="-"), *slowest]
    lines.append(_final_line(run, paint, width))
    return "\n".join(lines) + "\n"


def render_plan(check: str, plan: Plan) -> str:
    """The ``--dry-run`` view of one check's plan, ending with a newline.

    Each slice with its predicted seconds and every item it holds, then the predicted wall
    time on the plan's workers.

    :param check: the check (``instance:function``).
    :param plan: its plan.
    """
    total = len(plan.slices)
    noun = "slice" if total == 1 else "slices"
    workers = "worker" if plan.workers == 1 else "workers"
    lines = [f"{check}: {total} {noun} on {plan.workers} {workers}"]
    for s in plan.slices:
        items = f"{len(s.items)} item" + ("" if len(s.items) == 1 else "s")
        tests = f", {len(s.tests)} test" + ("" if len(s.tests) == 1 else "s") if s.tests else ""
        lines.append(
            f"  slice {s.index}/{total}  predicted {format_seconds(s.predicted_seconds)}  "
            f"({items}{tests})"
        )
        lines.extend(f"    {clean_text(item.key)}" for item in s.items)
    extra = []
    if plan.startup_seconds:
        extra.append(f"start-up {format_seconds(plan.startup_seconds)} per slice")
    if plan.planner:
        extra.append(f"planner {plan.planner}")
    tail = f" ({', '.join(extra)})" if extra else ""
    lines.append(f"  predicted wall time: {format_seconds(plan.predicted_wall_seconds)}{tail}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class RunOutput:
    """What the CLI prints when a run ends, per stream; each text ends with a newline."""

    #: For standard output.
    stdout: str
    #: For standard error (empty: nothing).
    stderr: str = ""


def render_result(run: RunResult, *, as_json: bool, color: bool, width: int) -> RunOutput:
    """The end of a run that ran: the summary, or with ``--json`` the result document.

    With ``--json`` standard output holds only the JSON (``RunResult.to_json``), so that it can
    be piped, and the summary goes to standard error, uncoloured.

    :param run: the merged result.
    :param as_json: ``--json``.
    :param color: colour the summary (a terminal that wants it; never with *as_json*).
    :param width: the terminal's width in columns.
    """
    if as_json:
        return RunOutput(
            stdout=json.dumps(run.to_json(), indent=2) + "\n",
            stderr=render_summary(run, color=False, width=width) + "\n",
        )
    return RunOutput(stdout=render_summary(run, color=color, width=width) + "\n")
