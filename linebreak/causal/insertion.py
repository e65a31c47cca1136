"""The insertion sweep (the paper's "visual illusions"): insert a short token string in the middle of a line
and read the newline probability at the token that ended the line before; alongside, the attention the top
heads give the inserted tokens (``attn.hook_pattern``).

``<bos>`` adds no characters (a pure distractor); a real newline is the positive control (it truly restarts
the line); word strings add characters.
"""

from __future__ import annotations

import numpy as np

from linebreak.causal.config import CausalConfig
from linebreak.causal.result import InsertedString, Insertion
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import run_with_cache


def insertion_sites(ids, lab, n_lines: int, max_insert: int, rng) -> list[tuple[int, int, int]]:
    """(doc, insert-after position, position of the last word before the newline) for lines from the third
    on with at least 4 words, ending early enough that ``max_insert`` more tokens still fit."""
    sites = []
    T = ids.shape[1]
    for d in range(len(ids)):
        nl = np.nonzero(lab["is_newline"][d])[0]
        for a, b in zip(nl[:-1], nl[1:]):
            if lab["line_index"][d, b] >= 3 and b - a - 1 >= 4 and b + max_insert < T:
                sites.append((d, int(a + (b - a) // 2), int(b - 1)))
    if not sites:
        return []
    pick = rng.choice(len(sites), size=min(n_lines, len(sites)), replace=False)
    return [sites[i] for i in sorted(pick)]


def _strings(corpus, cfg: CausalConfig, rng) -> dict[str, list[int]]:
    """The inserted strings: ``<bos>``, two ``<bos>``, a newline, and ``n_strings`` random word strings."""
    lengths = corpus.token_lengths
    spaced = [i for i in range(len(lengths)) if lengths[i] > 1 and corpus.tokenizer.convert_ids_to_tokens(i)
              .startswith((" ", "Ġ", "▁"))]
    strings = {"<bos>": [corpus.bos_id], "<bos><bos>": [corpus.bos_id] * 2,
               "\\n (control)": [corpus.newline_id]}
    for _ in range(cfg.n_strings):
        toks = [int(t) for t in rng.choice(spaced, size=int(rng.integers(1, 3)))] if spaced else []
        if toks:
            strings[corpus.tokenizer.decode(toks)] = toks
    return strings


def insertion_sweep(model, corpus, ids, lab, ranked, cfg: CausalConfig) -> Insertion:
    """The sweep over ``n_lines`` seeded lines of ``ids``, with the attention of the top ``cfg.top`` heads of
    ``ranked``."""
    import torch

    rng = np.random.default_rng(cfg.seed)
    strings = _strings(corpus, cfg, rng)
    sites = insertion_sites(ids, lab, cfg.n_lines, 2, rng)
    if not sites:
        return Insertion(sites=0, strings=[])
    top = ranked[: cfg.top]
    names = list(dict.fromkeys(hook_name("pattern", L) for L, _ in top))

    def run(seqs, q_pos, ins_pos):
        logits, cache = run_with_cache(model, torch.as_tensor(np.stack(seqs)), names)
        p = torch.softmax(logits.float(), -1)[..., corpus.newline_id].cpu().numpy()
        rows = np.arange(len(seqs))
        p_q = p[rows, q_pos]
        att_ins = []
        for L, h in top:
            pat = cache[hook_name("pattern", L)].float()[:, h].numpy()
            att_ins.append([pat[r, q_pos[r], ins_pos[r]].sum() if len(ins_pos[r]) else 0.0 for r in rows])
        return p_q, np.mean(att_ins, axis=0)

    base_seqs = [ids[d] for d, _, _ in sites]
    q0 = np.array([q for _, _, q in sites])
    p_base, _ = run(base_seqs, q0, [[]] * len(sites))
    rows = []
    for name, toks in strings.items():
        m = len(toks)
        seqs = [np.concatenate([ids[d][: a + 1], toks, ids[d][a + 1: ids.shape[1] - m]]) for d, a, _ in sites]
        ins = [list(range(a + 1, a + 1 + m)) for _, a, _ in sites]
        p_new, att = run(seqs, q0 + m, ins)
        rows.append(InsertedString(string=name, n_tokens=m, n_chars=int(corpus.token_lengths[toks].sum()),
                                   p_newline_before=float(p_base.mean()), p_newline_after=float(p_new.mean()),
                                   delta=float((p_new - p_base).mean()), attention_to_insert=float(att.mean())))
    d = np.array([r.delta for r in rows])
    a = np.array([r.attention_to_insert for r in rows])
    ok = len(rows) >= 3 and d.std() > 0 and a.std() > 0
    corr = float(np.corrcoef(np.abs(d), a)[0, 1]) if ok else float("nan")
    return Insertion(sites=len(sites), heads=[f"L{L}H{h}" for L, h in top], strings=rows,
                     corr_abs_delta_vs_attention=corr)
