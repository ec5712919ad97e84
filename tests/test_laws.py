import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscale
from helpers import LAW_NAMES, MUENNIGHOFF, case, synthetic
from jaxscale.errors import ArgumentError
from jaxscale.objectives import make_objective, value_and_weights


def test_registry_lists_the_catalogue():
    assert set(LAW_NAMES) == set(jaxscale.laws.BUILTIN) <= set(jaxscale.laws.available())


def test_unknown_law_lists_known_ones():
    with pytest.raises(jaxscale.LawError, match="Unknown law 'chinchila'.*chinchilla"):
        jaxscale.laws.get("chinchila")


def test_bad_law_option():
    with pytest.raises(jaxscale.LawError, match="resource must be one of"):
        jaxscale.laws.get("power", resource="Q")
    with pytest.raises(jaxscale.LawError, match="Bad options"):
        jaxscale.laws.get("chinchilla", resource="N")


@pytest.mark.parametrize("name", LAW_NAMES)
def test_round_trip_natural_fit_coordinates(name):
    law, p, *_ = case(name)
    theta = law.from_natural(p)
    back = law.to_natural(theta)
    for k in p:
        np.testing.assert_allclose(back[k], p[k], rtol=1e-12)


@pytest.mark.parametrize("name", LAW_NAMES)
def test_log_predict_is_pure_jittable_and_vmappable(name):
    law, p, cov, *_ = case(name)
    theta = jnp.asarray(law.from_natural(p))
    logx = jnp.log(jnp.stack([jnp.asarray(cov[c]) for c in law.covariates], 1))
    f = jax.jit(jax.vmap(law.log_predict, in_axes=(None, 0)))
    out = np.asarray(f(theta, logx))
    ref = np.log(law.predict(p, **cov))
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    # vmapped over a batch of parameter vectors (starts / draws) as well
    thetas = jnp.stack([theta, theta * 1.01])
    both = jax.vmap(jax.vmap(law.log_predict, in_axes=(None, 0)), in_axes=(0, None))(thetas, logx)
    assert both.shape == (2, logx.shape[0]) and np.all(np.isfinite(np.asarray(both)))


@pytest.mark.parametrize("objective", ["huber", "squared", "likelihood"])
@pytest.mark.parametrize("name", LAW_NAMES)
def test_gradient_matches_finite_differences(name, objective):
    """The solver's analytic gradient (J^T psi) against central differences, float64."""
    law, p, data, _, _ = synthetic(name, noise=0.02)
    logx, logy = (jnp.asarray(a) for a in data.design(law.covariates, law.name))
    obj = make_objective(objective, 1e-3 if objective != "likelihood" else 1.0)
    theta = jnp.asarray(law.from_natural(p)) + 0.01

    def total(t):
        r = jax.vmap(law.log_predict, in_axes=(None, 0))(t, logx) - logy
        return value_and_weights(obj, r[None])[0][0]

    r = jax.vmap(law.log_predict, in_axes=(None, 0))(theta, logx) - logy
    J = jax.vmap(jax.grad(law.log_predict), in_axes=(None, 0))(theta, logx)
    _, psi, _, _ = value_and_weights(obj, r[None])
    g = np.asarray(psi[0] @ J)
    h = 1e-6
    fd = np.array([(total(theta.at[i].add(h)) - total(theta.at[i].add(-h))) / (2 * h) for i in range(law.n_params)])
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-7 * (1 + np.abs(fd).max()))


@pytest.mark.parametrize("name", LAW_NAMES)
def test_recovers_known_parameters(name):
    """Noise-free synthetic data: the multi-start fit must return the truth."""
    law, p, data, kw, tol = synthetic(name)
    res = jaxscale.fit(law, data, **kw)
    for k, v in p.items():
        np.testing.assert_allclose(res.params[k], v, rtol=tol, err_msg=k)
    assert res.objective < 1e-9


@pytest.mark.parametrize("name", ["chinchilla", "power"])
def test_recovers_with_noise(name):
    """1% noise: estimates land near the truth (Monte-Carlo tolerance 10%)."""
    law, p, data, kw, _ = synthetic(name, noise=0.01)
    res = jaxscale.fit(law, data, **kw)
    for k in ("E", "alpha"):
        np.testing.assert_allclose(res.params[k], p[k], rtol=0.1, err_msg=k)


def test_muennighoff_readme_values():
    """datablations README: scaling_law(6.34e9, 242e9, 25e9) and (8.67e9, 178e9, 25e9)."""
    law = jaxscale.laws.get("data_constrained")
    got = law.predict(MUENNIGHOFF, N=[6.34e9, 8.67e9], D=[242e9, 178e9], U=[25e9, 25e9])
    np.testing.assert_allclose(got, [2.2256440889984477, 2.2269634075087867], rtol=1e-12)


def test_register_custom_law_and_fit_it():
    def log_predict(theta, logx):
        log_E, log_A, alpha = theta
        return jnp.logaddexp(log_E, log_A - alpha * logx[0])

    law = jaxscale.laws.Law(
        name="test_power_D", log_predict=log_predict, covariates=("D",),
        params=(jaxscale.laws.Param("E", "log", (0.0, 1.0)), jaxscale.laws.Param("A", "log", (2.0, 6.0, 10.0)),
                jaxscale.laws.Param("alpha", grid=(0.1, 0.5))),
        formula="E + A / D^alpha")
    jaxscale.laws.register(law, overwrite=True)
    try:
        with pytest.raises(jaxscale.LawError, match="already registered"):
            jaxscale.laws.register(law)
        D = np.logspace(8, 12, 15)
        data = jaxscale.ScalingData.from_arrays(D=D, loss=1.8 + 300 / D**0.3)
        res = jaxscale.fit("test_power_D", data)
        np.testing.assert_allclose([res.params["E"], res.params["alpha"]], [1.8, 0.3], rtol=1e-4)
    finally:
        jaxscale.laws.unregister("test_power_D")
    assert "test_power_D" not in jaxscale.laws.available()


def test_kaplan_published_value():
    # Eq. 1.5 with the Table 2 fit, evaluated independently in NumPy.
    law = jaxscale.laws.get("kaplan")
    p = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    N, D = 1e9, 1e10
    ref = ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]
    np.testing.assert_allclose(law.predict(p, N=N, D=D), ref, rtol=1e-12)


def test_float32_log_space_forms_are_accurate():
    """Covariates of 1e24 and exponents near 0.3: float32 log-space predictions stay within 1e-5."""
    law = jaxscale.laws.get("chinchilla")
    p = jaxscale.HOFFMANN_UNROUNDED
    N, D = np.logspace(7, 13, 50), np.logspace(9, 15, 50)
    ref = law.predict(p, N=N, D=D)
    theta = jnp.asarray(law.from_natural(p), jnp.float32)
    logx = jnp.asarray(np.log(np.stack([N, D], 1)), jnp.float32)
    got = np.exp(np.asarray(jax.vmap(law.log_predict, in_axes=(None, 0))(theta, logx), np.float64))
    np.testing.assert_allclose(got, ref, rtol=1e-5)


# --- parameter transforms ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["identity", "log", "logit"])
def test_transforms_round_trip_on_numpy_and_jax(name):
    t = jaxscale.laws.TRANSFORMS[name]
    assert t.name == name and t is getattr(jaxscale.laws, name.upper())
    v = np.array([0.01, 0.3, 0.99])
    fit = t.to_fit(v)
    assert isinstance(fit, np.ndarray) and isinstance(t.to_natural(fit), np.ndarray)
    np.testing.assert_allclose(t.to_natural(fit), v, rtol=1e-12)
    # the jax path gives the same numbers, stays a jax array, and traces under jit
    jfit = jax.jit(t.to_fit)(jnp.asarray(v))
    assert isinstance(jfit, jax.Array)
    np.testing.assert_allclose(np.asarray(jfit), fit, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(t.to_natural)(jfit)), v, rtol=1e-12)


def test_transforms_match_the_closed_forms_and_saturate_quietly():
    from jaxscale.laws import LOG, LOGIT

    assert LOGIT.to_fit(0.25) == np.log(0.25) - np.log1p(-0.25) and LOG.to_fit(2.0) == np.log(2.0)
    with np.errstate(all="raise"):  # no overflow warning in the limits (filterwarnings=error would raise)
        assert LOGIT.to_natural(np.array([-1e4]))[0] == 0.0 and LOG.to_natural(np.array([1e4]))[0] == np.inf


@pytest.mark.parametrize("name", LAW_NAMES)
def test_param_transform_fn_names_its_transform(name):
    law = case(name)[0]
    assert all(p.transform_fn is jaxscale.laws.TRANSFORMS[p.transform] for p in law.params)


def test_unknown_transform_is_a_law_error():
    with pytest.raises(jaxscale.LawError, match=r"transform 'sqrt'; expected one of \['identity', 'log', 'logit'\]"):
        jaxscale.laws.Param("E", "sqrt").transform_fn


# --- equal options, equal laws ---------------------------------------------------------------------------------

LAW_OPTIONS = [
    ("chinchilla", {}), ("kaplan", {}), ("data_constrained", {}),
    ("power", {}), ("power", {"resource": "N"}), ("power", {"resource": "C"}),
    ("broken_power", {}), ("broken_power", {"breaks": 2}), ("broken_power", {"resource": "N", "breaks": np.int64(3)}),
    ("sigmoid", {}), ("sigmoid", {"resource": "x", "decreasing": True}), ("sigmoid", {"resource": "N", "decreasing": False}),
]


@pytest.mark.parametrize("name, options", LAW_OPTIONS, ids=[f"{n}-{o}" for n, o in LAW_OPTIONS])
def test_laws_built_alike_compare_and_hash_equal(name, options):
    a, b = jaxscale.laws.get(name, **options), jaxscale.laws.get(name, **options)
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1  # usable as a cache key


def test_every_registered_law_is_equal_to_itself_rebuilt():
    for name in jaxscale.laws.available():
        assert jaxscale.laws.get(name) == jaxscale.laws.get(name), name


def test_laws_built_differently_differ():
    get = jaxscale.laws.get
    assert get("broken_power") != get("broken_power", breaks=2)
    assert get("broken_power", resource="N") != get("broken_power", resource="D")
    assert get("sigmoid") != get("sigmoid", decreasing=True)
    assert get("power", resource="N") != get("power", resource="D")


def test_refitting_an_equal_law_reuses_the_compiled_solver():
    """A second broken_power fit with a freshly built law compiles nothing (it used to recompile, ~11 s).

    Same data and settings as ``test_recovers_known_parameters[broken_power]``, so in the full suite the first fit
    here is a cache hit too.
    """
    import logging

    law, _, data, kw, _ = synthetic("broken_power")
    jaxscale.fit(jaxscale.laws.get("broken_power"), data, **kw)

    class Compiles(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    handler, logger = Compiles(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            jaxscale.fit(jaxscale.laws.get("broken_power"), data, **kw)
    finally:
        logger.removeHandler(handler)
    assert not [m for m in handler.messages if m.startswith("Compiling")], handler.messages[:3]


# --- derived quantities check their arguments at construction ------------------------------------------------------

EPOCH_P = jaxscale.published.EPOCH
BAD_BUDGETS = [(-1.0, "C must be > 0"), (0, "C must be > 0"), (float("nan"), "C must be a finite number"),
               (float("inf"), "C must be a finite number"), ([1e21, -1.0], r"C\[1\] must be > 0"), ("1e21", "C must be"),
               (None, "C must be"), ([], "at least one budget")]


@pytest.mark.parametrize("make", ["n_opt", "d_opt", "tokens_per_param", "chinchilla_set"])
@pytest.mark.parametrize("budget, match", BAD_BUDGETS, ids=[repr(b) for b, _ in BAD_BUDGETS])
def test_derived_budgets_are_checked_at_construction(make, budget, match):
    import jaxscale.derived as dv

    with pytest.raises(ArgumentError, match=match):
        getattr(dv, make)(budget)


@pytest.mark.parametrize("make", ["n_opt", "d_opt", "tokens_per_param"])
@pytest.mark.parametrize("k", [0.0, -6.0, float("nan"), float("inf"), "6", True])
def test_derived_flops_per_token_is_checked(make, k):
    import jaxscale.derived as dv

    with pytest.raises(ArgumentError, match="flops_per_token must be"):
        getattr(dv, make)(1e21, k)


def test_derived_accept_numpy_scalars_and_arrays_with_identical_numbers():
    import jaxscale.derived as dv

    ref = float(dv.n_opt(5.88e23, 6.0)(EPOCH_P))
    assert float(dv.n_opt(np.float64(5.88e23), np.float32(6.0))(EPOCH_P)) == ref
    assert float(dv.n_opt(np.array(5.88e23), np.int64(6))(EPOCH_P)) == ref
    grid = dv.d_opt(np.array([[1e21, 1e22], [1e23, 5.88e23]]))(EPOCH_P)
    assert grid.shape == (2, 2) and float(grid[1, 1]) == float(dv.d_opt(5.88e23)(EPOCH_P))


def test_loss_at_checks_each_covariate():
    import jaxscale.derived as dv

    with pytest.raises(ArgumentError, match="N must be > 0; got -1"):
        dv.loss_at("chinchilla", N=-1, D=1e10)
    with pytest.raises(ArgumentError, match=r"D\[1\] must be a finite number; got inf"):
        dv.loss_at("chinchilla", N=1e9, D=[1e10, np.inf])
    with pytest.raises(jaxscale.LawError, match=r"missing \['D'\]"):
        dv.loss_at("chinchilla", N=1e9)
    f = dv.loss_at("chinchilla", N=np.float32(7e10), D=1.4e12)
    assert float(f(EPOCH_P)) == pytest.approx(float(jaxscale.laws.get("chinchilla").predict(EPOCH_P, N=7e10, D=1.4e12)),
                                              rel=1e-7)  # N went through float32

