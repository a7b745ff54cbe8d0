"""Where a profiled process spent its time: ``python -m benchmarks profile FILE…``.

Reads py-spy's collapsed stacks (``--format raw``: ``frame;frame;… count`` per line, written by
``python -m benchmarks run --profile DIR``) and prints the functions with the most samples,
both on-CPU in the function itself (self) and anywhere below it (total). Idle time in the event
loop's selector is not sampled by py-spy, so the shares are shares of busy time.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _frames(stack: str) -> list[str]:
    """``fn (path/to/module.py:12)`` frames, shortened to ``fn (module.py)``."""
    frames = []
    for frame in stack.split(";"):
        name, _, location = frame.partition(" (")
        source = location.split(":", 1)[0].rsplit("/", 2)[-2:]
        frames.append(f"{name} ({'/'.join(source)})")
    return frames


def summarise(path: Path, top: int = 25) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = _frames(stack)
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if samples == 0:
        return f"{path}: no samples"
    lines = [f"{path.name}: {samples} busy samples", "", "self %  function"]
    lines += [f"{100 * n / samples:6.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total %  function"]
    lines += [f"{100 * n / samples:7.1f}  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines)
