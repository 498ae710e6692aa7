"""Atomic, streaming imports of members, jobs and pairs from CSV and JSONL (see :func:`services.import_file`)."""
