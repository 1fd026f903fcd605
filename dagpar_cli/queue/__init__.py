"""Queue mode: the CI nodes of one build pull work units from Redis (``--queue``).

- :mod:`.options` checks ``--queue``/``--build``/``--worker``/``--lease`` (and finds the build id
  in CI variables);
- :mod:`.client` connects, and turns Redis failures into one line and exit 4;
- :mod:`.units` cuts a split call's plan into work units and digests its listing;
- :mod:`.build` is the build's state in Redis: leader election, reservations with leases,
  requeues, results;
- :mod:`.scheduler` is the :class:`~dagpar_cli.execution.scheduler.api.Scheduler` that runs the
  units a node reserves, and :mod:`.plugin` chooses it (``dagpar_make_scheduler``);
- :mod:`.report` and :mod:`.cli` are ``dagpar queue report``.

The ``redis`` client is an optional extra: ``pip install 'dagpar[queue]'``.
"""

from __future__ import annotations
