"""Write an SDXL pipeline as one .safetensors in the original (Stability) key layout, as A1111 and
ComfyUI users have them. diffusers reads that layout but has no writer in the library, so this
inverts its reader's key mapping for the tests; the tests check the round trip tensor by tensor.
"""

import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "conditioner.embedders.0.transformer."
OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."
RESNET_NAMES = [  # (diffusers, original)
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
]
VAE_ATTENTION_NAMES = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]
OPEN_CLIP_NAMES = [
    ("text_model.encoder.layers.", "resblocks."),
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    (".fc1.", ".c_fc."),
    (".fc2.", ".c_proj."),
    (".self_attn", ".attn"),
]


def _rename(name: str, pairs) -> str:
    for new, old in pairs:
        name = name.replace(new, old)
    return name


def _unet_key(key: str, per_block: int, attention_blocks: set[int]) -> str:
    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"] | DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"]
    if key in fixed:
        return fixed[key]
    part = key.split(".")
    if part[0] == "mid_block":
        index = 1 if part[1] == "attentions" else 2 * int(part[2])
        rest = ".".join(part[3:])
        return f"middle_block.{index}." + (_rename(rest, RESNET_NAMES) if part[1] == "resnets" else rest)
    block, kind, rest = int(part[1]), part[2], ".".join(part[4:])
    layer = int(part[3]) if kind != "downsamplers" and kind != "upsamplers" else per_block - 1
    if part[0] == "down_blocks":
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * per_block}.0.op.{rest.removeprefix('conv.')}"
        index = 1 + block * per_block + layer
    else:
        index = block * per_block + layer
        if kind == "upsamplers":
            return f"output_blocks.{index}.{2 if block in attention_blocks else 1}.{rest}"
    slot = "output_blocks" if part[0] == "up_blocks" else "input_blocks"
    if kind == "resnets":
        return f"{slot}.{index}.0.{_rename(rest, RESNET_NAMES)}"
    return f"{slot}.{index}.1.{rest}"


def _vae_key(key: str, blocks: int) -> str:
    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in fixed:
        return fixed[key]
    part = key.split(".")
    coder, where = part[0], part[1]
    if where == "mid_block":
        if part[2] == "attentions":
            return f"{coder}.mid.attn_1." + _rename(".".join(part[4:]), VAE_ATTENTION_NAMES)
        return f"{coder}.mid.block_{int(part[3]) + 1}." + ".".join(part[4:]).replace("conv_shortcut", "nin_shortcut")
    block = int(part[2]) if coder == "encoder" else blocks - 1 - int(part[2])
    stage = "down" if coder == "encoder" else "up"
    if part[3] in ("downsamplers", "upsamplers"):
        return f"{coder}.{stage}.{block}.{stage}sample." + ".".join(part[5:])
    return f"{coder}.{stage}.{block}.block.{part[4]}." + ".".join(part[5:]).replace("conv_shortcut", "nin_shortcut")


def _open_clip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    fixed = DIFFUSERS_TO_LDM_MAPPING["openclip"]["layers"]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value.T.contiguous() if key == "text_projection.weight" else value
        elif ".k_proj." in key or ".v_proj." in key:
            continue  # joined with q_proj below
        elif ".q_proj." in key:
            kind = key.rsplit(".", 1)[1]
            joined = torch.cat([state[key.replace(".q_proj.", f".{p}_proj.")] for p in "qkv"])
            stem = _rename(key.split(".q_proj.")[0], OPEN_CLIP_NAMES)
            out[f"transformer.{stem}.in_proj_{kind}"] = joined
        else:
            out["transformer." + _rename(key, OPEN_CLIP_NAMES)] = value
    return out


def save_original_layout(pipeline: StableDiffusionXLPipeline, path) -> None:
    unet = pipeline.unet.config
    per_block = unet.layers_per_block + 1
    attention_blocks = {i for i, kind in enumerate(unet.up_block_types) if "CrossAttn" in kind}
    blocks = len(pipeline.vae.config.down_block_types)
    state: dict[str, torch.Tensor] = {}
    for key, value in pipeline.unet.state_dict().items():
        state[UNET_PREFIX + _unet_key(key, per_block, attention_blocks)] = value
    for key, value in pipeline.vae.state_dict().items():
        original = _vae_key(key, blocks)
        if ".mid.attn_1." in original and original.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # the original layout has 1x1 convolutions here
        state[VAE_PREFIX + original] = value
    for key, value in pipeline.text_encoder.state_dict().items():
        # The original keys are text_model.*, which newer transformers flatten in CLIPTextModel.
        state[CLIP_PREFIX + ("" if key.startswith("text_model.") else "text_model.") + key] = value
    for key, value in _open_clip(pipeline.text_encoder_2.state_dict()).items():
        state[OPEN_CLIP_PREFIX + key] = value
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
