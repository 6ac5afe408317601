"""The report: records, findings, the JSON Schema, reading and writing, redaction."""
