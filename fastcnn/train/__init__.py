"""Models and training: Sequential and the functional Model (one engine, one graph
runner), the fit loop, its history and divergence guard, callbacks and saving/loading. Builds on :mod:`fastcnn.nn` and :mod:`fastcnn.optim`."""
