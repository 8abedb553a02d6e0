"""Constants shared by every layer (the one definition of each)."""

from __future__ import annotations

import numpy as np

#: the period of every coordinate of the torus (the one definition in mfpde)
TWO_PI = 2.0 * np.pi
