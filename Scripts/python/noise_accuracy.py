"""Measures svi's noise estimate (issue 27) on measurements of known noise as users have them.

For each clip, degradation, σ and file format: `svi degrade` writes the noiseless A x (.npy,
float32) and y = A x + n with the same operator into an 8-bit FFV1 .mkv, a 16-bit FFV1 .mkv
and an H.264 .mp4 (--crf 18). The truth is the RMS of (decoded y) − A x (`svi eval` PSNR per
frame); svi's estimate is `svi noise y --degradation SPEC-without-noise` (so nothing is told:
quantisation, codec and the data estimate only). Writes evaluation/noise-accuracy.md.
"""
import json, math, os, subprocess, sys, tempfile, platform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SVI = os.path.join(ROOT, ".build", "release", "svi")
SAMPLES = os.path.join(ROOT, ".cache", "samples")
CLIPS = [("carphone", "carphone_pristine.mp4", ["--frames", "20:36"]),
         ("bikes", "bikes.mp4", ["--frames", "0:16", "--crop", "484x272+78+0", "--size", "256x144"]),
         ("bbb (animation)", "bigbuckbunny.mp4", ["--frames", "100:116", "--size", "256x144"])]
SPECS = ["temporal=uniform:7", "temporal=gaussian:1,sr=2", "temporal=uniform:7,sr=4"]
SIGMAS = [0.005, 0.01, 0.02]
FORMATS = [("8-bit FFV1", ".mkv", ["--codec", "ffv1"]), ("16-bit FFV1", ".mkv", ["--codec", "ffv1-16"]),
           ("H.264 crf 18", ".mp4", ["--codec", "h264", "--crf", "18"])]


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr}")
    return r.stdout


def rms(reference, restored):
    s = json.loads(run([SVI, "eval", "--reference", reference, "--restored", restored, "--json"]))
    psnr = s["psnr"]
    return math.sqrt(sum(10 ** (-p / 10) for p in psnr) / len(psnr))


def main():
    run([os.path.join(ROOT, "Scripts", "fetch-samples")])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, f, sel in CLIPS:
            src = os.path.join(SAMPLES, f)
            for spec in SPECS:
                clean = os.path.join(tmp, "clean.npy")
                run([SVI, "degrade", src, *sel, "-o", clean, "--degradation", spec, "--overwrite"])
                for sigma in SIGMAS:
                    for label, ext, codec in FORMATS:
                        y = os.path.join(tmp, "y" + ext)
                        for p in (y, y + ".json"):
                            if os.path.exists(p): os.remove(p)
                        run([SVI, "degrade", src, *sel, "-o", y, "--degradation", f"{spec},noise={sigma}", "--seed", "7", *codec, "--overwrite"])
                        truth = rms(clean, y)
                        est = json.loads(run([SVI, "noise", y, "--degradation", spec, "--json"]))
                        rows.append(dict(clip=name, spec=spec, sigma=sigma, format=label, truth=truth, **est))
                        print(f"{name:16} {spec:26} σ {sigma:<6} {label:13} truth {truth:.5f} svi {est['effective']:.5f} ({est['effective'] / truth:.2f})", flush=True)
    out = os.path.join(ROOT, "evaluation", "noise-accuracy.md")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    with open(out, "w") as o:
        o.write("# svi's noise estimate on measurements of known noise\n\n")
        o.write(f"Made by `Scripts/noise-accuracy` ({cpu}). Each row: `svi degrade` adds Gaussian noise σ to A x and writes the file; "
                "*truth* is the RMS of the decoded file minus A x (noise, rounding and codec error together); *svi* is `svi noise` "
                "told the degradation without its noise (so everything comes from the file: quantisation, H.264's QP, the data's MAD).\n\n")
        o.write("| clip | degradation | σ added | file | truth | svi | svi / truth | data estimate | codec |\n|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            n = r["noise"]
            o.write(f"| {r['clip']} | {r['spec']} | {r['sigma']} | {r['format']} | {r['truth']:.5f} | {r['effective']:.5f} | "
                    f"{r['effective'] / r['truth']:.2f} | {n.get('data_estimate', float('nan')):.5f} | {n.get('codec', 0):.5f} |\n")
        for label, _, _ in FORMATS:
            sub = [r for r in rows if r["format"] == label]
            ok = sum(1 for r in sub if abs(r["effective"] / r["truth"] - 1) <= 0.2)
            o.write(f"\n* {label}: within 20 % of the truth on **{ok} of {len(sub)}** rows.")
        o.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
