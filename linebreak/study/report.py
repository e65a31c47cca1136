"""The study report: findings as sentences with their numbers, side by side with the literature.

A :class:`Finding` holds one measured number, the anchor it is compared with (a value from a paper, with
its source), the rule that decides agreement, and the figure that shows it. ``report.json`` carries every
finding plus all stage summaries, settings, versions and wall times (for programs); ``report.md`` renders
the same findings as sentences (for people). Nothing in a finding's ``value`` is typed in: the study fills
it from the stage summaries. Anchors are literature values, cited (:mod:`linebreak.rules.anchors`: the
value and its source beside each finding, the full references at the end of ``report.md``).
"""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from linebreak.io import save_json, write_text
from linebreak.rules.anchors import ANCHORS, SOURCES


@dataclass
class Finding:
    key: str
    section: str
    sentence: str  # what was measured, with the number written in
    value: Any
    anchor_key: str | None = None
    agrees: bool | None = None  # None: no anchor to compare with
    figure: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def anchor(self) -> tuple[Any, str] | None:
        return ANCHORS.get(self.anchor_key) if self.anchor_key else None


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("linebreak", "torch", "transformers", "numpy", "sklearn", "scipy", "plotly", "matplotlib"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - a missing optional package
            out[mod] = "not installed"
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def render_markdown(title: str, findings: list[Finding], stages: dict[str, dict], settings: dict,
                    intro: str = "", appendix: dict[str, str] | None = None) -> str:
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    sections: dict[str, list[Finding]] = {}
    for f in findings:
        sections.setdefault(f.section, []).append(f)
    for section, fs in sections.items():
        lines += [f"## {section}", ""]
        for f in fs:
            s = f"- {f.sentence}"
            if f.anchor is not None:
                val, src = f.anchor
                verdict = {True: "**agrees**", False: "**does not agree**", None: "not comparable"}[f.agrees]
                s += f" Literature: {_fmt(val)} ({src}); here this {verdict}."
            if f.figure:
                s += f" Figure: [{Path(f.figure).name}]({f.figure})."
            lines.append(s)
        lines.append("")
    for heading, block in (appendix or {}).items():
        lines += [f"## {heading}", "", block, ""]
    cited = [full for short, full in SOURCES.items() if any(f.anchor and short in f.anchor[1] for f in findings)]
    if cited:
        lines += ["## References", ""] + [f"- {c}" for c in cited] + [""]
    lines += ["## Stages", "", "| stage | wall time (s) | reused |", "|---|---|---|"]
    for name, st in stages.items():
        lines.append(f"| {name} | {st.get('wall_s', float('nan')):.1f} | {st.get('reused', False)} |")
    lines += ["", "## Settings", "", "```json", _settings_json(settings), "```", ""]
    return "\n".join(lines)


def _settings_json(settings: dict) -> str:
    import json

    from linebreak.io import to_jsonable

    return json.dumps(to_jsonable(settings), indent=2)


def write_report(out_dir: str | Path, title: str, findings: list[Finding], sections: dict[str, Any],
                 stages: dict[str, dict], settings: dict, intro: str = "",
                 appendix: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    record = {
        "title": title,
        "settings": settings,
        "versions": versions(),
        "stages": stages,
        "findings": [dict(asdict(f), anchor=(f.anchor[0] if f.anchor else None),
                          anchor_source=(f.anchor[1] if f.anchor else None)) for f in findings],
        "sections": sections,
    }
    j = save_json(out_dir / "report.json", record)
    m = write_text(out_dir / "report.md", render_markdown(title, findings, stages, settings, intro, appendix))
    return j, m
