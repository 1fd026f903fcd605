#!/usr/bin/env bash
# Regenerates docs/images/progress.txt: the live progress view of `dagpar check` on the example
# workspace, captured from a real terminal (tmux) while its slices run.
# Usage: bash docs/images/capture-progress.sh   (needs tmux; takes a few seconds)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/images/progress.txt
work=$(mktemp -d)
trap 'tmux kill-session -t dagpar-capture 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r examples/shop "$work/shop"
rm -rf "$work/shop/.dagpar"
# One run first, so that the planner has timings to predict with (as on any run but the first).
dagpar check -C "$work/shop" -j 3 >/dev/null 2>&1 || true

tmux new-session -d -s dagpar-capture -c "$work" -x 100 -y 20 "bash --norc --noprofile"
tmux send-keys -t dagpar-capture "PS1='$ '; clear" Enter
sleep 0.5
tmux send-keys -t dagpar-capture "dagpar check -C shop -j 3 >/dev/null; echo done" Enter
best=""
most=0
for _ in $(seq 1 600); do
  sleep 0.25
  frame=$(tmux capture-pane -p -t dagpar-capture)
  # Keep the latest frame with the most running slices (lines ending in "predicted").
  running=$(grep -c "predicted$" <<<"$frame" || true)
  if ((running > 0 && running >= most)) && grep -q " slices · " <<<"$frame"; then
    best=$frame
    most=$running
  fi
  grep -qx "done" <<<"$frame" && break
done
[ -n "$best" ] || { echo "no live frame was captured" >&2; exit 1; }
sed -e 's/[[:space:]]*$//' <<<"$best" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' \
  | sed "s#$work/##" >"$out"
echo "wrote $out"
cat "$out"
