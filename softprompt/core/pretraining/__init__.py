"""Models before prompt tuning: LM adaptation and from-scratch T5s (the embedded model's builder).

The top room: it may import every room below it and sentencepiece.
"""
