import os

import pytest


@pytest.fixture(autouse=True)
def _record_run(request):
    # dagpar's integration tests compare what they selected with what really ran.
    log = os.environ.get("HOSTILE_RUN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(request.node.nodeid + "\n")
    yield


@pytest.fixture
def base():
    return 1
