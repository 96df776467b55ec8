#!/usr/bin/env python3
"""Turn retcl-bench JSON files into PNG figures.

    python3 bench/plot.py bench/results/*.json --out docs/figures/ \
        [--markdown tables.md]

One line per device (per JSON file) and series. Figures, each written only
when some file has the records it needs:

  decode_latency.png      decode step latency vs context (batch 1), RetNet
                          and the Transformer baseline; bars span min..max
  decode_memory.png       memory held to decode (weights + state / KV cache)
                          vs context, batch 1, and the target point
  decode_throughput.png   decode tokens/s vs batch at the batch-sweep context
  prefill_time.png        prefill time vs T: parallel, chunkwise, baseline
  prefill_memory.png      prefill peak device memory vs T
  kernels_gflops.png      retention GFLOP/s vs T per algorithm, one panel per
                          head shape, with the CLBlast SGEMM yardstick line
                          (the T series; the kernels suite's batch and state
                          sweeps are in the --markdown tables)
  train.png               train suite: tokens/s of a training step and its
                          peak device memory vs T, parallel and chunkwise,
                          with and without recomputation (the retention
                          backward alone is in the --markdown tables)

The JSON schema is docs/bench-json.md. Only matplotlib is needed; the
library itself never depends on Python.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

MIB = 1024.0 * 1024.0
MODEL_STYLE = {
    ("retnet", "recurrent"): ("RetNet", "tab:blue"),
    ("retnet", "chunkwise"): ("RetNet chunkwise", "tab:blue"),
    ("retnet", "parallel"): ("RetNet parallel", "tab:green"),
    ("transformer", None): ("Transformer", "tab:red"),
}
ALGO_COLOR = {"parallel": "tab:green", "recurrent": "tab:orange",
              "chunkwise": "tab:blue"}
DEVICE_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
DEVICE_LINES = ["-", "--", ":", "-."]


def load(paths):
    """One entry per device: files of the same device are merged suite by
    suite (say one file per suite). A suite already given for that device
    by an earlier file is ignored, with a note: one measurement per suite
    and device is what the figures show."""
    merged = {}
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        if d.get("schema", "").split("/")[0] != "retcl-bench":
            sys.exit(f"{p}: not a retcl-bench file (schema {d.get('schema')})")
        dev = d["device"]
        key = (dev.get("platform"), dev.get("name"), dev.get("driver"))
        if key not in merged:
            merged[key] = dict(d, results=list(d["results"]),
                               checks=list(d.get("checks", [])),
                               _suites={r["suite"]: p for r in d["results"]})
            continue
        m = merged[key]
        for suite in sorted({r["suite"] for r in d["results"]}):
            if suite in m["_suites"]:
                print(f"note: {p}: {suite} of this device already given by "
                      f"{m['_suites'][suite]}; ignored")
                continue
            m["_suites"][suite] = p
            m["results"].extend(r for r in d["results"] if r["suite"] == suite)
            # the kernels plot reads its yardsticks from the kernels run
            if suite == "kernels":
                m["yardsticks"] = d["yardsticks"]
        # a check is measured by the file that ran its suite: keep that one
        for c in d.get("checks", []):
            old = [i for i, o in enumerate(m["checks"])
                   if o["name"] == c["name"]]
            if not old:
                m["checks"].append(c)
            elif m["checks"][old[0]]["value"] is None:
                m["checks"][old[0]] = c
    return [(short_device(d), d) for d in merged.values()]


def short_device(d):
    dev = d["device"]
    name = dev.get("name") or "?"
    if dev.get("platform", "").startswith("Portable"):
        name = "PoCL " + name.replace("pthread-", "")
    return name if len(name) <= 40 else name[:37] + "..."


def ok(records, **match):
    """Records with status ok whose fields equal every given value."""
    out = []
    for r in records:
        if r.get("status") != "ok":
            continue
        if all(r.get(k) == v for k, v in match.items()):
            out.append(r)
    return out


def model_key(r):
    if r["model"] == "transformer":
        return ("transformer", None)
    return (r["model"], r.get("algorithm"))


def style(multi, di):
    return dict(marker=DEVICE_MARKERS[di % len(DEVICE_MARKERS)],
                linestyle=DEVICE_LINES[di % len(DEVICE_LINES)] if multi else "-")


def series_label(base, dev, multi):
    return f"{base} ({dev})" if multi else base


def errbars(ax, xs, rs, color, label, st, scale=1.0):
    med = [r["median_ms"] * scale for r in rs]
    lo = [(r["median_ms"] - r["min_ms"]) * scale for r in rs]
    hi = [(r["max_ms"] - r["median_ms"]) * scale for r in rs]
    ax.errorbar(xs, med, yerr=[lo, hi], color=color, label=label, capsize=3,
                **st)


def log2_axis(ax):
    """Log-2 x axis labelled with plain numbers (512, not 2^9)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def save(fig, out, name):
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print("wrote", path)


def finish(fig, ax, out, name, title):
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, name)


def model_caption(runs):
    m = runs[0][1].get("model", {})
    return (f"d {m.get('embed_dim')}, H {m.get('heads')}, L {m.get('layers')}, "
            f"ffn {m.get('ffn_dim')}, fp32")


def series(recs, keys, x):
    """(model key, its records sorted by field x) for each key that has
    records, in the order of keys."""
    for key in keys:
        rs = sorted([r for r in recs if model_key(r) == key],
                    key=lambda r: r[x])
        if rs:
            yield key, rs


def decode_series(d, sweep, x):
    """RetNet and the baseline in one decode sweep (the context sweep:
    batch 1), sorted by field x."""
    match = dict(suite="decode", sweep=sweep)
    if sweep == "context":
        match["B"] = 1
    return series(ok(d["results"], **match),
                  [("retnet", "recurrent"), ("transformer", None)], x)


def draw_times(ax, runs, series_of, x, scale=1.0):
    """Median time (min..max bars) against field x of every series of every
    run; whether anything was drawn."""
    multi = len(runs) > 1
    drawn = False
    for di, (dev, d) in enumerate(runs):
        for key, rs in series_of(d):
            base, color = MODEL_STYLE[key]
            errbars(ax, [r[x] for r in rs], rs, color,
                    series_label(base, dev, multi), style(multi, di),
                    scale=scale)
            drawn = True
    return drawn


def draw_memory(ax, runs, series_of, x):
    """Total memory held (MiB) against field x of every series of every run;
    whether anything was drawn."""
    multi = len(runs) > 1
    drawn = False
    for di, (dev, d) in enumerate(runs):
        for key, rs in series_of(d):
            base, color = MODEL_STYLE[key]
            ax.plot([r[x] for r in rs],
                    [r["memory"]["total_bytes"] / MIB for r in rs], color=color,
                    label=series_label(base, dev, multi), **style(multi, di))
            drawn = True
    return drawn


def decode_context_series(d):
    return decode_series(d, "context", "context")


def plot_decode_latency(runs, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if not draw_times(ax, runs, decode_context_series, "context"):
        plt.close(fig)
        return
    log2_axis(ax)
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel("ms per decode step (batch 1)")
    ax.set_ylim(bottom=0)
    finish(fig, ax, out, "decode_latency.png",
           f"Decode latency vs context ({model_caption(runs)})")


def plot_decode_memory(runs, out):
    """Left: batch 1 against the context. Right: the target point (batch
    > 1) as stacked bars, weights under state / KV cache."""
    multi = len(runs) > 1
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.5),
                                 gridspec_kw={"width_ratios": [3, 2]})
    drawn = draw_memory(ax, runs, decode_context_series, "context")
    bars = []
    for dev, d in runs:
        for r in sorted(ok(d["results"], suite="decode", sweep="target"),
                        key=lambda r: r["model"] != "retnet"):
            bars.append((dev, r))
    if not drawn and not bars:
        plt.close(fig)
        return
    # linear axes: a linear growth is a straight line
    ax.set_xlim(left=0)
    ax.set_xlabel("context (tokens), batch 1")
    ax.set_ylabel("MiB held: weights + state / KV cache")
    ax.set_ylim(bottom=0)
    ax.set_title("Decode memory vs context")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if bars:
        xs = range(len(bars))
        w = [r["memory"]["weights_bytes"] / MIB for _, r in bars]
        c = [r["memory"]["cache_bytes"] / MIB for _, r in bars]
        colors = [MODEL_STYLE[model_key(r)][1] for _, r in bars]
        bx.bar(xs, w, color="lightgray", edgecolor="black", label="weights")
        bx.bar(xs, c, bottom=w, color=colors, edgecolor="black",
               label="state (RetNet) / KV cache")
        for x, (dev, r) in zip(xs, bars):
            tot = r["memory"]["total_bytes"] / MIB
            bx.text(x, tot, f"{tot:.0f}" if tot >= 10 else f"{tot:.2g}", ha="center", va="bottom", fontsize=8)
        bx.set_xticks(list(xs))
        bx.set_xticklabels([MODEL_STYLE[model_key(r)][0] +
                            (f"\n{dev}" if multi else "") for dev, r in bars],
                           fontsize=8)
        r0 = bars[0][1]
        bx.set_title(f"context {r0['context']}, batch {r0['B']}")
        bx.set_ylabel("MiB")
        # headroom above the tallest bar for the legend and the labels
        bx.set_ylim(0, 1.3 * max(a + b for a, b in zip(w, c)))
        bx.legend(fontsize=8, loc="upper left")
        bx.grid(True, axis="y", alpha=0.3)
    else:
        bx.set_visible(False)
    fig.suptitle("Device memory each model holds to decode (buffers as "
                 "allocated)")
    save(fig, out, "decode_memory.png")


def plot_decode_throughput(runs, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    multi = len(runs) > 1
    drawn = False
    ctxs = set()
    for di, (dev, d) in enumerate(runs):
        for key, rs in decode_series(d, "batch", "B"):
            ctxs.update(r["context"] for r in rs)
            base, color = MODEL_STYLE[key]
            ax.plot([r["B"] for r in rs], [r["tokens_per_s"] for r in rs],
                    color=color, label=series_label(base, dev, multi),
                    **style(multi, di))
            drawn = True
        for r in ok(d["results"], suite="decode", sweep="target"):
            base, color = MODEL_STYLE[model_key(r)]
            ax.plot([r["B"]], [r["tokens_per_s"]], color=color, marker="*",
                    markersize=12, linestyle="none",
                    label=series_label(f"{base}, context {r['context']}", dev,
                                       multi))
    if not drawn:
        plt.close(fig)
        return
    log2_axis(ax)
    ax.set_xlabel("batch (sequences decoded together)")
    ax.set_ylabel("tokens/s")
    ax.set_ylim(bottom=0)
    c = ", ".join(str(x) for x in sorted(ctxs))
    finish(fig, ax, out, "decode_throughput.png",
           f"Decode throughput vs batch (lines: context {c})")


def prefill_series(d):
    return series(ok(d["results"], suite="prefill"),
                  [("retnet", "chunkwise"), ("retnet", "parallel"),
                   ("transformer", None)], "T")


def plot_prefill_time(runs, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if not draw_times(ax, runs, prefill_series, "T", scale=1e-3):
        plt.close(fig)
        return
    log2_axis(ax)
    ax.set_yscale("log")
    ax.set_xlabel("prompt length T (tokens, batch 1)")
    ax.set_ylabel("prefill time (s)")
    finish(fig, ax, out, "prefill_time.png",
           f"Prefill time vs T ({model_caption(runs)})")


def plot_prefill_memory(runs, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if not draw_memory(ax, runs, prefill_series, "T"):
        plt.close(fig)
        return
    # linear axes: linear growth is a straight line, quadratic would bend up
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("prompt length T (tokens, batch 1)")
    ax.set_ylabel("peak MiB: weights + state / KV cache + temporaries")
    finish(fig, ax, out, "prefill_memory.png",
           "Prefill peak device memory vs T")


def plot_kernels(runs, out):
    shapes = []
    for _, d in runs:
        for r in ok(d["results"], suite="kernels", op="retention", sweep=None):
            s = (r["H"], r["Dk"], r["Dv"])
            if s not in shapes:
                shapes.append(s)
    if not shapes:
        return
    multi = len(runs) > 1
    fig, axes = plt.subplots(1, len(shapes), figsize=(4.6 * len(shapes), 4.3),
                             sharey=True, squeeze=False)
    for ax, (H, Dk, Dv) in zip(axes[0], shapes):
        for di, (dev, d) in enumerate(runs):
            recs = ok(d["results"], suite="kernels", op="retention", sweep=None,
                      H=H, Dk=Dk, Dv=Dv)
            for algo in ["parallel", "recurrent", "chunkwise"]:
                rs = sorted([r for r in recs if r["algorithm"] == algo],
                            key=lambda r: r["T"])
                if rs:
                    ax.plot([r["T"] for r in rs], [r["gflops"] for r in rs],
                            color=ALGO_COLOR[algo],
                            label=series_label(algo, dev, multi),
                            **style(multi, di))
            sg = d["yardsticks"]["sgemm"].get("gflops")
            if sg:
                ax.axhline(sg, color="black", linewidth=1,
                           linestyle=DEVICE_LINES[di % len(DEVICE_LINES)],
                           label=series_label("CLBlast SGEMM", dev, multi))
            fma = d["yardsticks"]["fma_peak"].get("gflops")
            if fma:
                ax.axhline(fma, color="gray", linewidth=1, alpha=0.6,
                           linestyle=DEVICE_LINES[di % len(DEVICE_LINES)],
                           label=series_label("FMA peak", dev, multi))
        log2_axis(ax)
        ax.set_xlabel("T (tokens, batch 1)")
        ax.set_title(f"H {H}, Dk {Dk}, Dv {Dv}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("retention GFLOP/s (raw form)")
    axes[0][0].set_ylim(bottom=0)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Retention kernels vs T, with the same run's yardsticks")
    save(fig, out, "kernels_gflops.png")


def train_series(d):
    """((algorithm, recompute), records sorted by T) of the train suite's
    training steps."""
    recs = ok(d["results"], suite="train", op="train_step")
    for key in [("chunkwise", False), ("chunkwise", True),
                ("parallel", False), ("parallel", True)]:
        rs = sorted([r for r in recs
                     if (r["algorithm"], bool(r.get("recompute"))) == key],
                    key=lambda r: r["T"])
        if rs:
            yield key, rs


def plot_train(runs, out):
    """Left: tokens/s of a training step vs T. Right: its peak device
    memory vs T (linear axes: linear growth is a straight line)."""
    multi = len(runs) > 1
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    drawn = False
    for di, (dev, d) in enumerate(runs):
        for (algo, rc), rs in train_series(d):
            label = series_label(algo + (" + recompute" if rc else ""), dev,
                                 multi)
            st = dict(color=ALGO_COLOR[algo],
                      marker=DEVICE_MARKERS[di % len(DEVICE_MARKERS)],
                      linestyle="--" if rc else "-",
                      markerfacecolor="white" if rc else ALGO_COLOR[algo])
            Ts = [r["T"] for r in rs]
            ax.plot(Ts, [r["tokens_per_s"] for r in rs], label=label, **st)
            bx.plot(Ts, [r["memory"]["total_bytes"] / MIB for r in rs],
                    label=label, **st)
            drawn = True
    if not drawn:
        plt.close(fig)
        return
    log2_axis(ax)
    ax.set_xlabel("T (tokens, batch 1)")
    ax.set_ylabel("tokens/s of a training step")
    ax.set_ylim(bottom=0)
    ax.set_title("Training step throughput")
    bx.set_xlim(left=0)
    bx.set_ylim(bottom=0)
    bx.set_xlabel("T (tokens, batch 1)")
    bx.set_ylabel("peak MiB: weights + gradient + tape + workspace")
    bx.set_title("Training step peak device memory")
    for a in (ax, bx):
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(f"Training (forward_train + backward), {model_caption(runs)}")
    save(fig, out, "train.png")


def fmt_ms(r, scale=1.0, digits=1):
    return (f"{r['median_ms'] * scale:.{digits}f} "
            f"({r['min_ms'] * scale:.{digits}f}–{r['max_ms'] * scale:.{digits}f})")


def table(w, recs, columns, head, cells):
    """A Markdown table of recs, if any: the head cells of each record, then
    its measured cells, or its status and reason where it was not ok."""
    if not recs:
        return
    w("| " + " | ".join(columns) + " |")
    w("|" + "---|" * len(columns))
    for r in recs:
        h = head(r)
        rest = (cells(r) if r["status"] == "ok"
                else [f"{r['status']}: {r['reason']}"] +
                [None] * (len(columns) - len(h) - 1))
        # a cell left out (None) is written "| |"
        w("|" + "|".join(" " if c is None else f" {c} " for c in h + rest)
          + "|")
    w("")


def decode_cells(r):
    m = r["memory"]
    return [fmt_ms(r, digits=2), f"{r['tokens_per_s']:.1f}",
            f"{m['total_bytes'] / MIB:.1f} ({m['weights_bytes'] / MIB:.1f}"
            f" + {m['cache_bytes'] / MIB:.1f})", r.get("fill")]


def prefill_cells(r):
    m = r["memory"]
    return [fmt_ms(r, 1e-3, 2), r["n"], f"{r['tokens_per_s']:.0f}",
            f"{r['gflops']:.2f}", f"{m['total_bytes'] / MIB:.1f}",
            f"{m['weights_bytes'] / MIB:.1f} / {m['cache_bytes'] / MIB:.1f} / "
            f"{m['workspace_bytes'] / MIB:.1f}"]


def kernel_head(r):
    op = r["algorithm"] or r["op"]
    if r["B"] != 1:
        op += f" (B {r['B']})"
    if r.get("sweep") == "state":
        op += " +state"
    return [op, r["H"], r["Dk"] or "", r["Dv"] or "", r["T"]]


def kernel_cells(r):
    def g(k, f, scale=1.0):
        return "" if r.get(k) is None else f.format(r[k] * scale)
    return [fmt_ms(r, digits=3), g("gflops", "{:.1f}"),
            g("fraction_of_fma_peak", "{:.1f}", 100),
            g("ratio_to_sgemm", "{:.2f}"), g("gbs", "{:.2f}"),
            g("ratio_to_copy", "{:.2f}")]


def train_head(r):
    return [r["algorithm"] + (" + recompute" if r.get("recompute") else ""),
            r["T"]]


def train_cells(r):
    m = r["memory"]
    g = r.get("fraction_of_fma_peak")
    return [fmt_ms(r, 1e-3, 2), r["n"], f"{r['tokens_per_s']:.0f}",
            f"{r['gflops']:.1f}", "" if g is None else f"{100 * g:.1f}",
            f"{m['total_bytes'] / MIB:.1f}",
            f"{m['weights_bytes'] / MIB:.1f} / {m['grads_bytes'] / MIB:.1f} / "
            f"{m['train_bytes'] / MIB:.1f} / {m['workspace_bytes'] / MIB:.1f}"]


def train_retention_head(r):
    return [r["op"].replace("_", " "), r["algorithm"], r["H"], r["Dk"],
            r["T"]]


def markdown(runs):
    """Markdown tables of every run: yardsticks, checks, decode, prefill,
    kernels and train, for docs/benchmarks.md."""
    out = []
    w = out.append
    for dev, d in runs:
        y = d["yardsticks"]
        w(f"### {dev}\n")
        w(f"RetCL {d['retcl_version']}, {d['device']['opencl_version']}, "
          f"driver {d['device']['driver']}.\n")
        fma, sg, cp = (y["fma_peak"].get("gflops"), y["sgemm"].get("gflops"),
                       y["copy"].get("gbs"))
        w("Yardsticks (same run): FMA peak "
          f"{fma or float('nan'):.1f} GFLOP/s, CLBlast SGEMM "
          f"{sg or float('nan'):.2f} GFLOP/s (n = {y['sgemm'].get('size')}), "
          f"copy {cp or float('nan'):.2f} GB/s.\n")
        if d.get("checks"):
            w("| check | measured | target | met |")
            w("|---|---|---|---|")
            for c in d["checks"]:
                v = "n/a" if c["value"] is None else f"{c['value']:.3g}"
                met = {True: "yes", False: "**no**", None: "–"}[c["met"]]
                note = f" ({c['note']})" if c.get("note") else ""
                w(f"| {c['what']}{note} | {v} | {c['target']} | {met} |")
            w("")
        recs = d["results"]
        table(w, [r for r in recs if r["suite"] == "decode"],
              ["model", "sweep", "context", "batch",
               "ms/step median (min–max)", "tokens/s",
               "MiB held (weights + state/cache)", "fill"],
              lambda r: [r["model"], r["sweep"], r["context"], r["B"]],
              decode_cells)
        table(w, [r for r in recs if r["suite"] == "prefill"],
              ["model", "T", "prefill s median (min–max)", "n", "tokens/s",
               "GFLOP/s", "peak MiB", "weights / state or cache / workspace"],
              lambda r: [r["model"] + (" " + r["algorithm"] if r["algorithm"]
                                       else ""), r["T"]],
              prefill_cells)
        table(w, [r for r in recs if r["suite"] == "kernels"],
              ["op", "H", "Dk", "Dv", "T", "ms median (min–max)", "GFLOP/s",
               "% FMA peak", "× SGEMM", "GB/s", "× copy"],
              kernel_head, kernel_cells)
        table(w, [r for r in recs if r["suite"] == "train"
                  and r["op"] != "train_step"],
              ["op (torchscale form)", "algorithm", "H", "Dk = Dv", "T",
               "ms median (min–max)", "GFLOP/s", "% FMA peak", "× SGEMM",
               "GB/s", "× copy"],
              train_retention_head, kernel_cells)
        table(w, [r for r in recs if r["suite"] == "train"
                  and r["op"] == "train_step"],
              ["form", "T", "step s median (min–max)", "n", "tokens/s",
               "GFLOP/s (model)", "% FMA peak", "peak MiB",
               "weights / gradient / tape / workspace"],
              train_head, train_cells)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+", help="retcl-bench --json files")
    ap.add_argument("--out", default=".", help="folder for the PNG files")
    ap.add_argument("--markdown", metavar="FILE",
                    help="also write the results as Markdown tables to FILE")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    runs = load(a.json)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(runs) + "\n")
        print("wrote", a.markdown)
    for f in (plot_decode_latency, plot_decode_memory, plot_decode_throughput,
              plot_prefill_time, plot_prefill_memory, plot_kernels,
              plot_train):
        f(runs, a.out)


if __name__ == "__main__":
    main()
