"""RLDS / TFDS builder directories, read without TensorFlow (read-only: results live in the
catalog)."""
