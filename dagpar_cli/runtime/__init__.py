"""Stages 4 to 7 at run time: what happens when toolchain code calls a ``+parallel`` function.

- :mod:`.context` — the run, call and slice in progress, and the small :class:`~.context.Runtime`
  Protocol the SDK calls (the SDK never imports the orchestrator);
- :mod:`.orchestrator` — the implementation: a split call is itemize → list → filter → plan →
  schedule → collect;
- :mod:`.listing` — listing a runner's tests, the listing cache, repairing a stale listing;
- :mod:`.collect` — every selected test exactly once, retries, the split call's verdict;
- :mod:`.progress_poller` — live progress of running runners;
- :mod:`.standalone` — toolchain code run outside dagpar (a toolchain's own unit tests).
"""
