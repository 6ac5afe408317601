"""Subcommands other than check (report, kernels); each parses its arguments and calls the library."""
