"""Cheap live previews: a linear latent-to-RGB projection instead of a VAE decode."""

import io

import torch
from PIL import Image

# How much each SD1.x latent channel adds to R, G and B, in the VAE's -1..1 pixel range
# (the public least-squares fit used by A1111's "Approx cheap" and ComfyUI's latent2rgb).
LATENT_RGB_FACTORS = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
LATENT_RGB_BIAS = (0.0, 0.0, 0.0)  # the fit has no offset: a zero latent is mid-grey
JPEG_QUALITY = 80


@torch.inference_mode()
def latents_to_rgb(latents: torch.Tensor) -> list[Image.Image]:
    """(B, 4, h, w) latents -> B RGB images of h x w pixels; one device-to-CPU copy for the batch."""
    factors = torch.tensor(LATENT_RGB_FACTORS, device=latents.device)
    bias = torch.tensor(LATENT_RGB_BIAS, device=latents.device)
    rgb = torch.einsum("bchw,cr->bhwr", latents.float(), factors) + bias
    pixels = ((rgb.nan_to_num(0.0) + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8).cpu().numpy()
    return [Image.fromarray(p, "RGB") for p in pixels]


def encode_preview(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def preview_interval(steps: int) -> int:
    """About five previews a job, and one at least every 5 steps."""
    return max(1, min(5, steps // 5))


def sigma_normalized(latents: torch.Tensor, scheduler) -> torch.Tensor:
    """Euler-family latents carry noise of std sigma on top of the image; scale them back to unit range."""
    sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
    if float(getattr(scheduler, "init_noise_sigma", 1.0)) <= 1.0 or sigmas is None or index is None:
        return latents
    sigma = float(sigmas[min(index, len(sigmas) - 1)])
    return latents / (sigma**2 + 1) ** 0.5
