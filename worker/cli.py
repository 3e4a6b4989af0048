"""`seedgrid worker`: load the model in this process, advertise it, and serve its queue."""

import argparse
import logging
import re
import socket
import sys

from seedgrid.shared.names import DEFAULT_QUEUE, queue_for_model
from seedgrid.shared.settings import SettingsError, get_settings
from seedgrid.worker.memory_plan import MEMORY_MODES


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="seedgrid worker", description=__doc__)
    settings = get_settings()
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help="'tiny', 'tiny-xl' or 'tiny-flux' (built in, SD, SDXL and Flux), a hub id such as "
        "stable-diffusion-v1-5/stable-diffusion-v1-5, a local diffusers folder, or a .safetensors file; "
        f"repeat it to serve several (default without --models: {settings.model})",
    )
    parser.add_argument(
        "--models",
        dest="models_dir",
        metavar="DIR",
        help="also serve every diffusers folder and .safetensors checkpoint in DIR, each by its folder or file "
        "name; models load when a job first needs them",
    )
    parser.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="models kept loaded at once; the least recently used makes room (parked in CPU memory when RAM "
        "allows, else unloaded). Default 0: as many as the device's free memory takes",
    )
    parser.add_argument(
        "--redis",
        default=settings.redis_url,
        help="Redis URL (default: $SEEDGRID_REDIS_URL, else a private Redis started here)",
    )
    parser.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        default=settings.device,
        help="where the pipeline runs (default: cuda when available)",
    )
    parser.add_argument(
        "--vae",
        default=settings.vae,
        help="a better VAE, e.g. stabilityai/sd-vae-ft-mse (hub id, folder or .safetensors)",
    )
    parser.add_argument(
        "--config",
        metavar="DIR",
        help="for a single .safetensors --model: a diffusers folder of its family (e.g. a saved "
        "stabilityai/stable-diffusion-xl-base-1.0) whose configs it is loaded with, instead of the hub's",
    )
    parser.add_argument(
        "--loras",
        dest="loras_dir",
        metavar="DIR",
        help="allow the .safetensors LoRAs in DIR (only these; a job names them, as <lora:NAME:WEIGHT> in a "
        "prompt or --lora NAME:WEIGHT); files added later are served too",
    )
    parser.add_argument(
        "--memory",
        choices=MEMORY_MODES,
        help="how a model sits in GPU memory: full (all of it on the GPU), model-offload (each part moved to the "
        "GPU when it runs: for 8 GB cards and SDXL), sequential-offload (layer by layer: slowest, least memory); "
        "auto (the default) chooses per model from the free GPU memory and the model's size, and prints why",
    )
    parser.add_argument(
        "--max-batch", type=int, default=settings.max_batch, help="largest batch tried (halved on out of memory)"
    )
    parser.add_argument(
        "--turn-images",
        type=int,
        default=None,
        help="images of a large job made per turn before the rest goes back to the queue, so that "
        "other clients' jobs interleave (default: one batch; 0: a whole job in one turn)",
    )
    parser.add_argument(
        "--no-merge",
        dest="merge",
        default=settings.merge,
        action="store_false",
        help="run each job in batches of its own, instead of filling a batch's spare room with "
        "compatible queued jobs (same model, size, steps, scheduler and guidance) of other "
        "clients",
    )
    parser.add_argument(
        "--speedups",
        default=settings.speedups,
        help="comma-separated changes to the pipeline, off by default until a GPU benchmark shows "
        "they help: channels_last, fuse_qkv, compile (torch.compile of the UNet with CUDA "
        "graphs, warmed up at start at 512x512, batch 1 and --max-batch)",
    )
    parser.add_argument(
        "--simulated-seconds",
        type=float,
        default=0.2,
        help="with --model simulated (a stand-in for benchmarks of the queue, not a GPU): "
        "seconds per image (default: %(default)s)",
    )
    parser.add_argument(
        "--simulated-load-seconds",
        type=float,
        default=None,
        help="with simulated models (--model simulated-a --model simulated-b): seconds each load takes (default: 0)",
    )
    parser.add_argument("--name", help="worker name shown to clients (default: host-pid)")
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--gpus",
        metavar="SPEC",
        help="'all' or GPU numbers such as 0,2: one worker process per GPU, each pinned with "
        "CUDA_VISIBLE_DEVICES and named <name or host>-gpu<N>, restarted when it dies and "
        "stopped warmly on SIGTERM (default: one worker in this process)",
    )
    return parser


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    try:
        args = args or build_parser().parse_args(argv)
    except SettingsError as exc:
        print(f"seedgrid worker: {exc}", file=sys.stderr)
        return 2
    if not args.models and not args.models_dir:
        args.models = [get_settings().model]
    args.models = args.models or []
    if args.keep is not None and args.keep < 0:
        print("seedgrid worker: --keep must be at least 0 (0: as many models as memory takes)", file=sys.stderr)
        return 2
    if args.memory not in (None, "auto", "full") and args.device == "cpu":
        print(f"seedgrid worker: --memory {args.memory} offloads to a GPU: it needs --device cuda", file=sys.stderr)
        return 2
    if args.max_batch < 1:
        print("seedgrid worker: --max-batch must be at least 1", file=sys.stderr)
        return 2
    from seedgrid.worker.speedups import parse_speedups

    try:
        speedups = parse_speedups(args.speedups)  # refused here, before a model loads or a supervisor starts
    except ValueError as exc:
        print(f"seedgrid worker: {exc}", file=sys.stderr)
        return 2
    if args.loras_dir and (clash := [s for s in speedups if s in ("fuse_qkv", "compile")]):
        print(f"seedgrid worker: --loras: LoRAs cannot be applied with the {clash[0]} speedup", file=sys.stderr)
        return 2
    if args.device == "cuda" and (problem := cuda_problem()):
        print(f"seedgrid worker: --device cuda: {problem}", file=sys.stderr)  # before a model loads
        return 2
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.gpus is not None:
        return supervise_gpus(args)
    from seedgrid.shared.embedded_redis import EmbeddedRedis, join_hint

    embedded = None
    url = args.redis
    if not url:
        embedded = EmbeddedRedis().start()
        url = embedded.url
        print("No Redis configured: started a private one.\n" + join_hint(url), flush=True)
    from seedgrid.shared.redis_conn import refusal, url_problem

    # A refused password ends here, before a model loads; an unreachable Redis is waited for.
    if problem := url_problem(url) or refusal(url):
        print(f"seedgrid worker: {problem}", file=sys.stderr)
        return 2
    try:
        return serve(url, args, speedups)
    finally:
        if embedded:
            embedded.stop()


def cuda_problem() -> str | None:
    """Why this process cannot run a pipeline on CUDA, with what to do, or None when it can."""
    import torch

    if not torch.backends.cuda.is_built():
        return (
            f"this torch has no CUDA support (torch {torch.__version__}); "
            "use --device cpu or install a CUDA build of torch"
        )
    if not torch.cuda.is_available():
        return (
            f"no CUDA GPU is usable (torch {torch.__version__}, CUDA {torch.version.cuda}); "
            "use --device cpu, or check the NVIDIA driver and CUDA_VISIBLE_DEVICES"
        )
    return None


def supervise_gpus(args: argparse.Namespace) -> int:
    """`--gpus`: count the GPUs here (the only torch import of this path) and supervise a worker per GPU."""
    from seedgrid.worker.supervisor import parse_gpus, run_supervisor

    if args.device == "cpu":
        print(
            "seedgrid worker: --gpus runs every worker on its GPU; drop --device cpu (or SEEDGRID_DEVICE=cpu)",
            file=sys.stderr,
        )
        return 2
    import torch

    try:
        slots = parse_gpus(args.gpus, torch.cuda.device_count())
    except ValueError as exc:
        print(f"seedgrid worker: {exc}", file=sys.stderr)
        return 2
    return run_supervisor(slots, args, device="cuda")


def serve(url: str, args: argparse.Namespace, speedups: tuple[str, ...] = ()) -> int:
    from seedgrid.shared.celery_config import configure_celery
    from seedgrid.shared.embedded_redis import redact
    from seedgrid.worker.celery_app import app
    from seedgrid.worker.heartbeat import Heartbeat
    from seedgrid.worker.lease_keeper import LeaseKeeper
    from seedgrid.worker.runtime import WorkerRuntime
    from seedgrid.worker.tasks import EngineTask, send_generate

    log = logging.getLogger("seedgrid.worker")
    described = ", ".join([*args.models, *([f"the models in {args.models_dir}"] if args.models_dir else [])])
    log.info("loading %s on %s", described, args.device or "the default device")
    try:
        runtime = WorkerRuntime.load(
            url,
            args.models,
            args.device,
            args.vae,
            args.max_batch,
            args.name,
            turn_images=args.turn_images,
            simulated_seconds=args.simulated_seconds,
            simulated_load_seconds=args.simulated_load_seconds or 0.0,
            merge=args.merge,
            speedups=speedups,
            config=args.config,
            models_dir=args.models_dir,
            keep=args.keep or 0,
            memory=args.memory or "auto",
            loras_dir=args.loras_dir,
        )
    except (ValueError, OSError) as exc:
        print(f"seedgrid worker: cannot load {described}: {exc}", file=sys.stderr)
        return 2
    EngineTask.install(runtime)
    configure_celery(app, url)
    queue_order(app, runtime)
    heartbeat = Heartbeat(runtime, url)
    heartbeat.tick()  # advertised at once; a Redis not up yet is waited for, as Celery waits for it
    heartbeat.start()
    lease_keeper = LeaseKeeper(runtime, url, send_generate)
    lease_keeper.start()
    log.info("serving %s on %s via %s", ", ".join(runtime.model_names), runtime.engine.device, redact(url))
    node = re.sub(r"[^A-Za-z0-9_.-]", "-", f"seedgrid-{runtime.name}")
    try:
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--prefetch-multiplier=1",
                "--without-gossip",
                "--without-mingle",
                # The default queue too, read first: a task sent there by mistake is refused at once.
                "--queues=" + ",".join([DEFAULT_QUEUE, *(queue_for_model(model) for model in runtime.model_names)]),
                f"--hostname={node}@{socket.gethostname()}",
                f"--loglevel={args.loglevel.upper()}",
            ]
        )
    finally:
        lease_keeper.stop()
        heartbeat.stop()
    return 0


def queue_order(app, runtime) -> None:
    """A worker of several models reads its loaded models' queues first (see worker/model_affinity.py)."""
    from seedgrid.worker.model_affinity import CYCLE_PATH, AffinityCycle, ModelAffinity

    streak = get_settings().model_streak
    if len(runtime.model_names) < 2:
        return
    if streak == 0:
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "queue_order_strategy": "round_robin"}
        return
    runtime.affinity = AffinityCycle.affinity = ModelAffinity(streak)
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "queue_order_strategy": CYCLE_PATH}
