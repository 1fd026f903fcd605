"""The markers a dagpar plugin needs, and nothing else.

This module imports only pluggy, so every plugin (the built-in ones included) can import the
markers without pulling in the plugin manager or the hook specifications.

Quick start for a runner plugin
    A runner plugin teaches dagpar one test runner: how to list its tests, how to run a slice's
    selection, and how to read the report. Subclass :class:`dagpar_cli.Runner`, register an
    instance from the ``dagpar_register_runners`` hook, and name the module under the ``dagpar``
    entry-point group::

        # myrunner_dagpar/plugin.py
        from dagpar_cli import Runner, RunnerCommand, TestCase, TestResult, hookimpl

        class MyRunner(Runner):
            name = "myrunner"                        # toolchains say @object_type(runner=...)

            def collect(self, spec, host):           # list every test, run none
                ...
            def command(self, spec, selection):      # the commands that run exactly a slice
                return [RunnerCommand(argv=("myrunner", "--report={report_dir}/r.json"))]
            def parse(self, spec, report_dir, outcome):  # the report as one result per test
                ...

        @hookimpl
        def dagpar_register_runners(registry):
            registry.add(MyRunner())

    .. code-block:: toml

        [project.entry-points.dagpar]
        myrunner = "myrunner_dagpar.plugin"

    ``DAGPAR_PLUGINS=myrunner_dagpar.plugin`` loads a plugin that is not installed yet,
    ``DAGPAR_TRACE_PLUGINS=1`` prints every hook call, and :mod:`dagpar_cli.testing` has a fake
    :class:`~dagpar_cli.testing.FakeRunnerHost` and :func:`~dagpar_cli.testing.run_runner_commands`
    for the plugin's own tests. Every hook is documented in :mod:`dagpar_cli.hookspecs`.
"""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name; also the entry-point group plugins register under.
PROJECT = "dagpar"

#: Marks a hook implementation: ``@hookimpl def dagpar_register_runners(registry): ...``.
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Marks a hook specification; dagpar's own are all in :mod:`dagpar_cli.hookspecs`.
hookspec = pluggy.HookspecMarker(PROJECT)
