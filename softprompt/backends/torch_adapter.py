"""PyTorch adapter (CPU, CUDA)."""

from __future__ import annotations

from softprompt.backends.base import Adapter, Device


class TorchAdapter(Adapter):
    name = "torch"
    # Keras runs torch eagerly; torch.compile is opt-in (jit_compile=True).
    default_jit_compile = False

    def version(self) -> str:
        import torch

        return torch.__version__

    def devices(self) -> list[Device]:
        import torch

        if torch.cuda.is_available():
            return [
                Device(kind="gpu", name=torch.cuda.get_device_name(i))
                for i in range(torch.cuda.device_count())
            ]
        return [Device(kind="cpu", name="cpu")]

    def seed(self, seed: int) -> None:
        import torch

        super().seed(seed)
        torch.manual_seed(seed)


ADAPTER = TorchAdapter()
