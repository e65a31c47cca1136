"""Findings of the causal stage: ablations, key resampling, count patching."""

from __future__ import annotations

from linebreak.study.findings.common import _f, _num
from linebreak.study.report import Finding


def causal_findings(c: dict, figs: dict) -> list[Finding]:
    sub, pat = c["subspace_ablation"], c["patching"]
    s = "Causal checks"
    ratio = sub["count_subspace"]["ratio"]
    heads = []
    for key, what in (("boundary_head_ablation", "the measured boundary head (largest attention response to the "
                       "previous newline as the line fills)"), ("head_ablation", "the QK-top head")):
        h = c[key]
        heads.append(_f(key, s, f"Ablating {what} {h['top_head']} raises newline loss by "
                        f"{h['top']['d_newline']:+.4f} nats and other-token loss by {h['top']['d_other']:+.4f}; a "
                        f"random head of the same layer ({h['random_head']}) raises newline loss by "
                        f"{(h['random'] or {}).get('d_newline', float('nan')):+.4f}.", h["top"]["d_newline"], None,
                        [["top head beats random head", int(h["top_beats_random"]), "==", 1]]))
    if c.get("key_ablation"):
        heads.append(_key_ablation_finding(c, s))
    return heads + [
        _f("subspace_ablation", s, f"Ablating the top-{sub['dim']} PCA subspace of the count means at layer "
           f"{sub['layer']} raises newline loss by {sub['count_subspace']['d_newline']:+.4f} and other loss by "
           f"{sub['count_subspace']['d_other']:+.4f} (ratio {ratio:.2f}); random {sub['dim']}-D subspaces: "
           f"{sub['random_mean']['d_newline']:+.4f} / {sub['random_mean']['d_other']:+.4f}.", ratio,
           "ablation_newline_ratio", [["newline/other ratio", ratio, ">=", 5.0],
                                      ["beats random", int(sub["beats_random_on_newline"]), "==", 1]]),
        _f("patching", s, f"Patching the count representation (the count effect with the width held fixed, at "
           f"layer {pat['layer']}, one token per document) from {pat['curve'][0]['delta']:+d} to "
           f"{pat['curve'][-1]['delta']:+d} characters moves P(newline) from {pat['curve'][0]['p_newline']:.3f} to "
           f"{pat['curve'][-1]['p_newline']:.3f}, Spearman {pat['spearman']:.2f} across shifts (monotone steps "
           f"{100 * pat['monotone_fraction']:.0f} %).",
           pat["spearman"], None, [["spearman", pat["spearman"], ">=", 0.8]]),
    ]


def _key_ablation_finding(c: dict, section: str) -> Finding:
    """Does the boundary head's effect run through the width at the key? Its newline keys set to their mean,
    resampled from other newlines, or resampled among newlines ending lines of the same length, against the
    head removed (descriptive: a head that compares at the key loses its effect to the first two only)."""
    name = c["boundary_head_ablation"]["top_head"]
    k = c["key_ablation"][name]
    parts = [f"{n} {_num(v['mean']['d_newline'], '+.4f')} (mean), {_num(v['resample']['d_newline'], '+.4f')} "
             f"(resampled), {_num(v['resample_same_length']['d_newline'], '+.4f')} (resampled, same line length) "
             f"nats against {_num(v['head_d_newline'], '+.4f')} for removing it" for n, v in c["key_ablation"].items()]
    share = k["key_share"]
    return _f("key_ablation", section, "Taking away what a head's keys at newlines say about their line (each set "
              "to the mean newline key, to the key of a random other newline, or to that of a random newline "
              "ending a line of the same length; the head still attends) changes newline loss by: "
              + "; ".join(parts) + ". Share of the measured boundary head's effect that runs through its keys at "
              f"newlines: {_num(share['mean'], '.2f', 'n/a')} (mean), {_num(share['resample'], '.2f', 'n/a')} "
              f"(resampled), {_num(share['resample_same_length'], '.2f', 'n/a')} (same line length).",
              k["resample"]["d_newline"], None, [], head=name, key_share=share)
