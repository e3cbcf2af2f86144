"""Times svi's U-Net against peer engines on the same weights and input (see Scripts/bench-unet)."""
import argparse, json, os, platform, re, shutil, struct, subprocess, sys, tempfile, time
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


def model_options(args):
    """create_model's keyword arguments: a preset's, or --model's config (guided-diffusion
    option names, as Models/prior.safetensors.json; "" attention means none)."""
    if not args.model:
        return dict(PRESETS[args.preset])
    with open(args.config) as f:
        opts = json.load(f)
    if not opts.get("attention_resolutions"):
        # Attention at a downsampling the network never reaches: none (as train_prior.py).
        opts["attention_resolutions"] = "1"   # image_size // 1: a downsampling of image_size, never reached
    return opts


def load_safetensors(path):
    """A safetensors file as float32 torch tensors (F16 or F32 storage)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        dt = {"F16": np.float16, "F32": np.float32}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(blob[a:b], dtype=dt).astype(np.float32).reshape(v["shape"]))
    return out


def has_bf16():
    """Whether this CPU does bfloat16 arithmetic (AVX-512 BF16 or AMX): bf16 peers need it."""
    flags = next((set(l.split(":", 1)[1].split()) for l in open("/proc/cpuinfo") if l.startswith("flags")), set())
    return "avx512_bf16" in flags or "amx_bf16" in flags


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


# Each peer: (model, x, t, threads, work folder) -> a function running one forward pass that
# returns the output as a numpy array. Preparation (conversion, compilation) is not timed.
# Each runs in a worker process of its own (below), so one peer's prepared model and buffers
# never share a process with another's: at batch 4, all of them in one process passed 22 GB.
def peer_torch(model, x, t, threads, work):
    model.to(memory_format=torch.contiguous_format)
    def run():
        with torch.no_grad():
            return model(x, t).contiguous().numpy()
    return run


def peer_torch_cl(model, x, t, threads, work):
    """Channels-last: weights converted once when prepared, the input on each run."""
    model.to(memory_format=torch.channels_last)
    def run():
        with torch.no_grad():
            return model(x.to(memory_format=torch.channels_last), t).contiguous().numpy()
    return run


def peer_openvino(model, x, t, threads, work, precision="f32"):
    """OpenVINO: ov.convert_model from the PyTorch module, CPU plugin, f32 (or `precision`), `threads` threads."""
    import openvino as ov
    core = ov.Core()
    with torch.no_grad():
        ovm = ov.convert_model(model, example_input=(x, t))
    compiled = core.compile_model(ovm, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision,
                                                 "PERFORMANCE_HINT": "LATENCY"})
    del ovm
    req = compiled.create_infer_request()
    xn, tn = x.numpy(), t.numpy()
    def run():
        res = req.infer([xn, tn])
        return np.array(res[compiled.output(0)])
    return run


def peer_onnxruntime(model, x, t, threads, work):
    """ONNX Runtime: torch.onnx.export (opset 17, weights as external data), CPU provider, all
    graph optimisations, `threads` intra-op threads."""
    import onnxruntime as ort
    path = os.path.join(work, f"unet-b{x.shape[0]}.onnx")
    if not os.path.exists(path):
        with torch.no_grad():
            torch.onnx.export(model, (x, t), path, opset_version=17, input_names=["x", "t"], output_names=["y"],
                              dynamo=False, external_data=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = {"x": x.numpy(), "t": t.numpy()}
    def run():
        return sess.run(["y"], feeds)[0]
    return run


def peer_torch_bf16(model, x, t, threads, work):
    """PyTorch's fastest CPU setting a user can pick: channels-last under torch.autocast to
    bfloat16 (oneDNN's bf16 kernels), output back in float32."""
    model.to(memory_format=torch.channels_last)
    def run():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x.to(memory_format=torch.channels_last), t).float().contiguous().numpy()
    return run


def peer_openvino_bf16(model, x, t, threads, work):
    """OpenVINO with INFERENCE_PRECISION_HINT=bf16 (issue 31's peer)."""
    return peer_openvino(model, x, t, threads, work, precision="bf16")


PEERS = {"torch": peer_torch, "torch_cl": peer_torch_cl, "openvino": peer_openvino, "onnxruntime": peer_onnxruntime,
         "torch_bf16": peer_torch_bf16, "openvino_bf16": peer_openvino_bf16}
BF16_PEERS = {"torch_bf16", "openvino_bf16"}
# Peers that keep their own copy of the weights: the PyTorch module is dropped once prepared.
OWN_COPY = {"openvino", "onnxruntime", "openvino_bf16"}


def worker(args):
    """One peer in a process of its own, driven line by line over stdin/stdout:
    `run` → `time SECONDS`, `save PATH` → `saved PEAK_RSS_MB`, `quit`."""
    import gc, resource
    torch.set_num_threads(args.threads)
    model = create_model(**model_options(args)).eval()
    model.load_state_dict(torch.load(os.path.join(args.work, "weights.pt")))
    x = torch.from_numpy(np.load(os.path.join(args.work, f"x{args.batch}.npy")))
    t = torch.full((args.batch,), 500, dtype=torch.long)
    t0 = time.perf_counter()
    run = PEERS[args.worker](model, x, t, args.threads, args.work)
    if args.worker in OWN_COPY:
        del model; gc.collect()
    print(f"ready {time.perf_counter() - t0:.1f}", flush=True)
    y = None
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "run":
            t0 = time.perf_counter(); y = run(); dt = time.perf_counter() - t0
            print(f"time {dt:.6f}", flush=True)
        elif cmd[0] == "save":
            save_npy(y, cmd[1])
            print(f"saved {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}", flush=True)


class Worker:
    def __init__(self, name, args, work, batch):
        self.name = name
        cmd = [sys.executable, os.path.abspath(__file__), "--svi", args.svi, "--worker", name, "--work", work,
               "--batch", str(batch), "--preset", args.preset, "--threads", str(args.threads)]
        if args.model:
            cmd += ["--model", args.model, "--config", args.config]
        env = dict(os.environ, PYTHONWARNINGS="ignore")   # the reference package's deprecation noise
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.prep = float(self.expect("ready"))

    def expect(self, word):
        line = self.proc.stdout.readline()
        if not line.startswith(word + " "):
            self.proc.kill()
            sys.exit(f"peer {self.name} failed (see its messages above)")
        return line.split()[1]

    def send(self, line):
        self.proc.stdin.write(line + "\n"); self.proc.stdin.flush()

    def run(self, passes=1):
        times = []
        for _ in range(passes):
            self.send("run"); times.append(float(self.expect("time")))
        return float(np.median(times))

    def save(self, path):
        self.send(f"save {path}"); return float(self.expect("saved"))

    def close(self):
        self.send("quit"); self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--svi", required=True)
    ap.add_argument("--preset", default="adm-256-uncond", choices=sorted(PRESETS))
    ap.add_argument("--model", default="", help="time these weights instead of a preset with random ones: a .safetensors "
                    "file (its guided-diffusion config beside it as FILE.json, or --config), or 'embedded' for svi's prior")
    ap.add_argument("--config", default="", help="the --model's architecture (guided-diffusion option names)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--passes", type=int, default=1,
                    help="passes per turn: each engine's turn times this many passes in its own process and counts their "
                         "median (a shared VM's stalls hit single passes; svi and the peers are treated alike)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peers", default="torch,torch_cl,openvino,onnxruntime,torch_bf16,openvino_bf16",
                    help="bf16 peers are left out on CPUs without bf16 arithmetic")
    ap.add_argument("--json-out")
    ap.add_argument("--svi-bf16", action="store_true",
                    help="also time svi with --precision bf16 (right after each fp32 run of svi; CPUs with AVX-512 BF16)")
    ap.add_argument("--svi-args", default="", help="extra arguments for svi bench unet (e.g. --reference-kernels)")
    ap.add_argument("--emulate-avx2", action="store_true",
                    help="on an AVX-512 machine, run every engine on its AVX2 code where it has a switch: svi's kernels "
                         "(SVI_ISA=avx2), OpenBLAS (OPENBLAS_CORETYPE=Haswell), oneDNN in PyTorch and OpenVINO "
                         "(ONEDNN_MAX_CPU_ISA=AVX2); ONNX Runtime's MLAS has no such switch and keeps AVX-512")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.emulate_avx2:
        # Set before any child starts (svi and the peer workers inherit it); PyTorch in this
        # process only makes and saves the weights.
        os.environ.update(SVI_ISA="avx2", OPENBLAS_CORETYPE="Haswell", ONEDNN_MAX_CPU_ISA="AVX2", DNNL_MAX_CPU_ISA="AVX2")

    cpu, isa = machine()
    if args.model == "embedded":
        args.model = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Models", "prior.safetensors")
    if args.model:
        args.model = os.path.abspath(args.model)
        args.config = os.path.abspath(args.config or args.model + ".json")
        for f in (args.model, args.config):
            if not os.path.isfile(f):
                sys.exit(f"bench-unet: {f} does not exist")
    opts = model_options(args)
    model = create_model(**opts).eval()
    if args.model:
        model.load_state_dict(load_safetensors(args.model))   # the checkpoint's own weights
    else:
        randomise(model, 0)
    params = sum(p.numel() for p in model.parameters())
    work = tempfile.mkdtemp(prefix="svi-bench-")
    weights = os.path.join(work, "weights.safetensors")
    save_safetensors(model.state_dict(), weights)
    if args.model:
        shutil.copyfile(args.config, weights + ".json")   # svi reads the config as given
    torch.save(model.state_dict(), os.path.join(work, "weights.pt"))
    del model
    weights_mb = params * 4 / 2**20
    print(f"machine: {cpu}, ISA {isa}, {os.cpu_count()} cores; threads {args.threads}; torch {torch.__version__}")
    label = os.path.relpath(args.model) if args.model else args.preset
    print(f"model: {label} ({params:,} parameters), {args.size}x{args.size}, {'its own' if args.model else 'random'} weights, fp32 (svi)")
    env_of = lambda k: os.environ.get(k, "(not set)")
    print(f"OPENBLAS_CORETYPE {env_of('OPENBLAS_CORETYPE')}, SVI_ISA {env_of('SVI_ISA')}, "
          f"ONEDNN_MAX_CPU_ISA {env_of('ONEDNN_MAX_CPU_ISA')}; svi arguments: {args.svi_args or '(none)'}")

    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        sys.exit(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    if not has_bf16() and any(p in BF16_PEERS for p in peers):
        print(f"this CPU has no bf16 arithmetic (avx512_bf16 / amx_bf16): leaving out {', '.join(p for p in peers if p in BF16_PEERS)}")
        peers = [p for p in peers if p not in BF16_PEERS]
    results = {}
    svi_isa = core_name = None
    for batch in [int(b) for b in args.batches.split(",")]:
        g = torch.Generator().manual_seed(batch)
        x = torch.randn(batch, 3, args.size, args.size, generator=g)
        xin = os.path.join(work, f"x{batch}.npy"); save_npy(x.numpy(), xin)
        yout = os.path.join(work, f"y{batch}.npy")
        times = {"svi": []}
        row = {"batch": batch}
        svi_bf16 = args.svi_bf16 and has_bf16()
        if svi_bf16:
            times["svi_bf16"] = []
        ybf16 = os.path.join(work, f"y{batch}-svi_bf16.npy")

        def run_svi(bf16=False):
            arch = ["--config", weights + ".json"] if args.model else ["--preset", args.preset]
            cmd = [args.svi, "bench", "unet", "--model", weights, *arch, "--input", xin, "--output", ybf16 if bf16 else yout, "--overwrite",
                   "--repeats", str(args.passes), "--threads", str(args.threads), "--json", "--timestep", "500"] + args.svi_args.split() \
                + (["--precision", "bf16"] if bf16 else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit("svi failed: " + out.stderr.strip())
            return json.loads(out.stdout.strip().splitlines()[-1])

        # Peers one at a time, each alternating with svi (peer, svi, peer, svi, ...; the first
        # pair is the warm-up): only one peer's prepared model is in memory at once (OpenVINO
        # alone held 10.8 GB at batch 4), and every peer is timed in the same minutes as the
        # svi runs it is compared with. svi's median is over all its timed runs.
        for name in peers or [None]:
            wk = None
            if name:
                wk = Worker(name, args, work, batch)
                print(f"  prepared {name} for batch {batch} in {wk.prep:.1f} s (own process)", flush=True)
                times[name] = []
            for r in range(args.repeats + 1):
                dt = wk.run(args.passes) if wk else None
                j = run_svi()
                core_name = j.get("openblas_core"); svi_isa = j.get("kernels_isa", "?")
                row["svi_peak_rss_mb"] = max(row.get("svi_peak_rss_mb", 0), j.get("peak_rss_mb", 0))
                jb = run_svi(bf16=True) if svi_bf16 else None
                if jb: row["svi_bf16_peak_rss_mb"] = max(row.get("svi_bf16_peak_rss_mb", 0), jb.get("peak_rss_mb", 0))
                if r > 0:
                    times["svi"].append(j["seconds_per_frame"] * batch)
                    if jb: times["svi_bf16"].append(jb["seconds_per_frame"] * batch)
                    if wk: times[name].append(dt)
                    print(f"  {name or 'svi'} round {r}: " + (f"{name} {dt:.2f} s, " if wk else "") +
                          f"svi {j['seconds_per_frame'] * batch:.2f} s" + (f", svi bf16 {jb['seconds_per_frame'] * batch:.2f} s" if jb else ""), flush=True)
            if wk:
                ypath = os.path.join(work, f"y{batch}-{name}.npy")
                row[name + "_peak_rss_mb"] = wk.save(ypath)
                row[name + "_rel_l2_vs_svi"] = rel_l2(np.load(ypath), np.load(yout))
                wk.close()
        for name, ts in times.items():
            row[name + "_s_per_frame"] = float(np.median(ts)) / batch
            row[name + "_runs_s"] = ts
        if svi_bf16:
            row["svi_bf16_rel_l2_vs_svi"] = rel_l2(np.load(ybf16), np.load(yout))
        results[batch] = row
        print(f"\nbatch {batch}: seconds per frame (median of {args.repeats} turns per peer, svi of all its turns; alternating"
              + (f"; each turn the median of {args.passes} passes)" if args.passes > 1 else ")"))
        svi_rss = row["svi_peak_rss_mb"]
        for name in times:
            err = f"   rel. L2 vs svi {row[name + '_rel_l2_vs_svi']:.1e}" if name != "svi" else \
                f"   (weights {weights_mb:.0f} MB + {(svi_rss - weights_mb) / 1024:.2f} GiB)"
            print(f"  {name:12s} {row[name + '_s_per_frame']:8.3f}   peak RSS {row[name + '_peak_rss_mb']:6.0f} MB{err}")
        fp32 = [p for p in peers if p not in BF16_PEERS]
        fastest = min(row[p + "_s_per_frame"] for p in fp32) if fp32 else float("nan")
        print(f"  ratio svi / fastest fp32 peer: {row['svi_s_per_frame'] / fastest:.3f};  svi / torch: {row['svi_s_per_frame'] / row.get('torch_s_per_frame', float('nan')):.3f}")
        bf = [p for p in peers if p in BF16_PEERS]
        if bf:
            print(f"  ratio svi (fp32) / fastest bf16 peer: {row['svi_s_per_frame'] / min(row[p + '_s_per_frame'] for p in bf):.3f}")
        if svi_bf16:
            print(f"  ratio svi bf16 / svi fp32: {row['svi_bf16_s_per_frame'] / row['svi_s_per_frame']:.3f}" +
                  (f";  svi bf16 / fastest bf16 peer: {row['svi_bf16_s_per_frame'] / min(row[p + '_s_per_frame'] for p in bf):.3f}" if bf else ""))
    print(f"\nsvi: kernels ISA {svi_isa} (machine {isa}), OpenBLAS core {core_name}, {args.threads} threads")
    if len(results) > 1:
        bs = sorted(results)
        print(f"svi per frame, batch {bs[-1]} / batch {bs[0]}: {results[bs[-1]]['svi_s_per_frame'] / results[bs[0]]['svi_s_per_frame']:.3f}")
    b1 = results[min(results)]
    summary = {"machine": cpu, "isa": isa, "emulated_avx2": args.emulate_avx2, "svi_isa": svi_isa, "openblas_core": core_name, "threads": args.threads,
               "preset": None if args.model else args.preset, "model": label, "svi_s": b1["svi_s_per_frame"]}
    for p in peers: summary[p + "_s"] = b1[p + "_s_per_frame"]
    fp32 = [p for p in peers if p not in BF16_PEERS]
    if fp32:
        summary["ratio_vs_fastest"] = b1["svi_s_per_frame"] / min(b1[p + "_s_per_frame"] for p in fp32)
    if len(fp32) < len(peers):
        summary["ratio_vs_fastest_bf16"] = b1["svi_s_per_frame"] / min(b1[p + "_s_per_frame"] for p in peers if p in BF16_PEERS)
    if "svi_bf16_s_per_frame" in b1:
        summary["svi_bf16_s"] = b1["svi_bf16_s_per_frame"]
        if len(fp32) < len(peers):
            summary["ratio_bf16_vs_fastest_bf16"] = b1["svi_bf16_s_per_frame"] / min(b1[p + "_s_per_frame"] for p in peers if p in BF16_PEERS)
    if peers:
        summary["ratio_vs_torch"] = b1["svi_s_per_frame"] / b1.get("torch_s_per_frame", float("nan"))
    summary["batches"] = results
    if args.json_out:
        with open(args.json_out, "w") as f: json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "batches"}))


if __name__ == "__main__":
    main()
