"""A progress bar that degrades to nothing: tqdm on a terminal, silent elsewhere."""
from __future__ import annotations

import sys
from typing import Callable


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass

    def write(self, line: str, log: Callable[[str], None]) -> None:
        log(line)

    def close(self) -> None:
        pass


class _TqdmBar:
    def __init__(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm  # imported on use: keeps `import bnnet` light

        self._bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix(self, **kwargs) -> None:
        self._bar.set_postfix(**kwargs)

    def write(self, line: str, log: Callable[[str], None]) -> None:
        with self._bar.external_write_mode():
            log(line)

    def close(self) -> None:
        self._bar.close()


def progress_bar(total: int, desc: str, enabled: bool | None):
    """A tqdm bar on stderr if enabled (None: only when stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return _TqdmBar(total, desc) if enabled else _NoBar()
