"""Trains svi's embedded image prior: a small guided-diffusion ADM U-Net (epsilon prediction,
linear beta schedule 1e-4..0.02 over 1000 steps, the schedule svi samples with) on natural
photographs from Debian packages and scikit-image. Called by Scripts/train-prior.

Reproducible: the file list below is fixed, every file's SHA-256 goes into the manifest, all
randomness comes from seeded generators whose states are checkpointed. Resumable: the run
folder keeps `checkpoint.pt` (model, EMA, optimiser, generators, loss log); running again with
the same folder continues where it stopped, so a long run can span several sittings.
"""
import argparse, csv, hashlib, json, math, os, platform, signal, sys, time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weights_io import save_safetensors  # noqa: E402

# Photographs only (no drawings or renders). The evaluation footage (bikes, carphone, Big Buck
# Bunny) is never used for training.
MATE_NATURE = ["Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
               "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower"]
PLASMA_PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                 "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
SKIMAGE_PHOTOS = ["astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png",
                  "grass.png", "gravel.png", "motorcycle_left.png", "rocket.jpg"]
# Drawn, painted and rendered images (issue 27: the footage users restore is not only
# photographs — animation, graphics). Big Buck Bunny, which the evaluation shows, and every other
# Blender open movie stay out.
PLASMA_ART = ["Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui",
              "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills", "Patak",
              "SafeLanding", "Shell", "Volna"]
# Wesnoth's painted story landscapes (two near-duplicates, battlefield_nohumans and
# bridge_sun, left out).
WESNOTH_STORY = ["grim-altar", "landscape-battlefield", "landscape-bridge", "landscape-castle",
                 "landscape-coast", "landscape-hills-01", "landscape-hills-02", "landscape-mountains-01",
                 "landscape-mountains-02", "landscape-mountains-03", "landscape-mountains-04",
                 "landscape-mountains-05", "landscape-plain", "swamp-01", "swamp-02", "swamp-03"]
# GNOME's raster backgrounds (flat ones, symbolic and vnc, left out): graphics, patterns.
GNOME_GRAPHICS = ["adwaita-l", "grid-l", "licorice-l", "pixels-l", "truchet-l", "wood-l"]
LICENCES = {
    "mate-backgrounds": "usr/share/doc/mate-backgrounds/copyright",
    "plasma-workspace-wallpapers": "usr/share/doc/plasma-workspace-wallpapers/copyright",
    "wesnoth-1.16-data": "usr/share/doc/wesnoth-1.16-data/copyright",
    "gnome-backgrounds": "usr/share/doc/gnome-backgrounds/copyright",
}
# The Debian packages each data set needs (Scripts/train-prior downloads them).
PACKAGES = {"photos": ["mate-backgrounds", "plasma-workspace-wallpapers"],
            "varied": ["mate-backgrounds", "plasma-workspace-wallpapers", "wesnoth-1.16-data", "gnome-backgrounds"]}
# Short sides the photographs are resized to before cropping: detail at the scales of
# QCIF-to-720p footage.
SCALES = (128, 192, 288, 432, 640)


def _plasma_largest(root, name):
    """A Plasma wallpaper's largest landscape raster (SVGs and portrait crops skipped)."""
    d = os.path.join(root, "usr/share/wallpapers", name, "contents/images")
    def wh(f):
        w, h = f.split(".")[0].split("x")
        return int(w), int(h)
    landscape = [f for f in os.listdir(d) if not f.endswith(".svg") and wh(f)[0] > wh(f)[1]]
    return os.path.join(d, max(landscape, key=lambda f: wh(f)[0] * wh(f)[1]))


def training_files(root, data="photos"):
    """(package, path) of every training image; `root` is where the .debs were unpacked.
    `data`: "photos" (the shipped prior's 32 photographs) or "varied" (those plus 41 drawn,
    painted and rendered images)."""
    import skimage
    files = []
    for name in MATE_NATURE:
        files.append(("mate-backgrounds", os.path.join(root, "usr/share/backgrounds/mate/nature", name + ".jpg")))
    for name in PLASMA_PHOTOS:
        files.append(("plasma-workspace-wallpapers", _plasma_largest(root, name)))
    sk = os.path.join(os.path.dirname(skimage.__file__), "data")
    for name in SKIMAGE_PHOTOS:
        files.append(("scikit-image", os.path.join(sk, name)))
    if data == "varied":
        for name in PLASMA_ART:
            files.append(("plasma-workspace-wallpapers", _plasma_largest(root, name)))
        for name in WESNOTH_STORY:
            files.append(("wesnoth-1.16-data", os.path.join(root, "usr/share/games/wesnoth/1.16/data/core/images/story", name + ".jpg")))
        for name in GNOME_GRAPHICS:
            files.append(("gnome-backgrounds", os.path.join(root, "usr/share/backgrounds/gnome", name + ".webp")))
    for _, f in files:
        if not os.path.isfile(f):
            sys.exit(f"train-prior: missing training image {f}")
    return files


def write_pack(files, root, out, quality):
    """The training images at their largest training scale (short side SCALES[-1], never
    enlarged), as JPEG files with a pack.json naming each source and its SHA-256: what a
    machine without the Debian packages (a GPU machine) trains from. The smaller scales are
    made from these on load."""
    os.makedirs(out, exist_ok=True)
    entries = []
    for i, (package, path) in enumerate(files):
        im = Image.open(path).convert("RGB")
        w, h = im.size
        k = min(1.0, SCALES[-1] / min(w, h))
        if k < 1:
            im = im.resize((max(SCALES[-1], round(w * k)), max(SCALES[-1], round(h * k))), Image.LANCZOS)
        name = f"{i:03d}.jpg"
        im.save(os.path.join(out, name), quality=quality, subsampling=0)
        src = os.path.relpath(path, root) if package != "scikit-image" else "skimage/data/" + os.path.basename(path)
        entries.append({"file": name, "package": package, "path": src, "sha256": sha256(path)})
    with open(os.path.join(out, "pack.json"), "w") as f:
        json.dump({"quality": quality, "scale": SCALES[-1], "images": entries}, f, indent=1)


def is_photograph(entry):
    """Whether a pack entry is one of the shipped prior's photographs."""
    if entry["package"] == "plasma-workspace-wallpapers":
        return entry["path"].split("/")[3] in PLASMA_PHOTOS  # usr/share/wallpapers/NAME/...
    return entry["package"] in ("mate-backgrounds", "scikit-image")


def pack_files(pack, data):
    """(package, path) of a pack's images (its photographs alone when `data` is "photos") and
    their manifest entries."""
    with open(os.path.join(pack, "pack.json")) as f:
        meta = json.load(f)
    files, entries = [], [e for e in meta["images"] if data == "varied" or is_photograph(e)]
    for e in entries:
        p = os.path.join(pack, e["file"])
        if not os.path.isfile(p):
            sys.exit(f"train-prior: {pack}/pack.json names {e['file']}, which is missing")
        files.append((e["package"], p))
    return files, entries


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_pyramid(files):
    """Every photograph at every scale in SCALES, as uint8 HWC arrays (about 60 MB)."""
    images = []
    for _, path in files:
        im = Image.open(path).convert("RGB")
        for s in SCALES:
            w, h = im.size
            k = s / min(w, h)
            if k > 1:
                continue  # never upsample: that would teach blur
            images.append(np.asarray(im.resize((max(s, round(w * k)), max(s, round(h * k))), Image.LANCZOS)))
    return images


def sample_batch(images, batch, crop, gen):
    """Random crops with horizontal flips, in [-1, 1], NCHW."""
    idx = torch.randint(len(images), (batch,), generator=gen).tolist()
    out = np.empty((batch, crop, crop, 3), dtype=np.uint8)
    for b, i in enumerate(idx):
        im = images[i]
        y = int(torch.randint(im.shape[0] - crop + 1, (1,), generator=gen))
        x = int(torch.randint(im.shape[1] - crop + 1, (1,), generator=gen))
        c = im[y:y + crop, x:x + crop]
        if torch.rand((1,), generator=gen).item() < 0.5:
            c = c[:, ::-1]
        out[b] = c
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1


class DeviceBank:
    """Every scaled image in one padded uint8 tensor on the training device, so a batch of
    random crops (with horizontal flips) is one gather there instead of a Python loop on the
    host: a GPU trains faster than the host can crop. Same distribution as sample_batch:
    uniform over scaled copies, uniform crop positions, flips with probability 1/2."""

    def __init__(self, images, device):
        hmax = max(im.shape[0] for im in images); wmax = max(im.shape[1] for im in images)
        self.bank = torch.zeros((len(images), hmax, wmax, 3), dtype=torch.uint8, device=device)
        for i, im in enumerate(images):
            self.bank[i, :im.shape[0], :im.shape[1]] = torch.from_numpy(np.ascontiguousarray(im)).to(device)
        self.sizes = torch.tensor([im.shape[:2] for im in images], device=device)
        self.device = device

    def sample(self, batch, crop, gen):
        d = self.device
        idx = torch.randint(len(self.sizes), (batch,), generator=gen, device=d)
        room = self.sizes[idx] - crop + 1                                  # (batch, 2) positions per axis
        y = (torch.rand(batch, generator=gen, device=d) * room[:, 0]).long().clamp_max(room[:, 0] - 1)
        x = (torch.rand(batch, generator=gen, device=d) * room[:, 1]).long().clamp_max(room[:, 1] - 1)
        flip = torch.rand(batch, generator=gen, device=d) < 0.5
        ar = torch.arange(crop, device=d)
        rows = (y[:, None] + ar)[:, :, None]
        cols = torch.where(flip[:, None], x[:, None] + crop - 1 - ar, x[:, None] + ar)[:, None, :]
        out = self.bank[idx[:, None, None], rows, cols]                    # (batch, crop, crop, 3)
        return out.permute(0, 3, 1, 2).float() / 127.5 - 1


def write_loss_svg(log, path, batch=16):
    """The loss curve (running mean of the MSE against steps) as a small standalone SVG."""
    if len(log) < 2:
        return
    W, H, L, B = 640, 300, 60, 40
    steps = [e["step"] for e in log]; loss = [e["loss"] for e in log]
    lo, hi = 0.0, max(loss[len(loss) // 20:] or loss) * 1.1
    def xy(s, l):
        return L + (W - L - 10) * s / steps[-1], H - B - (H - B - 10) * (min(l, hi) - lo) / (hi - lo)
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(s, l) for s, l in zip(steps, loss)))
    ticks = "".join(f'<text x="{L - 6}" y="{xy(0, v)[1] + 4:.1f}" text-anchor="end">{v:.3f}</text>' for v in (lo, hi / 2, hi))
    xt = "".join(f'<text x="{xy(v, 0)[0]:.1f}" y="{H - B + 16}" text-anchor="middle">{v}</text>' for v in (0, steps[-1] // 2, steps[-1]))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">'
           f'<rect width="{W}" height="{H}" fill="white"/><polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{pts}"/>'
           f'<line x1="{L}" y1="{H - B}" x2="{W - 10}" y2="{H - B}" stroke="black"/><line x1="{L}" y1="10" x2="{L}" y2="{H - B}" stroke="black"/>'
           f'{ticks}{xt}<text x="{W / 2}" y="{H - 6}" text-anchor="middle">training step (batch {batch})</text>'
           f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">loss (running mean MSE)</text></svg>')
    with open(path, "w") as f:
        f.write(svg)


def model_options(args):
    return {"image_size": 64, "num_channels": args.channels, "num_res_blocks": args.res_blocks,
            "channel_mult": args.mult, "attention_resolutions": "", "learn_sigma": False,
            "use_scale_shift_norm": True, "resblock_updown": False, "num_heads": 1, "dropout": 0.0}


def build_model(opts):
    from guided_diffusion.script_util import create_model
    kw = dict(opts)
    if not kw["attention_resolutions"]:
        kw["attention_resolutions"] = "1"  # attention at downsample 64, never reached: no attention
        assert len(kw["channel_mult"].split(",")) > 1
    return create_model(**kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=".cache/prior-run", help="run folder (checkpoint, loss log, manifest)")
    ap.add_argument("--data-root", default=".cache/training-data/root", help="where the Debian packages were unpacked")
    ap.add_argument("--minutes", type=float, default=60, help="stop after this much training time in this sitting")
    ap.add_argument("--steps", type=int, default=0, help="stop at this total step count (0: no limit)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--mult", default="1,2,2")
    ap.add_argument("--res-blocks", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--checkpoint-minutes", type=float, default=5)
    ap.add_argument("--data", choices=("photos", "varied"), default="photos",
                    help="photos: the shipped prior's 32 photographs; varied: those and 41 drawn, painted and rendered images")
    ap.add_argument("--pack", default="", help="train from a pack written by --write-pack instead of the Debian packages")
    ap.add_argument("--write-pack", default="", help="write the --data images as a pack to this folder and stop")
    ap.add_argument("--pack-quality", type=int, default=93, help="JPEG quality of --write-pack")
    ap.add_argument("--sampler", choices=("host", "bank"), default="",
                    help="host: crops cut on the CPU (the shipped run's); bank: crops gathered on the device (default on cuda)")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the forward and backward passes (cuda)")
    ap.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up over this many steps (new runs)")
    ap.add_argument("--no-ema-warmup", action="store_true", help="plain EMA decay from step 0 (how the shipped run was made)")
    ap.add_argument("--init-from", default="", help="a new run starts from this checkpoint's weights and EMA (fine-tuning; a fresh optimiser)")
    ap.add_argument("--export-only", action="store_true", help="export the run's checkpoint as it is, without training")
    ap.add_argument("--export", default="", help="write the EMA weights here (float16 safetensors + .json config + .training.json)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.write_pack:
        write_pack(training_files(args.data_root, args.data), args.data_root, args.write_pack, args.pack_quality)
        print(f"wrote {args.write_pack}", flush=True)
        return
    sampler = args.sampler or ("bank" if args.device != "cpu" else "host")
    os.makedirs(args.run, exist_ok=True)
    ckpt_path = os.path.join(args.run, "checkpoint.pt")
    opts = model_options(args)
    if args.pack:
        files, pack_entries = pack_files(args.pack, args.data)
    else:
        files, pack_entries = training_files(args.data_root, args.data), None

    resumed = os.path.exists(ckpt_path)
    if resumed:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if (state["options"] != opts or state["batch"] != args.batch or state["crop"] != args.crop
                or state.get("sampler", "host") != sampler or len(state.get("files", files)) != len(files)):
            sys.exit(f"train-prior: {ckpt_path} was made with other settings "
                     f"({state['options']}, batch {state['batch']}, crop {state['crop']}); use another --run folder")
        opts, seed = state["options"], state["seed"]
    else:
        seed = args.seed
    torch.manual_seed(seed)
    model = build_model(opts).to(args.device)
    ema = build_model(opts).to(args.device)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    data_gen = torch.Generator(device=args.device if sampler == "bank" else "cpu").manual_seed(seed + 1)
    noise_gen = torch.Generator(device=args.device).manual_seed(seed + 2)
    step, log, train_seconds = 0, [], 0.0
    # The shipped run (and any checkpoint without the flag) was made with the plain decay.
    ema_warmup = (not args.no_ema_warmup and not args.init_from) if not resumed else state.get("ema_warmup", False)
    if args.init_from and not resumed:
        init = torch.load(args.init_from, map_location="cpu", weights_only=False)
        if init["options"] != opts:
            sys.exit(f"train-prior: {args.init_from} has another architecture ({init['options']})")
        model.load_state_dict(init["model"]); ema.load_state_dict(init["ema"])
        print(f"starting from the weights of {args.init_from} (step {init['step']})", flush=True)
    if resumed:
        model.load_state_dict(state["model"]); ema.load_state_dict(state["ema"]); opt.load_state_dict(state["opt"])
        if not args.export_only:  # a run made on another device exports anywhere; its generators stay unused
            data_gen.set_state(state["data_gen"].cpu()); noise_gen.set_state(state["noise_gen"].to(noise_gen.get_state().device) if args.device == "cpu" else state["noise_gen"])
        step, log, train_seconds = state["step"], state["log"], state["train_seconds"]
        print(f"resumed {ckpt_path} at step {step} ({train_seconds / 60:.1f} min trained)", flush=True)

    manifest_path = os.path.join(args.run, "manifest.json")
    if not os.path.exists(manifest_path):
        listed = pack_entries or [{"package": p, "path": os.path.relpath(f, args.data_root) if p != "scikit-image" else "skimage/data/" + os.path.basename(f),
                                   "sha256": sha256(f)} for p, f in files]
        manifest = {"seed": seed, "options": opts, "batch": args.batch, "crop": args.crop, "lr": args.lr, "ema": args.ema,
                    "warmup": args.warmup, "sampler": sampler, "init_from": args.init_from or None, "ema_warmup": ema_warmup, "bf16": args.bf16, "device": args.device,
                    "data": args.data,
                    "scales": SCALES, "schedule": "linear beta 1e-4..0.02, 1000 steps, epsilon prediction, MSE",
                    "files": [{k: e[k] for k in ("package", "path", "sha256")} for e in listed],
                    "licences": {k: os.path.join(args.data_root, v) for k, v in LICENCES.items()},
                    "torch": torch.__version__, "machine": platform.processor() or platform.machine()}
        with open(manifest_path + ".partial", "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(manifest_path + ".partial", manifest_path)

    images = load_pyramid(files)
    bank = DeviceBank(images, args.device) if sampler == "bank" else None
    print(f"{len(files)} images, {len(images)} scaled copies; model {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"batch {args.batch} of {args.crop}x{args.crop}; {args.threads} threads on {args.device}, {sampler} sampler"
          f"{', bf16' if args.bf16 else ''}", flush=True)

    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0).float().to(args.device)

    def save():
        blob = {"options": opts, "batch": args.batch, "crop": args.crop, "seed": seed, "sampler": sampler, "ema_warmup": ema_warmup,
                "files": [p for _, p in files], "model": model.state_dict(),
                "ema": ema.state_dict(), "opt": opt.state_dict(), "data_gen": data_gen.get_state(),
                "noise_gen": noise_gen.get_state(), "step": step, "log": log, "train_seconds": train_seconds}
        torch.save(blob, ckpt_path + ".partial")
        os.replace(ckpt_path + ".partial", ckpt_path)

    stop = {"now": False}
    def on_signal(*_):
        stop["now"] = True
    signal.signal(signal.SIGINT, on_signal); signal.signal(signal.SIGTERM, on_signal)

    start = time.time(); last_save = start; smooth = None
    if args.export_only:
        if not resumed:
            sys.exit(f"train-prior: --export-only needs a checkpoint in {args.run}")
        stop["now"] = True
    while not stop["now"]:
        if args.steps and step >= args.steps:
            break
        if time.time() - start >= args.minutes * 60:
            break
        t0 = time.time()
        if bank is not None:
            x0 = bank.sample(args.batch, args.crop, data_gen)
        else:
            x0 = sample_batch(images, args.batch, args.crop, data_gen).to(args.device)
        t = torch.randint(1000, (args.batch,), generator=noise_gen, device=args.device)
        eps = torch.randn(x0.shape, generator=noise_gen, device=args.device)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        if args.warmup and step < args.warmup:
            for g in opt.param_groups:
                g["lr"] = args.lr * (step + 1) / args.warmup
        with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.bf16):
            loss = F.mse_loss(model(xt, t).float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            mp, ep = list(model.parameters()), list(ema.parameters())
            # A new run's EMA starts at the random initial weights; with a decay of 0.9995 they
            # would still be 3 % of it after 7,000 steps (the first GPU runs had this), so the
            # decay warms up as (1 + k) / (10 + k). Runs made before keep the plain decay.
            decay = args.ema if not ema_warmup else min(args.ema, (1 + step) / (10 + step))
            torch._foreach_mul_(ep, decay)
            torch._foreach_add_(ep, mp, alpha=1 - decay)
        step += 1
        # On a GPU the loss is read back only every 50 steps (a read is a synchronisation), with
        # the weight 50 per-step updates of 0.99 would give it (0.99⁵⁰ ≈ 0.6).
        if bank is None or step % 50 == 0:
            keep = 0.99 if bank is None else 0.6
            smooth = loss.item() if smooth is None else keep * smooth + (1 - keep) * loss.item()
        train_seconds += time.time() - t0
        if step % 50 == 0:
            log.append({"step": step, "loss": round(smooth, 5), "minutes": round(train_seconds / 60, 2)})
        if step % 200 == 0:
            print(f"step {step}  loss {smooth:.4f}  {train_seconds / step:.3f} s/step  {train_seconds / 60:.1f} min", flush=True)
        if time.time() - last_save >= args.checkpoint_minutes * 60:
            save(); last_save = time.time()
    if not args.export_only:
        save()
        with open(os.path.join(args.run, "loss.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step", "loss", "minutes"]); w.writeheader(); w.writerows(log)
    print(f"stopped at step {step} ({train_seconds / 60:.1f} min trained); checkpoint {ckpt_path}", flush=True)

    if args.export:
        out = args.export
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        save_safetensors(ema.state_dict(), out, half=True,
                         metadata={"svi": "embedded prior", "steps": step, "seed": seed})
        cfg = dict(opts)
        with open(out + ".json.partial", "w") as f:
            json.dump(cfg, f, indent=1)
        os.replace(out + ".json.partial", out + ".json")
        with open(manifest_path) as f:
            manifest = json.load(f)
        manifest.update({"steps": step, "train_minutes": round(train_seconds / 60, 1), "final_loss": log[-1]["loss"] if log else None,
                         "parameters": sum(p.numel() for p in ema.parameters()), "loss_curve": log[::max(1, len(log) // 60)]})
        manifest.pop("licences", None)
        with open(out + ".training.json.partial", "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(out + ".training.json.partial", out + ".training.json")
        write_loss_svg(log, os.path.splitext(out)[0] + "-loss.svg", args.batch)
        print(f"exported {out} (+ .json config, .training.json record, -loss.svg curve)", flush=True)


if __name__ == "__main__":
    main()
