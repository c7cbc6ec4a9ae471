"""The one training loop, run dir, checkpoints, callbacks, Adafactor; may import all rooms below."""
