"""Figure saving shared by every plot: PNG through matplotlib (Agg), interactive HTML through plotly.

Both are written atomically. Callers pass full file names; build them with ``with_name`` or an f-string, not
``with_suffix``, which would cut names that contain a dot (``resid_post.1``). HTML embeds plotly.js
(``include_plotlyjs=True``), so it opens offline and fetches nothing.
"""

from __future__ import annotations

from pathlib import Path

from linebreak.io import atomic_write, write_text


def save_png(fig, path: str | Path, dpi: int = 130) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)


def save_html(fig, path: str | Path) -> Path:
    """Save a plotly figure as a self-contained HTML file (plotly.js embedded; works offline).

    The plot's element id is named after the file (plotly would draw a random one), so the same figure gives
    the same bytes."""
    div_id = "linebreak-" + "".join(c if c.isalnum() else "-" for c in Path(path).stem)
    return write_text(path, fig.to_html(include_plotlyjs=True, full_html=True, div_id=div_id))


def new_figure(*args, **kwargs):
    """``plt.subplots`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)
