"""Backend-neutral core: only keras, keras.ops, keras_hub and numpy."""

import warnings

# keras-hub's T5 backbone passes masked tensors to its attention layers while it
# builds its functional graph; keras then warns on every load although the mask
# is applied explicitly through the attention bias. Silence that one message.
warnings.filterwarnings(
    "ignore", message=r".*T5MultiHeadAttention.*does not support masking.*", category=UserWarning
)
