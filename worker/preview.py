"""Cheap live previews: a linear latent-to-RGB projection instead of a VAE decode."""

import io
from dataclasses import dataclass

import torch
from PIL import Image


@dataclass(frozen=True)
class LatentRGB:
    """How much each latent channel adds to R, G and B (in the VAE's -1..1 pixel range), plus an offset."""

    factors: tuple[tuple[float, float, float], ...]
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)


# SD 1.x: the public least-squares fit used by A1111's "Approx cheap"; no offset: a zero latent is mid-grey.
SD_LATENT_RGB = LatentRGB(
    factors=(
        (0.298, 0.207, 0.208),
        (0.187, 0.286, 0.173),
        (-0.158, 0.189, 0.264),
        (-0.184, -0.271, -0.473),
    )
)
# SDXL's VAE has its own latent space: the fit ComfyUI's latent2rgb previews use for it.
SDXL_LATENT_RGB = LatentRGB(
    factors=(
        (0.3651, 0.4232, 0.4341),
        (-0.2533, -0.0042, 0.1068),
        (0.1076, 0.1111, -0.0362),
        (-0.3165, -0.2492, -0.2188),
    ),
    bias=(0.1084, -0.0175, -0.0011),
)
# Flux.1's 16-channel latents (scaled and shifted, as its transformer sees them): ComfyUI's fit.
FLUX_LATENT_RGB = LatentRGB(
    factors=(
        (-0.0346, 0.0244, 0.0681),
        (0.0034, 0.0210, 0.0687),
        (0.0275, -0.0668, -0.0433),
        (-0.0174, 0.0160, 0.0617),
        (0.0859, 0.0721, 0.0329),
        (0.0004, 0.0383, 0.0115),
        (0.0405, 0.0861, 0.0915),
        (-0.0236, -0.0185, -0.0259),
        (-0.0245, 0.0250, 0.1180),
        (0.1008, 0.0755, -0.0421),
        (-0.0515, 0.0201, 0.0011),
        (0.0428, -0.0012, -0.0036),
        (0.0817, 0.0765, 0.0749),
        (-0.1264, -0.0522, -0.1103),
        (-0.0280, -0.0881, -0.0499),
        (-0.1262, -0.0982, -0.0778),
    ),
    bias=(-0.0329, -0.0718, -0.0851),
)
JPEG_QUALITY = 80


@torch.inference_mode()
def latents_to_rgb(latents: torch.Tensor, projection: LatentRGB = SD_LATENT_RGB) -> list[Image.Image]:
    """(B, C, h, w) latents -> B RGB images of h x w pixels; one device-to-CPU copy for the batch."""
    factors = torch.tensor(projection.factors, device=latents.device)
    bias = torch.tensor(projection.bias, device=latents.device)
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
