"""Times svi's U-Net against peer engines on the same weights and input (see Scripts/bench-unet)."""
import argparse, json, os, platform, re, struct, subprocess, sys, tempfile, time
import numpy as np
import torch
from guided_diffusion.script_util import create_model
from weights_io import randomise, save_safetensors

PRESETS = {
    "adm-256-uncond": dict(image_size=256, num_channels=256, num_res_blocks=2, channel_mult="", learn_sigma=True,
                           class_cond=False, use_checkpoint=False, attention_resolutions="32,16,8", num_heads=4,
                           num_head_channels=64, num_heads_upsample=-1, use_scale_shift_norm=True, dropout=0.0,
                           resblock_updown=True, use_fp16=False, use_new_attention_order=False),
    "adm-ffhq-256": dict(image_size=256, num_channels=128, num_res_blocks=1, channel_mult="", learn_sigma=True,
                         class_cond=False, use_checkpoint=False, attention_resolutions="16", num_heads=4,
                         num_head_channels=64, num_heads_upsample=-1, use_scale_shift_norm=True, dropout=0.0,
                         resblock_updown=True, use_fp16=False, use_new_attention_order=False),
}


def machine():
    cpu = "unknown"; flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and cpu == "unknown": cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags: flags = set(line.split(":", 1)[1].split())
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse"
    return cpu, isa


def save_npy(a, path):
    np.save(path, np.ascontiguousarray(a, dtype="<f4"))


def rel_l2(a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--svi", required=True)
    ap.add_argument("--preset", default="adm-256-uncond", choices=sorted(PRESETS))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peers", default="torch,torch_cl")
    ap.add_argument("--json-out")
    ap.add_argument("--svi-args", default="", help="extra arguments for svi bench unet (e.g. --reference-kernels)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cpu, isa = machine()
    opts = PRESETS[args.preset]
    model = create_model(**opts).eval()
    randomise(model, 0)
    params = sum(p.numel() for p in model.parameters())
    work = tempfile.mkdtemp(prefix="svi-bench-")
    weights = os.path.join(work, "weights.safetensors")
    save_safetensors(model.state_dict(), weights)
    print(f"machine: {cpu}, ISA {isa}, {os.cpu_count()} cores; threads {args.threads}; torch {torch.__version__}")
    print(f"model: {args.preset} ({params:,} parameters), {args.size}x{args.size}, random weights, fp32")

    peers = [p for p in args.peers.split(",") if p]
    results = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        g = torch.Generator().manual_seed(batch)
        x = torch.randn(batch, 3, args.size, args.size, generator=g)
        t = torch.full((batch,), 500, dtype=torch.long)
        xin = os.path.join(work, f"x{batch}.npy"); save_npy(x.numpy(), xin)
        yout = os.path.join(work, f"y{batch}.npy")
        times = {"svi": []}
        outputs = {}
        for name in peers: times[name] = []
        core_name = None
        for r in range(args.repeats + 1):   # the first round is the warm-up
            for name in peers:
                with torch.no_grad():
                    if name == "torch":
                        m, xx = model, x
                    else:  # channels-last: weights and input in NHWC memory order
                        m, xx = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
                    t0 = time.perf_counter(); y = m(xx, t); dt = time.perf_counter() - t0
                    if name == "torch_cl": model.to(memory_format=torch.contiguous_format)
                if r > 0: times[name].append(dt)
                outputs[name] = y.contiguous().numpy()
            cmd = [args.svi, "bench", "unet", "--weights", weights, "--preset", args.preset, "--input", xin, "--output", yout,
                   "--repeats", "1", "--threads", str(args.threads), "--json", "--timestep", "500"] + args.svi_args.split()
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit("svi failed: " + out.stderr.strip())
            j = json.loads(out.stdout.strip().splitlines()[-1])
            core_name = j.get("openblas_core"); svi_rss = j.get("peak_rss_mb")
            if r > 0: times["svi"].append(j["seconds_per_frame"] * batch)
        ysvi = np.load(yout)
        row = {"batch": batch, "svi_peak_rss_mb": svi_rss}
        for name, ts in times.items():
            med = float(np.median(ts))
            row[name + "_s_per_frame"] = med / batch
            row[name + "_runs_s"] = ts
            if name != "svi":
                row[name + "_rel_l2_vs_svi"] = rel_l2(outputs[name], ysvi)
        results[batch] = row
        print(f"\nbatch {batch}: seconds per frame (median of {args.repeats}, alternating)")
        for name in times:
            err = f"   rel. L2 vs svi {row[name + '_rel_l2_vs_svi']:.1e}" if name != "svi" else f"   peak RSS {svi_rss:.0f} MB"
            print(f"  {name:10s} {row[name + '_s_per_frame']:8.3f}{err}")
        fastest = min(row[p + "_s_per_frame"] for p in peers) if peers else float("nan")
        print(f"  ratio svi / fastest peer: {row['svi_s_per_frame'] / fastest:.3f};  svi / torch: {row['svi_s_per_frame'] / row.get('torch_s_per_frame', float('nan')):.3f}")
    print(f"\nOpenBLAS core (svi): {core_name}")
    b1 = results[min(results)]
    summary = {"machine": cpu, "isa": isa, "openblas_core": core_name, "threads": args.threads, "preset": args.preset,
               "svi_s": b1["svi_s_per_frame"]}
    for p in peers: summary[p + "_s"] = b1[p + "_s_per_frame"]
    if peers:
        summary["ratio_vs_fastest"] = b1["svi_s_per_frame"] / min(b1[p + "_s_per_frame"] for p in peers)
        summary["ratio_vs_torch"] = b1["svi_s_per_frame"] / b1.get("torch_s_per_frame", float("nan"))
    summary["batches"] = results
    if args.json_out:
        with open(args.json_out, "w") as f: json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "batches"}))


if __name__ == "__main__":
    main()
