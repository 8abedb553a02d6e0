"""Long-time behaviour from a small-angle start, through the Python API (issue 8, item 3).

Runs the PDE of ``cases/small-angle-long.toml`` (default circuit and data, rho_0
uniform on [-0.6, 0.6]^2, t = 40, graded mesh; ``cases/small-angle-long-lagrangian.toml``:
the same on a mesh moving with the flow) and draws two figures into the
output folder (``<case name>-risk.png``, ``<case name>-density.png``): the risk against time (log scale) and density snapshots on the
torus with the teacher's parameters marked (white crosses).  Works under mpirun:

    .venv/bin/python scripts/small_angle_long.py [--case cases/small-angle-long.toml] [--out runs/small-angle-long]
    .venv/bin/mpirun -n 2 .venv/bin/python scripts/small_angle_long.py
    .venv/bin/python scripts/small_angle_long.py --plot-only runs/small-angle-long/small-angle-long.pde.h5
"""

import argparse
from pathlib import Path

import numpy as np
from mpi4py import MPI

from mfpde.config.case import load_case
from mfpde.numerics.fields import evaluate_cellwise
from mfpde.runs.pde import run_pde

ROOT = Path(__file__).resolve().parents[1]
TWO_PI = 2 * np.pi


def plot(path: Path, teacher: np.ndarray, out_dir: Path, snapshots: int = 5) -> list[Path]:
    """Risk against time and density snapshots (teacher marked) from a PDE result file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mfpde.io.results import PDEResult

    result = PDEResult.from_file(path)
    t, risk = result.t, result.observables.risk
    picks = np.unique(np.linspace(0, len(t) - 1, snapshots).round().astype(int))
    fields = [result.cellwise(i) for i in picks]

    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    ax.semilogy(t, risk, "o-", ms=3, color="black")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("risk $R(\\rho_t)$")
    ax.grid(alpha=0.3, which="both")
    ax.set_title("small-angle start: risk" + (" (Lagrangian mesh)" if result.moving_mesh else ""))
    stem = Path(path).name.removesuffix(".pde.h5")
    risk_png = out_dir / f"{stem}-risk.png"
    fig.savefig(risk_png, dpi=150)
    plt.close(fig)

    g = (np.arange(200) + 0.5) * TWO_PI / 200
    grid = np.stack(np.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.7), layout="constrained")
    for ax, i, cw in zip(np.atleast_1d(axes), picks, fields):
        rho = evaluate_cellwise(cw, grid).reshape(len(g), len(g))
        ax.imshow(rho, origin="lower", extent=(0, TWO_PI, 0, TWO_PI), cmap="viridis")
        ax.plot(*np.mod(teacher, TWO_PI).T, "x", color="white", ms=9, mew=2, label="teacher")
        ax.set_title(f"$t$ = {t[i]:g}")
        ax.set_xlabel(r"$\theta_1$")
    np.atleast_1d(axes)[0].set_ylabel(r"$\theta_2$")
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    dens_png = out_dir / f"{stem}-density.png"
    fig.savefig(dens_png, dpi=150)
    plt.close(fig)
    return [risk_png, dens_png]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default=str(ROOT / "cases" / "small-angle-long.toml"))
    ap.add_argument("--out", default=None, help="output folder (default: the case's [output] directory)")
    ap.add_argument("--plot-only", default=None, metavar="PDE.h5", help="only draw the figures of an existing run")
    args = ap.parse_args()
    case = load_case(args.case)
    teacher = np.asarray(case.table["data"]["teacher_theta"], dtype=float)
    if args.plot_only:
        path = Path(args.plot_only)
    else:
        obs, path = run_pde(case, out_dir=args.out)
        if MPI.COMM_WORLD.rank == 0:
            print(f"risk {obs['risk'][0]:.3e} -> {obs['risk'][-1]:.3e}, "
                  f"min_rho {np.min(obs['min_rho']):.1e}, mass drift {np.max(np.abs(np.asarray(obs['mass']) - 1)):.1e}")
    if MPI.COMM_WORLD.rank == 0:
        for p in plot(Path(path), teacher, Path(path).parent):
            print(p)


if __name__ == "__main__":
    main()
