#!/usr/bin/env bash
# PBS Pro / OpenPBS script: restore one video across nodes with svi under MPI, surviving the
# walltime by checkpointing and resubmitting itself. (Torque's `-l nodes=N:ppn=M` syntax is
# not supported.) UNTESTED against a PBS server: no PBS could be run where svi is developed;
# the script's syntax and its decision logic (seed, deadline, resubmit or not) mirror
# Cluster/slurm.sbatch, which is tested end to end under Slurm (Tests/EndToEndTests/SlurmTests).
#
#   qsub -l select=4:ncpus=16:mpiprocs=1 -l walltime=04:00:00 \
#        -v IN=y.mkv,OUT=r.mp4,ARGS="--model w.safetensors" Cluster/pbs.sh
#
# Ranks: one per line of $PBS_NODEFILE (mpiprocs per chunk). Threads per rank: OMP_NUM_THREADS
# as PBS sets it (ncpus / mpiprocs), else NCPUS.
# Seed: SVI_SEED, else the job's number; kept across resubmissions.
# Walltime: svi gets the job's end (start + Resource_List.walltime − 2 min) as --deadline and
# stops with a checkpoint (exit 85) when the next step might not fit; the script then submits
# itself again with the same variables, and the new job continues from $OUT.checkpoints/.
# qdel (TERM) stops the ranks and is never resubmitted; the checkpoints stay.
# ARGS travels through qsub -v, which splits at commas: give a degradation spec with commas in
# the measurement's sidecar (svi degrade writes one), not in ARGS.
#PBS -N svi-restore
#PBS -l walltime=04:00:00
#PBS -j oe
#PBS -r n
set -uo pipefail
cd "${PBS_O_WORKDIR:-.}"
svi=${SVI:-$(pwd)/.build/release/svi}
in=${IN:?IN=measurement}
out=${OUT:?OUT=output}
[ -x "$svi" ] || { echo "pbs.sh: no svi at $svi (set SVI=/path/to/svi)" >&2; exit 2; }
started=$(date +%s)
ranks=$(wc -l < "${PBS_NODEFILE:?not inside a PBS job}")
threads=${OMP_NUM_THREADS:-${NCPUS:-1}}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

seed=${SVI_SEED:-${PBS_JOBID%%.*}}
seed_args=(--seed "$seed")
case " ${ARGS:-} " in *" --seed "*|*" --seed="*) seed_args=();; esac

# Walltime as h:m:s from qstat, for --deadline.
deadline_args=()
job=$(qstat -f "$PBS_JOBID" 2>/dev/null || true)
walltime=$(awk -F' = ' '/Resource_List.walltime/ {print $2}' <<< "$job")
select=$(awk -F' = ' '/Resource_List.select/ {print $2}' <<< "$job")
if [[ $walltime =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]]; then
  limit=$(( 10#${BASH_REMATCH[1]} * 3600 + 10#${BASH_REMATCH[2]} * 60 + 10#${BASH_REMATCH[3]} ))
  deadline_args=(--deadline $((started + limit - 120)))
fi

# shellcheck disable=SC2086
mpirun -np "$ranks" --hostfile "$PBS_NODEFILE" --map-by "slot:PE=$threads" --bind-to core \
  -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
  "$svi" restore "$in" -o "$out" --threads "$threads" "${seed_args[@]}" "${deadline_args[@]}" \
  --checkpoint-dir "$out.checkpoints" --report "$out.report.json" ${ARGS:-} &
step=$!
cancelled=0
trap 'cancelled=1; kill -TERM "$step" 2>/dev/null' TERM INT
while :; do
  wait "$step"; status=$?
  kill -0 "$step" 2>/dev/null || break
done
if [ "$status" -eq 85 ] && [ "$cancelled" -eq 0 ]; then
  echo "svi stopped before the walltime with a checkpoint; submitting the continuation"
  resources=()
  [ -n "$select" ] && resources+=(-l "select=$select")
  [ -n "$walltime" ] && resources+=(-l "walltime=$walltime")
  qsub "${resources[@]}" -v "IN=$in,OUT=$out,ARGS=${ARGS:-},SVI_SEED=$seed,SVI=$svi" "${SVI_PBS_SCRIPT:-$PBS_O_WORKDIR/Cluster/pbs.sh}"
  exit 0
fi
[ "$cancelled" -eq 1 ] && echo "cancelled; checkpoints kept in $out.checkpoints (submit the same command to continue)"
exit "$status"
