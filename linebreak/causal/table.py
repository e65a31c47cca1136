"""The plain-text table ``linebreak causal`` prints: each condition's losses and changes against the baseline."""

from __future__ import annotations

from linebreak.causal.result import CausalResult, LossDelta


def table(res: CausalResult) -> str:
    """One line per condition (newline loss, other loss, their changes), then patching and insertion."""
    lines = []

    def row(name: str, r: LossDelta) -> None:
        lines.append(f"{name:<28} {r.newline_loss:>8.4f} {r.other_loss:>8.4f} {r.d_newline:>+9.4f} "
                     f"{r.d_other:>+9.4f}")

    b = res.baseline
    lines.append(f"{'condition':<28} {'NL loss':>8} {'other':>8} {'ΔNL':>9} {'Δother':>9}")
    lines.append(f"{'baseline':<28} {b.newline_loss:>8.4f} {b.other_loss:>8.4f}")
    ha = res.head_ablation
    row(f"ablate top {ha.top_head}", ha.top)
    row(f"ablate top {len(ha.top_n_heads)} heads", ha.top_n)
    if ha.random is not None:
        row(f"ablate random {ha.random_head}", ha.random)
    row("ablate all heads of layer", ha.all_heads_of_layer)
    for name, k in res.key_ablation.items():
        row(f"{name}: mean newline keys", k.mean)
        row(f"{name}: resampled newline keys", k.resample)
        row(f"{name}: same-length keys", k.resample_same_length)
    sa = res.subspace_ablation
    row(f"count subspace L{sa.layer} ({sa.dim}-d)", sa.count_subspace)
    rm = sa.random_mean
    lines.append(f"{'random subspaces (mean)':<28} {'':>8} {'':>8} {rm['d_newline']:>+9.4f} {rm['d_other']:>+9.4f}")
    pc = res.patching
    lines.append("count patching, P(newline) by shift: "
                 + "  ".join(f"{c.delta:+d}:{c.p_newline:.3f}" for c in pc.curve) + f"  (Spearman {pc.spearman:+.2f})")
    ins = res.insertion
    if ins.strings:
        lines.append(f"insertion sweep on {ins.sites} lines (attention of {', '.join(ins.heads or [])}):")
        for s in ins.strings:
            lines.append(f"  {s.string!r:<22} +{s.n_chars:>2} chars  ΔP(newline) {s.delta:+.4f}  "
                         f"attention to insert {s.attention_to_insert:.3f}")
    return "\n".join(lines)
