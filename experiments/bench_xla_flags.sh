#!/bin/bash
# XLA CPU flags against the default, on Abilene at 4096 environments (Base1 and greedy-joint),
# one bench_sim process per flag set, the default first and last (the spread of the two is the
# noise). Prints each flag set's rows of bench_sim's table; a flag this XLA does not know fails.
#     bash experiments/bench_xla_flags.sh > results/bench_sim_xla_flags.log
set -u
out=$(mktemp -d)
for f in "" "--xla_cpu_use_fusion_emitters=false" \
    "--xla_cpu_enable_concurrency_optimized_scheduler=true" \
    "--xla_cpu_prefer_vector_width=512" "--xla_cpu_multi_thread_eigen=false" ""; do
  rm -f "$out"/flag.*
  if XLA_FLAGS="$f" timeout 300 python experiments/bench_sim.py --topologies abilene \
      --envs 4096 --out "$out/flag.json" > "$out/log" 2>&1; then
    echo "XLA_FLAGS=[$f]"; grep "| abilene | 4096" "$out/flag.md"
  else
    echo "XLA_FLAGS=[$f] failed: $(tail -1 "$out/log")"
  fi
done
