"""How probes run: the pipeline runner, child processes, bisection, the injected Env."""
