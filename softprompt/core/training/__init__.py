"""The one training loop: options, run directory, checkpoints, callbacks, Adafactor.

It may import every room below it (`io`, `text`, `model`, `interop`, `inference`),
`softprompt.tasks`, tensorboard and matplotlib (the logs).
"""
