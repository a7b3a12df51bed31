"""Datasets: readers, preprocessing, splits and the prepared (canonical) format."""
