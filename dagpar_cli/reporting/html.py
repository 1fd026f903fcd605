"""The HTML report (``--report-html PATH``): one self-contained file a person opens after a run.

Sections, top to bottom in the order a reader asks questions: the run summary (status, counts,
planned against actual wall time, one row per check), every failure with its details folded
away, a timeline of the slices (a Gantt chart: one row per slice, the planned duration as an
outline behind the actual one, the slice's tests laid end to end inside its bar), and the slowest
tests.

The file makes no network request and runs only its own script: styles, script and chart are
inline, and a ``Content-Security-Policy`` allows nothing else (scripts only by the hash of
dagpar's own). Every string that came from a runner is cleaned
(:func:`~dagpar_cli.reporting._text.clean_text`) and HTML-escaped, so a test named
``<script>…`` is shown, never run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli._fs import write_through
from dagpar_cli.model import CheckResult, RunResult, SliceResult, Status, TestResult
from dagpar_cli.plugin import hookimpl
from dagpar_cli.reporting._text import clean_text, truncate
from dagpar_cli.reporting.counts import Counts
from dagpar_cli.reporting.files import write_report

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = ["dagpar_report", "render_html", "write_html"]

#: Bytes kept of one failure's details (head and tail): a browser stays responsive with
#: hundreds of failures, and the JUnit report keeps the full text.
DETAILS_LIMIT = 64 * 1024
#: Failures shown with their details; later ones get their message only.
DETAILED_FAILURES = 500
#: Test segments drawn inside one slice's bar; the rest are drawn as one segment.
SEGMENTS_PER_SLICE = 400
#: How many of the slowest tests are listed.
SLOWEST = 15

#: The id of the element the report's script adds once it ran without error (tests look for it).
READY_ID = "dagpar-report-ready"
#: The id of the element the script adds when it failed.
ERROR_ID = "dagpar-report-error"

_CSS = """
:root { color-scheme: light dark; --pass: #2e7d32; --fail: #c62828; --skip: #b08900;
  --err: #8e24aa; --muted: #777; --line: #8884; --plan: #1565c0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1400px; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12.5px; }
pre { white-space: pre-wrap; word-break: break-all; background: #8881; padding: .6rem;
  border-radius: 4px; margin: .4rem 0; max-height: 40rem; overflow: auto; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .2rem .8rem .2rem 0;
  border-bottom: 1px solid var(--line); vertical-align: top; } td.num { text-align: right; }
.status { font-weight: 700; } .passed { color: var(--pass); } .failed { color: var(--fail); }
.error { color: var(--err); } .skipped { color: var(--skip); } .muted { color: var(--muted); }
.banner { padding: .6rem 1rem; border-radius: 6px; color: #fff; font-weight: 600; }
.banner.ok { background: var(--pass); } .banner.bad { background: var(--fail); }
.banner.int { background: var(--skip); }
details.failure { border: 1px solid var(--line); border-left: 4px solid var(--fail);
  border-radius: 4px; margin: .4rem 0; padding: .3rem .6rem; }
details.failure.error-kind { border-left-color: var(--err); }
details.failure > summary, details.flaky > summary { cursor: pointer; }
details.flaky { border: 1px solid var(--line); border-left: 4px solid var(--skip);
  border-radius: 4px; margin: .4rem 0; padding: .3rem .6rem; }
.tid { word-break: break-all; font-weight: 600; }
.msg { display: block; color: var(--muted); white-space: pre-wrap; word-break: break-all; }
.toolbar { display: flex; gap: .6rem; align-items: center; margin-bottom: .4rem; }
.toolbar input { flex: 1; max-width: 30rem; padding: .25rem .4rem; }
.gantt { border-top: 1px solid var(--line); }
.grow { display: flex; align-items: center; min-height: 22px;
  border-bottom: 1px solid var(--line); }
.grow.check { font-weight: 600; background: #8881; }
.glabel { flex: 0 0 16rem; padding-right: .6rem; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.gtrack { position: relative; flex: 1; height: 18px; }
.gplan { position: absolute; top: 0; bottom: 0; border: 1.5px dashed var(--plan);
  border-radius: 3px; }
.gbar { position: absolute; top: 3px; bottom: 3px; background: #9e9e9e55; border-radius: 2px;
  overflow: hidden; display: flex; justify-content: flex-end; }
.gbar.bad { outline: 2px solid var(--fail); }
.gspan { position: absolute; top: 7px; height: 4px; background: var(--muted); border-radius: 2px; }
.seg { height: 100%; border-right: 1px solid #fff8; flex: none; }
.seg.at { position: absolute; top: 0; }
.seg.passed { background: var(--pass); } .seg.failed { background: var(--fail); }
.seg.error { background: var(--err); } .seg.skipped { background: var(--skip); }
.seg.rest { background: repeating-linear-gradient(45deg, #9996, #9996 3px, #9993 3px, #9993 6px); }
.axis { position: relative; height: 1.4rem; margin-left: 16rem; color: var(--muted);
  font-size: 11px; }
.tick { position: absolute; top: 0; border-left: 1px solid var(--line); padding-left: 2px; }
.legend span { margin-right: 1rem; } .sw { display: inline-block; width: .9rem; height: .7rem;
  vertical-align: middle; margin-right: .25rem; }
.hl { outline: 2px solid #ff0 !important; }
"""

# Plain ES5 so that any browser a CI artifact is opened in runs it. It only adds behaviour
# (folding, filtering, highlighting); everything is readable without it.
_JS = """
(function () {
  "use strict";
  function mark(id, text) {
    var el = document.createElement("div");
    el.id = id;
    el.hidden = true;
    el.textContent = text;
    document.body.appendChild(el);
  }
  try {
    var failures = Array.prototype.slice.call(document.querySelectorAll("details.failure"));
    var toggle = document.getElementById("toggle-all");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("data-open") !== "1";
        failures.forEach(function (d) { d.open = open; });
        toggle.setAttribute("data-open", open ? "1" : "0");
        toggle.textContent = open ? "Collapse all" : "Expand all";
      });
    }
    var box = document.getElementById("failure-filter");
    if (box) {
      box.addEventListener("input", function () {
        var needle = box.value.toLowerCase();
        failures.forEach(function (d) {
          d.hidden = needle !== "" && d.textContent.toLowerCase().indexOf(needle) < 0;
        });
      });
    }
    // Clicking a failure's "timeline" link flashes its segment in the chart.
    Array.prototype.forEach.call(document.querySelectorAll("a.seg-link"), function (a) {
      a.addEventListener("click", function (ev) {
        var seg = document.getElementById(a.getAttribute("data-seg"));
        if (!seg) { return; }
        ev.preventDefault();
        seg.scrollIntoView({block: "center"});
        seg.classList.add("hl");
        window.setTimeout(function () { seg.classList.remove("hl"); }, 1500);
      });
    });
    var segments = document.querySelectorAll(".gantt .seg").length;
    mark("__READY__", failures.length + " failures, " + segments + " segments");
  } catch (e) {
    mark("__ERROR__", String(e && e.stack || e));
    throw e;
  }
})();
""".replace("__READY__", READY_ID).replace("__ERROR__", ERROR_ID)

_STATUS_CLASS = {
    Status.PASSED: "passed",
    Status.FAILED: "failed",
    Status.ERROR: "error",
    Status.SKIPPED: "skipped",
}


def _e(text: str) -> str:
    """*text* from a runner, made safe for HTML text and attribute values."""
    return html.escape(clean_text(text), quote=True)


def _secs(seconds: float) -> str:
    if seconds >= 60:
        whole = int(seconds)
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{seconds:.2f}s"


def _pct(value: float, scale: float) -> str:
    return f"{max(0.0, value) / scale * 100:.4f}%"


def _counts_html(counts: Counts) -> str:
    parts = []
    for n, word, css in (
        (counts.failed, "failed", "failed"),
        (counts.errors, "error" if counts.errors == 1 else "errors", "error"),
        (counts.passed, "passed", "passed"),
        (counts.skipped, "skipped", "skipped"),
        (counts.flaky, "flaky", "skipped"),
    ):
        if n:
            parts.append(f'<span class="{css}">{n} {word}</span>')
    return ", ".join(parts) or '<span class="muted">no tests</span>'


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------


def _planned_wall(run: RunResult) -> float:
    return run.predicted_seconds or max(
        (p.predicted_wall_seconds for c in run.checks for p in c.plans), default=0.0
    )


def _summary(run: RunResult, started_wall: float | None) -> list[str]:
    failed = any(not c.passed for c in run.checks)
    if run.interrupted:
        banner, css = "Interrupted", "int"
    elif failed:
        banner, css = "Failed", "bad"
    else:
        banner, css = "Passed", "ok"
    counts = Counts.of(run.results)
    planned = _planned_wall(run)
    wall = f"{_secs(run.seconds)} (planned {_secs(planned)})" if planned else _secs(run.seconds)
    when = ""
    if started_wall is not None:
        stamp = datetime.fromtimestamp(started_wall, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        when = f" · started {stamp} UTC"
    shard = f" · shard {run.shard[0]}/{run.shard[1]}" if run.shard else ""
    out = [
        f'<div class="banner {css}" id="run-status">{banner}</div>',
        f'<p id="run-counts">{_counts_html(counts)} · wall time {wall}{shard}{when}</p>',
        '<table id="checks"><thead><tr><th>check</th><th>status</th><th>tests</th>'
        "<th>slices</th><th>planned</th><th>actual</th></tr></thead><tbody>",
    ]
    for check in run.checks:
        if check.interrupted:
            status = '<span class="status skipped">interrupted</span>'
        elif check.passed:
            status = '<span class="status passed">passed</span>'
        else:
            status = '<span class="status failed">failed</span>'
        planned_check = sum(p.predicted_wall_seconds for p in check.plans)
        out.append(
            f"<tr><td class='mono'>{_e(check.name)}</td><td>{status}</td>"
            f"<td>{_counts_html(Counts.of(check.results))}</td>"
            f"<td class='num'>{len(check.slices)}</td>"
            f"<td class='num'>{_secs(planned_check) if planned_check else '-'}</td>"
            f"<td class='num'>{_secs(check.seconds)}</td></tr>"
        )
    out.append("</tbody></table>")
    return out


def _bounded(text: str) -> str:
    """*text* cleaned, cut to about :data:`DETAILS_LIMIT` bytes (head and tail) and escaped."""
    half = DETAILS_LIMIT // 2
    if len(text) > 2 * DETAILS_LIMIT:
        # Cleaning is linear in the text's length: cut a huge one first, so that a run with
        # hundreds of multi-megabyte tracebacks still renders quickly.
        dropped = len(text) - 2 * half
        cut = f"{text[:half]}\n… [truncated {dropped} characters] …\n{text[-half:]}"
        return html.escape(clean_text(cut), quote=True)
    return html.escape(truncate(clean_text(text), DETAILS_LIMIT, keep_tail=True), quote=True)


def _seg_id(check_index: int, slice_pos: int, test_pos: int) -> str:
    return f"seg-{check_index}-{slice_pos}-{test_pos}"


def _failure(result: TestResult, n: int, seg: str | None, detailed: bool) -> str:
    kind = "failure" if result.status is Status.FAILED else "failure error-kind"
    where = [result.check] if result.check else []
    if result.slice:
        where.append(f"slice {result.slice}")
    message = result.message.splitlines()[0] if result.message else result.status.value
    body: list[str] = []
    if detailed:
        text = "\n".join(t for t in (result.message, result.details) if t)
        if text:
            body.append(f"<pre>{_bounded(text)}</pre>")
        if result.stdout:
            out = _bounded(result.stdout)
            body.append(f"<p class='muted'>captured output</p><pre>{out}</pre>")
        for i, attempt in enumerate(result.attempts, 1):
            text = "\n".join(t for t in (attempt.message, attempt.details) if t)
            body.append(
                f"<p class='muted'>attempt {i}: {attempt.status.value} in "
                f"{_secs(attempt.seconds)}</p><pre>{_bounded(text)}</pre>"
            )
    else:
        body.append("<p class='muted'>details omitted: see the JUnit report</p>")
    link = f' · <a class="seg-link" href="#{seg}" data-seg="{seg}">timeline</a>' if seg else ""
    return (
        f'<details class="{kind}" id="failure-{n}" data-status="{result.status.value}">'
        f'<summary><span class="status {_STATUS_CLASS[result.status]}">'
        f"{result.status.value.upper()}</span> <span class='tid mono'>{_e(result.id)}</span>"
        f" <span class='muted'>({_e(' · '.join(where))}){link}</span>"
        f"<span class='msg mono'>{_e(message)}</span></summary>"
        f"{''.join(body)}</details>"
    )


def _flaky(run: RunResult) -> list[str]:
    """Tests that failed, then passed on a rerun: each with its failed attempts folded away."""
    flaky = [r for r in run.results if r.flaky]
    if not flaky:
        return []
    out = [f'<h2 id="flaky-title">Flaky tests ({len(flaky)})</h2>']
    for result in flaky:
        parts = [result.check] if result.check else []
        if result.slice:
            parts.append(f"slice {result.slice}")
        where = " · ".join(parts)
        attempts = "".join(
            f"<p class='muted'>attempt {i}: {a.status.value} in {_secs(a.seconds)}</p>"
            f"<pre>{_bounded(chr(10).join(t for t in (a.message, a.details) if t))}</pre>"
            for i, a in enumerate(result.attempts, 1)
        )
        out.append(
            f'<details class="flaky"><summary><span class="status skipped">FLAKY</span> '
            f"<span class='tid mono'>{_e(result.id)}</span> <span class='muted'>({_e(where)})"
            f" passed on try {len(result.attempts) + 1}</span></summary>{attempts}</details>"
        )
    return out


def _failures(run: RunResult, segs: dict[tuple[str, int, str], str]) -> list[str]:
    failures = [r for r in run.results if r.status.is_bad]
    broken = [c for c in run.checks if c.error]
    if not failures and not broken:
        return ['<h2 id="failures-title">Failures</h2>', "<p class='passed'>None.</p>"]
    out = [
        f'<h2 id="failures-title">Failures ({len(failures)})</h2>',
        '<div class="toolbar"><button type="button" id="toggle-all" data-open="0">Expand all'
        '</button><input id="failure-filter" type="search" placeholder="filter failures"></div>',
    ]
    for check in broken:
        out.append(
            f'<div class="check-error"><span class="status failed">check error</span> '
            f"<span class='mono'>{_e(check.name)}</span><pre>"
            f"{_bounded(check.error)}</pre></div>"
        )
    for n, result in enumerate(failures):
        seg = segs.get((result.check, result.slice, result.id))
        out.append(_failure(result, n, seg, n < DETAILED_FAILURES))
    return out


def _tick_step(span: float) -> float:
    """A round step giving about eight ticks over *span* seconds."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= 10:
            return float(step)
    return 7200.0


def _slice_row(
    check: CheckResult,
    check_index: int,
    pos: int,
    s: SliceResult,
    scale: float,
    segs: dict[tuple[str, int, str], str],
    started_wall: float | None = None,
) -> str:
    total = len(check.slices)
    bad = s.error or any(r.status.is_bad for r in s.results)
    label = f"slice {s.index}/{total}"
    tip = (
        f"{check.name} {label}: {len(s.results)} test{'' if len(s.results) == 1 else 's'}, "
        f"{_secs(s.seconds)}"
        + (f" (planned {_secs(s.predicted_seconds)})" if s.predicted_seconds else "")
        + (f" — {s.error.splitlines()[0]}" if s.error else "")
        + (f" on {s.where}" if s.where else "")
    )
    plan = ""
    if s.predicted_seconds > 0:
        plan = (
            f'<div class="gplan" style="left:{_pct(s.started, scale)};'
            f'width:{_pct(s.predicted_seconds, scale)}" '
            f'title="planned {_secs(s.predicted_seconds)}"></div>'
        )
    # A test whose runner streamed its start sits at that start. The others (runners that
    # report durations only) are laid end to end, finishing with the slice: its start-up
    # (interpreter, collection) comes first. When they overlapped (a runner's own workers) the
    # row is scaled down to fit.
    results = list(s.results)
    shown = results[:SEGMENTS_PER_SLICE]
    slice_start = None if started_wall is None else started_wall + s.started

    def placed(r: TestResult) -> bool:
        return slice_start is not None and r.start is not None and s.seconds > 0

    spent = sum(max(r.seconds, 0.0) for r in results if not placed(r))
    fit = min(1.0, s.seconds / spent) if spent > 0 and s.seconds > 0 else 0.0
    segments: list[str] = []
    for i, r in enumerate(shown):
        seg = _seg_id(check_index, pos, i)
        segs.setdefault((check.name, s.index, r.id), seg)
        title = f"{_e(r.id)} — {r.status.value} in {_secs(r.seconds)}"
        if placed(r):
            assert r.start is not None and slice_start is not None
            left = min(max((r.start - slice_start) / s.seconds * 100, 0.0), 100.0)
            width = min(max(r.seconds, 0.0) / s.seconds * 100, 100.0 - left)
            segments.append(
                f'<div class="seg {_STATUS_CLASS[r.status]} at" id="{seg}" '
                f'style="left:{left:.4f}%;width:{width:.4f}%" title="{title}"></div>'
            )
            continue
        width = max(r.seconds, 0.0) * fit / s.seconds * 100 if s.seconds > 0 else 0.0
        segments.append(
            f'<div class="seg {_STATUS_CLASS[r.status]}" id="{seg}" style="width:{width:.4f}%" '
            f'title="{title}"></div>'
        )
    if len(results) > len(shown):
        rest = [r for r in results[len(shown) :] if not placed(r)]
        width = sum(max(r.seconds, 0.0) for r in rest) * fit / s.seconds * 100 if s.seconds else 0
        segments.append(
            f'<div class="seg rest" style="width:{width:.4f}%" '
            f'title="{len(rest)} more tests"></div>'
        )
    return (
        f'<div class="grow slice" data-check="{_e(check.name)}" data-slice="{s.index}" '
        f'data-tests="{len(results)}"><div class="glabel mono" title="{_e(tip)}">'
        f"{_e(check.name)} · {label}</div><div class='gtrack'>{plan}"
        f'<div class="gbar{" bad" if bad else ""}" style="left:{_pct(s.started, scale)};'
        f'width:{_pct(s.seconds, scale)}" title="{_e(tip)}">{"".join(segments)}</div>'
        "</div></div>"
    )


def _timeline(
    run: RunResult, segs: dict[tuple[str, int, str], str], started_wall: float | None = None
) -> list[str]:
    out = ['<h2 id="timeline-title">Timeline</h2>']
    if not any(c.slices for c in run.checks):
        out.append("<p class='muted'>No slices ran.</p>")
        return out
    ends = [run.seconds]
    for c in run.checks:
        ends.append(c.started + c.seconds)
        for s in c.slices:
            ends.append(s.started + max(s.seconds, s.predicted_seconds))
    scale = max(max(ends), 0.001)
    step = _tick_step(scale)
    ticks = []
    t = 0.0
    while t <= scale + 1e-9:
        ticks.append(f'<span class="tick" style="left:{_pct(t, scale)}">{t:g}s</span>')
        t += step
    out += [
        '<p class="legend muted"><span><i class="sw" style="background:var(--pass)"></i>passed'
        '</span><span><i class="sw" style="background:var(--fail)"></i>failed</span>'
        '<span><i class="sw" style="background:var(--err)"></i>error</span>'
        '<span><i class="sw" style="background:var(--skip)"></i>skipped</span>'
        '<span><i class="sw" style="border:1.5px dashed var(--plan)"></i>planned</span>'
        "<span>one row per slice; each test at its start (end to end after the start-up "
        "where the runner gives none)</span></p>",
        f'<div class="axis">{"".join(ticks)}</div>',
        '<div class="gantt" id="timeline">',
    ]
    for ci, check in enumerate(run.checks):
        out.append(
            f'<div class="grow check"><div class="glabel mono" title="{_e(check.name)}">'
            f"{_e(check.name)}</div><div class='gtrack'><div class='gspan' style='left:"
            f"{_pct(check.started, scale)};width:{_pct(check.seconds, scale)}' "
            f"title='{_e(check.name)}: {_secs(check.seconds)}'></div></div></div>"
        )
        for pos, s in enumerate(check.slices):
            out.append(_slice_row(check, ci, pos, s, scale, segs, started_wall))
    out.append("</div>")
    return out


def _slowest(run: RunResult) -> list[str]:
    ran = [r for r in run.results if r.status is not Status.SKIPPED]
    slowest = sorted(ran, key=lambda r: (-r.seconds, r.id))[:SLOWEST]
    if not slowest:
        return []
    rows = [
        f"<tr><td class='num'>{_secs(r.seconds)}</td><td class='mono'>{_e(r.id)}</td>"
        f"<td class='mono'>{_e(r.check)}</td><td class='num'>{r.slice or ''}</td>"
        f"<td class='{_STATUS_CLASS[r.status]}'>{r.status.value}</td></tr>"
        for r in slowest
    ]
    return [
        f'<h2 id="slowest-title">Slowest {len(slowest)} tests</h2>',
        '<table id="slowest"><thead><tr><th>seconds</th><th>test</th><th>check</th>'
        "<th>slice</th><th>status</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
    ]


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")
    # Nothing may load from anywhere, and only dagpar's own script (by hash) may run: even an
    # escaping bug could not turn a hostile test name into running code.
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_html(run: RunResult, *, started_wall: float | None = None, title: str = "") -> str:
    """The HTML report of *run*: one self-contained document.

    :param run: the merged result.
    :param started_wall: ``time.time()`` at the start of the run, shown in the summary.
    :param title: the document title; ``dagpar report`` when empty.
    """
    segs: dict[tuple[str, int, str], str] = {}
    # The timeline is built first so that failures can link to their segment.
    timeline = _timeline(run, segs, started_wall)
    body = [
        f"<h1>{_e(title or 'dagpar report')}</h1>",
        '<section id="summary">',
        *_summary(run, started_wall),
        '</section><section id="failures">',
        *_failures(run, segs),
        *_flaky(run),
        '</section><section id="timeline-section">',
        *timeline,
        '</section><section id="slowest-section">',
        *_slowest(run),
        "</section>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title or 'dagpar report')}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )


def write_html(run: RunResult, path: Path, *, started_wall: float | None = None) -> None:
    """Write the HTML report of *run* to *path*, creating its parent directories.

    Written next to its final name and renamed, so a reader never sees half a file; a link is
    written through, a device or FIFO in place (:func:`~dagpar_cli._fs.write_through`).

    :param run: the merged result.
    :param path: the report file.
    :param started_wall: see :func:`render_html`.
    """
    write_through(path, render_html(run, started_wall=started_wall), errors="replace")


@hookimpl
def dagpar_report(run: RunResult, session: RunContext) -> None:
    """Write ``--report-html`` when it was given.

    :param run: the merged result.
    :param session: the run's session (its options name the file).
    """
    path = session.options.report_html
    if path is not None:
        text = render_html(run, started_wall=session.started_wall or time.time())
        write_report(session, "--report-html", path, text, errors="replace")
