"""Language annotations in lerobot's steerable-pipeline layout: plan, interjections, vqa,
plus keyframe captions. Pure functions; staging and the parquet writer handle files."""
