"""Clean: read raw conversations, normalise, redact PII, filter by length, dedup, report."""
