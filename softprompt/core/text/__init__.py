"""Tokenizing, bucketing and padding to a few fixed shapes; may import io and numpy."""
