"""The backend-neutral core of softprompt, in rooms (lowest first):

- ``io``: prompt files, atomic writes;
- ``text``: tokenizing, bucketing, batching;
- ``interop``: preset resolution, Hugging Face T5 checkpoints (folders and hf://, converted
  once into softprompt's cache), PEFT and official prompt formats;
- ``model``: SoftPrompt, PromptedT5, T5 blocks, prompt init, loss;
- ``inference``: the one batched generation and scoring path and what uses it;
- ``training``: the one training loop, its checkpoints, callbacks and Adafactor;
- ``pretraining``: LM adaptation and from-scratch models;
- ``serving``: ``softprompt serve``'s HTTP app, micro-batcher, prompt registry and metrics
  (FastAPI, uvicorn, prometheus_client, watchfiles; Ray Serve optionally);

and ``demo.py`` above them (the built-in demo composes training and inference).
A room imports only lower rooms (``tests/test_architecture.py`` holds the rules).

The core computes with keras, keras.ops, keras_hub and numpy. It asks the
backend adapter (`softprompt.backends.current()`) for whatever depends on the
framework and never imports one itself. Beyond those, it reads and writes files
with safetensors and huggingface_hub (interop), sentencepiece (pretraining), tensorboard and
matplotlib (training logs), and reads tasks (`softprompt.tasks`) in inference
and training.
"""

import warnings

# keras-hub's T5 backbone passes masked tensors to its attention layers while it
# builds its functional graph; keras then warns on every load although the mask
# is applied explicitly through the attention bias. Silence that one message.
warnings.filterwarnings(
    "ignore", message=r".*T5MultiHeadAttention.*does not support masking.*", category=UserWarning
)
