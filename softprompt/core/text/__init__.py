"""Text to fixed-shape batches: tokenizer helpers, tokenizing once, bucketing, padding.

It may import `io` and numpy; it never sees a model.
"""
