"""Record and replay of PKCS#11 sessions (issue 14): the trace format v1 reader (trace.py)."""
