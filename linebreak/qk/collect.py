"""What the qk stage reads from the model: the documents, one streaming forward pass, and per-value means.

The heads read the residual stream *after* their layer's own norm (TL ``blocks.{L}.ln1.hook_out``; the block
input ``hook_resid_pre`` where no norm comes before attention, as in OLMo-2: :func:`linebreak.hooks.arch.
attention_input_site`), so that is where the two sides are taken:

- query side: word tokens (line-initial words, ``<bos>`` and newlines excluded: line-initial words form their
  own cluster), grouped by character count ``i``;
- key side: newline tokens, grouped by the key label (``width``: the document's wrap width; ``line_len``:
  the length of the line the newline ends).

A head of a q/k-norm model (Qwen3, Gemma-3, OLMo-2) scores its *normed* queries and keys, and the norm is not
linear, so a mean of residual vectors mapped through ``W_Q`` is not the mean of what the head computes. For
such a model the pass also keeps, per head, the per-value sums of the head's own normed queries and keys
(``attn.hook_q_normed`` / ``hook_k_normed``, before rotary): the sides the head really compares.

One pass (:func:`collect`) keeps per-value sums (float64, for the means), the attention from every query token
to its most recent previous newline (for the response curves and the key-side test), and, for the probe
route, a seeded sample of at most ``probe_rows`` token rows (:func:`probe_sample`, chosen before the pass).
The same pass sums each head's mixed values ``z`` per characters remaining, from which the top heads'
outputs follow linearly (:func:`linebreak.qk.top_heads.top_head_outputs`). Every layer's tensors are reduced
inside its own hooks as the forward pass reaches it, and the model is not
asked to return its attentions, so at most one layer's attention pattern (``[batch, heads, T, T]``) is held at
a time. Sums are kept apart for the even- and odd-numbered documents so the verdict can be judged again on each
half (:func:`linebreak.qk.verdict.split_half`).

Memory is bounded: only the analysed layers (``cfg.layers``, :func:`analysed_layers`) are hooked and kept,
and what the pass will hold is planned from the labels and the layout before the model runs
(:func:`planned_bytes`); a plan over ``cfg.max_gb`` is refused in one line that says what to cut
(:func:`check_budget`). Every per-layer array has one entry per analysed layer, in order (``Sums.layers``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from linebreak.capture.collect import sample_rows
from linebreak.hooks import arch, load
from linebreak.hooks.points import hook_name
from linebreak.io import UserError
from linebreak.probe import manifold
from linebreak.qk.config import QKConfig


def select_docs(corpus, split: str, n_docs: int) -> tuple[np.ndarray, dict]:
    """The first ``n_docs`` documents of ``split`` and their labels, plus ``query`` (non-initial word
    tokens), ``prev_nl`` (position of the most recent newline before each token, -1 if none) and ``offset``
    (tokens back to it, -1 if none)."""
    if split not in corpus.splits:
        raise UserError(f"corpus has no split {split!r}; it has: {', '.join(corpus.splits)}")
    ids = corpus.splits[split].input_ids[:n_docs]
    lab = {k: v[:n_docs] for k, v in corpus.labels(split).items()}
    is_nl = lab["is_newline"].astype(bool)
    lab.setdefault("token_len", corpus.token_lengths[ids])  # per position if the corpus has it
    lab["query"] = manifold.word_rows(lab)  # the same counting tokens as the manifold's centroids
    T = ids.shape[1]
    last = np.where(is_nl, np.arange(T), -1)
    last = np.maximum.accumulate(last, axis=1)
    lab["prev_nl"] = np.concatenate([np.full((len(ids), 1), -1), last[:, :-1]], axis=1)
    lab["offset"] = np.where(lab["prev_nl"] >= 0, np.arange(T) - lab["prev_nl"], -1)  # tokens back to it
    return ids, lab


def prose_documents(ids: np.ndarray, lab: dict) -> tuple[np.ndarray, dict]:
    """The wrapped-prose documents of a selection (all of them unless the corpus mixes in tables, whose
    newlines end rows, not wrap decisions); a one-line :class:`UserError` when there are none."""
    if "col_index" not in lab:
        return ids, lab
    keep = (lab["col_index"] < 0).all(axis=1)
    if not keep.any():
        raise UserError("these documents are all tables, and the newline test reads wrapped prose: use --keys pad "
                        "(or a corpus with --table-fraction below 1)")
    return ids[keep], {k: v[keep] for k, v in lab.items()}


def check_model(model, tokenizer, corpus) -> arch.Layout:
    """The model's layout, after checking it has attention, fits the corpus' vocabulary and tokenizer, and
    computes eager attention (so its attention pattern can be read)."""
    lay = arch.layout(model)
    if lay.n_layers < 1 or lay.n_heads < 1:
        raise UserError("no attention layers found in the model")
    if tokenizer is not None:
        load.check_tokenizer_matches(tokenizer, corpus)
    load.check_vocab_fits(model, max(int(s.input_ids.max()) for s in corpus.splits.values()))
    load.ensure_eager(model)
    return lay


def analysed_layers(model, lay: arch.Layout, cfg: QKConfig) -> list[int]:
    """The layers whose heads are judged: ``cfg.layers`` sorted and unique, or every layer when it is empty; a
    layer the model does not have is a one-line :class:`UserError`."""
    return [arch.check_layer(model, L) for L in sorted(set(cfg.layers))] if cfg.layers else list(range(lay.n_layers))


def query_rows(lab: dict, rotary: bool) -> np.ndarray:
    """``[n_docs, T]`` mask of the query tokens whose vectors are summed: the non-initial word tokens, and in a
    rotary model only those with a previous newline (each is rotated to it, :mod:`linebreak.qk.maps`)."""
    return lab["query"] & (lab["offset"] >= 0) if rotary else lab["query"]


def newline_queries(lab: dict) -> np.ndarray:
    """``[n_docs, T]`` mask of the query tokens whose attention to their most recent previous newline is read
    (response curves, the key-side test): those with a previous newline, unless it ends a line longer than its
    width (a URL alone on its line, ``over_long``), whose width is no wrap decision to compare with."""
    rows = lab["query"] & (lab["prev_nl"] >= 0)
    if "over_long" in lab:
        b = np.arange(len(rows))[:, None]
        rows &= ~np.asarray(lab["over_long"], dtype=bool)[b, np.maximum(lab["prev_nl"], 0)]
    return rows


def probe_sample(rows: np.ndarray, n: int, seed) -> np.ndarray:
    """The rows the probe route keeps, as a mask like ``rows`` (``[n_docs, T]``: its query and newline tokens):
    all of them when there are at most ``n``, else a seeded sample of ``n``
    (:func:`linebreak.capture.collect.sample_rows` over these rows). Chosen before the forward pass, so what the
    route holds is bounded however many documents are run; query and newline rows are sampled alike, so both
    keep their share."""
    idx = np.flatnonzero(rows)
    keep = np.zeros(rows.shape, dtype=bool)
    keep.flat[idx[sample_rows(1, len(idx), n, seed)[0]]] = True
    return keep


def planned_bytes(lay: arch.Layout, n_layers: int, n_counts: int, n_offsets: int, n_keys: int, n_attention: int,
                  n_probe_rows: int, normed: bool) -> dict[str, int]:
    """Bytes :func:`collect` and the probe route will hold for ``n_layers`` analysed layers, by part:

    - ``sums``: the float64 per-value sums of both halves, ``[2, n_layers, n_counts, n_offsets, d_model]`` for
      the queries and ``[2, n_layers, n_keys, d_model]`` for the keys (and, on a q/k-norm model, the same per
      head with ``n_heads * d_head`` in place of ``d_model``);
    - ``attention``: float32 attention of ``n_attention`` query tokens to their newline, per layer and head;
    - ``probe_rows``: ``n_probe_rows`` float32 rows of ``d_model`` per layer (0 without the route; written to
      temporary files during the pass, :class:`Spill`, and counted here as the bound on what the stage stores), and
      ``probe_fit``: the route's float64 working copies of one layer's rows while its probes are fitted (about
      three: the rows, their training subset and its standardised copy).
    """
    cells = 2 * n_layers * (n_counts * n_offsets + n_keys)
    width = lay.d_model + (lay.n_heads * lay.d_head if normed else 0)
    return {"sums": 8 * cells * width, "attention": 4 * n_attention * n_layers * lay.n_heads,
            "probe_rows": 4 * n_probe_rows * n_layers * lay.d_model, "probe_fit": 8 * 3 * n_probe_rows * lay.d_model}


def check_budget(plan: dict[str, int], cfg: QKConfig, n_layers: int) -> None:
    """A one-line :class:`UserError` naming what to cut when ``plan`` (:func:`planned_bytes`) exceeds
    ``cfg.max_gb``."""
    total = sum(plan.values())
    if total > cfg.max_gb * 1e9:
        parts = ", ".join(f"{k.replace('_', ' ')} {v / 1e9:.1f}" for k, v in plan.items() if v)
        raise UserError(f"this qk run would hold {total / 1e9:.1f} GB ({parts}; {n_layers} layers), over --max-gb "
                        f"{cfg.max_gb:g}: choose --layers, fewer --n-docs, --probes false or a lower --probe-rows "
                        f"(or raise --max-gb)")


def layer_slot(layers: tuple[int, ...] | None, layer: int) -> int:
    """Where model layer ``layer`` sits on a layer axis that holds ``layers`` in order (None: every layer)."""
    return layer if layers is None else layers.index(layer)


@dataclass
class Sums:
    """Per-value sums of the vectors attention reads, and token counts. Queries per (count, offset to the
    previous newline; offset 0 only unless rotary), keys per key value: ``q_sum [n_layers, counts, offsets, d]``,
    ``q_n [counts, offsets]``, ``k_sum [n_layers, keys, d]``, ``k_n [keys]``; on a q/k-norm model also the
    heads' own normed queries and keys, ``qn_sum [n_layers, counts, offsets, n_heads, d_head]`` and
    ``kn_sum [n_layers, keys, n_heads, d_head]`` (None otherwise). With a leading axis of 2 (even, odd
    documents) for the two halves. The layer axis holds the model layers ``layers``, in order (None: every
    layer, so that entry ``L`` is layer ``L``); :meth:`slot` finds a layer's entry."""
    q_sum: np.ndarray
    q_n: np.ndarray
    k_sum: np.ndarray
    k_n: np.ndarray
    qn_sum: np.ndarray | None = None
    kn_sum: np.ndarray | None = None
    layers: tuple[int, ...] | None = None

    def _map(self, f) -> Sums:
        return Sums(*(None if a is None else f(a) for a in (self.q_sum, self.q_n, self.k_sum, self.k_n,
                                                             self.qn_sum, self.kn_sum)), layers=self.layers)

    def half(self, j: int) -> Sums:
        return self._map(lambda a: a[j])

    def total(self) -> Sums:
        """Both halves added up: the sums over all documents."""
        return self._map(lambda a: a.sum(0))

    def slot(self, layer: int) -> int:
        """The entry of model layer ``layer`` on the layer axis."""
        return layer_slot(self.layers, layer)

    @property
    def normed(self) -> bool:
        """Whether the heads' own normed queries and keys were summed (a q/k-norm model)."""
        return self.qn_sum is not None


class Spill:
    """float32 rows ``[n, d]`` kept in an anonymous temporary file (deleted when closed or collected), written
    batch by batch at their place and read back whole: the probe route's rows of every layer are written during
    the pass and read one layer at a time, so they never all sit in memory (at d_model 768 they are 1.2 GB)."""

    def __init__(self, n: int, d: int):
        import tempfile

        self.n, self.d = n, d
        self.file = tempfile.TemporaryFile(buffering=0)

    @property
    def nbytes(self) -> int:
        return 4 * self.n * self.d

    def __len__(self) -> int:
        return self.n

    def write(self, start: int, rows: np.ndarray) -> None:
        self.file.seek(4 * start * self.d)
        np.ascontiguousarray(rows, dtype=np.float32).tofile(self.file)

    def read(self) -> np.ndarray:
        self.file.seek(0)
        out = np.fromfile(self.file, dtype=np.float32, count=self.n * self.d)
        if out.size != self.n * self.d:
            raise OSError(f"the probe route's temporary file holds {out.size} of {self.n * self.d} values")
        return out.reshape(self.n, self.d)


@dataclass
class ProbeRows:
    """The token rows the probe route fits on, per analysed layer (``{layer: [arrays or a Spill]}``), and their
    labels per batch: ``q_lab`` (count, offset, document), ``k_lab`` (key value, document)."""
    q: dict[int, list]
    k: dict[int, list]
    q_lab: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    k_lab: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def layer(self, L: int) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``L``'s query rows and key rows, each as one array."""
        def whole(parts):
            return np.concatenate([a.read() if isinstance(a, Spill) else a for a in parts])
        return whole(self.q[L]), whole(self.k[L])


@dataclass
class Collected:
    halves: Sums  # leading axis 2: even / odd documents
    attention: dict[int, np.ndarray]  # per analysed layer: [query tokens with a previous newline, n_heads]
    rows: ProbeRows | None  # None once the probe route has used them (or when it is off: empty lists)
    # per analysed layer, each head's mixed values z summed per characters remaining (0..cfg.max_remaining) over
    # the query tokens, and their token counts: the top heads' outputs are these sums through W_O
    # (linebreak.qk.top_heads.top_head_outputs), so no second pass is needed
    z_sum: np.ndarray | None = None  # [n_layers, remaining, n_heads, d_head]
    z_n: np.ndarray | None = None  # [remaining]


def numpy64(x) -> np.ndarray:
    """A hooked tensor as float64 numpy on the CPU (through float32: what the statistics read)."""
    return x.detach().float().cpu().double().numpy()


def collect(model, lay, ids, lab, cfg: QKConfig, key_values: np.ndarray, rotary: bool) -> Collected:
    """Per-value sums of what attention reads (query: count, key: key label), per-token attention to the
    previous newline, and (``cfg.probes``, on a model without q/k norm) a sample of the token rows
    (:func:`probe_sample`), in one streaming pass over the layers ``cfg.layers`` (:func:`analysed_layers`), after
    checking the plan against ``cfg.max_gb`` (:func:`check_budget`). For a rotary model the query sums are
    kept per (count, offset) over the tokens that have a previous newline, so that each head's queries can be
    rotated to it (:func:`linebreak.qk.maps.rotated_query_map`). On a q/k-norm model the heads' own normed
    queries and keys are summed too (see the module doc). The pass is :func:`collect_reader`'s."""
    from linebreak.hooks.run import read_pass

    reader, finish = collect_reader(model, lay, ids, lab, cfg, key_values, rotary)
    read_pass(model, ids, cfg.batch_size, [reader], desc="qk: forward")
    return finish()


def collect_reader(model, lay, ids, lab, cfg: QKConfig, key_values: np.ndarray, rotary: bool):
    """:func:`collect` as a reader of a forward pass over ``ids``: ``(reader, finish)``, where ``finish()``
    returns the :class:`Collected` once the pass has run. The plan is checked here, before any pass."""
    import torch

    from linebreak.hooks.run import Reader

    layers = analysed_layers(model, lay, cfg)
    slot = {L: j for j, L in enumerate(layers)}
    nL, H, d, dh = len(layers), lay.n_heads, lay.d_model, lay.d_head
    rep = H // lay.n_kv_heads  # query heads per key/value head
    normed = arch.has_qk_norm(model)
    keep_rows = cfg.probes and not normed  # the probe route maps residual directions through W_Q / W_K
    max_c = int(lab["count"].max()) + 1
    max_k = int(key_values.max()) + 1
    n_off = int(lab["offset"][lab["query"]].max()) + 1 if rotary else 1
    q_all, k_all = query_rows(lab, rotary), lab["is_newline"].astype(bool)
    if "over_long" in lab:  # the newline of a line longer than its width (a URL alone) is no wrap decision
        k_all &= ~np.asarray(lab["over_long"], dtype=bool)
    to_nl = newline_queries(lab)  # query tokens whose attention to their newline is read
    sampled = (probe_sample(q_all | k_all, cfg.probe_rows, [cfg.seed, 2]) if keep_rows  # its own random stream
               else np.zeros_like(q_all))
    check_budget(planned_bytes(lay, nL, max_c, n_off, max_k, int(to_nl.sum()), int(sampled.sum()), normed),
                 cfg, nL)
    sums = Sums(np.zeros((2, nL, max_c, n_off, d)), np.zeros((2, max_c, n_off)),
                np.zeros((2, nL, max_k, d)), np.zeros((2, max_k)),
                np.zeros((2, nL, max_c, n_off, H, dh)) if normed else None,
                np.zeros((2, nL, max_k, H, dh)) if normed else None, layers=tuple(layers))
    att = {L: np.empty((int(to_nl.sum()), H), np.float32) for L in layers}  # filled batch by batch
    rows = ProbeRows(q={L: [] for L in layers}, k={L: [] for L in layers})
    # the sampled rows go to temporary files (Spill), the attention to the newline into arrays made once at its
    # final size (known before the pass), not into one new array per batch: long-lived blocks interleaved with
    # each batch's temporaries fragment the heap (measured: 2 GB more resident memory over 128 documents of the
    # benchmark's d_model-768 model)
    n_pq, n_pk = (int((m & sampled).sum()) if keep_rows else 0 for m in (q_all, k_all))
    q_buf = {L: Spill(n_pq, d) for L in layers} if keep_rows else {}
    k_buf = {L: Spill(n_pk, d) for L in layers} if keep_rows else {}
    R = cfg.max_remaining + 1
    z_sum, z_n = np.zeros((nL, R, H, dh)), np.zeros(R)
    at = {}  # the current batch: row selections, filled in before its forward pass

    def reads(L):  # what the heads read: the attention norm's output (or the block input, post-norm)
        j = slot[L]

        def fn(x, name):
            x = numpy64(x)
            np.add.at(sums.q_sum, (at["qh"], j, at["qc"], at["qo"]), x[at["qm"]])
            np.add.at(sums.k_sum, (at["kh"], j, at["kv"]), x[at["km"]])
            if keep_rows:
                q_buf[L].write(at["q0"], x[at["pq"]])
                k_buf[L].write(at["k0"], x[at["pk"]])
        return fn

    def normed_q(L):
        def fn(q, name):
            np.add.at(sums.qn_sum, (at["qh"], slot[L], at["qc"], at["qo"]), numpy64(q)[at["qm"]])
        return fn

    def normed_k(L):
        def fn(k, name):
            k = k.repeat_interleave(rep, -2)  # one key per query head: head h reads key head h // rep
            np.add.at(sums.kn_sum, (at["kh"], slot[L], at["kv"]), numpy64(k)[at["km"]])
        return fn

    def mixed_values(L):  # each head's z, summed per characters remaining
        def fn(z, name):
            np.add.at(z_sum[slot[L]], at["zr"], numpy64(z)[at["zm"]])
        return fn

    def to_newline(L):  # attention from query tokens to their most recent previous newline
        def fn(w, name):
            b, t, s = (torch.as_tensor(at[k], device=w.device) for k in ("b", "t", "s"))
            att[L][at["a0"]: at["a0"] + len(at["b"])] = w[b, :, t, s].detach().float().cpu().numpy().reshape(-1, H)
        return fn

    site = arch.attention_input_site(model)
    fwd = [(hook_name(site, L), reads(L)) for L in layers]
    fwd += [(hook_name("pattern", L), to_newline(L)) for L in layers]
    fwd += [(hook_name("z", L), mixed_values(L)) for L in layers]
    if normed:
        fwd += [(hook_name(s, L), f(L)) for L in layers for s, f in (("q_normed", normed_q),
                                                                      ("k_normed", normed_k))]
    offsets = lab["offset"] if rotary else np.zeros_like(lab["offset"])  # offset 0 only without rotary

    def begin(s, e):  # the batch's row selections, for the hooks; its token counts
        qm, km, c, kv, off = q_all[s:e], k_all[s:e], lab["count"][s:e], key_values[s:e], offsets[s:e]
        pq, pk = qm & sampled[s:e], km & sampled[s:e]
        half = np.broadcast_to(np.arange(s, e)[:, None] % 2, qm.shape)  # document parity
        doc = np.broadcast_to(np.arange(s, e)[:, None], qm.shape)  # document index
        pn = lab["prev_nl"][s:e]
        b, t = np.nonzero(to_nl[s:e])
        rem = lab["remaining"][s:e]
        zm = lab["query"][s:e] & (rem >= 0) & (rem < R)
        np.add.at(z_n, rem[zm], 1)
        at.update(qm=qm, qh=half[qm], qc=c[qm], qo=off[qm], km=km, kh=half[km], kv=kv[km], pq=pq, pk=pk,
                  b=b, t=t, s=pn[b, t], zm=zm, zr=rem[zm], q0=int((q_all[:s] & sampled[:s]).sum()),
                  k0=int((k_all[:s] & sampled[:s]).sum()), nq=int(pq.sum()), nk=int(pk.sum()), a0=int(to_nl[:s].sum()))
        np.add.at(sums.q_n, (half[qm], c[qm], off[qm]), 1)
        np.add.at(sums.k_n, (half[km], kv[km]), 1)
        if keep_rows:
            rows.q_lab.append((c[pq], off[pq], doc[pq]))
            rows.k_lab.append((kv[pk], doc[pk]))

    def finish() -> Collected:  # patterns came from the hooks alone: the model never returned its attentions
        for L in q_buf:
            rows.q[L], rows.k[L] = [q_buf[L]], [k_buf[L]]
        return Collected(sums, att, rows, z_sum, z_n)

    return Reader(fwd, begin, len(ids)), finish


def per_value_means(sums: np.ndarray, counts: np.ndarray, values: np.ndarray, min_n: int):
    """``(values kept, means [n_layers, kept, ...])``: the values with at least ``min_n`` tokens and their mean
    vectors in every layer, from ``sums [n_layers, values, ...]`` and ``counts [values]``. (Not
    :func:`linebreak.groups.kept_means`: the values sit on axis 1 here and are labels, not indices.)"""
    keep = counts >= min_n
    return values[keep], sums[:, keep] / counts[keep].reshape(1, -1, *([1] * (sums.ndim - 2)))


@dataclass
class Means:
    """The two sides as the verdict reads them: counts ``i_values`` with their per-layer means
    ``Q [n_layers, I, d]``, key values ``k_values`` with ``K [n_layers, K, d]``, of what attention reads (a
    q/k-norm head's own sides are taken from the sums over the same values, :func:`linebreak.qk.maps.head_sides`).
    The layer axis holds the analysed ``layers``, as in :class:`Sums`."""
    i_values: np.ndarray
    Q: np.ndarray
    k_values: np.ndarray
    K: np.ndarray
    layers: tuple[int, ...] | None = None

    def slot(self, layer: int) -> int:
        """The entry of model layer ``layer`` on the layer axis."""
        return layer_slot(self.layers, layer)


def value_means(sums: Sums, cfg: QKConfig, n_docs: int) -> Means:
    """Per-count and per-key-value means over all documents (offsets pooled); a :class:`UserError` when too
    few values have ``cfg.min_per_value`` tokens."""
    i_values, Q = per_value_means(sums.q_sum.sum(2), sums.q_n.sum(1), np.arange(len(sums.q_n)), cfg.min_per_value)
    k_values, K = per_value_means(sums.k_sum, sums.k_n, np.arange(len(sums.k_n)), cfg.min_per_value)
    if len(k_values) < cfg.min_values:
        raise UserError(f"too few lines per width: only {len(k_values)} {cfg.key_label} values have "
                        f">= {cfg.min_per_value} newline tokens in {n_docs} documents (need "
                        f"{cfg.min_values}); use more documents or a lower --min-per-value")
    if len(i_values) < cfg.min_values:
        raise UserError(f"too few counts: only {len(i_values)} counts have >= {cfg.min_per_value} tokens")
    return Means(i_values, Q, k_values, K, sums.layers)
