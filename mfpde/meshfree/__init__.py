"""The limit without a mesh: characteristics of the mean-field flow from a
quadrature rule for ``rho_0`` (:mod:`.characteristics`) and the CLT covariance (:mod:`.clt`)."""
