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

_GADRE = ("Gadre et al. (2024), Language models scale reliably with over-training and on downstream tasks, "
          "arXiv:2403.08540; github.com/mlfoundations/scaling: exp_data/models/rpj-*.json (loss_c4_val) at "
          "041eb2f1b60fa6d985ac30d335c6b4d56d273ec0, exp_data/evals/evaluation_rpj-*_heavy.json at "
          "79adc26378fb1286fd9a31d0e40e86663d48dcf1, scaling_explorer.ipynb cell 3 at 79adc263")

GADRE_RPJ_RUNS = {
    "N": (10569312.0, 78914048.0, 153677376.0, 411616256.0, 10569312.0, 1439795200.0),
    "M": (20.0, 20.0, 20.0, 20.0, 320.0, 20.0),
    "loss": (5.38702091510821, 3.899942990231468, 3.531147408490181, 3.149769456671634, 4.572292613487238,
             2.768756661738063),
    "error": (0.8134857367566677, 0.7250451834543663, 0.6710080283365267, 0.6365529066499542, 0.7671019083970938,
              0.5473253052024281),
}
"""Gadre et al.'s fitting runs on RedPajama (their Table 2 defaults, ``fit_ds`` in ``scaling/shared.py``).

``N`` parameters, token multiplier ``M = D/N``, C4 eval ``loss``, and the 17-task average top-1 ``error``
(the mean of ``1 - accuracy`` over their ``SUBSET`` of tasks, computed here from the eval files). The loss law is
fitted on the first five runs (0.011B to 0.411B at M = 20, and 0.011B at M = 320), the error law on all six (the
1.4B, M = 20 run added). Source: the repository files named in ``published._GADRE``."""

GADRE_RPJ_TARGETS = {
    "N": (1439795200.0, 6889410560.0),
    "M": (640.0, 20.0),
    "loss": (2.502053562117363, 2.424993099368689),
    "error": (0.47521523167105284, 0.47163718062288623),
}
"""The two held-out RedPajama runs Gadre et al. predict: 1.4B at M = 640 (900B tokens, 32x over-trained) and 6.9B
at M = 20 (138B tokens); measured C4 eval loss and 17-task error, as :data:`GADRE_RPJ_RUNS`."""

GADRE_RPJ_RELATIVE_ERRORS = {"loss": (0.007103, 0.007320), "error": (0.036365, 0.000464)}
"""Gadre et al.'s relative prediction errors ``|pred - measured| / measured`` at :data:`GADRE_RPJ_TARGETS` (1.4B,
M = 640; 6.9B, M = 20), as their notebook prints them (``0.7103%``, ``0.7320%`` for the C4 eval loss;
``3.6365%``, ``0.0464%`` for the 17-task error, predicted from the predicted loss). Their fits are least squares
on the linear scale (``scipy.optimize.curve_fit``). Source: the notebook named in ``published._GADRE``."""

__all__ = ["ParamSet", "HOFFMANN_ROUNDED", "HOFFMANN_UNROUNDED", "EPOCH", "EPOCH_SE", "EPOCH_CI95", "EPOCH_HUBER",
           "EPOCH_HUBER_OBJECTIVE", "MUENNIGHOFF", "KAPLAN", "CHINCHILLA_COMPUTE", "GADRE_RPJ_RUNS",
           "GADRE_RPJ_TARGETS", "GADRE_RPJ_RELATIVE_ERRORS"]

KRAJEWSKI_EXPONENTS = {"alpha": 0.115, "beta": 0.147, "gamma": 0.58}
"""The exponents of Krajewski et al.'s fine-grained MoE law (``moe_granularity``): Krajewski, Ludziejewski et al.
(2024), *Scaling Laws for Fine-Grained Mixture of Experts*, arXiv:2402.07871, Eq. 9. Read from a secondary
summary of the paper (the paper's text was not available here), so check them against the paper before relying
on them; its coefficients ``a, b, g, c`` could not be found and are not given. Pass them as
``fit(..., fixed=KRAJEWSKI_EXPONENTS)`` to fit only the coefficients."""

__all__ += ["KRAJEWSKI_EXPONENTS"]

CABALLERO_ADDITION = {
    "x": (160.0, 192.0, 256.0, 320.0, 384.0, 448.0, 480.0, 512.0, 544.0, 576.0, 608.0, 640.0, 672.0, 736.0, 800.0,
          864.0, 928.0),
    "loss": (2.13809046, 2.11813418, 2.08955508, 2.06988398, 2.05404987, 2.03837089, 2.02814281, 2.00496872,
             1.95576149, 1.86313841, 1.70891537, 1.50637664, 1.29754721, 0.96559684, 0.75856477, 0.64768338,
             0.55695445),
}
"""Caballero et al.'s 4-digit addition curve (training set size, test cross-entropy), the one their Fig. 4 (left)
fits with a broken power law on its first 14 points and extrapolates to the last 3: Caballero, Gupta, Rish,
Krueger (2022), *Broken Neural Scaling Laws*, arXiv:2210.14891; the values as their repository's script
``fit_bnsl_and_extrapolate__4_digit_addition__dataset_size_x-axis.py`` (github.com/ethancaballero/
broken_neural_scaling_laws, commit 0d9fb55) holds them."""

CABALLERO_ADDITION_BNSL = {"a": 0.41388453071629455, "b": 2.2772722897737556, "c0": 0.055077348404973955,
                           "c1": 5.662903816010331, "d1": 612.5836172918001, "f1": 0.059193036393742314}
"""The broken power law (one break; ``broken_power``'s parameters) that Caballero et al.'s repository uses as the
ground truth of its noiseless simulation (``..._noiseless_simulation.py``, Fig. 4 right of arXiv:2210.14891).
These are the parameters their fitting procedure (a ``scipy.optimize.brute`` grid, then ``curve_fit`` of
``log(y + 1)``) returns on the first 14 points of :data:`CABALLERO_ADDITION`: rerun here, that procedure gives
them to 5 significant figures (``benchmarks/bench_backtest.py``)."""

__all__ += ["CABALLERO_ADDITION", "CABALLERO_ADDITION_BNSL"]
