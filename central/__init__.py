"""Central server for a fleet of Pi Camera Service cameras (discovery, pairing, ingest)."""
