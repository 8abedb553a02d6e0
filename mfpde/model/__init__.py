"""The mean-field model, independent of discretization: the velocity field and
risk (:mod:`.velocity`), initial densities (:mod:`.initial`), Fourier moments
(:mod:`.moments`) and the lazy-training kernel (:mod:`.ntk`)."""
