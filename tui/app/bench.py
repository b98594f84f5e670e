"""The faces screen timed for `facepair bench faces` (core.bench.faces takes this as its `screen`:
core never imports the TUI): a headless app pushes the screen and waits for its first page."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


def first_page_seconds(home: Path, project: str, side: str = "a", size: tuple[int, int] = (160, 50),
                       timeout: float = 120.0) -> tuple[float, float]:
    """(wall, CPU) seconds from pushing the faces screen to its first page drawn with every
    thumbnail; CPU counts every thread of this process (on a busy machine the wall time grows
    with the load, the CPU time much less)."""
    from tui.app.app import FacepairApp
    from tui.app.screens.faces import FacesScreen

    async def measure() -> tuple[float, float]:
        app = FacepairApp(home, picture_mode="halfcell")
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            screen = FacesScreen(project, side)
            t0, cpu0 = time.perf_counter(), time.process_time()
            app.push_screen(screen)
            while time.perf_counter() - t0 < timeout:
                if screen.state == "ready" and first_page_drawn(screen):
                    return time.perf_counter() - t0, time.process_time() - cpu0
                await asyncio.sleep(0.005)
            raise TimeoutError(f"the faces screen showed no first page in {timeout:g} s")

    return asyncio.run(measure())


def first_page_drawn(screen) -> bool:
    grid = screen.grid
    shown = grid.visible()
    return len(shown) > 0 and all(grid._cells.get(i) is not None for i in shown)
