"use strict";
// dagpar's Jest reporter: one JSON line per test start and end, appended as they happen.
//
// Jest loads it with `--reporters`; the file to append to is in DAGPAR_JEST_STREAM, and each
// finished test also appends one byte to DAGPAR_JEST_PROGRESS (live progress is then a stat).
// Every write is synchronous, so a record is on disk before the next test starts: a test that
// calls process.exit() or crashes Jest leaves the records of the tests before it, and its own
// start, behind. Records:
//   {"event":"file","at":s,"file":f}                                  a test file started
//   {"event":"start","at":s,"file":f,"name":n,"occurrence":k}         a test started
//   {"event":"end","at":s,"file":f,"name":n,"occurrence":k,"status":st,"start":s|null,
//    "duration":s|null,"message":m}                                   a test ended
// Times are wall-clock seconds; `file` is relative to Jest's working directory when it lies
// under it (absolute otherwise); `name` is the describe titles and the title joined by one space
// (what --testNamePattern sees); `occurrence` counts earlier tests of that file with that name in
// this run. Jest calls onTestCaseStart from 29.6 on; older versions get end records only.
//
// Jest runs the tests of one file one after another, so a test that starts while another test of
// its file has not ended means the file started over: its worker died (process.exit, a crash)
// and jest-worker retries the file. The reporter then writes
//   {"event":"restart","at":s,"file":f}
// and ignores the file for the rest of the run, so that the test that was running stays the one
// without an end. dagpar lists the reporter before Jest's own, so it is called as each message
// arrives, in the order the tests ran.

const fs = require("fs");
const path = require("path");

const MESSAGE_LIMIT = 500;

function cwd() {
  try {
    return fs.realpathSync(process.cwd());
  } catch (_) {
    return process.cwd();
  }
}

function stripAnsi(text) {
  return String(text).replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

function shortMessage(messages) {
  for (const message of messages || []) {
    for (const line of stripAnsi(message).split("\n")) {
      const text = line.trim();
      if (text) {
        return text.length > MESSAGE_LIMIT ? text.slice(0, MESSAGE_LIMIT) + "..." : text;
      }
    }
  }
  return "";
}

class DagparStreamReporter {
  constructor() {
    this._root = cwd();
    this._fd = this._open(process.env.DAGPAR_JEST_STREAM);
    this._progress = this._open(process.env.DAGPAR_JEST_PROGRESS);
    // Per file: name -> count of tests started (or reported without a start) so far.
    this._counts = new Map();
    // Per file: name -> occurrences started and not yet ended, oldest first.
    this._open_tests = new Map();
    // Files that started over in this run: their later records are ignored.
    this._dead = new Set();
  }

  _open(file) {
    if (!file) {
      return null;
    }
    try {
      return fs.openSync(file, "a");
    } catch (_) {
      return null;
    }
  }

  _write(record) {
    if (this._fd === null) {
      return;
    }
    try {
      fs.writeSync(this._fd, JSON.stringify(record) + "\n");
    } catch (_) {
      // A full disk must not fail the run; the end-of-run report still tells.
    }
  }

  _file(testPath) {
    const relative = path.relative(this._root, testPath);
    if (!relative || relative.startsWith("..") || path.isAbsolute(relative)) {
      return testPath.split(path.sep).join("/");
    }
    return relative.split(path.sep).join("/");
  }

  _name(info) {
    return [...(info.ancestorTitles || []), info.title].join(" ");
  }

  _maps(file) {
    if (!this._counts.has(file)) {
      this._counts.set(file, new Map());
      this._open_tests.set(file, new Map());
    }
    return [this._counts.get(file), this._open_tests.get(file)];
  }

  _next(file, name) {
    const [counts] = this._maps(file);
    const occurrence = counts.get(name) || 0;
    counts.set(name, occurrence + 1);
    return occurrence;
  }

  onTestFileStart(test) {
    const file = this._file(test.path);
    // A file that starts again (jest-worker retries a file whose worker died) counts afresh.
    this._counts.delete(file);
    this._open_tests.delete(file);
    this._write({ event: "file", at: Date.now() / 1000, file });
  }

  onTestCaseStart(test, info) {
    const file = this._file(test.path);
    if (this._dead.has(file)) {
      return;
    }
    const name = this._name(info);
    const [, open] = this._maps(file);
    if ([...open.values()].some((waiting) => waiting.length > 0)) {
      this._dead.add(file);
      this._write({ event: "restart", at: Date.now() / 1000, file });
      return;
    }
    const occurrence = this._next(file, name);
    const started = typeof info.startedAt === "number" ? info.startedAt / 1000 : Date.now() / 1000;
    if (!open.has(name)) {
      open.set(name, []);
    }
    open.get(name).push({ occurrence, started });
    this._write({ event: "start", at: started, file, name, occurrence });
  }

  onTestCaseResult(test, result) {
    const now = Date.now() / 1000;
    const file = this._file(test.path);
    if (this._dead.has(file)) {
      return;
    }
    const name = this._name(result);
    const [, open] = this._maps(file);
    const waiting = open.get(name);
    let occurrence;
    let started = null;
    if (waiting && waiting.length) {
      ({ occurrence, started } = waiting.shift());
    } else {
      // No start hook (Jest before 29.6), or a todo test, which never starts.
      occurrence = this._next(file, name);
    }
    const duration = typeof result.duration === "number" ? result.duration / 1000 : null;
    if (started === null && duration !== null && result.status !== "todo") {
      started = now - duration;
    }
    // A worker's messages may arrive in a batch: the test's own clock says when it ended.
    const ended = started !== null && duration !== null ? started + duration : now;
    this._write({
      event: "end",
      at: ended,
      file,
      name,
      occurrence,
      status: result.status,
      start: started,
      duration,
      message: shortMessage(result.failureMessages),
    });
    if (this._progress !== null) {
      try {
        fs.writeSync(this._progress, ".");
      } catch (_) {
        // progress is only shown
      }
    }
  }

  getLastError() {
    return undefined;
  }
}

module.exports = DagparStreamReporter;
