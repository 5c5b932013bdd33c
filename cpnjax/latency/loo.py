"""Leave-one-device-out evaluation of the latency predictor (host-only driver).

Every device of the table in turn is the *new* device: a base model is trained without it, it
joins with N measurements (HELP's 10 reference architectures plus N - 10 random others, seeded),
and every method is scored on all of its other architectures, as in table 5.

What is shared, and why it does not leak: devices are split into `folds` groups, stratified by
device class (round-robin over the devices sorted by class, so that the classes spread over the
groups). One base model is trained per group, on the fully measured devices that are neither in
the group nor validation devices; the validation devices are re-chosen for the group (a
validation device in the group is replaced by another device of its class outside the group), so
none of them is a new device either. A device's base model has therefore never seen any of its
measurements; the methods then fit on its N measurements alone. By default there is one group
per device (a base trains in about 4 s, so sharing is not needed to stay within minutes); fewer
groups share a base between devices and hold more devices out of each base.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from cpnjax.latency.model import VALIDATION_DEVICES, TrainConfig, measured_archs, train_base
from cpnjax.latency.table import LOO_CLASSES, LatencyTable, device_class, load_latency_table
from cpnjax.latency.table5 import metrics, predict_methods

METHODS = ("TSFT", "base", "FLOPs", "Layer-wise")
SIMPLE_FITS = ("FLOPs", "Layer-wise")
TIE = 0.005
"""Spearman differences within this count as ties (the issue's tolerance)."""


def fully_measured_devices(table: LatencyTable) -> tuple[str, ...]:
    """Devices with a measurement of every architecture (the 27 HELP devices)."""
    full = np.isfinite(table.latency_ms).all(axis=0)
    return tuple(str(d) for d in table.devices[full])


def device_folds(devices, folds: int) -> list[tuple[str, ...]]:
    """`folds` groups of devices, stratified by class (round-robin over class-sorted devices)."""
    devices = list(dict.fromkeys(devices))
    if not 1 <= folds <= len(devices):
        raise ValueError(f"folds must be in 1..{len(devices)} (the devices), got {folds}")
    order = sorted(devices, key=lambda d: (LOO_CLASSES.index(device_class(d)), d))
    return [tuple(d for i, d in enumerate(order) if i % folds == k) for k in range(folds)]


def validation_devices_for(held_out, candidates) -> tuple[str, ...]:
    """VALIDATION_DEVICES, with each one in `held_out` replaced by the first device of its class
    among `candidates` that is neither held out nor already a validation device."""
    held_out, chosen = set(held_out), []
    for v in VALIDATION_DEVICES:
        if v in held_out:
            spare = [
                d
                for d in candidates
                if device_class(d) == device_class(v)
                and d not in held_out
                and d not in VALIDATION_DEVICES
                and d not in chosen
            ]
            if not spare:
                raise ValueError(f"no device of class {device_class(v)!r} left to validate on")
            v = spare[0]
        chosen.append(v)
    return tuple(chosen)


def base_devices_for(table: LatencyTable, held_out) -> tuple[str, ...]:
    """The devices a held-out group's base model trains on."""
    pool = fully_measured_devices(table)
    skip = set(held_out) | set(validation_devices_for(held_out, pool))
    return tuple(d for d in pool if d not in skip)


def run_loo(
    devices=None,
    samples=(10,),
    seed: int = 0,
    folds: int | None = None,
    config: TrainConfig | None = None,
    progress=None,
) -> tuple[list[dict], dict]:
    """Rows (method, device, device_class, samples, fold, mse, spearman, mape, within10, and for
    TSFT its cross-validated confidence cv_r2 and residual_share; NaN for the others) and info.

    Args:
      devices: the devices to hold out in turn (default: every fully measured device).
      folds: groups of held-out devices, one base model each (default: one per device).
      progress: called as progress(device, n, done, total) after each device and N.
    """
    table = load_latency_table()
    config = config or TrainConfig()
    devices = tuple(dict.fromkeys(devices or fully_measured_devices(table)))
    for d in devices:
        for n in samples:
            measured_archs(d, n, seed)  # unknown device, bad N -> ValueError before training
    groups = device_folds(devices, folds or len(devices))
    rows, info = [], {"folds": [], "base_train_s": []}
    total, done = len(devices) * len(samples), 0
    for k, group in enumerate(groups):
        train = base_devices_for(table, group)
        t0 = time.perf_counter()
        base = train_base(table, train, seed, config)
        info["base_train_s"].append(time.perf_counter() - t0)
        info["folds"].append({"held_out": list(group), "base_devices": list(train)})
        for d in group:
            col = table.column_ms(d).astype(np.float64)
            for n in samples:
                arch = measured_archs(d, n, seed)
                rest = np.setdiff1d(np.flatnonzero(np.isfinite(col)), arch)
                preds, tsft = predict_methods(base, d, arch, rest, seed)
                for method, (pred, _) in preds.items():
                    head = {"method": method, "device": d, "device_class": device_class(d)}
                    row = {**head, "samples": n, "fold": k, **metrics(pred, col[rest])}
                    own = method == "TSFT"  # its confidence and share; NaN for the others
                    row["cv_r2"] = tsft.confidence.cv_r2 if own else float("nan")
                    row["residual_share"] = tsft.profile.residual_share if own else float("nan")
                    rows.append(row)
                done += 1
                if progress:
                    progress(d, n, done, total)
    return rows, info


def _by(rows):
    return {(r["method"], r["device"], r["samples"]): r for r in rows}


def verdicts(rows: list[dict]) -> list[dict]:
    """Per device and N: TSFT's Spearman against the best simple fit, and whether it is at least
    as good as each simple fit (ties within TIE)."""
    by, out = _by(rows), []
    for d, n in dict.fromkeys((r["device"], r["samples"]) for r in rows):
        tsft = by[("TSFT", d, n)]["spearman"]
        simple = {m: by[(m, d, n)]["spearman"] for m in SIMPLE_FITS}
        best = max(simple, key=simple.get)
        out.append({
            "device": d,
            "device_class": device_class(d),
            "samples": n,
            "tsft_spearman": tsft,
            "best_simple_fit": best,
            "best_simple_spearman": simple[best],
            "holds": all(tsft >= s - TIE for s in simple.values()),
        })  # fmt: skip
    return out


def markdown(rows: list[dict], seed: int) -> str:
    """Per device (Spearman and MSE of every method) and per device class, for each N."""
    by = _by(rows)
    verdict = {(v["device"], v["samples"]): v for v in verdicts(rows)}
    lines = [f"# Leave-one-device-out latency prediction (seed {seed})", ""]
    lines += [
        "Each device in turn is new: its base model never saw it, every method fits on its N",
        "measurements and is scored on all its other architectures. Spearman rho (MSE of",
        f"min-max-normalised latency). `holds`: TSFT >= FLOPs and >= Layer-wise (ties {TIE}).",
    ]
    for n in sorted({r["samples"] for r in rows}):
        devices = [d for (m, d, s) in by if m == "TSFT" and s == n]
        lines += ["", f"## N = {n}", ""]
        lines += ["| device | class | " + " | ".join(METHODS) + " | holds |"]
        lines += ["|" + "---|" * (len(METHODS) + 3)]
        for d in devices:
            cells = " | ".join(
                f"{by[(m, d, n)]['spearman']:.3f} ({by[(m, d, n)]['mse']:.1e})" for m in METHODS
            )
            ok = "yes" if verdict[(d, n)]["holds"] else "**no**"
            lines.append(f"| {d} | {device_class(d)} | {cells} | {ok} |")
        lines += ["", "| class | devices | " + " | ".join(METHODS) + " | holds |"]
        lines += ["|" + "---|" * (len(METHODS) + 3)]
        groups = [(c, [d for d in devices if device_class(d) == c]) for c in LOO_CLASSES]
        for name, members in [*groups, ("all", devices)]:
            if not members:
                continue
            means = " | ".join(
                f"{np.mean([by[(m, d, n)]['spearman'] for d in members]):.3f}"
                f" ({np.mean([by[(m, d, n)]['mse'] for d in members]):.1e})"
                for m in METHODS
            )
            held = sum(verdict[(d, n)]["holds"] for d in members)
            lines.append(f"| {name} | {len(members)} | {means} | {held}/{len(members)} |")
        cv = [by[("TSFT", d, n)]["cv_r2"] for d in devices]
        rho = [by[("TSFT", d, n)]["spearman"] for d in devices]
        if len(devices) > 2:
            agree = spearmanr(cv, rho)[0]
            low = min(zip(cv, devices, strict=True))
            lines += [
                "",
                "Does TSFT's confidence tell how good it is? Over the devices, the rank correlation"
                " of its cross-validated R^2 (from the N measurements alone) with its Spearman on"
                f" the unmeasured architectures is {agree:.2f}; least confident: {low[1]}"
                f" (R^2 {low[0]:.2f}).",
            ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """TSFT's Spearman against the best simple fit's, one point per device and N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cpnjax.io import atomic_figure

    vs = verdicts(rows)
    ns = sorted({v["samples"] for v in vs})
    fig, axes = plt.subplots(1, len(ns), figsize=(4.6 * len(ns), 4.4), squeeze=False)
    colors = dict(zip(LOO_CLASSES, ("tab:green", "tab:blue", "tab:orange", "tab:red"), strict=True))
    for ax, n in zip(axes[0], ns, strict=True):
        sel = [v for v in vs if v["samples"] == n]
        x = np.array([v["best_simple_spearman"] for v in sel])
        y = np.array([v["tsft_spearman"] for v in sel])
        lo = min(x.min(), y.min()) - 0.01
        ax.plot([lo, 1], [lo, 1], color="grey", lw=1)
        ax.fill_between([lo, 1], [lo - TIE, 1 - TIE], [lo, 1], color="grey", alpha=0.15, lw=0)
        for c in LOO_CLASSES:
            pts = [(a, b) for a, b, v in zip(x, y, sel, strict=True) if v["device_class"] == c]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=22, color=colors[c], label=c)
        for a, b, v in zip(x, y, sel, strict=True):
            if not v["holds"]:
                ax.annotate(v["device"], (a, b), fontsize=7, xytext=(3, -8),
                            textcoords="offset points")  # fmt: skip
        ax.set_xlim(lo, 1.0), ax.set_ylim(lo, 1.0)
        ax.set_xlabel("best of FLOPs and Layer-wise fit (Spearman)")
        ax.set_ylabel("TSFT (Spearman)")
        held = sum(v["holds"] for v in sel)
        ax.set_title(f"N = {n}: TSFT holds on {held}/{len(sel)}, mean {y.mean():.3f}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_figure(fig, path, dpi=130)
    plt.close(fig)


def write_loo(rows: list[dict], info: dict, out_dir: Path, config: dict) -> None:
    """loo.csv, loo.md, verdicts.csv, tsft_vs_simple.png and config.json into `out_dir`."""
    from cpnjax.io import atomic_csv, atomic_text, package_versions

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_csv(out_dir / "loo.csv", rows)
    atomic_csv(out_dir / "verdicts.csv", verdicts(rows))
    atomic_text(out_dir / "loo.md", markdown(rows, config["seed"]))
    meta = {**config, **info, "versions": package_versions()}
    atomic_text(out_dir / "config.json", json.dumps(meta, indent=2, default=list) + "\n")
    plot(rows, out_dir / "tsft_vs_simple.png")
