"""Scheduler names of the contract mapped to diffusers scheduler classes and options."""

from diffusers.schedulers.scheduling_utils import SchedulerMixin

from seedgrid.shared.limits import SCHEDULER_NAMES

# name -> (diffusers class name, options passed to from_config)
SchedulerTable = dict[str, tuple[str, dict]]
SCHEDULER_CLASSES: SchedulerTable = {
    "dpm++_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "dpm++_2s": ("DPMSolverSinglestepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm2": ("KDPM2DiscreteScheduler", {}),
    "dpm2_a": ("KDPM2AncestralDiscreteScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
}
assert set(SCHEDULER_CLASSES) == set(SCHEDULER_NAMES), "contract and worker disagree on scheduler names"
# Flow-matching models (Flux): Euler over the flow, as Forge's and ComfyUI's "Euler" is for them.
FLOW_SCHEDULER_CLASSES: SchedulerTable = {"euler": ("FlowMatchEulerDiscreteScheduler", {})}


def compatible_scheduler_names(base: SchedulerMixin, table: SchedulerTable = SCHEDULER_CLASSES) -> list[str]:
    """The contract's names (of `table`) whose class the pipeline's scheduler lists as compatible."""
    compatible = {cls.__name__ for cls in base.compatibles} | {type(base).__name__}
    return [name for name, (cls_name, _) in table.items() if cls_name in compatible]


def make_scheduler(base: SchedulerMixin, name: str, table: SchedulerTable = SCHEDULER_CLASSES) -> SchedulerMixin:
    """A fresh scheduler for one job, derived from the pipeline's config; `base` is never changed. What the
    model was trained for stays: its prediction type (epsilon, or v_prediction for SD 2.x 768 and v-pred
    fine-tunes), its betas and timestep spacing, all in `base.config`."""
    if name not in table:
        raise ValueError(f"scheduler: {name} is not compatible with this model")
    cls_name, options = table[name]
    by_name = {cls.__name__: cls for cls in base.compatibles} | {type(base).__name__: type(base)}
    if cls_name not in by_name:
        raise ValueError(f"scheduler: {name} is not compatible with this model")
    return by_name[cls_name].from_config(base.config, **options)
