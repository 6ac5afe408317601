"""The compute-kernel suite: kernels, runs, formatting, peak figures."""
