"""One module per export file format. ``labels.jsonl`` is written first, from the database; the chat file and the
Parquet file are derived from it, so all three hold exactly the same rows in the same order."""
