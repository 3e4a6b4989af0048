"""One worker process per GPU on one machine: start them pinned, restart one that dies, stop them warmly.

`seedgrid worker --gpus all` (or `--gpus 0,2`) lands here. Each child is a plain
`python -m worker ... --name <host>-gpu<N> --device cuda` with `CUDA_VISIBLE_DEVICES` naming its
one GPU, so the child sees it as `cuda:0` and loads its own pipeline (no fork after CUDA).
On SIGTERM or SIGINT every child gets SIGTERM: Celery's warm shutdown finishes the running
turn, and late acknowledgement hands back anything unfinished. A second signal, or the stop
timeout, kills the stragglers; their jobs come back after the visibility timeout.

This module never imports torch: the GPU count comes from the caller (worker/cli.py).
Run as `python -m worker.supervisor --slots 0,1 --device cpu -- WORKER ARGS` it supervises
workers without any GPU (tests, or a CPU-only box that wants several workers).
"""

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from seedgrid.shared.embedded_redis import die_with_parent_preexec
from seedgrid.shared.names import worker_command

log = logging.getLogger("seedgrid.supervisor")

STOP_TIMEOUT_S = 60.0  # a warm shutdown waits for the running turn (one batch) to finish
RESTART_BACKOFF_S = 1.0  # doubled for each recent crash of the same slot, up to RESTART_BACKOFF_MAX_S
RESTART_BACKOFF_MAX_S = 15.0
CRASH_LIMIT = 5  # crashes of one slot within CRASH_WINDOW_S before the supervisor gives up on it
CRASH_WINDOW_S = 60.0
POLL_S = 0.2
# Options of `seedgrid worker` the supervisor sets per child itself instead of forwarding.
NOT_FORWARDED = {"gpus", "name", "device", "redis", "help"}
NO_GPU_MESSAGE = (
    "--gpus: no CUDA GPU is visible on this machine (torch.cuda.device_count() is 0); run without "
    "--gpus for one worker on the CPU, or install the CUDA build of torch"
)


def parse_gpus(spec: str, available: int) -> list[int]:
    """`all` or a comma-separated list of GPU numbers, checked against the `available` count."""
    if available <= 0:
        raise ValueError(NO_GPU_MESSAGE)
    valid = f"0..{available - 1}" if available > 1 else "0"
    text = spec.strip().lower()
    if text == "all":
        return list(range(available))
    slots: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(
                f"--gpus: expected 'all' or GPU numbers such as 0,2 (this machine has {valid}), got {spec!r}"
            )
        number = int(part)
        if number >= available:
            raise ValueError(
                f"--gpus: GPU {number} does not exist; this machine has {available} "
                f"GPU{'s' if available > 1 else ''} ({valid})"
            )
        if number in slots:
            raise ValueError(f"--gpus: GPU {number} is listed twice in {spec!r}")
        slots.append(number)
    return slots


def cuda_visible_for_slot(slot: int, environ: Mapping[str, str] | None = None) -> str:
    """What CUDA_VISIBLE_DEVICES a child gets for torch's GPU number `slot` in this process.

    When this process already sees a subset (CUDA_VISIBLE_DEVICES=1,3), torch's GPU 0 is the
    first entry of that list, not physical GPU 0.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    visible = [entry.strip() for entry in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if "CUDA_VISIBLE_DEVICES" in env and slot < len(visible):
        return visible[slot]
    return str(slot)


def forwarded_worker_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The `seedgrid worker` options of `args` as a command line, minus those set per child."""
    argv: list[str] = []
    for action in parser._actions:  # argparse has no public list of a parser's options
        if not action.option_strings or action.dest in NOT_FORWARDED:
            continue
        value = getattr(args, action.dest, None)
        option = max(action.option_strings, key=len)
        if action.nargs == 0:  # a flag such as --no-merge: given when its value is not the default
            if value is not None and value != action.default:
                argv.append(option)
        elif isinstance(value, list):  # a repeated option such as --model
            for each in value:
                argv += [option, str(each)]
        elif value not in (None, ""):
            argv += [option, str(value)]
    return argv


def start_private_redis():
    """A private Redis that a Ctrl+C in the terminal does not stop before the workers are done with it.

    Ctrl+C reaches the whole foreground process group, redis-server included. With SIGINT blocked
    while it starts, redis-server inherits the blocked signal across exec; the supervisor stops it
    after its workers, and it still dies with the supervisor (PR_SET_PDEATHSIG).
    """
    from seedgrid.shared.embedded_redis import EmbeddedRedis

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return EmbeddedRedis().start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@dataclass
class Slot:
    number: int
    name: str
    process: subprocess.Popen | None = None
    starts: int = 0
    crashes: deque = field(default_factory=deque)  # monotonic times of recent unexpected exits
    restart_at: float | None = None
    gave_up: bool = False


class Supervisor:
    """Keep one `python -m worker` child per slot running until asked to stop."""

    def __init__(
        self,
        slots: list[int],
        worker_args: list[str],
        *,
        device: str = "cuda",
        base_name: str | None = None,
        redis_url: str | None = None,
        log_dir: str | None = None,
        stop_timeout: float = STOP_TIMEOUT_S,
        restart_backoff: float = RESTART_BACKOFF_S,
        crash_limit: int = CRASH_LIMIT,
        crash_window: float = CRASH_WINDOW_S,
        command: list[str] | None = None,
    ):
        if not slots:
            raise ValueError("a supervisor needs at least one slot")
        base_name = base_name or socket.gethostname()
        self.slots = [Slot(number, f"{base_name}-gpu{number}") for number in slots]
        self.worker_args = list(worker_args)
        self.device = device
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.stop_timeout = stop_timeout
        self.restart_backoff = restart_backoff
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        self.command = command or worker_command(sys.executable)
        self.preexec = die_with_parent_preexec()
        self.stop_requested = False
        self.kill_requested = False

    # -- children --------------------------------------------------------------------------

    def child_argv(self, slot: Slot) -> list[str]:
        return [*self.command, *self.worker_args, "--name", slot.name, "--device", self.device]

    def child_env(self, slot: Slot) -> dict:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": cuda_visible_for_slot(slot.number)}
        if self.redis_url:
            env["SEEDGRID_REDIS_URL"] = self.redis_url  # not on the command line, where `ps` shows it
        return env

    def start(self, slot: Slot) -> None:
        output = None
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            output = open(os.path.join(self.log_dir, f"{slot.name}.log"), "ab")
        try:
            # Its own session: a Ctrl+C in the terminal reaches the supervisor only, which decides.
            slot.process = subprocess.Popen(
                self.child_argv(slot),
                env=self.child_env(slot),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
                preexec_fn=self.preexec,
            )
        finally:
            if output:
                output.close()
        slot.starts += 1
        slot.restart_at = None
        log.info(
            "%s: started (pid %d, CUDA_VISIBLE_DEVICES=%s, device %s)",
            slot.name,
            slot.process.pid,
            cuda_visible_for_slot(slot.number),
            self.device,
        )

    def running(self) -> list[tuple[Slot, subprocess.Popen]]:
        """The slots whose child is still running, each with that child."""
        return [(slot, slot.process) for slot in self.slots if slot.process is not None and slot.process.poll() is None]

    def check(self, slot: Slot, now: float) -> None:
        """Notice an exit, schedule a restart with backoff, or give up on a slot that keeps crashing."""
        if slot.gave_up:
            return
        if slot.process is not None:
            code = slot.process.poll()
            if code is None:
                return
            slot.process = None
            slot.crashes.append(now)
            while slot.crashes and now - slot.crashes[0] > self.crash_window:
                slot.crashes.popleft()
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            if len(slot.crashes) >= self.crash_limit:
                slot.gave_up = True
                log.error(
                    "%s: %s; it stopped %d times within %.0f s, not restarting it",
                    slot.name,
                    how,
                    len(slot.crashes),
                    self.crash_window,
                )
                return
            delay = min(self.restart_backoff * 2 ** (len(slot.crashes) - 1), RESTART_BACKOFF_MAX_S)
            slot.restart_at = now + delay
            log.warning("%s: %s; restarting in %.1f s", slot.name, how, delay)
        if slot.restart_at is not None and now >= slot.restart_at:
            self.start(slot)

    # -- the loop --------------------------------------------------------------------------

    def request_stop(self, signum: int, _frame=None) -> None:
        if self.stop_requested:
            self.kill_requested = True  # a second signal: do not wait for the running jobs
        self.stop_requested = True
        log.info("%s: stopping the workers", signal.Signals(signum).name)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (then 0), or until every slot was given up (then 1)."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                self.start(slot)
            while not self.stop_requested:
                now = time.monotonic()
                for slot in self.slots:
                    self.check(slot, now)
                if all(slot.gave_up for slot in self.slots):
                    log.error("every worker kept stopping; giving up (see the workers' output above)")
                    return 1
                time.sleep(POLL_S)
            self.stop()
            return 0
        finally:
            self.stop(timeout=0)  # after an exception: leave no child behind
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM every child (a warm shutdown), wait up to the timeout, then SIGKILL the rest."""
        timeout = self.stop_timeout if timeout is None else timeout
        for _, process in self.running():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline and not self.kill_requested:
            time.sleep(POLL_S / 2)
        for slot, process in self.running():
            log.warning("%s: still running; killing it (its job comes back to the queue)", slot.name)
            process.kill()
        for slot in self.slots:
            if slot.process is not None:
                slot.process.wait()
                slot.process = None


def run_supervisor(slots: list[int], args: argparse.Namespace, device: str = "cuda", **options) -> int:
    """`seedgrid worker` with several slots: resolve the Redis once and share it with every child."""
    from seedgrid.shared.embedded_redis import join_hint
    from seedgrid.shared.redis_conn import url_problem
    from seedgrid.worker.cli import build_parser

    embedded = None
    url = args.redis
    if url:
        if problem := url_problem(url):
            print(f"seedgrid worker: {problem}", file=sys.stderr)
            return 2
    else:
        embedded = start_private_redis()
        url = embedded.url
        print("No Redis configured: started a private one for these workers.\n" + join_hint(url), flush=True)
    try:
        supervisor = Supervisor(
            slots,
            forwarded_worker_args(args, build_parser()),
            device=device,
            base_name=args.name,
            redis_url=url,
            **options,
        )
        log.info("supervising %d worker(s): %s", len(slots), ", ".join(slot.name for slot in supervisor.slots))
        return supervisor.run()
    finally:
        if embedded:
            embedded.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.supervisor",
        description="Run and supervise several seedgrid workers without counting GPUs: for a CPU-only box that "
        "wants several workers, and for the tests. `seedgrid worker --gpus` is the way on a GPU box.",
        epilog="Example: python -m worker.supervisor --slots 0,1 --device cpu -- --model tiny --redis URL",
    )
    parser.add_argument(
        "--slots",
        required=True,
        help="comma-separated slot numbers; each child gets CUDA_VISIBLE_DEVICES=<slot> and the name <host>-gpu<slot>",
    )
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="passed to every child")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=STOP_TIMEOUT_S,
        help="seconds a warm shutdown may take before children are killed (default: %(default)s)",
    )
    parser.add_argument("--log-dir", help="write each child's output to <log-dir>/<name>.log")
    parser.add_argument("worker_args", nargs=argparse.REMAINDER, help="after --: options for `seedgrid worker`")
    args = parser.parse_args(argv)
    worker_argv = args.worker_args[1:] if args.worker_args[:1] == ["--"] else args.worker_args
    parts = [part.strip() for part in args.slots.split(",")]
    slots = [int(part) for part in parts if part.isdigit()]
    if len(slots) != len(parts) or len(set(slots)) != len(slots):
        parser.error(f"--slots: expected distinct numbers such as 0,1, got {args.slots!r}")
    from seedgrid.worker.cli import build_parser

    worker_args = build_parser().parse_args(worker_argv)
    if worker_args.gpus:
        parser.error("--gpus does not belong after --: the supervisor's --slots choose the workers")
    logging.basicConfig(level=worker_args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_supervisor(slots, worker_args, args.device, stop_timeout=args.stop_timeout, log_dir=args.log_dir)


if __name__ == "__main__":
    sys.exit(main())
