"""From findings to a diagnosis: ids, cause-and-symptom links, root causes, the verdict line,
and the remedy rules every command obeys.  Runs once per report, after the probes (headless)."""
