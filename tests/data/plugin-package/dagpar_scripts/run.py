"""Run shell scripts one by one and write ``[[path, exit status, seconds], ...]``."""

import json
import subprocess
import sys
import time

report, *scripts = sys.argv[1:]
rows = []
for script in scripts:
    start = time.monotonic()
    code = subprocess.run(["sh", script], check=False).returncode
    rows.append([script, code, time.monotonic() - start])
with open(report, "w") as out:
    json.dump(rows, out)
