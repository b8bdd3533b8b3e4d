"""Storage backends: each writes its own native SQL."""
