#!/usr/bin/env bash
# PBS / Torque script: restore one video across nodes with svi under MPI.
#   qsub -l select=4:ncpus=16:mpiprocs=1 -v IN=y.npy,OUT=r.npy,ARGS="--model w.safetensors" Cluster/pbs.sh
#PBS -N svi-restore
#PBS -l walltime=04:00:00
#PBS -j oe
set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
svi=${SVI:-$(pwd)/.build/release/svi}
ranks=$(wc -l < "$PBS_NODEFILE")
threads=${NCPUS:-1}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
# shellcheck disable=SC2086
mpirun -np "$ranks" --hostfile "$PBS_NODEFILE" --map-by ppr:1:node:pe="$threads" --bind-to core \
  -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
  "$svi" restore "$IN" -o "$OUT" --threads "$threads" --report "${OUT%.npy}.report.json" ${ARGS:-}
