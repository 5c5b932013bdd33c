"""Paper tables 5-6: latency prediction on new devices from N measurements (host-only driver).

For each new device and each N: the device's N measurements are HELP's 10 reference
architectures plus N - 10 random others (seeded); every method fits on those N and is scored
on all other architectures of the device. The base model is trained once on the training
devices with every named new device excluded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from cpnjax.latency.baselines import BrpNasFit, FlopsFit, LayerwiseFit
from cpnjax.latency.model import (
    NEW_DEVICES,
    TrainConfig,
    adapt,
    measured_archs,
    profile_of,
    train_base,
    train_devices,
)
from cpnjax.latency.table import load_latency_table

PAPER_TABLE5_MSE = {
    "FLOPs": (0.083, 0.069, 0.106, 0.051, 0.14, 0.0898),
    "Layer-wise": (0.058, 0.072, 0.064, 0.251, 0.094, 0.1078),
    "BRP-NAS": (0.0061, 0.0023, 0.0012, 0.0146, 0.0014, 0.00512),
    "base": (0.011, 0.006, 0.006, 0.020, 0.066, 0.0218),
    "TSFT": (0.0005, 0.0015, 0.0016, 0.0093, 0.0023, 0.00304),
}
"""Paper table 5 (N = 50): MSE per device in NEW_DEVICES order, then the average."""
PAPER_TABLE6_S = {"BRP-NAS": 3930.016, "TSFT": 8.656}
METHODS = ("TSFT", "base", "FLOPs", "Layer-wise", "BRP-NAS")
TIMED = ("TSFT", "BRP-NAS")  # methods that train (the others are a closed-form fit or none)


def metrics(pred_ms: np.ndarray, true_ms: np.ndarray) -> dict:
    """MSE of min-max-normalised latency (by the device's true range; the paper's metric),
    Spearman rho, MAPE and the share of predictions within +-10%."""
    lo, hi = float(true_ms.min()), float(true_ms.max())
    rel = np.abs(pred_ms - true_ms) / true_ms
    return {
        "mse": float(np.mean(((pred_ms - true_ms) / (hi - lo)) ** 2)),
        "spearman": float(spearmanr(pred_ms, true_ms)[0]),
        "mape": float(rel.mean()),
        "within10": float((rel <= 0.1).mean()),
    }


def predict_methods(base, device: str, arch: np.ndarray, rest: np.ndarray, seed: int):
    """TSFT, the base model and the FLOPs and layer-wise fits, each fitted on a device's measured
    architectures `arch`, predicting the architectures `rest`.

    Returns ({method: ((len(rest),) predicted ms, fit seconds)}, the TSFT predictor).
    """
    table = load_latency_table()
    col = table.column_ms(device).astype(np.float64)
    tsft = adapt(base, arch, col[arch], seed)
    preds = {
        "TSFT": (tsft.predict_ms(rest), tsft.finetune_s),
        "base": (base.predict_ms(rest, profile_of(table, device)), 0.0),
    }
    for name, fit in (("FLOPs", FlopsFit), ("Layer-wise", LayerwiseFit)):
        t0 = time.perf_counter()
        f = fit(arch, col[arch])
        preds[name] = (f.predict_ms(rest), time.perf_counter() - t0)
    return preds, tsft


def run_table5(
    new_devices=NEW_DEVICES,
    samples=(10, 20, 50, 100),
    seed: int = 0,
    config: TrainConfig | None = None,
    brp_samples: int = 900,
    progress=None,
) -> tuple[list[dict], dict]:
    """Rows (method, device, samples, mse, spearman, mape, within10, finetune_s) and info.

    BRP-NAS is trained once per device on `brp_samples` measurements (its authors' 900;
    0 skips it); its `finetune_s` is its training wall time, compile excluded.
    """
    table = load_latency_table()
    config = config or TrainConfig()
    for d in new_devices:
        for n in (*samples, *([brp_samples] if brp_samples else [])):
            measured_archs(d, n, seed)  # unknown device, bad N -> ValueError before training
    t0 = time.perf_counter()
    base = train_base(table, train_devices(table, exclude=new_devices), seed, config)
    info = {
        "base_train_s": time.perf_counter() - t0,
        "train_devices": train_devices(table, new_devices),
    }
    rows = []
    for n in samples:
        # Warm-up: compile the fine-tuning for this N on other measurements (not scored).
        warm = measured_archs(str(new_devices[0]), n, seed + 1)
        t0 = time.perf_counter()
        adapt(base, warm, table.column_ms(new_devices[0])[warm], seed)
        info[f"tsft_compile_s_n{n}"] = time.perf_counter() - t0
        for d in new_devices:
            arch = measured_archs(d, n, seed)
            col = table.column_ms(d).astype(np.float64)
            rest = np.setdiff1d(np.flatnonzero(np.isfinite(col)), arch)
            preds, _ = predict_methods(base, d, arch, rest, seed)
            for method, (pred, seconds) in preds.items():
                row = {"method": method, "device": d, "samples": n, **metrics(pred, col[rest])}
                rows.append({**row, "finetune_s": seconds})
            if progress:
                progress(d, n)
    for d in new_devices if brp_samples else ():
        arch = measured_archs(d, brp_samples, seed)
        col = table.column_ms(d).astype(np.float64)
        rest = np.setdiff1d(np.flatnonzero(np.isfinite(col)), arch)
        fit = BrpNasFit(arch, col[arch], seed)
        row = {"method": "BRP-NAS", "device": d, "samples": brp_samples}
        rows.append({**row, **metrics(fit.predict_ms(rest), col[rest]), "finetune_s": fit.train_s})
        info[f"brpnas_compile_s_{d}"] = fit.compile_s
        if progress:
            progress(d, brp_samples)
    return rows, info


def markdown(rows: list[dict], new_devices, seed: int) -> str:
    """Our table 5 (per N) next to the paper's (N = 50), and table 6 (fine-tuning seconds)."""
    devices = list(new_devices)
    lines = [f"# Latency prediction on new devices (seed {seed})", ""]
    lines += ["MSE of min-max-normalised latency on every architecture not measured; mean over"]
    lines += ["devices in the last columns. Paper values: table 5, N = 50.", ""]
    head = "| method | N | " + " | ".join(devices) + " | mean MSE | mean Spearman |"
    lines += [head, "|" + "---|" * (len(devices) + 4)]
    by = {(r["method"], r["device"], r["samples"]): r for r in rows}
    for n in sorted({r["samples"] for r in rows}):
        for m in METHODS:
            if (m, devices[0], n) not in by:
                continue
            vals = [by[(m, d, n)] for d in devices]
            cells = " | ".join(f"{v['mse']:.1e}" for v in vals)
            mse, rho = np.mean([v["mse"] for v in vals]), np.mean([v["spearman"] for v in vals])
            lines.append(f"| {m} | {n} | {cells} | {mse:.5f} | {rho:.3f} |")
    if devices == list(NEW_DEVICES):
        for m, vals in PAPER_TABLE5_MSE.items():
            cells = " | ".join(f"{v:g}" for v in vals[:-1])
            lines.append(f"| paper {m} | 50 | {cells} | {vals[-1]:g} | |")
    lines += ["", "Fine-tuning / training wall time (s, compile excluded) per device:", ""]
    lines += ["| method | N | " + " | ".join(devices) + " | mean |"]
    lines += ["|" + "---|" * (len(devices) + 3)]
    for m, n in sorted({(r["method"], r["samples"]) for r in rows if r["method"] in TIMED}):
        vals = [by[(m, d, n)]["finetune_s"] for d in devices]
        cells = " | ".join(f"{v:.2f}" for v in vals)
        lines.append(f"| {m} | {n} | {cells} | {np.mean(vals):.2f} |")
    paper = PAPER_TABLE6_S
    lines += ["", f"Paper table 6 (mean): TSFT {paper['TSFT']} s, BRP-NAS {paper['BRP-NAS']} s."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Mean Spearman over devices against N, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for m in METHODS:
        ns = sorted({r["samples"] for r in rows if r["method"] == m})
        rho = [
            np.mean([r["spearman"] for r in rows if r["method"] == m and r["samples"] == n])
            for n in ns
        ]
        if ns:
            ax.plot(ns, rho, marker="o", label=m if len(ns) > 1 else f"{m}, N = {ns[0]}")
    ax.axhline(0.932, color="grey", ls=":", lw=1, label="HELP, N = 10")
    ax.set_xscale("log")
    ax.set_xlabel("measurements on the new device (N)")
    ax.set_ylabel("mean Spearman rho")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def write_table5(rows: list[dict], info: dict, out_dir: Path, config: dict) -> None:
    from cpnjax.io import atomic_csv, atomic_text

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_csv(out_dir / "table5.csv", rows)
    atomic_text(out_dir / "table5.md", markdown(rows, config["new_devices"], config["seed"]))
    atomic_text(out_dir / "config.json", json.dumps({**config, **info}, indent=2, default=list))
    tmp = out_dir / ".spearman.tmp.png"
    plot(rows, tmp)
    tmp.replace(out_dir / "spearman_vs_samples.png")
