# # Your own expert, from Python, without a case file
#
# Any bounded smooth $\phi(x;\theta)$ with $\theta$ on the torus
# $\mathbb{T}^d$ defines a mixture of experts and its mean-field limit. Here
# a tanh neuron with both weights as angles,
#
# $$\phi(x;\theta) = \sin\theta_1 \tanh(2\cos(\theta_2)\, x), \qquad \theta \in \mathbb{T}^2,$$
#
# fitted to $y = 0.6\tanh(1.5 x)$. An expert is a function of the data
# inputs $x$ (K, m) and of a batch of parameters $\theta$ (M, d) that
# returns the values (K, M) and the $\theta$-gradients (K, M, d);
# `mfpde.experts.PythonExpert` wraps it (the same as `kind = "python"` in
# a case file). The mixture of $N = 1024$ experts is compared with the PDE.

import os
import tempfile

import numpy as np

from mfpde.config.case import case_from_dict
from mfpde.runs.compare import particle_metrics
from mfpde.experts import PythonExpert
from mfpde.io.results import ParticleResult, PDEResult
from mfpde.runs.particles import run_particles
from mfpde.runs.pde import run_pde


def tanh_neuron(x, theta):
    """phi (K, M) and grad_theta phi (K, M, 2) of sin(theta_1) tanh(2 cos(theta_2) x)."""
    a, b = np.sin(theta[:, 0]), np.cos(theta[:, 1])
    t = np.tanh(2 * b[None, :] * x[:, :1])
    phi = a[None, :] * t
    grad = np.stack([np.cos(theta[:, 0])[None, :] * t,
                     a[None, :] * (1 - t**2) * 2 * x[:, :1] * (-np.sin(theta[:, 1]))[None, :]], axis=-1)
    return phi, grad


# ## The case, as a dict
#
# The `[expert]` table is replaced by the expert object; everything else is
# as in a case file ([case-file.md](../case-file.md)).

x = np.linspace(-2, 2, 12)
table = {
    "name": "tanh-neuron",
    "data": {"x": x.tolist(), "y": (0.6 * np.tanh(1.5 * x)).tolist()},
    "dynamics": {"t_end": 1.0, "lr": 1.0},
    "pde": {"n": 24, "save_every": 0.5},
    "particles": {"save_every": 0.5, "dt": 0.01},
}
case = case_from_dict(table, expert=PythonExpert(tanh_neuron, d=2))
out = os.environ.get("MFPDE_EXAMPLE_OUT") or tempfile.mkdtemp()

# ## The limit and the mixture
#
# The PDE on a 24 x 24 periodic quadrilateral mesh (DG3, the default cell and
# degree), then 1024 experts.

_, pde_file = run_pde(case, out_dir=out, progress=False, companion=False)
_, particle_file = run_particles(case, 1024, seed=0, out_dir=out, progress=False)
pde, run = PDEResult.from_file(pde_file), ParticleResult.from_file(particle_file)

# ## How far apart
#
# $\max_k |f_N(x_k) - F_\rho(x_k)|$ and $W_1$ on the torus, at every saved time.

o = run.observables
m = particle_metrics(pde, o.t, o.F, o.risk, o.moments, run.theta)
for i, t in enumerate(o.t):
    print(f"t = {t:.1f}: risk N=1024 {o.risk[i]:.4e} (PDE {pde.observables.risk[i]:.4e}), "
          f"max_k |f_N - F_rho| = {m['observable_error'][i]:.3e}, W1 = {m['wasserstein'][i]:.3e}")
assert run.integrator == "rk4" and np.all(m["observable_error"] < 0.06)  # measured <= 0.0195
