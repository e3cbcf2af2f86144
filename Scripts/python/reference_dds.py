#!/usr/bin/env python3
"""An independent reference of the paper's sampler, in float64 NumPy (no PyTorch needed).

Written from the paper's released code (solving-video-inverse, `time_deconv_sample_loop` and
`CG` in guided_diffusion/gaussian_diffusion.py, `temporal_blur` in measurements.py), from DDS
for the proximal variant, and from openai/guided-diffusion's `UNetModel` for the network —
not from svi's Swift code. It takes its noise from files, so svi (`svi restore --noise-dir`)
and this script sample the same path and their outputs can be compared number for number.

    reference_dds.py make-noise DIR --shape C H W --steps N [--seed S]
        writes DIR/initial.npy and DIR/step-K.npy (K = 0 … N−1), float32 C×H×W standard
        normals (NumPy's generator): the image every frame shares at the start and at step K.
    reference_dds.py sample --weights W.safetensors --config fixture.json --measurement Y.npy
        --spec SPEC --frames T --height H --width W --noise-dir DIR --out OUT.npy
        [--nfe 20] [--cg 5] [--eta 0.15] [--gamma G] [--trace-dir TRACE]
        runs batch-consistent DDS and writes x̄0 of the last step in [0,1], not clipped; with
        --trace-dir, runs each step from the state svi reached (`svi restore --trace-dir`)
        and writes the relative difference of every step as JSON.
    reference_dds.py forward --weights W --config C --input X.npy --timesteps T.npy --out OUT.npy
        one network evaluation (checked against the PyTorch fixtures).

The paper's loop, step by step (DESIGN §4 is the same loop):
    x_T = z (one image, repeated for every frame)
    for (t, t_next) in the DDIM pairs of N steps:
        ε = model(x_t, t)[:, :3]                    learned σ dropped
        x̂0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t            Tweedie
        u = CG_M(AᵀA, Aᵀy, start (x̂0+1)/2)        over the whole video (plain), or
            CG_M(I + γAᵀA, u0 + γAᵀy, start u0)      (DDS's proximal step, when γ is given)
        x̄0 = 2u − 1
        x_{t_next} = x̄0 at the last two steps (t_next ≤ 0), else
                     √ᾱ_next x̄0 + √(1−ᾱ_next)(η n + √(1−η²) ε),  n one image for every frame
"""
import argparse, json, math, os, struct, sys
import numpy as np


# ---------------------------------------------------------------- weights and configuration

def load_safetensors(path):
    """name → float64 array. Only what the fixtures use (F32/F16/F64, little-endian)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=kinds[e["dtype"]]).reshape(e["shape"]).astype(np.float64)
    return out


def load_config(path):
    c = json.load(open(path))
    c = c.get("config", c)
    mult = c.get("channel_mult", "")
    if isinstance(mult, str):
        mult = tuple(int(v) for v in mult.split(",")) if mult else None
    if not mult:
        size = c["image_size"]
        mult = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}[size]
    attn = c.get("attention_resolutions", "16,8")
    if isinstance(attn, str):
        attn = [int(v) for v in attn.split(",") if v]
    return dict(
        image_size=c["image_size"], model_channels=c["num_channels"], num_res_blocks=c["num_res_blocks"],
        channel_mult=mult, attention_ds=[c["image_size"] // r for r in attn],
        learn_sigma=c.get("learn_sigma", False), num_heads=c.get("num_heads", 4),
        num_head_channels=c.get("num_head_channels", -1), num_heads_upsample=c.get("num_heads_upsample", -1),
        resblock_updown=c.get("resblock_updown", False), use_scale_shift_norm=c.get("use_scale_shift_norm", False),
        use_new_attention_order=c.get("use_new_attention_order", False), conv_resample=True)


# ---------------------------------------------------------------- layers (NCHW, float64)

def conv2d(x, w, b, stride=1):
    """x (B,C,H,W), w (O,C,k,k), padding k//2 (guided-diffusion's conv_nd(…, padding=1))."""
    o, c, k, _ = w.shape
    p = k // 2
    if p:
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    bsz, _, h, wd = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(bsz * h * wd, c * k * k)
    y = cols @ w.reshape(o, -1).T + b
    return y.reshape(bsz, h, wd, o).transpose(0, 3, 1, 2)


def group_norm(x, w, b, groups=32, eps=1e-5):
    bsz, c = x.shape[:2]
    g = x.reshape(bsz, groups, -1)
    mean = g.mean(axis=2, keepdims=True)
    var = g.var(axis=2, keepdims=True)
    g = (g - mean) / np.sqrt(var + eps)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return g.reshape(x.shape) * w.reshape(shape) + b.reshape(shape)


def silu(x):
    return x / (1 + np.exp(-x))


def avg_pool2(x):
    bsz, c, h, w = x.shape
    return x.reshape(bsz, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def upsample2(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half, dtype=np.float64) / half)
    args = np.asarray(t, dtype=np.float64)[:, None] * freqs[None]
    emb = np.concatenate([np.cos(args), np.sin(args)], axis=1)
    if dim % 2:
        emb = np.concatenate([emb, np.zeros_like(emb[:, :1])], axis=1)
    return emb


class UNet:
    """guided-diffusion's UNetModel (2-D, unconditional), forward pass only."""

    def __init__(self, weights, cfg):
        self.W, self.cfg = weights, cfg

    def lin(self, name, x):
        return x @ self.W[name + ".weight"].T + self.W[name + ".bias"]

    def conv(self, name, x, stride=1):
        w = self.W[name + ".weight"]
        if w.ndim == 3:                                   # conv1d with kernel 1 (attention)
            return np.einsum("oc,bct->bot", w[:, :, 0], x) + self.W[name + ".bias"][None, :, None]
        return conv2d(x, w, self.W[name + ".bias"], stride)

    def norm(self, name, x):
        return group_norm(x, self.W[name + ".weight"], self.W[name + ".bias"])

    def resblock(self, p, x, emb, up=False, down=False):
        h = silu(self.norm(p + ".in_layers.0", x))
        if up or down:
            f = upsample2 if up else avg_pool2
            h, x = f(h), f(x)
        h = self.conv(p + ".in_layers.2", h)
        e = self.lin(p + ".emb_layers.1", silu(emb))[:, :, None, None]
        if self.cfg["use_scale_shift_norm"]:
            scale, shift = np.split(e, 2, axis=1)
            h = self.norm(p + ".out_layers.0", h) * (1 + scale) + shift
            h = self.conv(p + ".out_layers.3", silu(h))
        else:
            h = self.conv(p + ".out_layers.3", silu(self.norm(p + ".out_layers.0", h + e)))
        skip = x if (p + ".skip_connection.weight") not in self.W else self.conv(p + ".skip_connection", x)
        return skip + h

    def attention(self, p, x, heads):
        bsz, c, hh, ww = x.shape
        xs = x.reshape(bsz, c, -1)
        qkv = self.conv(p + ".qkv", self.norm(p + ".norm", xs))
        n = xs.shape[2]
        ch = c // heads
        scale = 1 / math.sqrt(math.sqrt(ch))
        if self.cfg["use_new_attention_order"]:
            q, k, v = np.split(qkv, 3, axis=1)
            q, k, v = (a.reshape(bsz * heads, ch, n) for a in (q, k, v))
        else:
            q, k, v = np.split(qkv.reshape(bsz * heads, 3 * ch, n), 3, axis=1)
        wgt = np.einsum("bct,bcs->bts", q * scale, k * scale)
        wgt = np.exp(wgt - wgt.max(axis=2, keepdims=True))
        wgt /= wgt.sum(axis=2, keepdims=True)
        a = np.einsum("bts,bcs->bct", wgt, v).reshape(bsz, c, n)
        return x + self.conv(p + ".proj_out", a).reshape(bsz, c, hh, ww)

    def heads(self, ch, upsample=False):
        c = self.cfg
        if c["num_head_channels"] != -1:
            return ch // c["num_head_channels"]
        if upsample and c["num_heads_upsample"] != -1:
            return c["num_heads_upsample"]
        return c["num_heads"]

    def __call__(self, x, t):
        c = self.cfg
        mc = c["model_channels"]
        emb = self.lin("time_embed.2", silu(self.lin("time_embed.0", timestep_embedding(t, mc))))
        h = self.conv("input_blocks.0.0", x)
        hs, chans = [h], [mc]
        ch, ds, k = mc, 1, 1
        for level, mult in enumerate(c["channel_mult"]):
            for _ in range(c["num_res_blocks"]):
                h = self.resblock(f"input_blocks.{k}.0", h, emb)
                ch = int(mult * mc)
                if ds in c["attention_ds"]:
                    h = self.attention(f"input_blocks.{k}.1", h, self.heads(ch))
                hs.append(h); chans.append(ch); k += 1
            if level != len(c["channel_mult"]) - 1:
                if c["resblock_updown"]:
                    h = self.resblock(f"input_blocks.{k}.0", h, emb, down=True)
                else:
                    h = self.conv(f"input_blocks.{k}.0.op", h, stride=2)
                hs.append(h); chans.append(ch); k += 1; ds *= 2
        h = self.resblock("middle_block.0", h, emb)
        h = self.attention("middle_block.1", h, self.heads(ch))
        h = self.resblock("middle_block.2", h, emb)
        k = 0
        for level, mult in list(enumerate(c["channel_mult"]))[::-1]:
            for i in range(c["num_res_blocks"] + 1):
                h = np.concatenate([h, hs.pop()], axis=1); chans.pop()
                h = self.resblock(f"output_blocks.{k}.0", h, emb)
                ch = int(mc * mult)
                j = 1
                if ds in c["attention_ds"]:
                    h = self.attention(f"output_blocks.{k}.1", h, self.heads(ch, upsample=True)); j = 2
                if level and i == c["num_res_blocks"]:
                    if c["resblock_updown"]:
                        h = self.resblock(f"output_blocks.{k}.{j}", h, emb, up=True)
                    else:
                        h = self.conv(f"output_blocks.{k}.{j}.conv", upsample2(h))
                    ds //= 2
                k += 1
        return self.conv("out.2", silu(self.norm("out.0", h)))


# ---------------------------------------------------------------- operators, [0,1] units, (T,C,H,W)

def parse_spec(spec):
    """The spec strings of DESIGN §3: temporal=uniform:k|gaussian:σ[,boundary=…], blur=σ, sr=s, noise=σ."""
    out = {"boundary": "circular"}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def temporal_weights(desc):
    kind, _, v = desc.partition(":")
    if kind == "uniform":
        k = int(v)
        return np.full(k, 1.0 / k)
    sigma = float(v)
    r = math.ceil(3 * sigma)
    w = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma * sigma))
    return w / w.sum()


def temporal_matrix(weights, frames, boundary):
    """The T×T matrix of y[t] = Σ_j w[j] x[map(t + j − h)] (the paper's circular pad + conv)."""
    m = np.zeros((frames, frames))
    h = len(weights) // 2
    for t in range(frames):
        for j, w in enumerate(weights):
            s = t + j - h
            s = s % frames if boundary == "circular" else min(max(s, 0), frames - 1)
            m[t, s] += w
    return m


def gaussian_1d(sigma):
    r = math.ceil(3 * sigma)
    w = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma * sigma))
    return w / w.sum()


def reflect_matrix(weights, n):
    """n×n matrix of a 1-D convolution with reflect padding (NumPy/PyTorch 'reflect')."""
    m = np.zeros((n, n))
    r = len(weights) // 2
    for i in range(n):
        for j, w in enumerate(weights):
            s = i + j - r
            while s < 0 or s >= n:
                s = -s if s < 0 else 2 * (n - 1) - s
            m[i, s] += w
    return m


class Operator:
    """A = S ∘ Tm (DESIGN §3) as dense 1-D factors: Tm acts along time, S per frame."""

    def __init__(self, spec, frames, height, width):
        s = parse_spec(spec)
        self.tm = temporal_matrix(temporal_weights(s["temporal"]), frames, s["boundary"]) if "temporal" in s else np.eye(frames)
        self.rows = self.cols = None
        if "blur" in s:
            g = gaussian_1d(float(s["blur"]))
            self.rows, self.cols = reflect_matrix(g, height), reflect_matrix(g, width)
        elif "sr" in s:
            f = int(s["sr"])
            self.rows = np.kron(np.eye(height // f), np.full((1, f), 1.0 / f))
            self.cols = np.kron(np.eye(width // f), np.full((1, f), 1.0 / f))
        if "inpaint" in s:
            raise SystemExit("reference_dds: inpainting's mask comes from svi's generator; not part of this reference")

    def A(self, x):
        y = np.einsum("ts,schw->tchw", self.tm, x)
        if self.rows is not None:
            y = np.einsum("ih,tchw,jw->tcij", self.rows, y, self.cols)
        return y

    def AT(self, y):
        if self.rows is not None:
            y = np.einsum("ih,tcij,jw->tchw", self.rows, y, self.cols)
        return np.einsum("ts,tchw->schw", self.tm, y)


def cg(apply, b, x, iterations):
    """The paper's CG (whole-video inner products), on AᵀA u = Aᵀy or the proximal system."""
    r = b - apply(x)
    p = r.copy()
    rs = np.sum(r * r)
    floor = 1e-24 * max(np.sum(b * b), np.finfo(np.float64).tiny)
    for _ in range(iterations):
        if rs <= floor:            # converged to float64 precision (svi stops here too)
            break
        ap = apply(p)
        pap = np.sum(p * ap)
        if not pap > 0:
            break
        a = rs / pap
        x = x + a * p
        r = r - a * ap
        rs_new = np.sum(r * r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


# ---------------------------------------------------------------- the sampler

def alphas_cumprod():
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    return np.cumprod(1 - betas)


def pairs(nfe):
    """The (t, t_next) pairs of the paper's loop: every t of range(0, 1000, skip), skip = 1000 // N,
    from the top (16 steps from t = 990 for N = 15), t_next = t − skip, −1 after 0."""
    skip = 1000 // nfe
    times = list(range(0, 1000, skip))
    nexts = [-1] + times[:-1]
    return list(zip(reversed(times), reversed(nexts)))


def step(model, op, aty, x, k, t, tn, noise_dir, cg_steps, eta, gamma, ab):
    """Step k of the loop from x_t: returns x_{t_next} (x̄0 when t_next ≤ 0)."""
    alpha = lambda s: 1.0 if s < 0 else ab[s]
    at, an = alpha(t), alpha(tn)
    eps = model(x, np.full(x.shape[0], t))[:, :3]
    x0 = (x - eps * math.sqrt(1 - at)) / math.sqrt(at)
    u0 = (x0 + 1) / 2
    if gamma is None:
        u = cg(lambda v: op.AT(op.A(v)), aty, u0, cg_steps)
    else:
        u = cg(lambda v: v + gamma * op.AT(op.A(v)), u0 + gamma * aty, u0, cg_steps)
    xbar = 2 * u - 1
    if tn <= 0:
        return xbar
    n = np.load(os.path.join(noise_dir, f"step-{k}.npy")).astype(np.float64)
    c1 = math.sqrt(1 - an) * eta
    c2 = math.sqrt(1 - an) * math.sqrt(1 - eta * eta)
    return math.sqrt(an) * xbar + c1 * n[None] + c2 * eps


def initial(noise_dir, frames):
    z = np.load(os.path.join(noise_dir, "initial.npy")).astype(np.float64)
    return np.repeat(z[None], frames, axis=0)


def sample(model, op, y, frames, noise_dir, nfe=20, cg_steps=5, eta=0.15, gamma=None):
    """The whole loop; returns x̄0 of the last step in [0,1]."""
    ab, aty = alphas_cumprod(), op.AT(y)
    x = initial(noise_dir, frames)
    for k, (t, tn) in enumerate(pairs(nfe)):
        x = step(model, op, aty, x, k, t, tn, noise_dir, cg_steps, eta, gamma, ab)
    return (x + 1) / 2


def check_trace(model, op, y, frames, noise_dir, trace_dir, nfe=20, cg_steps=5, eta=0.15, gamma=None):
    """Step for step: step k from the state another implementation reached after step k−1
    (trace_dir/x-(k−1).npy; the shared start image for k = 0), compared with its state after
    step k. A sampler with a random network is chaotic (a 1e-7 change of ε grows ~1000× over
    20 steps), so whole trajectories of two correct float32/float64 implementations part;
    steps from the same state must agree to rounding. Returns ‖ours − theirs‖/‖ours‖ per step."""
    ab, aty = alphas_cumprod(), op.AT(y)
    x = initial(noise_dir, frames)
    errors = []
    for k, (t, tn) in enumerate(pairs(nfe)):
        ours = step(model, op, aty, x, k, t, tn, noise_dir, cg_steps, eta, gamma, ab)
        theirs = np.load(os.path.join(trace_dir, f"x-{k}.npy")).astype(np.float64)
        errors.append(float(np.linalg.norm(ours - theirs) / np.linalg.norm(ours)))
        x = theirs
    return errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-noise")
    mk.add_argument("dir"); mk.add_argument("--shape", type=int, nargs=3, required=True)
    mk.add_argument("--steps", type=int, required=True); mk.add_argument("--seed", type=int, default=0)
    sp = sub.add_parser("sample")
    for a in ("--weights", "--config", "--measurement", "--spec", "--noise-dir", "--out"):
        sp.add_argument(a, required=True)
    for a in ("--frames", "--height", "--width"):
        sp.add_argument(a, type=int, required=True)
    sp.add_argument("--nfe", type=int, default=20); sp.add_argument("--cg", type=int, default=5)
    sp.add_argument("--eta", type=float, default=0.15); sp.add_argument("--gamma", type=float)
    sp.add_argument("--trace-dir", help="check another sampler's states step for step (x-K.npy after step K) "
                    "instead of sampling; --out receives {\"step_errors\": [...]} as JSON")
    fw = sub.add_parser("forward", help="one network evaluation (to check the network against fixtures)")
    for a in ("--weights", "--config", "--input", "--timesteps", "--out"):
        fw.add_argument(a, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "make-noise":
        os.makedirs(args.dir, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        for name in ["initial"] + [f"step-{k}" for k in range(args.steps)]:
            np.save(os.path.join(args.dir, name + ".npy"), rng.standard_normal(args.shape).astype(np.float32))
        return
    model = UNet(load_safetensors(args.weights), load_config(args.config))
    if args.cmd == "forward":
        out = model(np.load(args.input).astype(np.float64), np.load(args.timesteps))
        np.save(args.out, out.astype(np.float32))
        return
    y = np.load(args.measurement).astype(np.float64)
    op = Operator(args.spec, args.frames, args.height, args.width)
    if args.trace_dir:
        errors = check_trace(model, op, y, args.frames, args.noise_dir, args.trace_dir, args.nfe, args.cg, args.eta, args.gamma)
        with open(args.out + ".partial", "w") as f:
            json.dump({"step_errors": errors}, f)
        os.replace(args.out + ".partial", args.out)
        return
    out = sample(model, op, y, args.frames, args.noise_dir, args.nfe, args.cg, args.eta, args.gamma)
    tmp = args.out + ".partial.npy"
    np.save(tmp, out.astype(np.float32))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
