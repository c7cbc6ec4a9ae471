"""The training loop, its state/checkpoints, callbacks and Adafactor."""
