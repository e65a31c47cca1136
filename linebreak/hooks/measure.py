"""What the analyses compute from a hooked forward pass: each head's write into the residual stream, and the
next-token loss split at newlines.

- :func:`head_outputs` maps one head's ``hook_z`` through the output projection alone (TransformerLens
  ``attn.hook_result``, without the bias).
- :func:`newline_loss` splits next-token cross-entropy into positions whose next token is the newline and all
  other positions: the measure every causal check reports.
"""

from __future__ import annotations

from linebreak.hooks import arch


def head_outputs(model, layer: int, z, heads) -> dict:
    """Each head's write into the residual stream: ``z[..., h, :]`` through the output projection alone
    (no bias). ``z [..., H, d_head]`` (e.g. float32 on the CPU, from a cache) is run on the projection's own
    device and dtype; returns head -> ``[..., d_model]`` float32 on the CPU (for a float32 CPU model, exactly
    the projection's output)."""
    import torch

    proj = arch.out_proj(model, layer)
    z = z.to(proj.weight)
    out = {}
    with torch.no_grad():
        zero = proj(torch.zeros_like(z.flatten(-2)[..., :1, :]))  # the bias alone, broadcastable
        for h in heads:
            only = torch.zeros_like(z)
            only[..., h, :] = z[..., h, :]
            out[h] = (proj(only.flatten(-2)) - zero).float().cpu()
    return out


def newline_loss(logits, input_ids, newline_id: int) -> dict:
    """Cross-entropy of the next token, on positions whose next token is the newline and on all others.

    Returns sums and counts (so batches add up) and the probability given to the newline on each position.
    """
    import torch

    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = input_ids[:, 1:]
    nll = -lp.gather(-1, target[..., None])[..., 0]
    is_nl = target == newline_id
    return {"nl_sum": float(nll[is_nl].sum()), "nl_n": int(is_nl.sum()),
            "other_sum": float(nll[~is_nl].sum()), "other_n": int((~is_nl).sum()),
            "p_newline": lp[..., newline_id].exp()}
