"""Write the small periodic torus meshes shipped in ``meshes/`` (``.npz``, see mfpde.torus).

    python meshes/make_meshes.py            # rewrites every file below

Structured meshes are the grids of ``mfpde.torus.structured_torus_cells``;
``*-jitter-*`` meshes move every vertex by a random offset of at most 0.25 h
in each direction (seeded), so their cells are not congruent: a non-uniform
torus mesh for tests (quadrilaterals become non-affine).
"""

from pathlib import Path
import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfpde.torus import TWO_PI, save_torus_mesh, structured_torus_cells  # noqa: E402

HERE = Path(__file__).resolve().parent

MESHES = [
    # name, d, n, cell kind, jitter
    ("torus-1d-64", 1, 64, "simplex", 0.0),
    ("torus-2d-tri-16", 2, 16, "simplex", 0.0),
    ("torus-2d-quad-16", 2, 16, "box", 0.0),
    ("torus-2d-tri-jitter-16", 2, 16, "simplex", 0.25),
    ("torus-2d-quad-jitter-16", 2, 16, "box", 0.25),
    ("torus-3d-tet-6", 3, 6, "simplex", 0.0),
    ("torus-3d-hex-6", 3, 6, "box", 0.0),
]


def main():
    rng = np.random.default_rng(20250114)
    for name, d, n, cell, jitter in MESHES:
        vertices, cells, cell_type = structured_torus_cells(d, n, cell)
        if jitter:
            vertices = np.mod(vertices + rng.uniform(-jitter, jitter, vertices.shape) * TWO_PI / n, TWO_PI)
        path = HERE / f"{name}.npz"
        save_torus_mesh(path, vertices, cells, cell_type)
        print(path)


if __name__ == "__main__":
    main()
