"""Prompt files and atomic writes; may import the stdlib, numpy, keras and keras_hub."""
