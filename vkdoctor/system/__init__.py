"""The machine around the loader: OS, container, GPUs on the bus, device nodes, packages, the kernel's GPU-fault log."""
