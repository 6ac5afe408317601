"""The rules of the trace analysis: each module turns the replayed state into one family of
findings (crashes, object and library lifetimes, proc-address use, the program's outcome)."""
