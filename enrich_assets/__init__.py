"""Enrich raw robot-learning datasets as a Dagster asset graph."""
