"""Every named preset of linebreak, in one place: ``tiny`` means one thing everywhere.

A preset is a named, complete set of configs for one stage (or, for the study, for every stage). Each
command's ``--preset NAME`` looks its name up here, and ``--field`` overrides are applied on top
(:func:`linebreak.config.resolve_config`). The ``tiny`` presets are sized for tests (seconds); ``default``
is what a user gets without flags and what the committed study in ``figures/study`` ran.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from linebreak.capture.config import CaptureConfig
from linebreak.causal.config import CausalConfig
from linebreak.corpus.store import CorpusConfig
from linebreak.grok.config import GrokConfig
from linebreak.probe.config import ProbeConfig
from linebreak.qk.config import QKConfig
from linebreak.train.config import OptimConfig, TrainConfig
from linebreak.train.model import ModelConfig


# ---- training: the corpus and the model trained on it --------------------------------------------------------
@dataclass(frozen=True)
class TrainPreset:
    data: CorpusConfig
    train: TrainConfig


TRAIN: dict[str, TrainPreset] = {
    "tiny": TrainPreset(
        CorpusConfig(widths=tuple(range(12, 25)), seq_len=64, n_train=400, n_val=32, vocab_size=40, max_word_len=6),
        TrainConfig(ModelConfig(n_layer=2, d_model=64, n_head=4, d_mlp=256, n_ctx=64),
                    OptimConfig(steps=500, batch_size=16, lr=3e-3, warmup_steps=20, eval_every=100,
                                eval_docs=32, threads=1)),
    ),
    # the exploratory run's recipe (docs/training.md): GPT-2 4L d128 4H, 1500 steps of 16 x 256 tokens
    "gpt2": TrainPreset(
        CorpusConfig(),
        TrainConfig(ModelConfig(n_layer=4, d_model=128, n_head=4, d_mlp=512, n_ctx=256),
                    OptimConfig(steps=1500, eval_every=250)),
    ),
    # chosen by the helix-and-twist sweep (docs/research/counting.md): the same model with rotary positions (a
    # Llama-style decoder from transformers) learns line breaking far faster on a CPU (0.95 of the achievable newline
    # information after 600 steps, where GPT-2 with learned positions had 0.71)
    "default": TrainPreset(
        CorpusConfig(),
        TrainConfig(ModelConfig(arch="llama", pos="rotary", n_layer=4, d_model=128, n_head=4, d_mlp=512, n_ctx=256),
                    OptimConfig(steps=1000, eval_every=250)),
    ),
    # column-aligned tables (linebreak.corpus.tables, issue 19): wide gaps (10-16), at most 96 characters; the
    # recipe measured in docs/research/tables.md (pad accuracy 0.999 on rows >= 1 after 1000 steps, ~10 min)
    "table": TrainPreset(
        CorpusConfig(layout="table", seq_len=192, n_train=4000, n_val=128, vocab_size=200, max_word_len=6,
                     table_cols=(3, 4, 5, 6), col_gap=tuple(range(10, 17)), cell_words=2),
        TrainConfig(ModelConfig(arch="llama", pos="rotary", n_layer=4, d_model=128, n_head=4, d_mlp=512, n_ctx=192),
                    OptimConfig(steps=1000, eval_every=250, eval_docs=64, pad_loss_weight=5.0)),
    ),
    # the same task sized for tests: seconds
    "table-tiny": TrainPreset(
        CorpusConfig(layout="table", seq_len=96, n_train=400, n_val=32, vocab_size=40, max_word_len=6,
                     table_cols=(3, 4), col_gap=tuple(range(10, 17))),
        TrainConfig(ModelConfig(arch="llama", pos="rotary", n_layer=2, d_model=64, n_head=4, d_mlp=256, n_ctx=96),
                    OptimConfig(steps=300, batch_size=16, lr=3e-3, warmup_steps=20, eval_every=100, eval_docs=32,
                                threads=1)),
    ),
}

# the default recipe with the count given to the model on a helix (linebreak.train.count_code; issue 19 item 5): a
# positive control for the twist verdict, measured in docs/research/control.md
TRAIN["count-code-control"] = TrainPreset(
    TRAIN["default"].data,
    replace(TRAIN["default"].train, model=replace(TRAIN["default"].train.model, count_code_control=True)))


# ---- the analyses -------------------------------------------------------------------------------------------
CAPTURE = {"default": CaptureConfig(),
           "tiny": CaptureConfig(max_docs=32, max_tokens=2048, sites=("resid_pre", "resid_post"), pattern_docs=0)}
PROBE = {"default": ProbeConfig(), "tiny": ProbeConfig(min_per_count=4, value_probe_rows=1500)}
QK = {"default": QKConfig(), "tiny": QKConfig(n_docs=32, min_per_value=4, min_values=3, top=2)}
CAUSAL = {"default": CausalConfig(),
           "tiny": CausalConfig(n_docs=32, n_random=2, min_per_value=4, n_strings=4, n_lines=16, top=2)}

# ---- the mod-P reference ---------------------------------------------------------------------------------------
GROK = {
    # Nanda et al. 2023: P = 113, 30 % data, AdamW lr 1e-3, wd 1, betas (0.9, 0.98), 40k full-batch epochs.
    "nanda": GrokConfig(),
    # Chosen so that grokking shows plainly in about a minute on 2 CPU cores: see docs/modp.md.
    "fast": GrokConfig(p=59, frac_train=0.4, d_mlp=256, lr=3e-3, weight_decay=2.0, steps=1_200,
                       eval_every=25, measure_every=50, checkpoint_every=400),
}


# ---- the study: every stage at once ------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyPreset:
    """Everything a study run needs: the training preset (data + model + optimiser) and the analyses."""
    train: TrainPreset
    capture: CaptureConfig
    probe: ProbeConfig
    qk: QKConfig
    causal: CausalConfig
    grok: str  # a name in GROK


# the study captures only the residual stream (what its probes read), over more documents than a plain capture
STUDY_CAPTURE = CaptureConfig(max_docs=256, max_tokens=32768, sites=("resid_pre", "resid_post"), pattern_docs=0)
STUDY: dict[str, StudyPreset] = {
    "default": StudyPreset(TRAIN["default"], STUDY_CAPTURE, PROBE["default"], QK["default"], CAUSAL["default"],
                           "fast"),
    # the exploratory run's GPT-2 with learned positions (the sweep's base)
    "gpt2": StudyPreset(TRAIN["gpt2"], STUDY_CAPTURE, PROBE["default"], QK["default"], CAUSAL["default"], "fast"),
    # seconds, for tests: every stage's own tiny preset
    "tiny": StudyPreset(TRAIN["tiny"], CAPTURE["tiny"], PROBE["tiny"], QK["tiny"], CAUSAL["tiny"], "fast"),
}
