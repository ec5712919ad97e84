"""Published parameter sets, with their citations: the numbers fits are checked against.

Each constant is a read-only ``dict`` of natural-scale parameters under the law's names, so it can be passed
anywhere jaxscale takes parameters (``allocate.compute_optimal("chinchilla", EPOCH, 5.88e23)``,
``chi2_test(boot, HOFFMANN_UNROUNDED)``, ``fit(..., fixed=...)``), and carries ``.law``, ``.citation`` and
``.note`` attributes saying where it comes from. Where a paper gives log-scale values (Hoffmann's TeX source,
Epoch's notebook), the natural values are their exponentials, to every digit published.

>>> from jaxscale import published
>>> published.EPOCH["alpha"], published.EPOCH.law
(0.34781303, 'chinchilla')
>>> round(published.HOFFMANN_UNROUNDED["E"], 4)
1.6934
>>> published.EPOCH["E"] = 2.0
Traceback (most recent call last):
...
TypeError: published parameter sets are read-only; copy one with dict(published.EPOCH) to change it.
"""

from __future__ import annotations

import math


class ParamSet(dict):
    """Published natural-scale parameters of one law (read-only), with ``law``, ``citation`` and ``note``."""

    def __init__(self, values: dict, *, law: str, citation: str, note: str = ""):
        super().__init__(values)
        self.law, self.citation, self.note = law, citation, note

    def _read_only(self, *args, **kwargs):
        raise TypeError("published parameter sets are read-only; copy one with dict(published.EPOCH) to change it.")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self):
        return (ParamSet, (dict(self),), {"law": self.law, "citation": self.citation, "note": self.note})

    def __repr__(self) -> str:
        return f"ParamSet({dict.__repr__(self)}, law={self.law!r})"


_HOFFMANN = ("Hoffmann et al. (2022), Training Compute-Optimal Large Language Models, arXiv:2203.15556, "
             "Approach 3 (Eq. 10)")
_EPOCH = ("Besiroglu, Erdil, Barnett, You (2024), Chinchilla Scaling: A replication attempt, arXiv:2404.10102; "
          "github.com/epoch-research/analyzing-chinchilla at 92258837425e1b5f2851d624287f0120583a3d0e")
_MUENNIGHOFF = ("Muennighoff et al. (2023), Scaling Data-Constrained Language Models, arXiv:2305.16264; "
                "github.com/huggingface/datablations at 13701315b163f1c54642b94ad237b2699187c3ee")
_KAPLAN = "Kaplan et al. (2020), Scaling Laws for Neural Language Models, arXiv:2001.08361, Table 2 (L(N, D))"


def _chinchilla(log_E, log_A, log_B, alpha, beta) -> dict:
    return {"E": math.exp(log_E), "A": math.exp(log_A), "B": math.exp(log_B), "alpha": alpha, "beta": beta}


HOFFMANN_ROUNDED = ParamSet(
    {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}, law="chinchilla", citation=_HOFFMANN,
    note="as printed in the paper (Eq. 10); 92.8 tokens per parameter at 5.88e23 FLOPs")
"""Hoffmann et al.'s printed Approach-3 estimates."""

HOFFMANN_UNROUNDED = ParamSet(
    _chinchilla(0.5267228, 6.0073404, 6.0179186, 0.33917084, 0.2849083), law="chinchilla", citation=_HOFFMANN,
    note="(log E, log A, log B, alpha, beta) from the paper's TeX source, as Epoch's notebook uses them "
         "(true_params); 59.0 tokens per parameter at 5.88e23 FLOPs")
"""Hoffmann et al.'s Approach-3 estimates, unrounded (Epoch: from the TeX source)."""

EPOCH = ParamSet(
    _chinchilla(0.59711196, 6.17795598, 7.64273236, 0.34781303, 0.36585412), law="chinchilla", citation=_EPOCH,
    note="headline fit (paper Table 1): Huber likelihood with a free scale (log sigma = -12.2666) on 240 points, "
         "notebook cell 24; A = 482.006, B = 2085.43, E = 1.81686")
"""Epoch AI's headline estimates (maximum Huber likelihood on Epoch's 240 points)."""

EPOCH_SE = ParamSet(
    {"E": 0.02566, "A": 124.52232, "B": 1293.28410, "alpha": 0.01540, "beta": 0.02060}, law="chinchilla",
    citation=_EPOCH, note="bootstrap standard errors: 4000 resamples, numpy seed 42, BFGS from Hoffmann's values")
"""Epoch AI's bootstrap standard errors of :data:`EPOCH`."""

EPOCH_CI95 = ParamSet(
    {"E": (1.769, 1.871), "A": (285.214, 743.626), "B": (1042.357, 5810.344), "alpha": (0.317, 0.373),
     "beta": (0.331, 0.415)}, law="chinchilla", citation=_EPOCH,
    note="bootstrap 95% percentile intervals (notebook cell 26); values are (low, high) pairs")
"""Epoch AI's bootstrap 95% percentile intervals, ``{name: (low, high)}``."""

EPOCH_HUBER = ParamSet(
    {"E": 1.817236, "A": 477.8417, "B": 2143.8638, "alpha": 0.347313, "beta": 0.367183}, law="chinchilla",
    citation=_EPOCH, note="'replicate exactly' fit (notebook cell 18): summed Huber (delta 1e-3) from Hoffmann's "
                          "4,500-start grid with L-BFGS-B; objective 1.0182740e-3")
"""Epoch AI's plain summed-Huber optimum (their "replicate exactly" cell); objective :data:`EPOCH_HUBER_OBJECTIVE`."""

EPOCH_HUBER_OBJECTIVE = 1.0182740346e-3
"""The summed Huber objective at :data:`EPOCH_HUBER` on Epoch's 240 points."""

MUENNIGHOFF = ParamSet(
    {"E": math.exp(0.6254804), "A": math.exp(6.255414), "B": math.exp(7.3049974), "alpha": 0.3526596,
     "beta": 0.3526596, "R_D": 15.387756, "R_N": 5.309743}, law="data_constrained", citation=_MUENNIGHOFF,
    note="base law fitted to Chinchilla's C4 IsoFLOP points with alpha tied to beta (notebook cell 7); R_D*, R_N* "
         "fitted on the 182 runs with the base law fixed (cell 29), summed Huber objective 0.015825937")
"""Muennighoff et al.'s data-constrained law (base law and R_D*, R_N*)."""

KAPLAN = ParamSet(
    {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}, law="kaplan", citation=_KAPLAN,
    note="N counts non-embedding parameters; loss in nats/token on WebText2")
"""Kaplan et al.'s joint fit of L(N, D) (Eq. 1.5)."""

CHINCHILLA_COMPUTE = 6 * 70e9 * 1.4e12
"""Chinchilla's training compute by 6 N D: 70B parameters on 1.4T tokens (5.88e23 FLOPs)."""

__all__ = ["ParamSet", "HOFFMANN_ROUNDED", "HOFFMANN_UNROUNDED", "EPOCH", "EPOCH_SE", "EPOCH_CI95", "EPOCH_HUBER",
           "EPOCH_HUBER_OBJECTIVE", "MUENNIGHOFF", "KAPLAN", "CHINCHILLA_COMPUTE"]
