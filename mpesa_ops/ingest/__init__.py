"""The ingest pipeline: read log files, normalise records, load them into the store."""
