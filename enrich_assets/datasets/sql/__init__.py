"""Database-backed datasets: one table of frames (the guide's `clips` table)."""
