"""LM adaptation and from-scratch T5s; may import every room below it and sentencepiece."""
