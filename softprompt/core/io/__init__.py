"""Prompt files, atomic writes, presets; may import the stdlib, numpy, keras and keras_hub."""
