#!/bin/bash
# W3 vs W1 (issue #15 item 2): N racers without a Lease vs one run on M trivial migrations,
# each pass on a fresh database; prints wall ms, exit status, "migration started" lines and
# history rows. usage: bench/w3-racers.sh BIN postgresql://user@host:port N M REPS
set -eu
bin=$1; base=$2; n=$3; m=$4; reps=$5
work=$(mktemp -d)
dir=$work/mig; mkdir -p $dir
for i in $(seq 1 $m); do printf 'CREATE TABLE t_%d (id int);\n' $i > $dir/$(printf '%04d' $i)_t$i.up.sql; done
for r in $(seq 1 $reps); do
  for mode in w1 w3; do
    db=bench_${mode}_${r}_$$_$RANDOM
    psql -q "$base/postgres" -c "CREATE DATABASE $db" >/dev/null
    url="$base/$db?sslmode=disable"
    k=1; [ $mode = w3 ] && k=$n
    s=$(date +%s%N)
    pids=()
    for j in $(seq 1 $k); do
      ROLLGATE_LEASE_MODE=none ROLLGATE_TERMINATION_LOG= ROLLGATE_LEASE_IDENTITY=r$j $bin --database-url "$url" migrate --dir $dir 2>$work/$mode.$j.err &
      pids+=($!)
    done
    rc=0; for p in "${pids[@]}"; do wait $p || rc=$?; done
    e=$(date +%s%N)
    started=$(cat $work/$mode.*.err | grep -c 'migration started' || true)
    rows=$(psql -tAq "$url" -c "SELECT count(*) FROM rollgate_migrations")
    echo "$mode rep=$r ms=$(( (e-s)/1000000 )) rc=$rc started=$started rows=$rows"
    rm -f $work/$mode.*.err
    psql -q "$base/postgres" -c "DROP DATABASE $db" >/dev/null
  done
done
rm -rf $work
