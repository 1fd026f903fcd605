"""The ``dagpar`` command line: parse options, call the pipeline, map errors to exit codes.

Nothing here decides how tests are split or run; see :mod:`dagpar_cli.pipeline`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dagpar_cli._version import __version__
from dagpar_cli.config import RunOptions
from dagpar_cli.errors import DagparError, ExitCode, UsageError
from dagpar_cli.queue.cli import make_queue_group

if TYPE_CHECKING:
    from pluggy import PluginManager

    from dagpar_cli.model import RunResult
    from dagpar_cli.run_context import RunContext

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])

#: CI variables that name this node's shard: (index variable, total variable, index base).
CI_SHARD_VARIABLES: tuple[tuple[str, str, int], ...] = (
    ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
)


def parse_shard(text: str, *, source: str = "--shard") -> tuple[int, int]:
    """Parse ``I/N`` (1-based).

    :raises UsageError: naming *source* and the fix.
    """
    index_text, slash, total_text = text.partition("/")
    try:
        index, total = int(index_text), int(total_text)
    except ValueError:
        index = total = 0
    if not slash or total < 1:
        raise UsageError(f"{source} {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 2/4")
    if not 1 <= index <= total:
        raise UsageError(f"{source} {text!r}: shard index must be between 1 and {total}")
    return index, total


def detect_shard(env: dict[str, str] | os._Environ[str]) -> tuple[tuple[int, int], str] | None:
    """This node's shard from CI variables (CircleCI, Buildkite, GitLab, generic), if any."""
    for index_var, total_var, base in CI_SHARD_VARIABLES:
        if index_var in env and total_var in env:
            source = f"{index_var}/{total_var}"
            try:
                index, total = int(env[index_var]) + (1 - base), int(env[total_var])
            except ValueError:
                raise UsageError(
                    f"{source}: expected whole numbers, got {env[index_var]!r}/{env[total_var]!r}"
                ) from None
            if total < 1 or not 1 <= index <= total:
                raise UsageError(f"{source}: index {env[index_var]} is outside 1..{total}")
            return (index, total), source
    return None


def parse_parallelism(text: str | None) -> int | None:
    """``-j N`` or ``auto``."""
    if text is None or text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"-j/--parallelism {text!r}: expected a positive number or 'auto'")
    return value


#: The longest ``--timeout`` accepted: a week. Anything longer is a typo or an overflow waiting
#: to happen (``1e308`` seconds overflows the clocks that enforce it).
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600


def check_timeout(value: float | None) -> float | None:
    """``--timeout``: a positive, finite number of seconds, at most a week.

    :raises UsageError: naming the flag and the range (``nan`` would time every slice out at
        once, ``inf`` would overflow).
    """
    if value is None:
        return None
    if not math.isfinite(value) or value > MAX_TIMEOUT_SECONDS:
        raise UsageError(
            f"--timeout {value:g}: expected a positive number of seconds, "
            f"at most {MAX_TIMEOUT_SECONDS} (7 days)"
        )
    if value <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    return value


def run_options(params: dict[str, Any]) -> RunOptions:
    """Build :class:`RunOptions` from the shared options' values."""
    from dagpar_cli.queue.options import parse_queue_options

    # An empty --shard is a CI variable that expanded to nothing, not "no shard".
    shard = parse_shard(params["shard"]) if params.get("shard") is not None else None
    queue = parse_queue_options(
        params.get("queue"),
        build=params.get("build"),
        worker=params.get("worker"),
        lease=params.get("lease"),
        shard_given=shard is not None,
        retry_failed=bool(params.get("retry_failed")),
    )
    if shard is None and queue is None:
        detected = detect_shard(os.environ)
        if detected is not None:
            shard, source = detected
            click.echo(f"dagpar: shard {shard[0]}/{shard[1]} (from {source})", err=True)
    retries = params.get("retries") or 0
    if retries < 0:
        raise UsageError("--retries must be 0 or more")
    if retries and queue is not None:
        raise UsageError("--retries does not combine with --queue yet: use --retry-failed")
    timeout = check_timeout(params.get("timeout"))
    return RunOptions(
        filters=tuple(params.get("filters") or ()),
        matrix=tuple(params.get("matrix") or ()),
        parallelism=parse_parallelism(params.get("parallelism")),
        executor=params.get("executor"),
        engines=tuple(params.get("engines") or ()),
        shard=shard,
        junit_xml=Path(params["junit_xml"]) if params.get("junit_xml") else None,
        report_html=Path(params["report_html"]) if params.get("report_html") else None,
        retries=retries,
        timeout=timeout,
        dry_run=bool(params.get("dry_run")),
        json=bool(params.get("json_output")),
        failfast=bool(params.get("failfast")),
        debug=bool(params.get("debug")),
        queue=queue,
    )


def queue_options() -> list[Callable[[F], F]]:
    """``--queue`` and its companions (queue mode, DESIGN.md §6)."""
    return [
        click.option("--queue", envvar="DAGPAR_QUEUE", metavar="URL", help="Pull work from Redis."),
        click.option("--build", envvar="DAGPAR_BUILD", metavar="ID", help="The queue's CI build."),
        click.option("--worker", metavar="NAME", help="This node's name in the queue."),
        click.option("--lease", type=float, metavar="SECONDS", help="Reservation lease (30)."),
        click.option("--retry-failed", is_flag=True, help="Rerun the queue build's failures."),
    ]


def shared_options(fn: F) -> F:
    """The options ``call`` and ``check`` share (DESIGN.md §4)."""
    options = [
        click.option(
            "--filter",
            "filters",
            multiple=True,
            metavar="SELECTOR",
            help="[!][INSTANCE:]PATHGLOB[::NAMEGLOB]; repeatable, '!' excludes.",
        ),
        click.option(
            "--matrix",
            "matrix",
            multiple=True,
            metavar="FIELD=GLOB",
            help="Run the matrix combinations whose FIELD matches GLOB; repeatable.",
        ),
        click.option(
            "-j", "--parallelism", metavar="N|auto", help="Slices at once (default: CPUs)."
        ),
        click.option(
            "--executor", type=click.Choice(["local", "docker"]), help="Where slices run."
        ),
        click.option(
            "--engine", "engines", multiple=True, metavar="URL", help="Docker engine; repeatable."
        ),
        click.option("--shard", metavar="I/N", help="Run bucket I of N (CI nodes)."),
        *queue_options(),
        click.option("--junit-xml", type=click.Path(dir_okay=False), help="Merged JUnit XML."),
        click.option("--report-html", type=click.Path(dir_okay=False), help="HTML report."),
        click.option("--retries", type=int, default=0, help="Rerun failed tests N times."),
        click.option("--timeout", type=float, help="Per-slice timeout in seconds."),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Print the plan; run no test. Listing the tests still runs project code: "
            "the toolchains' checks up to their split call, pytest's conftest.py and test "
            "modules, Jest's test files.",
        ),
        click.option("--json", "json_output", is_flag=True, help="Machine-readable stdout."),
        click.option(
            "-C", "--workspace", type=click.Path(), default=".", help="The workspace root."
        ),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The version from dagpar itself, not the installed metadata (which costs importing
# importlib.metadata at every ``--version``).
@click.version_option(version=__version__, prog_name="dagpar")
def cli() -> None:
    """Split test suites into slices, run them in parallel, report one merged result.

    \b
    Examples:
      dagpar check                      run every check of the workspace
      dagpar check --shard 2/4          run this CI node's share
      dagpar call pytest test-files test --filter 'tests/test_a.py'
    """


@cli.command(
    epilog="Example:  dagpar functions pytest test-files",
)
@click.argument("path", nargs=-1)
@click.option("-C", "--workspace", type=click.Path(), default=".", help="The workspace root.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_obj
def functions(
    pm: PluginManager | None, /, path: Sequence[str], workspace: str, debug: bool
) -> None:
    """List toolchains, their functions and fields ([+parallel], [+check])."""
    _run(debug, lambda: _functions(pm, Path(workspace), list(path)))


def _functions(pm: PluginManager | None, workspace: Path, path: list[str]) -> int:
    from dagpar_cli.describe import describe
    from dagpar_cli.discovery import discover
    from dagpar_cli.pipeline import session_scope

    with session_scope(workspace, RunOptions(list_only=True), pm=pm) as session:
        toolchains = discover(session.config, session.pm)
        click.echo(describe(toolchains, path))
    return 0


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True},
    epilog="Examples:\n\n  dagpar call pytest test-files test -j 4\n\n"
    "  dagpar call build dist --target linux -o out/",
)
@click.argument("chain", nargs=-1, type=click.UNPROCESSED)
@click.option("-o", "--output", type=click.Path(), help="Export a Directory result here.")
@shared_options
@click.pass_obj
def call(
    pm: PluginManager | None, /, chain: Sequence[str], output: str | None, **params: Any
) -> None:
    """Call a chain: INSTANCE FUNCTION [--arg V]... [FUNCTION ...]."""
    _run(params.get("debug", False), lambda: _call(pm, list(chain), output, params))


def _call(
    pm: PluginManager | None, chain: list[str], output: str | None, params: dict[str, Any]
) -> int:
    from dagpar_cli.pipeline import exit_code_for, run_call, session_scope
    from dagpar_cli.queue.plugin import finish_node
    from dagpar_cli.sdk.directory import Directory

    options = run_options(params)
    with (
        _stdout_to_stderr(options.json),
        session_scope(Path(params["workspace"]), options, pm=pm) as session,
    ):
        run, value = run_call(session, chain, export_to=Path(output) if output else None)
    code = finish_node(session, run, _print_run(run, options, session))
    if options.dry_run or options.json:
        return code
    if isinstance(value, Path):
        click.echo(f"exported the directory result to {value}", err=True)
    elif isinstance(value, Directory):
        click.echo("the result is a directory: pass -o PATH to export it", err=True)
    elif value is not None and not hasattr(value, "__dagpar_type__"):
        click.echo(value if isinstance(value, str) else json.dumps(value, default=str))
    elif value is not None:
        click.echo(repr(value))
    return int(exit_code_for(run)) if code == 0 else code


@cli.command(
    epilog="Examples:\n\n  dagpar check -l\n\n  dagpar check 'backend:*' --skip backend:lint\n\n"
    "  dagpar check --filter 'api/tests/test_b.py::test_c' --junit-xml out/junit.xml",
)
@click.argument("patterns", nargs=-1)
@click.option("-l", "--list", "list_only", is_flag=True, help="List the checks; run nothing.")
@click.option("--skip", multiple=True, metavar="PATTERN", help="Skip checks; repeatable.")
@click.option("--failfast", is_flag=True, help="Stop at the first failure.")
@shared_options
@click.pass_obj
def check(
    pm: PluginManager | None,
    /,
    patterns: Sequence[str],
    list_only: bool,
    skip: Sequence[str],
    failfast: bool,
    **params: Any,
) -> None:
    """Run every +check (or those matching PATTERN: instance:function globs)."""
    params["failfast"] = failfast
    _run(
        params.get("debug", False),
        lambda: _check(pm, list(patterns), list_only, list(skip), params),
    )


def _check(
    pm: PluginManager | None,
    patterns: list[str],
    list_only: bool,
    skip: list[str],
    params: dict[str, Any],
) -> int:
    from dagpar_cli.callchain import select_checks
    from dagpar_cli.discovery import discover
    from dagpar_cli.pipeline import run_checks, session_scope
    from dagpar_cli.queue.plugin import finish_node

    options = dataclasses.replace(run_options(params), list_only=list_only)
    with (
        _stdout_to_stderr(options.json),
        session_scope(Path(params["workspace"]), options, pm=pm) as session,
    ):
        if not list_only:
            run = run_checks(session, patterns, skip)
        else:
            checks = select_checks(discover(session.config, session.pm), patterns, skip)
    if not list_only:
        return finish_node(session, run, _print_run(run, options, session))
    if options.json:
        click.echo(json.dumps({"checks": [c.name for c in checks]}))
    else:
        for c in checks:
            click.echo(c.name)
    return 0


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """With ``--json``, send whatever is printed in the block to stderr.

    Toolchain code runs in dagpar's process and may print at import, in a check, or from a
    child process it starts itself; with ``--json``, stdout must carry the document alone, so
    the block's output goes to stderr, at the file-descriptor level too, and the document is
    printed after it.
    """
    if not active:
        yield
        return
    sys.stdout.flush()
    try:
        real = sys.stdout.fileno() == 1
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is both
        real = False  # not a real descriptor (an in-process runner): the Python level does
    saved = os.dup(1) if real else None
    if saved is not None:
        os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _print_run(run: RunResult, options: RunOptions, session: RunContext) -> int:
    """Print a run's plan (dry run) or result, and return its exit code.

    A report that could not be written is one line after the summary (and exit 4).
    """
    from dagpar_cli.pipeline import exit_code_for
    from dagpar_cli.reporting import files
    from dagpar_cli.reporting.plan import render_dry_run
    from dagpar_cli.reporting.summary import render_result

    if options.dry_run:
        click.echo(render_dry_run(run, as_json=options.json), nl=False)
        return 0
    output = render_result(run, as_json=options.json, color=_color(), width=_width())
    click.echo(output.stdout, nl=False)
    click.echo(output.stderr, nl=False, err=True)
    for failure in files.failures(session):
        click.echo(f"dagpar: error: {failure}", err=True)
    return int(exit_code_for(run, session))


def _color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _width() -> int:
    import shutil

    return max(60, min(140, shutil.get_terminal_size((100, 24)).columns))


@cli.group()
def timings() -> None:
    """Inspect and move the timing store (.dagpar/timings.sqlite).

    \b
    Examples:
      dagpar timings show
      dagpar timings export -o timings.json
      dagpar timings merge node-*.json
      dagpar timings import --instance backend reports/junit.xml
    """


@timings.command("show", epilog="Example:  dagpar timings show --limit 20")
@click.option("-C", "--workspace", type=click.Path(), default=".")
@click.option("--instance", help="Only this toolchain instance.")
@click.option("--limit", type=int, default=20, help="How many rows.")
@click.option("--json", "json_output", is_flag=True)
@click.option("--debug", is_flag=True)
def timings_show(
    workspace: str, instance: str | None, limit: int, json_output: bool, debug: bool
) -> None:
    """Slowest items, their estimates and sample counts."""

    def body() -> int:
        from dagpar_cli.timings import TimingStore

        with TimingStore.open(_existing(workspace)) as store:
            rows = store.show(instance, limit)
        if json_output:
            click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2, default=str))
        elif not rows:
            click.echo("no timings recorded yet: run `dagpar check` once")
        else:
            for r in rows:
                click.echo("  ".join(f"{k}={v}" for k, v in dataclasses.asdict(r).items()))
        return 0

    _run(debug, body)


@timings.command("export", epilog="Example:  dagpar timings export -o timings.json")
@click.option("-C", "--workspace", type=click.Path(), default=".")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@click.option("--debug", is_flag=True)
def timings_export(workspace: str, output: str | None, debug: bool) -> None:
    """Write the store as JSON (a CI artifact)."""

    def body() -> int:
        from dagpar_cli.timings import TimingStore

        with TimingStore.open(_existing(workspace)) as store:
            text = json.dumps(store.export_json(), indent=1, sort_keys=True)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)
        return 0

    _run(debug, body)


@timings.command("merge", epilog="Example:  dagpar timings merge node-1.json node-2.json")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-C", "--workspace", type=click.Path(), default=".")
@click.option("--debug", is_flag=True)
def timings_merge(files: Sequence[str], workspace: str, debug: bool) -> None:
    """Merge exported JSON files into the store (order-independent, idempotent)."""

    def body() -> int:
        from dagpar_cli.timings import TimingStore

        with TimingStore.open(_existing(workspace)) as store:
            for name in files:
                try:
                    data = json.loads(Path(name).read_text(encoding="utf-8"))
                except FileNotFoundError:
                    raise UsageError(f"{name}: no such file") from None
                except (ValueError, RecursionError) as exc:
                    # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is a number too
                    # long to convert, and absurd nesting exhausts the recursion limit.
                    raise UsageError(f"{name}: not a timings export ({exc})") from None
                if not isinstance(data, dict):
                    raise UsageError(f"{name}: not a timings export (expected a JSON object)")
                try:
                    store.merge_json(data)
                except (ValueError, TypeError) as exc:
                    raise UsageError(f"{name}: {exc}") from None
        click.echo(f"merged {len(files)} file(s)", err=True)
        return 0

    _run(debug, body)


@timings.command("import", epilog="Example:  dagpar timings import --instance api junit.xml")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--instance",
    help="The toolchain instance the tests belong to (default: the workspace's only one).",
)
@click.option("-C", "--workspace", type=click.Path(), default=".")
@click.option("--debug", is_flag=True)
@click.pass_obj
def timings_import(
    pm: PluginManager | None,
    /,
    files: Sequence[str],
    instance: str | None,
    workspace: str,
    debug: bool,
) -> None:
    """Import JUnit XML written by any tool (pytest, jest-junit, gotestsum, Surefire)."""

    def body() -> int:
        from dagpar_cli.timings import TimingStore
        from dagpar_cli.timings.transfer import import_instance

        root = _existing(workspace)
        chosen = import_instance(instance, _instances(root, pm))
        total = 0
        with TimingStore.open(root) as store:
            for name in files:
                if not Path(name).is_file():
                    raise UsageError(f"{name}: no such file")
                total += store.import_junit(Path(name), chosen)
        click.echo(f"imported {total} sample(s)", err=True)
        return 0

    _run(debug, body)


@cli.group()
def junit() -> None:
    """Work with JUnit XML reports.

    \b
    Example:
      dagpar junit merge -o junit.xml node-1/junit.xml node-2/junit.xml
    """


@junit.command("merge", epilog="Example:  dagpar junit merge -o junit.xml node-*/junit.xml")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option("--debug", is_flag=True)
def junit_merge(files: Sequence[str], output: str, debug: bool) -> None:
    """Merge per-node JUnit files into one; a test reported twice is an error."""

    def body() -> int:
        from dagpar_cli.reporting.junit import merge_junit

        for name in files:
            if not Path(name).is_file():
                raise UsageError(f"{name}: no such file")
        data, warnings = merge_junit([Path(f) for f in files])
        for warning in warnings:
            click.echo(f"dagpar: warning: {warning}", err=True)
        Path(output).write_bytes(data)
        return 0

    _run(debug, body)


cli.add_command(make_queue_group(lambda debug, body: _run(debug, body)))


@cli.command(epilog="Example:  dagpar cleanup --engine tcp://build-1:2376")
@click.option(
    "--engine", "engines", multiple=True, metavar="URL", help="Docker engine; repeatable."
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def cleanup(engines: Sequence[str], debug: bool) -> None:
    """Remove containers left by a dagpar that is gone (killed, or expired elsewhere)."""

    def body() -> int:
        from dagpar_cli.execution.docker_engines import parse_engine
        from dagpar_cli.execution.docker_owner import cleanup_abandoned

        removed = cleanup_abandoned([parse_engine(text) for text in engines])
        click.echo(f"dagpar: removed {removed} abandoned container{'s' * (removed != 1)}")
        return 0

    _run(debug, body)


def _instances(workspace: Path, pm: PluginManager | None) -> list[str]:
    """The workspace's toolchain instances, configured or detected (no toolchain is loaded)."""
    from dagpar_cli.config.loader import load_config
    from dagpar_cli.discovery import detect_toolchains
    from dagpar_cli.pluginmanager import get_plugin_manager

    pm = pm or get_plugin_manager()
    config = detect_toolchains(load_config(workspace, pm), pm)
    return [tc.instance for tc in config.toolchains]


def _existing(workspace: str) -> Path:
    path = Path(workspace)
    if not path.is_dir():
        raise UsageError(f"workspace '{workspace}' does not exist (-C/--workspace)")
    return path.resolve()


def _run(debug: bool, body: Callable[[], int]) -> None:
    """Run a command body and exit with its code; handled errors print one line."""
    debug = debug or bool(os.environ.get("DAGPAR_DEBUG"))
    try:
        code = body()
    except DagparError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"dagpar: error: {exc.message}", err=True)
        code = int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("dagpar: interrupted", err=True)
        code = int(ExitCode.INTERRUPTED)
    except click.exceptions.Exit:
        raise
    except BaseException as exc:  # anything else, even a stray SystemExit: dagpar's exit code
        if debug:
            traceback.print_exc()
        else:
            click.echo(
                f"dagpar: internal error: {type(exc).__name__}: {exc} "
                "(run with --debug for the traceback, and please report it)",
                err=True,
            )
        code = int(ExitCode.INTERNAL_ERROR)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises SystemExit).

    SIGINT and SIGTERM are handled from the first moment (:mod:`dagpar_cli.interrupts`): an
    interrupt while plugins load or a toolchain imports gives exit 130 and one line, like one
    during the run.

    The plugin manager is built once, before the arguments are parsed, so that plugins can add
    subcommands (``dagpar_add_commands``); the commands receive it as click's context object
    (loading every entry point twice would cost a noticeable part of a second).
    """
    from dagpar_cli._collector import fewer_collections
    from dagpar_cli.interrupts import handling, received

    try:
        with handling(), fewer_collections():
            code = _main(argv)
            # However the interrupt was handled (click turns one while it parses into exit 1),
            # an interrupted dagpar exits with 130.
            return int(ExitCode.INTERRUPTED) if received() else code
    except KeyboardInterrupt:
        click.echo("dagpar: interrupted", err=True)
        return int(ExitCode.INTERRUPTED)


def _main(argv: Sequence[str] | None) -> int:
    from dagpar_cli.pluginmanager import get_plugin_manager

    try:
        pm = get_plugin_manager()
        pm.hook.dagpar_add_commands(cli=cli)
    except DagparError as exc:
        click.echo(f"dagpar: error: {exc.message}", err=True)
        return int(exc.exit_code)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="dagpar", obj=pm)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0
