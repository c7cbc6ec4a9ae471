"""The serving load benchmark: ``softprompt serve``'s app under an async client on loopback.

`server` starts the app over a random T5 of the named shape (or the embedded model) with N
random prompts; `client` drives it with a closed loop of concurrent requests and reads the
server's own metrics; ``python -m benchmarks.serving_load`` runs the comparisons.
"""
