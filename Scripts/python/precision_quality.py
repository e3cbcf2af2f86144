"""What `--precision bf16` costs in quality (called by Scripts/precision-quality): the
evaluation's clips and tasks, each measurement made once (`svi degrade`, 8-bit FFV1 by
default: measurements as users have them), restored with svi's defaults in fp32 and in bf16
(and in any further variant given with --variant NAME='options'), each scored by `svi eval`
against the truth. Prints one row per clip and task (PSNR / SSIM / frame-difference error per
variant, the bf16 − fp32 PSNR difference, seconds) and writes them as JSON with the machine.
"""
import argparse, json, os, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from evaluate import CLIPS, TASKS, MEASUREMENTS, run, score, machine  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--svi", default=".build/release/svi")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--work", default=".cache/precision-quality")
    ap.add_argument("--clips", default="carphone,bikes,bbb")
    ap.add_argument("--tasks", default="uniform7,gauss1,deblur2,sr4,inpaint50,noise01")
    ap.add_argument("--measurement", choices=list(MEASUREMENTS), default="8bit")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME='svi restore options' run beside fp32 and bf16 (e.g. bf16-im2col='--precision bf16 --reference-kernels')")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    svi = os.path.abspath(args.svi)
    variants = [("fp32", []), ("bf16", ["--precision", "bf16"])]
    for v in args.variant:
        name, _, opts = v.partition("=")
        variants.append((name, opts.split()))
    os.makedirs(args.work, exist_ok=True)
    log = open(os.path.join(args.work, "commands.log"), "a")
    ext, codec = MEASUREMENTS[args.measurement]
    rows = []
    print(f"machine: {machine(svi)}; measurement {args.measurement}; variants: "
          + ", ".join(f"{n} ({' '.join(o) or 'defaults'})" for n, o in variants), flush=True)
    for clip in args.clips.split(","):
        fname, frames, crop, size, _ = CLIPS[clip]
        src = os.path.join(args.samples, fname)
        sel = ["--frames", frames] + (["--crop", crop] if crop else []) + (["--size", size] if size else [])
        for task in args.tasks.split(","):
            spec, label = TASKS[task]
            w = os.path.join(args.work, clip, task)
            os.makedirs(w, exist_ok=True)
            y = os.path.join(w, "y" + ext)
            run([svi, "degrade", src, *sel, "-o", y, "--degradation", spec, "--seed", "0", *(codec or []),
                 "--overwrite", "--quiet"], log)
            row = {"clip": clip, "task": task, "spec": spec, "variants": {}}
            for name, opts in variants:
                out = os.path.join(w, f"{name}.npy")
                t0 = time.time()
                run([svi, "restore", y, "-o", out, "--seed", "0", *opts, "--overwrite", "--quiet", "--report", out + ".json"], log)
                dt = time.time() - t0
                s = score(svi, src, sel, out, log)
                denoise = json.load(open(out + ".json")).get("timings", {}).get("denoise_s")
                row["variants"][name] = {"psnr": s["mean_psnr"], "ssim": s["mean_ssim"], "frame_diff_err": s["frame_difference_error"],
                                         "seconds": round(dt, 1), "denoise_s": denoise}
            base = row["variants"]["fp32"]
            cells = "  ".join(f"{n} {v['psnr']:.2f}/{v['ssim']:.4f}/{v['frame_diff_err']:.4f} ({v['seconds']:.0f} s, net {v['denoise_s'] or 0:.1f} s)"
                              for n, v in row["variants"].items())
            deltas = "  ".join(f"Δ{n} {v['psnr'] - base['psnr']:+.3f} dB" for n, v in row["variants"].items() if n != "fp32")
            print(f"{clip:9s} {label:24s} {cells}   {deltas}", flush=True)
            rows.append(row)
    worst = {n: min(r["variants"][n]["psnr"] - r["variants"]["fp32"]["psnr"] for r in rows) for n, _ in variants if n != "fp32"}
    print("largest PSNR loss against fp32: " + ", ".join(f"{n} {d:+.3f} dB" for n, d in worst.items()))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"machine": machine(svi), "measurement": args.measurement, "variants": dict(variants), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
