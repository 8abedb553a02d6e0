"""A researcher's own classical expert, through the Python API (no TOML file).

The expert is a tanh neuron with its two weights on the torus,

    phi(x; theta) = sin(theta_0) * tanh(2 cos(theta_1) x),

bounded and smooth in theta.  The script solves the mean-field PDE, trains
two mixtures of N = 256 and N = 4096 experts, and prints how far each is from
the PDE at t_end (``--t-end``, ``--cells``, ``--n`` make it smaller).  Works under mpirun too:

    .venv/bin/python scripts/custom_expert.py [--out runs/custom]
    .venv/bin/mpirun -n 2 .venv/bin/python scripts/custom_expert.py
"""

import argparse

import numpy as np
from mpi4py import MPI

from mfpde.config.case import case_from_dict
from mfpde.runs.compare import particle_metrics
from mfpde.experts import Expert
from mfpde.io.results import PDEResult
from mfpde.runs.particles import run_particles
from mfpde.runs.pde import run_pde


class TanhNeuron(Expert):
    """phi(x; theta) = sin(theta_0) tanh(2 cos(theta_1) x) on T^2."""

    kind, d, m = "tanh-neuron", 2, 1

    def bind(self, x):
        x = np.asarray(x, float)[:, :1]  # (K, 1)

        def at(theta):  # theta (M, 2) -> phi (K, M), grad (K, M, 2)
            a, b = np.sin(theta[:, 0]), np.cos(theta[:, 1])
            t = np.tanh(2 * b[None, :] * x)
            phi = a[None, :] * t
            grad = np.stack([np.cos(theta[:, 0])[None, :] * t,
                             a[None, :] * (1 - t**2) * 2 * x * (-np.sin(theta[:, 1]))[None, :]], axis=-1)
            return phi, grad

        return at


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/custom")
    ap.add_argument("--t-end", type=float, default=3.0, help="final time (default 3)")
    ap.add_argument("--cells", type=int, default=64, help="PDE cells per direction (default 64)")
    ap.add_argument("--n", default="256,4096", help="numbers of experts N, comma-separated (default 256,4096)")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD

    x = np.linspace(-2, 2, 12)
    table = {
        "name": "tanh-neuron",
        "data": {"x": x.tolist(), "y": (0.6 * np.tanh(1.5 * x)).tolist()},
        "dynamics": {"t_end": args.t_end, "lr": 1.0},
        "pde": {"n": args.cells, "save_every": 0.5},
        "particles": {"save_every": 0.5, "dt": 0.01},
    }
    case = case_from_dict(table, expert=TanhNeuron())

    pde_obs, pde_file = run_pde(case, out_dir=args.out, comm=comm)
    pde = comm.bcast(PDEResult.from_file(pde_file) if comm.rank == 0 else None, root=0)
    for n in (int(v) for v in args.n.split(",")):
        obs, path = run_particles(case, n, seed=0, out_dir=args.out, comm=comm)
        if comm.rank == 0:
            m = particle_metrics(pde, obs["t"], obs["F"], obs["risk"], obs["moments"], obs["theta"])
            print(f"N = {n:5d}: risk {obs['risk'][-1]:.4e} (PDE {pde_obs['risk'][-1]:.4e}), "
                  f"max_k |f_N - F_rho| = {m['observable_error'][-1]:.3e}, W1 = {m['wasserstein'][-1]:.3e}  ({path})")
    if comm.rank == 0:
        print(f"PDE: {pde_file}")


if __name__ == "__main__":
    main()
