"""Request options shared by `generate` (and later the GUI's CLI twins): flags <-> request fields."""

import argparse
from pathlib import Path

from seedgrid.shared import limits as L
from seedgrid.shared.dynamic_prompts import MAX_EXPANSIONS, expand_prompts
from seedgrid.shared.lora_syntax import lift_lora_tags, lora_from_spec
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.shared.seeds import parse_seeds
from seedgrid.shared.workers import ModelOffer

# request field -> the option that sets it, so errors name what the user typed
OPTION_FOR_FIELD = {
    "prompts": "PROMPT/--prompt",
    "prompt": "PROMPT/--prompt",
    "seeds": "--seeds",
    "steps": "--steps",
    "scheduler": "--scheduler",
    "width": "--width",
    "height": "--height",
    "guidance": "--guidance",
    "negative_prompt": "--negative",
    "model": "--model",
    "loras": "--lora",
    "items": "--prompt x --seeds",
}
# Options that, left out, take the served model's defaults (its family's), else the contract's (SD's).
SERVED_DEFAULTS = ("width", "height", "steps", "guidance", "scheduler")


def add_request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the prompt (more with --prompt: prompts become grid rows)")
    parser.add_argument(
        "--prompt",
        dest="more_prompts",
        action="append",
        default=[],
        metavar="PROMPT",
        help="another prompt, at the same seeds",
    )
    parser.add_argument(
        "--prompt-samples",
        type=int,
        metavar="N",
        help=f"N seeded random picks of each prompt's {{a|b}} alternatives instead of every combination "
        f"(at most {MAX_EXPANSIONS} prompts in all)",
    )
    parser.add_argument(
        "--wildcards",
        type=Path,
        metavar="DIR",
        help="folder of NAME.txt files for __NAME__ in prompts (default: wildcards in seedgrid's config folder)",
    )
    parser.add_argument("--seeds", default="0", help="a range 0-7, a list 3,17,42 or random:8 (default: 0)")
    served = "the served model's default"
    parser.add_argument("--steps", type=int, help=f"{L.FIELD_RULES['steps']} (default: {served}; SD: 20, Flux: 4-28)")
    parser.add_argument(
        "--scheduler", help=f"{L.FIELD_RULES['scheduler']} (default: dpm++_2m, or the first the model serves)"
    )
    parser.add_argument("--width", type=int, help=f"{L.FIELD_RULES['width']} (default: {served}; SD: 512, SDXL: 1024)")
    parser.add_argument("--height", type=int, help=f"{L.FIELD_RULES['height']} (default: {served}; SD: 512)")
    parser.add_argument("--guidance", type=float, help=f"{L.FIELD_RULES['guidance']} (default: {served}; SD: 7.5)")
    parser.add_argument("--negative", default="", help="negative prompt")
    parser.add_argument("--model", default="tiny", help="a model an online worker serves (default: tiny)")
    parser.add_argument(
        "--lora",
        dest="loras",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="a LoRA the worker has, applied to every image (repeatable; weight 1 when left out; "
        f"<lora:NAME:WEIGHT> in a prompt does the same): {L.FIELD_RULES['loras']}",
    )


def defaults_left_out(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) is None for name in SERVED_DEFAULTS)


def served_defaults(served: ModelOffer | None) -> dict:
    """The request fields a worker serving the model advertises as defaults; the contract's without one."""
    fields = JobRequest.model_fields
    if served is None:
        return {name: fields[name].default for name in SERVED_DEFAULTS}
    scheduler = fields["scheduler"].default
    return {
        "width": served.default_width,
        "height": served.default_height,
        "steps": served.default_steps,
        "guidance": served.default_guidance,
        "scheduler": scheduler if scheduler in served.schedulers or not served.schedulers else served.schedulers[0],
    }


def request_from_args(args: argparse.Namespace, served: ModelOffer | None = None) -> JobRequest:
    """Build the request, or raise a RequestError whose message names the option.

    Options left out take the defaults `served` (a worker serving the model) advertises.
    Dynamic prompts are expanded here, their random picks seeded by the first seed."""
    try:
        seeds = parse_seeds(args.seeds)
        prompts = expand_prompts(
            [args.prompt, *args.more_prompts], samples=args.prompt_samples, seed=seeds[0], wildcards=args.wildcards
        )
        given = {name: getattr(args, name) for name in SERVED_DEFAULTS if getattr(args, name) is not None}
        loras = [lora_from_spec(spec).model_dump() for spec in args.loras]
        data = {
            "model": args.model,
            "prompts": prompts,
            "seeds": seeds,
            "negative_prompt": args.negative,
            "loras": loras,
            **(served_defaults(served) | given),
        }
        return parse_request(lift_lora_tags(data))
    except RequestError as exc:
        raise RequestError(exc.field, exc.problem, label=OPTION_FOR_FIELD.get(exc.field)) from None
