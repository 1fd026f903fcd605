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
//   {"event":"start",...,"occurrence":k,"retry_of":j}                 a test started that may
//                                                                     be a retry of j (below)
//   {"event":"end","at":s,"file":f,"name":n,"occurrence":k,"status":st,"start":s|null,
//    "duration":s|null,"message":m,"invocation":i}                    a test ended (its i-th run)
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
    // Jest's absolute test paths, as records name them.
    this._paths = new Map();
    this._fd = this._open(process.env.DAGPAR_JEST_STREAM);
    this._progress = this._open(process.env.DAGPAR_JEST_PROGRESS);
    // Per file: { counts: name -> new tests so far, failed: name -> occurrences that failed
    // and may be retried, running: the test started and not ended, or null }.
    this._files = new Map();
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
    let file = this._paths.get(testPath);
    if (file === undefined) {
      const relative = path.relative(this._root, testPath);
      const outside = !relative || relative.startsWith("..") || path.isAbsolute(relative);
      file = (outside ? testPath : relative).split(path.sep).join("/");
      this._paths.set(testPath, file);
    }
    return file;
  }

  _name(info) {
    return [...(info.ancestorTitles || []), info.title].join(" ");
  }

  _state(file) {
    let state = this._files.get(file);
    if (!state) {
      state = { counts: new Map(), failed: new Map(), running: null };
      this._files.set(file, state);
    }
    return state;
  }

  _next(state, name) {
    const occurrence = state.counts.get(name) || 0;
    state.counts.set(name, occurrence + 1);
    return occurrence;
  }

  onTestFileStart(test) {
    const file = this._file(test.path);
    this._files.delete(file);
    this._write({ event: "file", at: Date.now() / 1000, file });
  }

  onTestCaseStart(test, info) {
    const file = this._file(test.path);
    if (this._dead.has(file)) {
      return;
    }
    const state = this._state(file);
    if (state.running !== null) {
      this._dead.add(file);
      this._write({ event: "restart", at: Date.now() / 1000, file });
      return;
    }
    const name = this._name(info);
    const started = typeof info.startedAt === "number" ? info.startedAt / 1000 : Date.now() / 1000;
    const failed = state.failed.get(name) || [];
    // A new test's occurrence is only counted once it is known to be one (see above).
    const occurrence = state.counts.get(name) || 0;
    const retryOf = failed.length ? failed[0] : null;
    state.running = { name, occurrence, retryOf, started };
    const record = { event: "start", at: started, file, name, occurrence };
    if (retryOf !== null) {
      record.retry_of = retryOf;
    }
    this._write(record);
  }

  onTestCaseResult(test, result) {
    const now = Date.now() / 1000;
    const file = this._file(test.path);
    if (this._dead.has(file)) {
      return;
    }
    const state = this._state(file);
    const name = this._name(result);
    const invocation = typeof result.invocations === "number" ? result.invocations : 1;
    let running = state.running;
    state.running = null;
    if (running === null || running.name !== name) {
      // No start hook (Jest before 29.6), or a todo test, which never starts.
      running = { name, occurrence: state.counts.get(name) || 0, retryOf: null, started: null };
    }
    let occurrence;
    const failed = state.failed.get(name) || [];
    if (invocation > 1 && failed.length) {
      occurrence = running.retryOf !== null ? running.retryOf : failed[0];
      if (result.status !== "failed") {
        failed.splice(failed.indexOf(occurrence), 1);
      }
    } else {
      occurrence = this._next(state, name);
      if (result.status === "failed") {
        failed.push(occurrence);
        state.failed.set(name, failed);
      }
    }
    let started = running.started;
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
      invocation,
    });
    // A retried test was counted when it first ended.
    if (this._progress !== null && invocation === 1) {
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
