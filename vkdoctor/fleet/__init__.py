"""Fleet integrations: many machines' reports summarised, metrics and scheduler health checks."""
