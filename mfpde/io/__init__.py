"""Files: HDF5 primitives (:mod:`.hdf5`), the typed results and their layout
(:mod:`.results`), the PDE writer (:mod:`.pde_writer`, :mod:`.distributed_rows`),
resume identity (:mod:`.resume`), output paths and locks."""
