"""Every bound a request must meet, checked by the client before queueing and again by the worker."""

MIN_SIZE, MAX_SIZE, SIZE_MULTIPLE = 64, 2048, 8
MIN_STEPS, MAX_STEPS = 1, 150
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MIN_SEED, MAX_SEED = 0, 2**32 - 1
MAX_PROMPT_CHARS = 2000
MAX_PROMPTS = 64
MAX_SEEDS = 256
MAX_ITEMS = 256
MAX_MODEL_NAME_CHARS = 200
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
MAX_LORAS = 8
MAX_LORA_NAME_CHARS = 100
LORA_NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.+-]{{0,{MAX_LORA_NAME_CHARS - 1}}}$"  # a file's stem, never a path
MIN_LORA_WEIGHT, MAX_LORA_WEIGHT = -4.0, 4.0

# Scheduler names a request may use, with the label A1111-style tools show for each.
SCHEDULER_LABELS = {
    "dpm++_2m": "DPM++ 2M",
    "dpm++_2m_karras": "DPM++ 2M Karras",
    "dpm++_2s": "DPM++ SDE",
    "euler": "Euler",
    "euler_a": "Euler a",
    "ddim": "DDIM",
    "ddpm": "DDPM",
    "pndm": "PLMS",
    "unipc": "UniPC",
    "lms": "LMS",
    "heun": "Heun",
    "dpm2": "DPM2",
    "dpm2_a": "DPM2 a",
    "deis": "DEIS",
}
SCHEDULER_NAMES = tuple(SCHEDULER_LABELS)

# The allowed range of each field, as the error messages and the README state it.
FIELD_RULES = {
    "model": f"a model name of 1-{MAX_MODEL_NAME_CHARS} letters, digits and ._/- served by a worker",
    "prompts": f"1-{MAX_PROMPTS} prompts of 1-{MAX_PROMPT_CHARS} characters each",
    "seeds": f"1-{MAX_SEEDS} integers from {MIN_SEED} to {MAX_SEED}",
    "negative_prompt": f"at most {MAX_PROMPT_CHARS} characters",
    "width": f"a multiple of {SIZE_MULTIPLE} from {MIN_SIZE} to {MAX_SIZE}",
    "height": f"a multiple of {SIZE_MULTIPLE} from {MIN_SIZE} to {MAX_SIZE}",
    "steps": f"an integer from {MIN_STEPS} to {MAX_STEPS}",
    "guidance": f"a number from {MIN_GUIDANCE:g} to {MAX_GUIDANCE:g}",
    "scheduler": "one of " + ", ".join(SCHEDULER_NAMES),
    "loras": f"at most {MAX_LORAS} LoRAs, each a name of 1-{MAX_LORA_NAME_CHARS} letters, digits and _.+- "
    f"(starting with a letter or digit) and a weight from {MIN_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g}, no name twice",
    "items": f"at most {MAX_ITEMS} images (prompts x seeds) per job",
}
