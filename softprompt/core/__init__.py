"""Backend-neutral core: only keras, keras.ops, keras_hub and numpy."""
