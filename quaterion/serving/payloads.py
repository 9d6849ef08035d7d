"""What a stored point carries to show its object: the text, or a small PNG of an image."""

from __future__ import annotations

import base64
import io
from typing import Any

import torch


def is_image(obj: Any) -> bool:
    """True for an image tensor `[C, H, W]` (C = 1 or 3) or a PIL image.

    Args:
        obj: any object.
    """
    if isinstance(obj, torch.Tensor):
        return obj.dim() == 3 and obj.shape[0] in (1, 3)
    return type(obj).__module__.startswith("PIL.")


def image_data_url(image: Any) -> str:
    """A `data:image/png;base64,...` URL of a PIL image or a `[C, H, W]` tensor in [0, 1].

    Args:
        image: a PIL image or a `[C, H, W]` tensor in [0, 1].
    """
    from PIL import Image  # pillow comes with the `cli` extra (matplotlib)

    if isinstance(image, torch.Tensor):
        pixels = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        array = pixels.permute(1, 2, 0).numpy()  # [H, W, C]
        image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def object_payload(obj: Any) -> dict[str, Any]:
    """`{"text": obj}` for a string, `{"image": data URL}` for an image, else nothing.

    Args:
        obj: a raw record.
    """
    if isinstance(obj, str):
        return {"text": obj}
    if is_image(obj):
        return {"image": image_data_url(obj)}
    return {}
