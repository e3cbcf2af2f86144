"""svi on measurements as footage arrives (issue 27), called by Scripts/evaluate --realistic:
every task of EVALUATION.md with its measurement written to an 8-bit FFV1 file and to H.264
(--crf 18) by `svi degrade`, restored from that file by CG alone, ADMM-TV (λ chosen on the
truth: an oracle), ADMM-TV at svi's own default λ (the estimate svi's warm start begins from)
and svi with its defaults. Writes evaluation/REALISTIC.md and evaluation/realistic.json.
"""
import argparse, json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import CLIPS, TASKS, PAPER_TASKS, MEASUREMENTS, run, score, machine, write_markdown  # noqa: E402

TV_LAMBDAS = (0.0001, 0.0003, 0.001, 0.003, 0.01)
DEFAULT_TASKS = ("uniform7", "gauss1", "deblur2", "sr4", "inpaint50", "gauss1sr2")
KINDS = {"8bit": "8-bit FFV1", "h264": "H.264 crf 18"}
PNP_VERSION = 1   # pnp_bm3d.py's defaults (c 0.5, 6 iterations, σ_k 0.05 → max(σ, 0.004)); bump when they change


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--svi", default=".build/release/svi")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--work", default=".cache/evaluation-realistic")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pnp", action="store_true",
                    help="also run PnP-BM3D (Scripts/python/pnp_bm3d.py; about 6 minutes a row on 2 cores), cached per row")
    ap.add_argument("--svi-only", action="store_true",
                    help="rerun svi's column alone (after a change of its defaults): CG, both ADMM-TV columns and PnP-BM3D "
                         "come from the record in --json, whose measurements are the same files (same seed); rows it lacks are run in full")
    ap.add_argument("--pnp-only", action="store_true",
                    help="add the PnP-BM3D column alone to rows of the record in --json (implies --pnp): every other column, svi's "
                         "included, comes from the record; the measurement file is made again (same seed) and checked by its σ")
    ap.add_argument("--json", default="evaluation/realistic.json")
    ap.add_argument("--report", default="evaluation/REALISTIC.md")
    args = ap.parse_args()
    if args.pnp_only:
        args.pnp = True
    svi = args.svi
    os.makedirs(args.work, exist_ok=True)
    log = open(os.path.join(args.work, "commands.log"), "a")
    results = {"machine": machine(svi), "seed": args.seed, "rows": {}}
    recorded, recorded_seed, reused, pnp_only_rows = {}, None, [], []
    if os.path.exists(args.json):
        old = json.load(open(args.json))
        if old.get("seed") == args.seed:
            results["rows"] = old.get("rows", {})
        if args.pnp_only:
            # Every other column is the record's: so is the machine they were run on.
            results["machine"] = old.get("machine", results["machine"])
            for k in ("svi_only_rows", "baselines_from", "pnp_only_rows", "pnp_machine"):
                if k in old: results[k] = old[k]
        if args.svi_only or args.pnp_only:
            recorded, recorded_seed = dict(old.get("rows", {})), old.get("seed")
            results["baselines_from"] = old.get("baselines_from") or old.get("machine", {}).get("cpu")
    for kind in args.kinds.split(","):
        ext, codec = MEASUREMENTS[kind]
        for clip in args.clips.split(","):
            file, frames, crop, size, about = CLIPS[clip]
            src = os.path.join(args.samples, file)
            sel = ["--frames", frames] + (["--crop", crop] if crop else []) + (["--size", size] if size else [])
            for task in args.tasks.split(","):
                spec, label = TASKS[task]
                w = os.path.join(args.work, f"{clip}-{task}-{kind}")
                os.makedirs(w, exist_ok=True)
                y = os.path.join(w, "y" + ext)
                for p in (y, y + ".json"):
                    if os.path.exists(p): os.remove(p)
                run([svi, "degrade", src, *sel, "-o", y, "--degradation", spec, "--seed", str(args.seed), *codec, "--overwrite", "--quiet"], log)
                ms, times = {}, {}

                def restore(name, *opts):
                    out = os.path.join(w, name + ".npy")
                    _, times[name] = run([svi, "restore", y, "-o", out, *opts, "--overwrite", "--quiet", "--report", out + ".json"], log)
                    ms[name] = score(svi, src, sel, out, log)
                    return out

                # CG and the oracle ADMM-TV do not depend on svi's defaults: kept per row
                # (w/baselines.json) so a rerun after a change of defaults redoes only the rest.
                cache = os.path.join(w, "baselines.json")
                cached = json.load(open(cache)) if os.path.exists(cache) else {}
                prior = recorded.get(f"{clip}/{task}/{kind}", {})
                if args.pnp_only and not (prior.get("spec") == spec and recorded_seed == args.seed and "svi" in prior.get("methods", {})):
                    sys.exit(f"evaluate: {clip}/{task}/{kind}: --pnp-only needs the row in {args.json}; run it without --pnp-only first")
                if args.pnp_only:
                    best = prior["tv_lambda"]
                    for k, v in prior["methods"].items():
                        ms[k] = {"mean_psnr": v["psnr"], "mean_ssim": v["ssim"], "frame_difference_error": v["frame_diff_err"]}
                        times[k] = v["seconds"]
                    # σ of the file as made now: it must be the record's, or the file is another one.
                    sigma = json.loads(run([svi, "noise", y, "--json"], log)[0].stdout)["effective"]
                    if abs(sigma - prior.get("noise_sigma", -2)) > 1e-6:
                        sys.exit(f"evaluate: {clip}/{task}/{kind}: the measurement's σ {sigma} differs from the record's "
                                 f"{prior.get('noise_sigma')}: not the same file; run without --pnp-only")
                    rep = {k: prior.get(k) for k in ("noise", "noise_sigma")}
                    rep["settings"] = prior.get("svi_settings")
                    # A row the record already scores with PnP-BM3D keeps that score (same file, same σ).
                    if "pnp-bm3d" not in ms:
                        pnp_only_rows.append(f"{clip}/{task}/{kind}")
                elif prior.get("spec") == spec and recorded_seed == args.seed and "admm-tv-default" in prior.get("methods", {}):
                    best = prior["tv_lambda"]
                    for k, v in prior["methods"].items():
                        if k == "svi": continue
                        ms[k] = {"mean_psnr": v["psnr"], "mean_ssim": v["ssim"], "frame_difference_error": v["frame_diff_err"]}
                        times[k] = v["seconds"]
                    restore("svi", "--seed", str(args.seed))
                    rep = json.load(open(os.path.join(w, "svi.npy.json")))
                    # The same file gives the same σ: a different one means another measurement,
                    # against which the recorded columns would not be fair.
                    if abs(rep.get("noise_sigma", -1) - prior.get("noise_sigma", -2)) > 1e-6:
                        sys.exit(f"evaluate: {clip}/{task}/{kind}: the measurement's σ {rep.get('noise_sigma')} differs from the record's "
                                 f"{prior.get('noise_sigma')}: not the same file; run without --svi-only")
                    reused.append(f"{clip}/{task}/{kind}")
                elif cached.get("spec") == spec and cached.get("seed") == args.seed:
                    best = cached["tv_lambda"]
                    for k in ("cg", "admm-tv"):
                        ms[k] = cached["scores"][k]; times[k] = cached["seconds"][k]
                else:
                    restore("cg", "--method", "cg")
                    sweep = {}
                    for lam in TV_LAMBDAS:
                        restore(f"tv-{lam}", "--method", "admm-tv", "--tv-lambda", str(lam))
                        sweep[lam] = ms.pop(f"tv-{lam}")
                    best = max(TV_LAMBDAS, key=lambda l: sweep[l]["mean_psnr"])
                    ms["admm-tv"] = sweep[best]; times["admm-tv"] = times[f"tv-{best}"]
                    with open(cache, "w") as f:
                        json.dump({"spec": spec, "seed": args.seed, "tv_lambda": best, "scores": {k: ms[k] for k in ("cg", "admm-tv")},
                                   "seconds": {k: times[k] for k in ("cg", "admm-tv")}}, f)
                if f"{clip}/{task}/{kind}" not in reused + pnp_only_rows:
                    restore("admm-tv-default", "--method", "admm-tv")
                    restore("svi", "--seed", str(args.seed))
                    rep = json.load(open(os.path.join(w, "svi.npy.json")))
                # PnP-BM3D, started from ADMM-TV at the oracle λ (the best classical start; it does
                # not depend on svi's defaults), at svi's σ; kept per row (w/pnp.json), run with --pnp.
                key = {"spec": spec, "seed": args.seed, "start_lambda": best, "sigma": rep.get("noise_sigma"), "version": PNP_VERSION}
                pc = os.path.join(w, "pnp.json")
                old = json.load(open(pc)) if os.path.exists(pc) else {}
                if "pnp-bm3d" in ms:
                    pass
                elif old.get("key") == key:
                    ms["pnp-bm3d"], times["pnp-bm3d"] = old["score"], old["seconds"]
                elif args.pnp:
                    tv_start = os.path.join(w, "pnp-start.npy")
                    run([svi, "restore", y, "-o", tv_start, "--method", "admm-tv", "--tv-lambda", str(best), "--overwrite", "--quiet"], log)
                    out = os.path.join(w, "pnp-bm3d.npy")
                    _, times["pnp-bm3d"] = run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pnp_bm3d.py"),
                                                "--svi", svi, "--measurement", y, "--start", tv_start, "--noise-sigma", str(rep["noise_sigma"]),
                                                "--out", out], log)
                    ms["pnp-bm3d"] = score(svi, src, sel, out, log)
                    with open(pc, "w") as f:
                        json.dump({"key": key, "score": ms["pnp-bm3d"], "seconds": times["pnp-bm3d"]}, f)
                row = {"clip": clip, "task": task, "kind": kind, "spec": spec, "label": label, "tv_lambda": best,
                       "noise": rep.get("noise"), "noise_sigma": rep.get("noise_sigma"), "svi_settings": rep.get("settings"),
                       "default_tv_lambda": prior.get("default_tv_lambda") if f"{clip}/{task}/{kind}" in reused + pnp_only_rows
                       else json.load(open(os.path.join(w, "admm-tv-default.npy.json"))).get("baseline", {}).get("lambda"),
                       "methods": {k: {"psnr": round(v["mean_psnr"], 3), "ssim": round(v["mean_ssim"], 4),
                                       "frame_diff_err": round(v["frame_difference_error"], 5),
                                       "seconds": round(times[k], 1)} for k, v in ms.items()}}
                results["rows"][f"{clip}/{task}/{kind}"] = row
                m = row["methods"]
                print(f"{KINDS[kind]:13s} {clip:9s} {label:24s} σ {row['noise_sigma']:.4f}  "
                      + "  ".join(f"{k} {v['psnr']:.2f}/{v['ssim']:.3f}/{v['frame_diff_err']:.4f}" for k, v in m.items()), flush=True)
                for f in os.listdir(w):
                    if f.startswith("tv-") and f.endswith(".npy"): os.remove(os.path.join(w, f))
                save_json(results, args.json)
    if pnp_only_rows:
        results["pnp_only_rows"] = sorted(set(results.get("pnp_only_rows", [])) | set(pnp_only_rows))
        m = machine(svi)
        results["pnp_machine"] = f"{m['cpu']} ({m['cores']} cores)"
        save_json(results, args.json)
    if reused:
        results["svi_only_rows"] = sorted(set(results.get("svi_only_rows", [])) | set(reused))
        save_json(results, args.json)
    write_report(results, args)


def save_json(results, path):
    """Writes the record under a temporary name and moves it into place (a killed run leaves the old one)."""
    with open(path + ".partial", "w") as f:
        json.dump(results, f, indent=1, ensure_ascii=False)
    os.replace(path + ".partial", path)


def write_report(results, args):
    m = results["machine"]
    rows = results["rows"]
    lines = ["# svi on measurements as footage arrives", "",
             f"Made by `Scripts/evaluate --realistic` on {m['cpu']} ({m['cores']} cores), svi {m['svi']}, seed {results['seed']}; "
             "svi's defaults (chosen on tuning clips; these clips were not used). The clips, frames and tasks are EVALUATION.md's, "
             "plus a Gaussian temporal blur with ×2 SR; the measurement is written by `svi degrade` to an **8-bit FFV1** file or "
             "to **H.264 --crf 18** (yuv420p), and every method restores from that file, as a user would.",
             "Each cell: PSNR dB / SSIM / frame-difference error (lower is steadier). *ADMM-TV (oracle)*: λ chosen per row on the "
             f"truth over {', '.join(map(str, TV_LAMBDAS))}. *ADMM-TV (svi's λ)*: ADMM-TV at its default λ for the "
             "measurement's effective σ (0.15·σ, falling off as σ³ below σ 0.01 to 0.0001, scaled by the spatial part: 1/s² for ×s SR, the kept share for inpainting, 1/σ_b² for blur) — the estimate svi's warm start noises and refines. "
             "*PnP-BM3D* (where run, `--pnp`): half-quadratic splitting with BM3D per frame (PyPI `bm3d`) as the denoiser, started from the "
             "oracle ADMM-TV estimate, at svi's σ (Scripts/python/pnp_bm3d.py; its schedule is not tuned yet). σ: the effective noise svi found "
             "(`svi noise`: quantisation, H.264's quantiser, the data's MAD)."
             + (f" **svi's column was rerun alone** (`--svi-only`, after a change of its defaults) on {len(results['svi_only_rows'])} rows; "
                f"their other columns come from the run before on {results.get('baselines_from')} — they do not depend on svi's sampler, "
                "and the measurement files are the same (same seed); wall times are not comparable across the two machines."
                if results.get("svi_only_rows") else "")
             + (f" **PnP-BM3D was added alone** (`--pnp-only`) on {len(results['pnp_only_rows'])} rows, on {results.get('pnp_machine')}: "
                "every other column of those rows is the record's, from the same measurement files (checked by σ)."
                if results.get("pnp_only_rows") else ""), ""]
    for kind, kname in KINDS.items():
        sub = [r for r in rows.values() if r["kind"] == kind]
        if not sub:
            continue
        lines += [f"## {kname}", "",
                  "| clip | task | σ | CG alone | ADMM-TV (oracle) | ADMM-TV (svi's λ) | PnP-BM3D | svi | svi − oracle TV (dB / SSIM) | svi − its start (dB) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(sub, key=lambda r: (list(CLIPS).index(r["clip"]), list(TASKS).index(r["task"]))):
            ms = r["methods"]
            cell = lambda k: f"{ms[k]['psnr']:.2f} / {ms[k]['ssim']:.3f} / {ms[k]['frame_diff_err']:.4f}" if k in ms else "—"
            sv, tv, start = ms["svi"], ms["admm-tv"], ms["admm-tv-default"]
            lines.append(f"| {r['clip']} | {r['label']} | {r['noise_sigma']:.4f} | {cell('cg')} | {cell('admm-tv')} (λ {r['tv_lambda']}) | "
                         f"{cell('admm-tv-default')} | {cell('pnp-bm3d')} | **{cell('svi')}** | {sv['psnr'] - tv['psnr']:+.2f} / {sv['ssim'] - tv['ssim']:+.4f} | "
                         f"{sv['psnr'] - start['psnr']:+.2f} |")
        paper = [r for r in sub if r["task"] in PAPER_TASKS]
        p_ok = [r for r in paper if r["methods"]["svi"]["psnr"] >= r["methods"]["admm-tv"]["psnr"]]
        s_ok = [r for r in paper if r["methods"]["svi"]["ssim"] >= r["methods"]["admm-tv"]["ssim"]]
        best = lambda r: max(v["psnr"] for k, v in r["methods"].items() if k in ("cg", "admm-tv", "pnp-bm3d"))
        far = [r for r in sub if r["methods"]["svi"]["psnr"] < best(r) - 0.3]
        pnp = [r for r in sub if "pnp-bm3d" in r["methods"]]
        pnp_ahead = [r for r in pnp if r["methods"]["pnp-bm3d"]["psnr"] > r["methods"]["svi"]["psnr"]]
        shaky = [r for r in sub if r["methods"]["svi"]["frame_diff_err"] > r["methods"]["admm-tv"]["frame_diff_err"]]
        below = [r for r in sub if r["methods"]["svi"]["psnr"] < r["methods"]["admm-tv-default"]["psnr"] - 0.1]
        name = lambda rs: ", ".join(f"{r['clip']} {r['label']}" for r in rs)
        lines += ["",
                  f"* svi ≥ oracle ADMM-TV in PSNR on **{len(p_ok)} of {len(paper)}** paper clip-tasks (target ≥ 9)"
                  + (f"; below on {name([r for r in paper if r not in p_ok])}" if len(p_ok) < len(paper) else "") + ".",
                  f"* svi ≥ oracle ADMM-TV in SSIM on **{len(s_ok)} of {len(paper)}** (target ≥ 8)"
                  + (f"; below on {name([r for r in paper if r not in s_ok])}" if len(s_ok) < len(paper) else "") + ".",
                  f"* More than 0.3 dB below the best of CG, oracle ADMM-TV{' and PnP-BM3D' if pnp else ''} on **{len(far)} of {len(sub)}** rows (target 0)"
                  + (f": {name(far)}" if far else "") + ".",
                  f"* Frame-difference error above oracle ADMM-TV's on **{len(shaky)} of {len(sub)}** rows (target 0)"
                  + (f": {name(shaky)}" if shaky else "") + ".",
                  f"* More than 0.1 dB below the ADMM-TV estimate it starts from on **{len(below)} of {len(sub)}** rows (target 0)"
                  + (f": {name(below)}" if below else "") + "."]
        if pnp:
            lines.append(f"* PnP-BM3D was run on {len(pnp)} of {len(sub)} rows; ahead of svi in PSNR on **{len(pnp_ahead)}**"
                         + (": " + ", ".join(f"{r['clip']} {r['label']} by {r['methods']['pnp-bm3d']['psnr'] - r['methods']['svi']['psnr']:.2f} dB"
                                             for r in pnp_ahead) if pnp_ahead else "") + ".")
        lines.append("")
    write_markdown(args.report, lines, os.path.join(os.path.dirname(os.path.abspath(args.report)), "REALISTIC-NOTES.md"))
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
