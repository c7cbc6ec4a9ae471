"""Files that matter: prompt files with their sidecars, atomic writes, where presets are.

The lowest room: it may import only the standard library, numpy, keras and keras_hub.
"""
