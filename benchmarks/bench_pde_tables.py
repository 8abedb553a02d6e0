"""Markdown tables for docs/benchmarks.md from the stored benchmark JSON (no computation).

    .venv/bin/python benchmarks/bench_pde_tables.py [--results benchmarks/results]

Prints, with the JSON key of every figure: the R(eps) table of each case
(``bench_pde.json: cases.<case>.ratio.<eps>``), the accuracy/time runs
(``cases.<case>.runs.<solver>``), mfpde memory in 3-d
(``cases.qnn-2q-3p.runs.mfpde[].peak_rss``), the scaling tables
(``bench_pde_scaling*.json: modes.<mode>``, ``profile``, ``cache``) and the
spectral peer's validation (``spectral_peer.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _s(x, fmt="{:.3g}"):
    return "-" if x is None else fmt.format(x)


def pde_tables(res: dict) -> list[str]:
    p = res["provenance"]
    out = [f"`bench_pde.json`: {p['date']}, {p['machine']['cpu']} ({p['machine']['cores']} cores), "
           f"git {(p['git_revision'] or '?')[:10]}{' (dirty)' if p.get('git_dirty') else ''}, "
           f"load average {p['machine']['load_average'][0]:.1f} at start, quick = {res['quick']}", ""]
    for key, c in res["cases"].items():
        ref = c["reference"]
        out += [f"#### `{key}` (d = {c['d']}, t = {c['t_end']}, tau = {c['tau']}, init {c['init'].get('kind', 'uniform')})",
                "", f"Reference: {ref['method']} {ref['resolution']}; change from {ref['check']}: {ref['change']:.1e} "
                f"(`cases.{key}.reference.change`).", ""]
        if c.get("mfpde_skipped"):
            out += [f"mfpde skipped: {c['mfpde_skipped']} (`cases.{key}.mfpde_skipped`).", ""]
        out += [f"R(eps) = mfpde time / spectral time, each the cheapest measured run reaching eps "
                f"(`cases.{key}.ratio.<eps>`):", "",
                "| eps | R | mfpde run | s | spectral run | s | py-pde run | s |", "|---|---|---|---|---|---|---|---|"]
        for eps, row in c["ratio"].items():
            def side(x):
                return ("not reached", "-") if x is None else (f"{x['label']} ({x['err']:.1e})", f"{x['total_s']:.3g}")
            m, s, q = side(row["mfpde"]), side(row["spectral"]), side(row["pypde"])
            out.append(f"| {eps} | {_s(row['R'], '{:.1f}')} | {m[0]} | {m[1]} | {s[0]} | {s[1]} | {q[0]} | {q[1]} |")
        out += ["", f"All runs (`cases.{key}.runs.<solver>`):", "",
                "| solver | configuration | error | time s | dofs | min_rho | peak RSS MiB |", "|---|---|---|---|---|---|---|"]
        for solver in ("mfpde", "spectral", "pypde"):
            for r in c["runs"][solver]:
                if "err" not in r:
                    why = r.get("refused") or r.get("failed")
                    out.append(f"| {solver} | {r['label']} | ({why}) | | | | |")
                    continue
                rss = f"{r['peak_rss'] / 2**20:.0f}" if "peak_rss" in r else ""
                out.append(f"| {solver} | {r['label']} | {r['err']:.2e} | {r['total_s']:.3g} | {r['dofs']} | "
                           f"{r['min_rho']:+.1e} | {rss} |")
        out.append("")
    return out


def scaling_tables(res: dict, name: str) -> list[str]:
    p = res["provenance"]
    out = [f"`{name}`: {p['date']}, {p['machine']['cpu']} ({p['machine']['cores']} cores), "
           f"git {(p['git_revision'] or '?')[:10]}, load average {p['machine']['load_average'][0]:.1f} at start; "
           f"DG{res['degree']}, {res['steps']} timed steps, {res['repeat']} interleaved repeats", ""]
    for mode, table in res["modes"].items():
        out += [f"{mode} scaling (`modes.{mode}`):", "",
                "| P | n | dofs | ms/step median | spread (min-max) | efficiency | M dof-stages/s/rank | "
                "peak RSS MiB per rank | rank 0 / rank 1 |", "|---|---|---|---|---|---|---|---|---|"]
        for r in table:
            t = r["per_step_s"]
            out.append(f"| {r['ranks']} | {r['n']} | {r['dofs']} | {t['median'] * 1e3:.1f} | "
                       f"{t['min'] * 1e3:.1f}-{t['max'] * 1e3:.1f} | {r['efficiency']:.2f} | "
                       f"{r['throughput_per_rank']['median'] / 1e6:.2f} | "
                       f"{', '.join(f'{x / 2**20:.0f}' for x in r['peak_rss_per_rank'])} | "
                       f"{_s(r['rank0_over_rank1_peak_rss'], '{:.2f}')} |")
        out.append("")
    if res.get("profile"):
        keys = list(next(iter(res["profile"].values()))[0]["inclusive_s"])
        out += ["Profile, inclusive seconds (`profile.<P>[rank].inclusive_s`; pieces nest):", "",
                "| P | rank | total | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
        for P, ranks in res["profile"].items():
            for k, prof in enumerate(ranks):
                out.append(f"| {P} | {k} | {prof['total_s']:.2f} | "
                           + " | ".join(f"{prof['inclusive_s'][c]:.2f}" for c in keys) + " |")
        out.append("")
    if res.get("cache"):
        out += ["1 rank, time per dof and stage at several sizes (`cache`):", "",
                "| n | dofs | ns per dof-stage (median) | spread |", "|---|---|---|---|"]
        for r in res["cache"]:
            t = r["time_per_dof_stage_s"]
            out.append(f"| {r['n']} | {r['dofs']} | {t['median'] * 1e9:.0f} | {t['min'] * 1e9:.0f}-{t['max'] * 1e9:.0f} |")
        out.append("")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(HERE / "results"))
    a = ap.parse_args(argv)
    d = Path(a.results)
    lines = []
    if (d / "bench_pde.json").exists():
        lines += pde_tables(json.loads((d / "bench_pde.json").read_text()))
    for f in sorted(d.glob("bench_pde_scaling*.json")):
        lines += scaling_tables(json.loads(f.read_text()), f.name)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
