"""What the Vulkan loader does, replicated without loading anything: search paths, manifests, libraries, its log, the command registry."""
