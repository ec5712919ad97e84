"""The bundled data sets: one :class:`Spec` per CSV file, the facts that :mod:`jaxscale.datasets` serves.

Each file is stored as ``<folder>/<file>.xz`` (``xz -9e``); ``sha256`` is that of the uncompressed bytes, which are
the file in the project's reference data byte for byte. ``rows`` and ``columns`` are checked against the table by
the tests; the folder's README.md gives the source, license, citation and caveats in full.
"""

from __future__ import annotations

from typing import NamedTuple


class Spec(NamedTuple):
    """One bundled CSV file and how :func:`jaxscale.datasets.scaling_data` reads it."""

    name: str
    title: str
    folder: str
    file: str
    sha256: str
    rows: int
    columns: tuple[str, ...]
    roles: dict[str, str]
    """Role -> column mapped by default (user mappings override)."""
    targets: tuple[str, ...]
    """Columns that can serve as the target (loss-like first), for messages and ``jaxscale datasets NAME``."""
    repo: str
    commit: str
    path: str
    license: str
    citation: str
    notes: str
    no_target: str | None = None
    """Why there is no default target and what to map instead (None when ``roles`` has ``loss``)."""
    scale: dict[str, float] = {}
    """Column -> multiplier into counts (parameters, tokens, FLOPs), applied by ``scaling_data``."""
    exclude_rows: dict[str, tuple[str, ...]] = {}
    """Column -> values: rows holding one are excluded by ``scaling_data`` (``exclude=True``)."""
    exclude_missing: bool = False
    """Rows with an empty cell in a mapped covariate or target column are excluded by ``scaling_data``."""
    exclusion: str | None = None
    """The exclusion in words (``info(name).exclusion``)."""


_EPOCH = dict(
    folder="epoch_chinchilla",
    repo="https://github.com/epoch-research/analyzing-chinchilla",
    commit="92258837425e1b5f2851d624287f0120583a3d0e",
    license="none stated (the repository has no LICENSE file and its README states no terms; cite the paper)",
    citation="Besiroglu, Erdil, Barnett, You (2024). Chinchilla Scaling: A replication attempt. arXiv:2404.10102. "
             "Data: Hoffmann et al. (2022), Training Compute-Optimal Large Language Models, arXiv:2203.15556, "
             "Figure 4.",
)
_MUENNIGHOFF = dict(
    folder="datablations",
    repo="https://github.com/huggingface/datablations",
    commit="13701315b163f1c54642b94ad237b2699187c3ee",
    license="Apache-2.0",
    citation="Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel (2023). Scaling "
             "Data-Constrained Language Models. NeurIPS 2023. arXiv:2305.16264.",
)
_REVISITING = dict(
    folder="revisiting_neural_scaling_laws",
    repo="https://github.com/google-research/google-research",
    commit="9853680c781781bd8d3de20aa61c7373ce059913",
    license="Apache-2.0",
    citation="Alabdulmohsin, Neyshabur, Zhai (2022). Revisiting Neural Scaling Laws in Language and Vision. "
             "NeurIPS 2022. arXiv:2209.06640.",
)
_RUAN = dict(
    folder="observational_scaling_laws",
    repo="https://github.com/ryoungj/ObsScaling",
    commit="4d6e1e43fd2635d04654aa77d1df9d5266ea0382",
    license="Apache-2.0",
    citation="Ruan, Maddison, Hashimoto (2024). Observational Scaling Laws and the Predictability of Language "
             "Model Performance. NeurIPS 2024. arXiv:2405.10938.",
)
_OLMO = dict(
    folder="olmo_ladder",
    repo="https://github.com/allenai/OLMo",
    commit="9bc064c72b1439640993e7ff28238e7b8f855aee",
    license="Apache-2.0",
    citation="Bhagia, Liu, Wettig, Heineman, Tafjord, Jha, Soldaini, Smith, Groeneveld, Koh, Dodge, Hajishirzi "
             "(2024). Establishing Task Scaling Laws via Compute-Efficient Model Ladders. arXiv:2412.04403.",
)

_DATABLATIONS_COLUMNS = ("run_key", "parsed_name", "params", "tokens", "unique_tokens", "epochs", "val_loss")
_REVISITING_COLUMNS = ("Domain", "Task", "Model", "Seen Examples", "Loss", "Training")
_RUAN_SIZES = ("Model Size (B)", "Pretraining Data Size (T)", "FLOPs (1E21)")
_RUAN_BASE_COLUMNS = ("Model", "Model Family", *_RUAN_SIZES, "MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA",
                      "GSM8K", "XWinograd", "HumanEval")
_RUAN_SCALE = {"Model Size (B)": 1e9, "Pretraining Data Size (T)": 1e12, "FLOPs (1E21)": 1e21}
_RUAN_ROLES = {"N": "Model Size (B)", "D": "Pretraining Data Size (T)", "C": "FLOPs (1E21)", "group": "Model Family"}
_RUAN_EXCLUSION = ("rows with an empty cell in a mapped covariate (N, D, C) or target column, as "
                   "jaxscale.downstream.read_observational excludes them: these public-model tables leave D and C "
                   "(and some scores) blank where a model's training data is unknown")
_OLMO_COLUMNS = ("run", "size", "params", "chinchilla_multiplier", "schedule_folder", "step", "tokens", "lr",
                 "lr_peak", "batch_size_tokens", "flops", "loss_c4", "loss_pile", "bpb_hellaswag", "acc_hellaswag",
                 "bpb_arc_easy", "acc_arc_easy", "bpb_mmlu_avg", "acc_mmlu_avg", "bpb_hellaswag_v1",
                 "acc_hellaswag_v1", "bpb_arc_easy_v1", "acc_arc_easy_v1", "bpb_mmlu_var_avg_v1",
                 "acc_mmlu_var_avg_v1")
_OLMO_ROLES = {"N": "params", "D": "tokens", "C": "flops", "loss": "loss_c4", "run": "run"}
_OLMO_V2 = ("loss_c4", "loss_pile", "bpb_hellaswag", "bpb_arc_easy", "bpb_mmlu_avg", "acc_hellaswag", "acc_arc_easy",
            "acc_mmlu_avg")
_OLMO_V1 = ("bpb_hellaswag_v1", "bpb_arc_easy_v1", "bpb_mmlu_var_avg_v1", "acc_hellaswag_v1", "acc_arc_easy_v1",
            "acc_mmlu_var_avg_v1")
_OLMO_NOTES = ("Training curves: every row is one evaluation of one checkpoint, and run= marks the run. params is "
               "the non-embedding count; flops is OLMo's own count, 1.32 (1B) to 1.67 (190M) x 6 N D: C-based laws "
               "see the real FLOPs, N-D laws are unaffected. loss_c4 is in nats/token (dolma2 tokenizer). The "
               "v2 task columns (bpb_*, acc_* without _v1) are filled here and the _v1 columns are empty; "
               "*-1xC and *-1xC-rerun are two runs of one configuration.")


SPECS: tuple[Spec, ...] = (
    Spec(
        name="epoch_chinchilla",
        title="Epoch AI's digitisation of Hoffmann et al. (2022) Fig. 4: 245 Chinchilla runs (N, C, final loss)",
        file="svg_extracted_data.csv",
        sha256="193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30",
        rows=245,
        columns=("x", "y", "color", "Model Size", "Training FLOP", "hex_color", "loss"),
        roles={"N": "Model Size", "C": "Training FLOP", "loss": "loss"},
        targets=("loss",),
        path="data/svg_extracted_data.csv",
        notes="Tokens are not in the file: D = C / (6 N) is derived, as Epoch does. Epoch's fits drop the 5 "
              "highest losses (240 points remain): .drop_top(5) in Python, --drop-top-loss 5 on the command line; "
              "nothing is dropped by default. Loss is quantised (0.005-0.015) by the colour bar.",
        **_EPOCH,
    ),
    Spec(
        name="muennighoff",
        title="Muennighoff et al. (2023) data-constrained runs: the 182 of the published fit (N, D, U, loss)",
        file="datablations_parametric_fit_182runs.csv",
        sha256="5dbd921cadceb8ef828c83ff240bed6354ef5a4ac7cddf15b08196f993379232",
        rows=182,
        columns=_DATABLATIONS_COLUMNS,
        roles={"N": "params", "D": "tokens", "U": "unique_tokens", "loss": "val_loss"},
        targets=("val_loss",),
        path="utils/parametric_fit.ipynb (transcribed from notebook cells 25 and 26)",
        notes="The exact run set of the authors' fit of R_D*, R_N* (notebook cell 29). val_loss is the final C4 "
              "validation loss (nats/token, GPT-2 tokenizer); epochs = tokens / unique_tokens is derived.",
        **_MUENNIGHOFF,
    ),
    Spec(
        name="muennighoff_all",
        title="Muennighoff et al. (2023) data-constrained runs: all 296 listed (N, D, U, loss; seed replicates)",
        file="datablations_all_runs_296.csv",
        sha256="1fc270f2127468af56712da21655269d1b0e643f855233ad555e915ddf151db8",
        rows=296,
        columns=_DATABLATIONS_COLUMNS,
        roles={"N": "params", "D": "tokens", "U": "unique_tokens", "loss": "val_loss"},
        targets=("val_loss",),
        path="utils/parametric_fit.ipynb (transcribed from notebook cells 1 and 2)",
        notes="The larger run list of the notebook. It includes seed replicates: 65 rows repeat a parsed_name.",
        **_MUENNIGHOFF,
    ),
    Spec(
        name="revisiting_lang",
        title="Alabdulmohsin et al. (2022) extrapolation benchmark, language: 20 learning curves (NMT, LM, BIG-Bench)",
        file="benchmark.lang.csv",
        sha256="63c346db00a66b692e1ea9a0f71a2f2b267e55f74be5b863a92e199dffbf0983",
        rows=1399,
        columns=_REVISITING_COLUMNS,
        roles={"x": "Seen Examples", "loss": "Loss"},
        targets=("Loss",),
        path="revisiting_neural_scaling_laws/data/benchmark.lang.csv",
        notes="Many learning curves in one table, keyed by Domain, Task and Model: select one (select={'Domain': "
              "'LM', 'Model': '1.68e+07'}) before fitting. Training = 1 marks the fit split, 0 the held-out "
              "extrapolation split (jaxscale backtest --train-flag Training). The file repeats 687 rows exactly "
              "(a duplicate-row warning says so); deduplicate before fitting. Bytes taken from the verbatim copy "
              "in github.com/DongWooLee-Eli/nslpfn at 10a5a60911a2a22ef453d8b4ddf1408b6a6075d9 (MIT).",
        **_REVISITING,
    ),
    Spec(
        name="revisiting_vision",
        title="Alabdulmohsin et al. (2022) extrapolation benchmark, vision: 72 n-shot image-classification curves",
        file="benchmark.vision.csv",
        sha256="23b00692d71e58aa5a2a941e831d57688e0977fdcf5f5125ff7b64283b5d9e83",
        rows=18883,
        columns=_REVISITING_COLUMNS,
        roles={"x": "Seen Examples", "loss": "Loss"},
        targets=("Loss",),
        path="revisiting_neural_scaling_laws/data/benchmark.vision.csv",
        notes="Many learning curves in one table, keyed by Domain, Task and Model: select one (select={'Task': "
              "'inet_5', 'Model': 'ViT/B/16'}) before fitting. Loss is the n-shot error rate (0-1); Training = 1 "
              "marks the fit split, 0 the held-out extrapolation split. Bytes taken from the verbatim copy in "
              "github.com/DongWooLee-Eli/nslpfn at 10a5a60911a2a22ef453d8b4ddf1408b6a6075d9 (MIT).",
        **_REVISITING,
    ),
    Spec(
        name="ruan_base",
        title="Ruan et al. (2024) observational scaling: 148 public base models, N/D/C and 8 benchmark accuracies",
        file="base_llm_benchmark_eval.csv",
        sha256="511996815735a4c46251dc585dcc525e370d148201f86561e6f927f9df2d0db8",
        rows=148,
        columns=_RUAN_BASE_COLUMNS,
        roles=_RUAN_ROLES,
        targets=_RUAN_BASE_COLUMNS[5:],
        no_target="its scores are benchmark accuracies (fractions, higher is better)",
        scale=_RUAN_SCALE,
        exclude_missing=True,
        exclusion=_RUAN_EXCLUSION + " (with the default N, D and C: 25 of 148 rows lack D and C)",
        path="eval_results/base_llm_benchmark_eval.csv",
        notes="47 model families. N is stored in billions of parameters, D in trillions of tokens and C in units "
              "of 1e21 FLOPs; scaling_data multiplies them into counts (C = 6 N D holds to 1%). For accuracy vs "
              "compute within a family, jaxscale.downstream.read_observational('ruan_base', 'HellaSwag', "
              "family='Pythia') is the reader made for it.",
        **_RUAN,
    ),
    Spec(
        name="ruan_base_sub_10b",
        title="Ruan et al. (2024) observational scaling: the 92 base models under 10B parameters",
        file="base_llm_benchmark_eval_sub_10b.csv",
        sha256="6a5fe6143b1fd86c2c10368de05e204c89ab6652b0f7e97c4965c37bff360d1d",
        rows=92,
        columns=_RUAN_BASE_COLUMNS,
        roles=_RUAN_ROLES,
        targets=_RUAN_BASE_COLUMNS[5:],
        no_target="its scores are benchmark accuracies (fractions, higher is better)",
        scale=_RUAN_SCALE,
        exclude_missing=True,
        exclusion=_RUAN_EXCLUSION + " (with the default N, D and C: 10 of 92 rows lack D and C)",
        path="eval_results/base_llm_benchmark_eval_sub_10b.csv",
        notes="The subset of ruan_base under 10B parameters; units as in ruan_base (billions, trillions, 1e21 "
              "FLOPs), multiplied into counts by scaling_data.",
        **_RUAN,
    ),
    Spec(
        name="ruan_emergent",
        title="Ruan et al. (2024) observational scaling: BIG-bench 'emergent' tasks (2-shot) of 84 base models",
        file="base_llm_emergent_capability_eval.csv",
        sha256="a156beee73c39b7833c3c53535c473939105512d85e90b0143be7325e516ef7c",
        rows=84,
        columns=("Model", "parsinlu_qa_2_acc", "word_unscrambling_2_exact_match", "ipa_transliterate_2_exact_match",
                 "ipa_transliterate_2_bleu", "arithmetic_3ds_2_acc", "arithmetic_3da_2_acc", "arithmetic_2dm_2_acc",
                 "arithmetic_2da_2_acc"),
        roles={},
        targets=("parsinlu_qa_2_acc", "word_unscrambling_2_exact_match", "ipa_transliterate_2_exact_match",
                 "ipa_transliterate_2_bleu", "arithmetic_3ds_2_acc", "arithmetic_3da_2_acc", "arithmetic_2dm_2_acc",
                 "arithmetic_2da_2_acc"),
        no_target="it holds task scores keyed by Model only, with no N, D or C: merge it with ruan_base on 'Model' "
                  "(pandas.merge of load('ruan_emergent') and load('ruan_base')) to get them",
        exclude_missing=True,
        exclusion=_RUAN_EXCLUSION,
        path="eval_results/base_llm_emergent_capability_eval.csv",
        notes="Task metric named in each column (acc, exact_match: fractions; bleu: 0-100). Keyed by Model only: "
              "sizes and families are in ruan_base.",
        **_RUAN,
    ),
    Spec(
        name="ruan_leaderboard_v2",
        title="Ruan et al. (2024) observational scaling: Open LLM Leaderboard v2 scores of 72 base models",
        file="base_llm_leaderboard_v2_eval.csv",
        sha256="ace728c962dfb2b9133fe92081c818e3fba01391694c9590fa0198f850062563",
        rows=72,
        columns=("Model", "leaderboard_bbh", "leaderboard_gpqa", "leaderboard_ifeval", "leaderboard_math_hard",
                 "leaderboard_mmlu_pro", "leaderboard_musr"),
        roles={},
        targets=("leaderboard_bbh", "leaderboard_gpqa", "leaderboard_ifeval", "leaderboard_math_hard",
                 "leaderboard_mmlu_pro", "leaderboard_musr"),
        no_target="it holds leaderboard scores keyed by Model only, with no N, D or C: merge it with ruan_base on "
                  "'Model' (pandas.merge of load('ruan_leaderboard_v2') and load('ruan_base')) to get them",
        exclude_missing=True,
        exclusion=_RUAN_EXCLUSION,
        path="eval_results/base_llm_leaderboard_v2_eval.csv",
        notes="Scores as stored (fractions). Keyed by Model only: sizes and families are in ruan_base.",
        **_RUAN,
    ),
    Spec(
        name="ruan_instruct",
        title="Ruan et al. (2024) observational scaling: 27 instruction-tuned and API models (Arena Elo, MT-Bench)",
        file="instruct_llm_benchmark_eval.csv",
        sha256="9bc50f327f4e436b15a6d6e3edb8b4837e726b295a1c72d44fadb9c9d25a75ba",
        rows=27,
        columns=("Model", "Model Family", *_RUAN_SIZES, "Arena-Elo", "MTBench", "MMLU", "ARC-C", "HellaSwag",
                 "Winogrande", "TruthfulQA", "GSM8K", "HumanEval"),
        roles=_RUAN_ROLES,
        targets=("Arena-Elo", "MTBench", "MMLU", "ARC-C", "HellaSwag", "Winogrande", "TruthfulQA", "GSM8K",
                 "HumanEval"),
        no_target="its scores are benchmark accuracies and rescaled ratings (0-1, higher is better)",
        scale=_RUAN_SCALE,
        exclude_missing=True,
        exclusion=_RUAN_EXCLUSION + " (with the default N, D and C: 7 of 27 rows lack D and C, 6 of them N too: the "
                                    "API models)",
        path="eval_results/instruct_llm_benchmark_eval.csv",
        notes="Units as in ruan_base (billions, trillions, 1e21 FLOPs), multiplied into counts by scaling_data. "
              "Arena-Elo and MTBench are rescaled to 0-1 as stored.",
        **_RUAN,
    ),
    Spec(
        name="olmo_cosine",
        title="OLMo 'peteish' ladder, cosine schedule: 24 runs of 190M-1B at 0.5-10xC, eval curves (v2 suite)",
        file="peteish-moreeval.csv",
        sha256="1f586d368fcfd2fef6546aa2ba3561218cb676d9a802d43da201f335e8da3d73",
        rows=2460,
        columns=_OLMO_COLUMNS,
        roles=_OLMO_ROLES,
        targets=_OLMO_V2,
        exclude_rows={"run": ("peteish1_eval_final",)},
        exclusion="the row of run peteish1_eval_final (line 2461): one evaluation of peteish1, apparently the OLMo 2 "
                  "1B pretraining run, not a ladder run; it has no tokens, lr or FLOPs (README caveat 6)",
        path="scripts/scaling/data/peteish-moreeval/*.csv (branch ladder-1xC; one file per run, concatenated)",
        notes=_OLMO_NOTES,
        **_OLMO,
    ),
    Spec(
        name="olmo_const",
        title="OLMo 'peteish' ladder, constant LR after warmup: 4 runs of 190M-1B at 10xC, eval curves",
        file="peteish-moreeval-const.csv",
        sha256="1b7d8e925c08e0ea1bb24c4495c52900f6a66060a7943cb33d167a54d320ff83",
        rows=447,
        columns=_OLMO_COLUMNS,
        roles=_OLMO_ROLES,
        targets=_OLMO_V2,
        path="scripts/scaling/data/peteish-moreeval-const/*.csv (branch ladder-1xC; one file per run, concatenated)",
        notes=_OLMO_NOTES + " These are the constant-LR histories that the olmo_decay runs branch off.",
        **_OLMO,
    ),
    Spec(
        name="olmo_decay",
        title="OLMo 'peteish' ladder, WSD decay tails: 20 runs of 190M-1B at 0.5-10xC, branched off olmo_const",
        file="peteish-moreeval-decay.csv",
        sha256="790d20ab5dcc5ee3b01945dc08176ca176de02afc98f506807d72391971639f7",
        rows=282,
        columns=_OLMO_COLUMNS,
        roles=_OLMO_ROLES,
        targets=_OLMO_V2,
        path="scripts/scaling/data/peteish-moreeval-decay/*.csv (branch ladder-1xC; one file per run, concatenated)",
        notes=_OLMO_NOTES + " Only the tail of each run: it resumes from a checkpoint of the constant run and "
              "decays linearly over its last 10%; for a full WSD curve take the olmo_const rows before the decay "
              "run's first step. Six runs (760M and 1B at 0.5, 1, 2xC) end before their final evaluation.",
        **_OLMO,
    ),
    Spec(
        name="olmo_final",
        title="OLMo 'peteish' ladder, cosine (the paper's runs): 20 runs of 190M-1B at 1-10xC, eval curves (v1 suite)",
        file="peteish-final-new.csv",
        sha256="62eb583f40bb5ff6e4d50ae639def136cb811265e9fa6c65d6d298b457430933",
        rows=5729,
        columns=_OLMO_COLUMNS,
        roles={"N": "params", "D": "tokens", "C": "flops", "run": "run"},
        targets=_OLMO_V1,
        no_target="its loss_c4 and loss_pile are broken (9.07-10.49 throughout training: the perplexity sets were "
                  "read with the wrong tokenizer, README caveat 1); use a v1 task column, as the paper does",
        path="scripts/scaling/data/peteish-final-new/*.csv (one file per run, concatenated)",
        notes="The runs of Bhagia et al.'s paper configs. Its C4/Pile losses are invalid: map a v1 task column "
              "(bpb_*_v1 in bits per byte, lower is better; acc_*_v1 accuracies as score). The v2 task columns "
              "are empty here. Different runs from olmo_cosine (batch size and warmup differ at 370M and 760M). "
              "Every row is one evaluation of one checkpoint, and run= marks the run. params is the non-embedding "
              "count; flops is OLMo's own count, 1.32 (1B) to 1.67 (190M) x 6 N D.",
        **_OLMO,
    ),
)

BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS}
