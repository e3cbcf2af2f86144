"""Compares two image priors as svi uses them — its default sampler settings on the *tuning*
clips (Scripts/tune's clips, never the evaluation's) — so a retrained prior is adopted or
rejected without looking at EVALUATION.md's clips. Called by Scripts/compare-priors; writes a
JSON record (per clip-task PSNR/SSIM/frame-difference error and seconds of both priors) and
prints a table. Only tasks where the prior matters are run: noiseless temporal-only tasks are
solved exactly by the last step's CG whatever the prior.
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import TASKS, run, score, machine  # noqa: E402
from tune import TUNING_CLIPS, clip_source  # noqa: E402

PRIOR_TASKS = ("deblur2", "sr4", "inpaint50", "noise01", "noise02")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("candidate", help="the new prior's weights (.safetensors with its .json config beside it)")
    ap.add_argument("--baseline", default="Models/prior.safetensors", help="the prior to compare against (default: the embedded one)")
    ap.add_argument("--svi", default=".build/release/svi")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--work", default=".cache/compare-priors")
    ap.add_argument("--clips", default=",".join(TUNING_CLIPS))
    ap.add_argument("--tasks", default=",".join(PRIOR_TASKS))
    ap.add_argument("--out", default=".cache/compare-priors/result.json")
    args = ap.parse_args()
    for p in (args.candidate, args.baseline):
        if not (os.path.isfile(p) and os.path.isfile(p + ".json")):
            sys.exit(f"compare-priors: {p} or its architecture file {p}.json is missing")
    os.makedirs(args.work, exist_ok=True)
    log = open(os.path.join(args.work, "commands.log"), "a")
    rows = []
    for clip in args.clips.split(","):
        src, sel, _ = clip_source(args.samples, clip)
        for task in args.tasks.split(","):
            spec, label = TASKS[task]
            w = os.path.join(args.work, f"{clip}-{task}")
            os.makedirs(w, exist_ok=True)
            y = os.path.join(w, "y.npy")
            run([args.svi, "degrade", src, *sel, "-o", y, "--degradation", spec, "--seed", "0", "--overwrite", "--quiet"], log)
            row = {"clip": clip, "task": task, "label": label}
            for name, weights in (("baseline", args.baseline), ("candidate", args.candidate)):
                out = os.path.join(w, f"{name}.npy")
                _, dt = run([args.svi, "restore", y, "-o", out, "--model", weights, "--config", weights + ".json",
                             "--seed", "0", "--overwrite", "--quiet"], log)
                sc = score(args.svi, src, sel, out, log)
                row[name] = {"psnr": round(sc["mean_psnr"], 3), "ssim": round(sc["mean_ssim"], 4),
                             "frame_diff_err": round(sc["frame_difference_error"], 5), "seconds": round(dt, 1)}
            rows.append(row)
            b, c = row["baseline"], row["candidate"]
            print(f"{clip:14s} {label:22s} baseline {b['psnr']:6.2f}/{b['ssim']:.4f}  candidate {c['psnr']:6.2f}/{c['ssim']:.4f}  "
                  f"{c['psnr'] - b['psnr']:+.2f} dB", flush=True)
    mean = {n: sum(r[n]["psnr"] for r in rows) / len(rows) for n in ("baseline", "candidate")}
    wins = sum(r["candidate"]["psnr"] > r["baseline"]["psnr"] for r in rows)
    print(f"mean PSNR: baseline {mean['baseline']:.2f}, candidate {mean['candidate']:.2f} "
          f"({mean['candidate'] - mean['baseline']:+.2f} dB); candidate ahead on {wins} of {len(rows)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".partial", "w") as f:
        json.dump({"machine": machine(args.svi), "baseline": args.baseline, "candidate": args.candidate,
                   "rows": rows, "mean_psnr": mean, "candidate_ahead": wins}, f, indent=1, ensure_ascii=False)
    os.replace(args.out + ".partial", args.out)


if __name__ == "__main__":
    main()
