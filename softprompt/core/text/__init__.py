"""Text handling: tokenizer helpers, batching and bucketing."""
