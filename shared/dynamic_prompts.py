"""Dynamic prompts: `{a|b|c}` alternatives and `__name__` wildcards, expanded before a job is queued.

`{red|blue} car` expands to every combination ("red car", "blue car"), or to N seeded random picks
with `samples=N`. `__color__` inserts a random line of `color.txt` from the wildcards folder (a
picked line may itself hold alternatives or wildcards). Braces nest; `\\{`, `\\}` and `\\|` are
literal. The picks are seeded, so the same prompts, seed and files give the same expansions.
"""

import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from seedgrid.shared.request import RequestError

MAX_EXPANSIONS = 256
MAX_WILDCARD_DEPTH = 8
WILDCARD = re.compile(r"__([A-Za-z0-9][\w\-/]*?)__")
SPECIAL = re.compile(r"[{}|]|__")


class PromptError(RequestError):
    """A prompt that cannot be expanded; the message names the prompt."""

    def __init__(self, problem: str):
        super().__init__("prompt", problem)


@dataclass(frozen=True)
class Wildcard:
    name: str


@dataclass(frozen=True)
class Choice:
    options: tuple[tuple, ...]  # each option is a sequence of parts


Part = str | Wildcard | Choice


def default_wildcards_dir() -> Path:
    """`wildcards` in the platform's config folder for seedgrid (where the app keeps its settings)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "seedgrid" / "wildcards"


def _literal(text: str) -> list[Part]:
    parts: list[Part] = []
    pos = 0
    for match in WILDCARD.finditer(text):
        parts += [text[pos : match.start()], Wildcard(match[1])]
        pos = match.end()
    return [p for p in [*parts, text[pos:]] if p != ""]


def parse(text: str) -> tuple[Part, ...]:
    """The prompt as literal text, wildcards and choices; raises ValueError for unbalanced braces."""
    stack: list[tuple[list[tuple], list[Part]]] = []  # per open brace: (options so far, current option)
    current: list[Part] = []
    chunk: list[str] = []

    def flush() -> None:
        current.extend(_literal("".join(chunk)))
        chunk.clear()

    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] in ("{", "}", "|"):
            chunk.append(text[i + 1])
            i += 2
            continue
        if c == "{":
            flush()
            stack.append(([], current))
            current = []
        elif c == "|" and stack:
            flush()
            stack[-1][0].append(tuple(current))
            current = []
        elif c == "}":
            if not stack:
                raise ValueError(f"a }} at character {i + 1} has no {{ before it")
            flush()
            options, outer = stack.pop()
            outer.append(Choice((*options, tuple(current))))
            current = outer
        else:
            chunk.append(c)
        i += 1
    if stack:
        raise ValueError("a { has no closing }")
    flush()
    return tuple(current)


def _count(parts: tuple[Part, ...]) -> int:
    total = 1
    for part in parts:
        if isinstance(part, Choice):
            total *= sum(_count(option) for option in part.options)
        total = min(total, MAX_EXPANSIONS + 1)  # enough to know it is too many
    return total


class _Expander:
    def __init__(self, rng: random.Random, wildcards: Path | None):
        self.rng = rng
        self.wildcards = wildcards
        self._lines: dict[str, list[str]] = {}

    def lines(self, name: str) -> list[str]:
        if name not in self._lines:
            if ".." in name.split("/"):
                raise ValueError(f"__{name}__ is not a wildcard name")
            folder = self.wildcards or default_wildcards_dir()
            path = folder / f"{name}.txt"
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = "no such file" if isinstance(exc, FileNotFoundError) else type(exc).__name__
                raise ValueError(f"__{name}__ needs {name}.txt in the wildcards folder {folder} ({reason})") from None
            lines = [line.strip() for line in text.splitlines()]
            self._lines[name] = [line for line in lines if line and not line.startswith("#")]
            if not self._lines[name]:
                raise ValueError(f"__{name}__: {path.name} has no lines")
        return self._lines[name]

    def wildcard(self, name: str, depth: int) -> str:
        if depth >= MAX_WILDCARD_DEPTH:
            raise ValueError(f"__{name}__: wildcards nest deeper than {MAX_WILDCARD_DEPTH}")
        return self.sample(parse(self.rng.choice(self.lines(name))), depth + 1)

    def sample(self, parts: tuple[Part, ...], depth: int = 0) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Wildcard):
                out.append(self.wildcard(part.name, depth))
            else:
                out.append(self.sample(self.rng.choice(part.options), depth))
        return "".join(out)

    def every(self, parts: tuple[Part, ...]) -> list[str]:
        """Every combination of the choices, in order; wildcards picked at random for each."""
        results = [""]
        for part in parts:
            if isinstance(part, str):
                results = [r + part for r in results]
            elif isinstance(part, Wildcard):
                results = [r + self.wildcard(part.name, 0) for r in results]
            else:
                endings = [e for option in part.options for e in self.every(option)]
                results = [r + e for r in results for e in endings]
        return results


def _tidy(prompt: str) -> str:
    return re.sub(r" {2,}", " ", prompt).strip()


def expand_prompt(
    prompt: str, samples: int | None = None, seed: int = 0, wildcards: Path | None = None, label: str = "prompt 1"
) -> list[str]:
    """The prompts `prompt` stands for: every combination, or `samples` seeded random picks."""
    if not SPECIAL.search(prompt):
        return [prompt]
    preview = prompt if len(prompt) <= 40 else prompt[:37] + "..."
    try:
        parts = parse(prompt)
        expander = _Expander(random.Random(f"{seed}:{prompt}"), wildcards)
        if not any(isinstance(p, (Choice, Wildcard)) for p in parts):
            return [_tidy(prompt.replace("\\{", "{").replace("\\}", "}").replace("\\|", "|"))]
        if samples is not None:
            if not 1 <= samples <= MAX_EXPANSIONS:
                raise ValueError(f"--prompt-samples {samples} is not from 1 to {MAX_EXPANSIONS}")
            return [_tidy(expander.sample(parts)) for _ in range(samples)]
        count = _count(parts)
        if count > MAX_EXPANSIONS:
            raise ValueError(
                f"expands to more than {MAX_EXPANSIONS} prompts (--prompt-samples N picks N of them at random)"
            )
        return [_tidy(p) for p in expander.every(parts)]
    except ValueError as exc:
        raise PromptError(f"{label} {preview!r}: {exc}") from None


def expand_prompts(
    prompts: list[str], samples: int | None = None, seed: int = 0, wildcards: str | os.PathLike | None = None
) -> list[str]:
    """Each prompt expanded in turn (see expand_prompt); at most MAX_EXPANSIONS in all."""
    folder = Path(wildcards) if wildcards else None
    out: list[str] = []
    for i, prompt in enumerate(prompts):
        out += expand_prompt(prompt, samples, seed, folder, label=f"prompt {i + 1}")
        if len(out) > MAX_EXPANSIONS:
            raise PromptError(f"the prompts expand to more than {MAX_EXPANSIONS} prompts (from prompt {i + 1} on)")
    return out
