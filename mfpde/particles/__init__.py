"""The finite-N mixture of experts trained by gradient flow (:mod:`.system`)."""

from mfpde.particles.system import ParticleState, ParticleSystem, block_range

__all__ = ["ParticleState", "ParticleSystem", "block_range"]
