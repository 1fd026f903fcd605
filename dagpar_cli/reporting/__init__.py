"""Stage 8, report: the reporters that turn a :class:`~dagpar_cli.model.RunResult` into output.

- :mod:`~dagpar_cli.reporting.junit`: one JUnit XML file for the whole run (``--junit-xml``), and
  the merge of per-node files.
- :mod:`~dagpar_cli.reporting.summary`: the end-of-run terminal summary (or the ``--json``
  result) and the plan of one check.
- :mod:`~dagpar_cli.reporting.plan`: what ``--dry-run`` prints, and the ``--dry-run --json`` plan.
- :mod:`~dagpar_cli.reporting.otel`: OpenTelemetry spans (run → check → slice → test case).

``junit`` and ``otel`` are plugins: they switch themselves on from ``dagpar_configure`` and
``dagpar_report`` when their option or ``OTEL_*`` variable asks for them.
"""

from __future__ import annotations
