#!/bin/bash
# Interleaved A/B of bench_sim.py between an earlier commit and the working tree: the two run
# in alternate processes on the same host (the only like-for-like across commits when the host's
# speed drifts), ROUNDS rounds each; every run writes its own json (config, versions) and md.
# Both sides run the working tree's bench_sim.py (the same measurement, and its newer options),
# each on its own package.
#
#   experiments/bench_ab.sh OLD_COMMIT OUT_DIR [ROUNDS] [bench_sim.py args...]
#   experiments/bench_ab.sh c99a243 results/bench_sim_packed 2 --topologies abilene,asn2k --envs 4096
set -euo pipefail
old=$1 out=$2 rounds=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
here=$(git rev-parse --show-toplevel)
tree=$(mktemp -d)/old
git -C "$here" worktree add -q --detach "$tree" "$old"
trap 'git -C "$here" worktree remove --force "$tree"' EXIT
mkdir -p "$out"
for round in $(seq "$rounds"); do
  for side in old new; do
    dir=$([ "$side" = old ] && echo "$tree" || echo "$here")
    (cd "$dir" && PYTHONPATH="$dir" python "$here/experiments/bench_sim.py" "$@" \
      --out "$here/$out/${side}_$round.json" > /dev/null)
    echo "== $side ($([ "$side" = old ] && echo "$old" || echo "working tree")), round $round"
    grep '^| [a-z]' "$here/$out/${side}_$round.md" | grep -v NumPy || true
  done
done
