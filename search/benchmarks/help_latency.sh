#!/usr/bin/env bash
# usage: git worktree add /tmp/before dfdb675 && bash search/benchmarks/help_latency.sh
# --help and a bad flag, before (dfdb675) and after, alternating in one run
for i in 1 2 3; do
  for tree in /tmp/before /work/main; do
    s=$(date +%s.%N); (cd $tree && python -m search.imdb --help > /dev/null); e=$(date +%s.%N)
    s2=$(date +%s.%N); (cd $tree && python -m search.imdb --trials 0 > /dev/null 2>&1); e2=$(date +%s.%N)
    echo "$tree help $(echo "$e - $s" | bc) badflag $(echo "$e2 - $s2" | bc)"
  done
done
