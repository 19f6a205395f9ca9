"""Models and training: the Sequential model, the fit loop, its history and divergence
guard, callbacks and saving/loading. Builds on :mod:`fastcnn.nn` and :mod:`fastcnn.optim`."""
