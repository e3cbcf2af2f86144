#!/usr/bin/env python3
"""Plug-and-play restoration with BM3D as the denoiser (issue 27, item 3): the strongest
classical method a practitioner would run, measured beside svi on the same measurements.

Half-quadratic splitting (the PnP form of DPIR, Zhang et al. 2021) over the whole video:
    z_k = BM3D(x_k, σ_k)                          per frame, RGB (PyPI `bm3d`, opponent colour)
    x_{k+1} = argmin ‖A x − y‖² + α_k ‖x − z_k‖²,  α_k = c · σ_y² / σ_k²   (CG on the whole video)
with σ_k falling geometrically from --sigma-high to max(σ_y, --sigma-low) over --iterations,
started from a classical estimate (svi's ADMM-TV output, the same start svi's warm start has).
The operator A is reference_dds.Operator (NumPy, written from the paper's code, not svi's);
inpainting's mask is the one `svi degrade` draws for the measurement's mask seed, read back
by degrading an all-ones clip. The measurement is decoded by svi itself (`svi degrade` with the
identity spec to float32 .npy), so PnP sees exactly the samples svi restores from.

    pnp_bm3d.py --svi .build/release/svi --measurement y.mp4 --spec SPEC --start start.npy
                --noise-sigma S --out pnp.npy [--c 0.5] [--iterations 6] [--jobs 2]
"""
import argparse, json, os, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_dds import Operator, cg, parse_spec  # noqa: E402


def decode(svi, path, work):
    """The measurement as svi reads it: float32 [T][C][H][W] in [0, 1]."""
    out = os.path.join(work, "y.npy")
    subprocess.run([svi, "degrade", path, "-o", out, "--degradation", "temporal=uniform:1", "--quiet", "--overwrite"], check=True)
    return np.load(out).astype(np.float64)


def inpaint_mask(svi, spec, mask_seed, height, width, work):
    """svi's inpainting mask for (keep fraction, seed, H×W): the measurement of an all-ones frame."""
    keep = parse_spec(spec)["inpaint"]
    ones = os.path.join(work, "ones.npy")
    np.save(ones, np.ones((1, 1, height, width), dtype=np.float32))
    out = os.path.join(work, "mask.npy")
    subprocess.run([svi, "degrade", ones, "-o", out, "--degradation", f"inpaint={keep}", "--mask-seed", str(mask_seed),
                    "--quiet", "--overwrite"], check=True)
    return np.load(out)[0, 0].astype(np.float64)


class Problem:
    """A = M ∘ S ∘ Tm: reference_dds's temporal and spatial factors, then the inpainting mask."""

    def __init__(self, spec, frames, height, width, mask=None):
        self.op = Operator(",".join(p for p in spec.split(",") if not p.startswith(("inpaint", "noise"))), frames, height, width)
        self.mask = mask

    # reference_dds's matrices, applied by matrix products (its three-operand einsum is the
    # literal form, far too slow for 20 CG steps a frame stack).
    def A(self, x):
        op = self.op
        y = np.tensordot(op.tm, x, axes=([1], [0]))
        if op.rows is not None:
            y = op.rows @ y @ op.cols.T
        return y * self.mask if self.mask is not None else y

    def AT(self, y):
        op = self.op
        if self.mask is not None:
            y = y * self.mask
        if op.rows is not None:
            y = op.rows.T @ y @ op.cols
        return np.tensordot(op.tm.T, y, axes=([1], [0]))


def denoise_frame(args):
    import bm3d
    frame, sigma = args                       # frame C×H×W
    img = np.clip(np.transpose(frame, (1, 2, 0)), -0.2, 1.2)
    return np.transpose(bm3d.bm3d_rgb(img, sigma_psd=sigma), (2, 0, 1))


def pnp(problem, y, start, noise_sigma, c, iterations, sigma_high, sigma_low, cg_steps, jobs):
    aty = problem.AT(y)
    x = start.copy()
    low = max(noise_sigma, sigma_low)
    sigmas = np.geomspace(sigma_high, low, iterations)
    sy = max(noise_sigma, 1e-3)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for k, s in enumerate(sigmas):
            z = np.stack(list(pool.map(denoise_frame, [(f, float(s)) for f in x])))
            a = c * sy * sy / (s * s)
            x = cg(lambda v: problem.AT(problem.A(v)) + a * v, aty + a * z, z, cg_steps)
            print(f"pnp-bm3d: iteration {k + 1}/{iterations}, σ_k {s:.4f}, α {a:.4g}", file=sys.stderr, flush=True)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--svi", default=".build/release/svi")
    ap.add_argument("--measurement", required=True)
    ap.add_argument("--spec", help="degradation (default: the measurement's sidecar)")
    ap.add_argument("--start", required=True, help="classical estimate to start from, float32 .npy [T][C][H][W]")
    ap.add_argument("--noise-sigma", type=float, required=True, help="the measurement's effective σ (svi noise)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--c", type=float, default=0.5, help="α_k = c·σ_y²/σ_k²")
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--sigma-high", type=float, default=0.05)
    ap.add_argument("--sigma-low", type=float, default=0.004)
    ap.add_argument("--cg-steps", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    sidecar = json.load(open(args.measurement + ".json")) if os.path.exists(args.measurement + ".json") else {}
    spec = args.spec or sidecar.get("degradation")
    if not spec:
        sys.exit(f"pnp_bm3d: {args.measurement}: no degradation given and no sidecar")
    began = time.time()
    with tempfile.TemporaryDirectory() as work:
        y = decode(args.svi, args.measurement, work)
        start = np.load(args.start).astype(np.float64)
        t, ch, h, w = start.shape
        mask = inpaint_mask(args.svi, spec, sidecar.get("mask_seed", sidecar.get("seed", 0)), h, w, work) if "inpaint" in spec else None
        problem = Problem(spec, t, h, w, mask)
        if problem.A(start).shape != y.shape:
            sys.exit(f"pnp_bm3d: {args.measurement}: measurement {y.shape} does not match A(start) {problem.A(start).shape}")
        x = pnp(problem, y, start, args.noise_sigma, args.c, args.iterations, args.sigma_high, args.sigma_low, args.cg_steps, args.jobs)
    tmp = args.out + ".partial.npy"
    np.save(tmp, np.clip(x, 0, 1).astype(np.float32))
    os.replace(tmp, args.out)
    print(f"pnp-bm3d: {time.time() - began:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
