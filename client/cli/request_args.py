"""Request options shared by `generate` (and later the GUI's CLI twins): flags <-> request fields."""

import argparse
from pathlib import Path

from seedgrid.shared import limits as L
from seedgrid.shared.dynamic_prompts import MAX_EXPANSIONS, expand_prompts
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.shared.seeds import parse_seeds

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
    "items": "--prompt x --seeds",
}


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
    parser.add_argument("--steps", type=int, default=20, help=f"{L.FIELD_RULES['steps']} (default: 20)")
    parser.add_argument("--scheduler", default="dpm++_2m", help=f"{L.FIELD_RULES['scheduler']} (default: dpm++_2m)")
    parser.add_argument("--width", type=int, default=512, help=f"{L.FIELD_RULES['width']} (default: 512)")
    parser.add_argument("--height", type=int, default=512, help=f"{L.FIELD_RULES['height']} (default: 512)")
    parser.add_argument("--guidance", type=float, default=7.5, help=f"{L.FIELD_RULES['guidance']} (default: 7.5)")
    parser.add_argument("--negative", default="", help="negative prompt")
    parser.add_argument("--model", default="tiny", help="a model an online worker serves (default: tiny)")


def request_from_args(args: argparse.Namespace) -> JobRequest:
    """Build the request, or raise a RequestError whose message names the option.

    Dynamic prompts are expanded here, their random picks seeded by the first seed."""
    try:
        seeds = parse_seeds(args.seeds)
        prompts = expand_prompts(
            [args.prompt, *args.more_prompts], samples=args.prompt_samples, seed=seeds[0], wildcards=args.wildcards
        )
        return parse_request(
            {
                "model": args.model,
                "prompts": prompts,
                "seeds": seeds,
                "negative_prompt": args.negative,
                "width": args.width,
                "height": args.height,
                "steps": args.steps,
                "guidance": args.guidance,
                "scheduler": args.scheduler,
            }
        )
    except RequestError as exc:
        raise RequestError(exc.field, exc.problem, label=OPTION_FOR_FIELD.get(exc.field)) from None
