"""Compares image priors as svi uses them — its default sampler settings on the *tuning* clips
(Scripts/tune's clips, never the evaluation's) — so a retrained prior is adopted or rejected
without looking at EVALUATION.md's clips. Called by Scripts/compare-priors; writes a JSON
record (per clip-task-measurement PSNR/SSIM/frame-difference error and seconds of every prior)
and prints a table.

By default the measurements are as footage arrives (issue 27): written to an 8-bit FFV1 file
and to H.264 (--crf 18); `--measurements exact` gives the float32 .npy rows of earlier
comparisons, where only the tasks that need a prior are run (noiseless temporal-only tasks
are solved exactly by the last step's CG whatever the prior). Each restore's score is cached
under the work folder by the SHA-256 of the weights and of svi, so the baseline's rows can be
run ahead (no candidate given) and are not run again.
"""
import argparse, hashlib, json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import TASKS, MEASUREMENTS, run, score, machine  # noqa: E402
from tune import TUNING_CLIPS, clip_source  # noqa: E402

PRIOR_TASKS = ("deblur2", "sr4", "inpaint50", "noise01", "noise02")
REALISTIC_TASKS = ("uniform7", "gauss1sr2", "deblur2", "sr4", "inpaint50")


def sha(path, n=12):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("candidates", nargs="*", help="the new priors' weights (.safetensors with its .json config beside each); none: run the baseline only")
    ap.add_argument("--baseline", default="Models/prior.safetensors", help="the prior to compare against (default: the embedded one)")
    ap.add_argument("--svi", default=".build/release/svi")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--work", default=".cache/compare-priors")
    ap.add_argument("--clips", default=",".join(TUNING_CLIPS))
    ap.add_argument("--measurements", default="8bit,h264", help="comma-separated: exact, 8bit, h264")
    ap.add_argument("--tasks", default="", help=f"default: {','.join(REALISTIC_TASKS)} (exact: {','.join(PRIOR_TASKS)})")
    ap.add_argument("--out", default=".cache/compare-priors/result.json")
    args = ap.parse_args()
    priors = [("baseline", args.baseline)] + [(f"candidate{i + 1}" if len(args.candidates) > 1 else "candidate", c)
                                              for i, c in enumerate(args.candidates)]
    for _, p in priors:
        if not (os.path.isfile(p) and os.path.isfile(p + ".json")):
            sys.exit(f"compare-priors: {p} or its architecture file {p}.json is missing")
    formats = args.measurements.split(",")
    for m in formats:
        if m not in MEASUREMENTS:
            sys.exit(f"compare-priors: unknown measurement '{m}' (exact, 8bit, h264)")
    tasks = args.tasks.split(",") if args.tasks else list(PRIOR_TASKS if formats == ["exact"] else REALISTIC_TASKS)
    os.makedirs(args.work, exist_ok=True)
    log = open(os.path.join(args.work, "commands.log"), "a")
    svi_sha = sha(args.svi)
    rows = []
    for clip in args.clips.split(","):
        src, sel, _ = clip_source(args.samples, clip)
        for task in tasks:
            spec, label = TASKS[task]
            for fmt in formats:
                ext, codec = MEASUREMENTS[fmt]
                w = os.path.join(args.work, f"{clip}-{task}-{fmt}")
                os.makedirs(w, exist_ok=True)
                y = os.path.join(w, "y" + ext)
                if not os.path.exists(y):
                    cmd = [args.svi, "degrade", src, *sel, "-o", y, "--degradation", spec, "--seed", "0", *(codec or []), "--quiet"]
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    log.write("$ " + " ".join(cmd) + f"   # exit {r.returncode}\n")
                    if r.returncode != 0 and "even width" in r.stderr:
                        # H.264 in 4:2:0 cannot hold odd sides (bbb's ×4 SR measurement is 48×27).
                        print(f"{clip:14s} {label:22s} {fmt:5s} skipped: {r.stderr.strip().splitlines()[-1]}", flush=True)
                        continue
                    if r.returncode != 0:
                        sys.exit(f"compare-priors: {' '.join(cmd)} failed: {r.stderr.strip()}")
                row = {"clip": clip, "task": task, "label": label, "measurement": fmt}
                for name, weights in priors:
                    cache = os.path.join(w, f"score-{sha(weights)}-{svi_sha}.json")
                    if os.path.exists(cache):
                        row[name] = json.load(open(cache))
                        continue
                    out = os.path.join(w, f"{name}.npy")
                    _, dt = run([args.svi, "restore", y, "-o", out, "--model", weights, "--config", weights + ".json",
                                 "--seed", "0", "--overwrite", "--quiet"], log)
                    sc = score(args.svi, src, sel, out, log)
                    row[name] = {"psnr": round(sc["mean_psnr"], 3), "ssim": round(sc["mean_ssim"], 4),
                                 "frame_diff_err": round(sc["frame_difference_error"], 5), "seconds": round(dt, 1)}
                    with open(cache + ".partial", "w") as f:
                        json.dump(row[name], f)
                    os.replace(cache + ".partial", cache)
                rows.append(row)
                b = row["baseline"]
                cells = "  ".join(f"{n} {row[n]['psnr']:6.2f}/{row[n]['ssim']:.4f} ({row[n]['psnr'] - b['psnr']:+.2f})"
                                  for n, _ in priors[1:])
                print(f"{clip:14s} {label:22s} {fmt:5s} baseline {b['psnr']:6.2f}/{b['ssim']:.4f}  {cells}", flush=True)
    summary = {}
    for n, _ in priors:
        summary[n] = {"mean_psnr": round(sum(r[n]["psnr"] for r in rows) / len(rows), 3),
                      "mean_ssim": round(sum(r[n]["ssim"] for r in rows) / len(rows), 4),
                      "ahead_psnr": sum(r[n]["psnr"] > r["baseline"]["psnr"] for r in rows),
                      "worst_psnr_delta": round(min(r[n]["psnr"] - r["baseline"]["psnr"] for r in rows), 3)}
    for n, _ in priors[1:]:
        s, b = summary[n], summary["baseline"]
        print(f"{n}: mean PSNR {s['mean_psnr']:.2f} vs baseline {b['mean_psnr']:.2f} ({s['mean_psnr'] - b['mean_psnr']:+.2f} dB), "
              f"SSIM {s['mean_ssim']:.4f} vs {b['mean_ssim']:.4f}; ahead on {s['ahead_psnr']} of {len(rows)}; worst row {s['worst_psnr_delta']:+.2f} dB")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".partial", "w") as f:
        json.dump({"machine": machine(args.svi), "priors": dict(priors), "measurements": formats, "tasks": tasks,
                   "rows": rows, "summary": summary}, f, indent=1, ensure_ascii=False)
    os.replace(args.out + ".partial", args.out)


if __name__ == "__main__":
    main()
