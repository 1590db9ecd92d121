"""The cadastral import pipeline: read, stage, check, then commit a batch whole or not at all."""
