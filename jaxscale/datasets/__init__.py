"""Published scaling-law data sets, bundled with jaxscale: no download, no path to set.

Each data set is one CSV file from a public repository, stored xz-compressed beside a README that gives its source
repository, commit, path, license, citation, column meanings and caveats. The bytes are the upstream file's (or
the documented transcription's); :func:`load` checks their SHA-256 every time it reads them.

===================== =====  =============================================================================
name                  rows   what
===================== =====  =============================================================================
epoch_chinchilla        245  Epoch AI's digitisation of Hoffmann et al.'s Chinchilla runs (N, C, loss)
muennighoff             182  Muennighoff et al.'s data-constrained runs of the published fit (N, D, U, loss)
muennighoff_all         296  all the runs their notebook lists (seed replicates included)
revisiting_lang        1399  Alabdulmohsin et al.'s learning-curve benchmark, language (20 curves)
revisiting_vision     18883  the same benchmark, vision (72 curves)
ruan_base               148  Ruan et al.'s public base models: N, D, C and 8 benchmark accuracies
ruan_base_sub_10b        92  the same, models under 10B parameters
ruan_emergent            84  BIG-bench "emergent" task scores (keyed by Model only)
ruan_leaderboard_v2      72  Open LLM Leaderboard v2 scores (keyed by Model only)
ruan_instruct            27  instruction-tuned and API models
olmo_cosine            2460  OLMo "peteish" ladder, cosine schedule: eval curves of 24 runs (+1 row)
olmo_const              447  the same ladder, constant LR (4 runs at 10xC)
olmo_decay              282  WSD decay tails branched off olmo_const (20 runs)
olmo_final             5729  the paper's cosine runs (20 runs; v1 task columns; its C4/Pile losses are broken)
===================== =====  =============================================================================

:func:`load` gives a table exactly as its CSV holds it; :func:`scaling_data` (also
:meth:`ScalingData.from_dataset <jaxscale.ScalingData.from_dataset>`) builds :class:`~jaxscale.ScalingData` with
the data set's default roles (:func:`info` lists them), your mappings overriding them, unit columns multiplied
into counts, and any documented exclusion of rows applied and announced. On the command line every DATA argument
takes a data set's name as well as a file (an existing file wins): ``jaxscale fit epoch_chinchilla
--drop-top-loss 5``; ``jaxscale datasets`` lists them.

>>> from jaxscale import datasets
>>> data = datasets.scaling_data("epoch_chinchilla").drop_top(5)    # Epoch drops the 5 highest losses
>>> len(data), sorted(data.covariates), data.source
(240, ['C', 'D', 'N'], 'dataset epoch_chinchilla')
>>> datasets.info("epoch_chinchilla").roles
{'N': 'Model Size', 'C': 'Training FLOP', 'loss': 'loss'}
"""

from __future__ import annotations

import dataclasses
import hashlib
import lzma
import os
import warnings
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np

from jaxscale.data import (COVARIATE_KEYS, LABEL_KEYS, TARGET_KEYS, CsvTable, ScalingData, parse_csv, user_stacklevel,
                           read_csv)
from jaxscale.datasets._registry import BY_NAME, SPECS, Spec
from jaxscale.errors import ArgumentError, DataError

__all__ = ["DatasetInfo", "OLMO_CURVE_ROLES", "available", "csv_table", "info", "is_dataset", "load", "olmo_curves",
           "olmo_curves_frames", "overview", "raw", "read", "read_table", "scaling_data"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What :func:`info` tells about a bundled data set.

    Attributes
    ----------
    name, title
        The data set's name (what :func:`load` takes) and a one-line description.
    file, folder, stored
        The original file name, the package folder holding it and its README, and the stored (compressed) name.
    rows, columns
        Data rows and column names of the CSV.
    roles
        The default mapping of roles to columns that :func:`scaling_data` uses (yours override it).
    targets
        Columns that can serve as the target (``loss=`` for a loss-like one, ``score=`` for an accuracy).
    no_target
        Why there is no default target, when ``roles`` has none (None otherwise).
    scale
        Column -> multiplier into counts (N in parameters, D in tokens, C in FLOPs) that :func:`scaling_data`
        applies; empty when the file holds counts already.
    exclusion
        The rows :func:`scaling_data` excludes by default and why (None: it keeps every row).
    repo, commit, path
        The source repository, the commit read, and the path of the data in it.
    license, citation
        The upstream license and the paper to cite.
    sha256
        SHA-256 of the uncompressed bytes (checked by every read).
    notes
        Caveats in short; ``readme`` has them in full.
    readme
        The folder's README.md (source, how the file was made, columns, caveats).
    """

    name: str
    title: str
    file: str
    folder: str
    stored: str
    rows: int
    columns: tuple[str, ...]
    roles: dict[str, str]
    targets: tuple[str, ...]
    no_target: str | None
    scale: dict[str, float]
    exclusion: str | None
    repo: str
    commit: str
    path: str
    license: str
    citation: str
    sha256: str
    notes: str = dataclasses.field(repr=False)
    readme: str = dataclasses.field(repr=False)

    def summary(self) -> str:
        """The facts as text, one per line (what ``jaxscale datasets NAME`` prints).

        >>> from jaxscale import datasets
        >>> print(datasets.info("muennighoff").summary().splitlines()[2])
        roles:    N=params, D=tokens, U=unique_tokens, loss=val_loss
        """
        scale = ", ".join(f"{c} x {m:g}" for c, m in self.scale.items())
        target = (f"none by default: {self.no_target}; map one of {', '.join(self.targets)} (--col loss=<column> "
                  f"or --col score=<column>)" if self.no_target else ", ".join(self.targets))
        lines = [
            f"{self.name}: {self.title}",
            f"file:     {self.file} ({self.rows} rows, {len(self.columns)} columns; stored as "
            f"jaxscale/datasets/{self.folder}/{self.stored})",
            f"roles:    {_roles_text(self.roles)}",
            f"targets:  {target}",
        ]
        if scale:
            lines.append(f"units:    {scale} (scaling_data multiplies them into counts)")
        lines += [
            f"excluded: {self.exclusion or 'none (every row is kept)'}",
            f"columns:  {', '.join(self.columns)}",
            f"source:   {self.repo} at {self.commit}, {self.path}",
            f"license:  {self.license}",
            f"cite:     {self.citation}",
            f"sha256:   {self.sha256} (uncompressed)",
            f"notes:    {self.notes}",
            f"README:   jaxscale/datasets/{self.folder}/README.md (jaxscale datasets {self.name} --readme)",
        ]
        return "\n".join(lines)


def _roles_text(roles: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in roles.items()) or "none"


def available() -> tuple[str, ...]:
    """The names of the bundled data sets.

    >>> from jaxscale import datasets
    >>> datasets.available()[:3]
    ('epoch_chinchilla', 'muennighoff', 'muennighoff_all')
    """
    return tuple(s.name for s in SPECS)


def _spec(name) -> Spec:
    spec = BY_NAME.get(name) if isinstance(name, str) else None
    if spec is None:
        raise DataError(f"No dataset named {name!r}; datasets: {', '.join(available())}.")
    return spec


def _resource(spec: Spec, file: str):
    return resources.files(__name__).joinpath(spec.folder, file)


def _stored_bytes(spec: Spec) -> bytes:
    try:
        return _resource(spec, spec.file + ".xz").read_bytes()
    except OSError as e:
        raise DataError(f"dataset {spec.name!r}: its bundled file {spec.folder}/{spec.file}.xz cannot be read "
                        f"({e.strerror or e}); reinstall jaxscale.") from None


def info(name: str) -> DatasetInfo:
    """Source, license, citation, default roles and caveats of a bundled data set.

    Parameters
    ----------
    name
        One of :func:`available`.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    DataError
        No data set has that name (the message lists them).

    Examples
    --------
    >>> from jaxscale import datasets
    >>> i = datasets.info("ruan_base")
    >>> i.rows, i.roles["N"], i.scale["Model Size (B)"], i.license
    (148, 'Model Size (B)', 1000000000.0, 'Apache-2.0')
    """
    spec = _spec(name)
    readme = _resource(spec, "README.md").read_text(encoding="utf-8")
    return DatasetInfo(name=spec.name, title=spec.title, file=spec.file, folder=spec.folder, stored=spec.file + ".xz",
                       rows=spec.rows, columns=spec.columns, roles=dict(spec.roles), targets=spec.targets,
                       no_target=spec.no_target, scale=dict(spec.scale), exclusion=spec.exclusion, repo=spec.repo,
                       commit=spec.commit, path=spec.path, license=spec.license, citation=spec.citation,
                       sha256=spec.sha256, notes=spec.notes, readme=readme)


def raw(name: str) -> bytes:
    """The CSV file of a data set, byte for byte as published (decompressed, its SHA-256 checked).

    Raises
    ------
    DataError
        Unknown name, or the bundled file is missing or damaged (its checksum differs).

    Examples
    --------
    >>> from jaxscale import datasets
    >>> datasets.raw("epoch_chinchilla").splitlines()[0]
    b'x,y,color,Model Size,Training FLOP,hex_color,loss'
    """
    spec = _spec(name)
    stored = _stored_bytes(spec)
    try:
        data = lzma.decompress(stored, format=lzma.FORMAT_XZ)
    except lzma.LZMAError as e:
        raise DataError(f"dataset {name!r}: its bundled file {spec.folder}/{spec.file}.xz is damaged ({e}); "
                        f"reinstall jaxscale.") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise DataError(f"dataset {name!r}: its bundled file {spec.folder}/{spec.file}.xz is damaged: the SHA-256 of "
                        f"its {len(data)} bytes is {digest}, expected {spec.sha256}; reinstall jaxscale.")
    return data


def _table(spec: Spec, counts: bool) -> CsvTable:
    table = parse_csv(raw(spec.name).decode("utf-8-sig"), spec.name, ",")
    if counts and spec.scale:
        frame = table.frame.copy()
        for column, factor in spec.scale.items():
            frame[column] = frame[column] * factor
        table = table._replace(frame=frame)
    return table


def load(name: str):
    """A data set's table exactly as its CSV holds it (a fresh pandas DataFrame each call).

    Units are the file's: Ruan et al.'s sizes stay in billions, trillions and 1e21 FLOPs here (see ``info(name)
    .scale``; :func:`scaling_data` converts them). The checksum is checked on every call.

    Examples
    --------
    >>> from jaxscale import datasets
    >>> frame = datasets.load("olmo_cosine")
    >>> frame.shape, frame["run"].nunique()
    ((2460, 25), 25)
    """
    return _table(_spec(name), counts=False).frame


def is_dataset(source) -> bool:
    """True when ``source`` names a bundled data set and no file of that name exists (a path wins).

    >>> from jaxscale import datasets
    >>> datasets.is_dataset("epoch_chinchilla"), datasets.is_dataset("runs.csv")
    (True, False)
    """
    return isinstance(source, str) and source in BY_NAME and not os.path.exists(source)


def _neither(source, argument: str) -> DataError:
    return DataError(f"{argument} {os.fspath(source)!r} is neither an existing file nor a dataset; datasets: "
                     f"{', '.join(available())}.")


def _no_sep(sep, name: str) -> None:
    if sep is not None:
        raise ArgumentError(f"sep applies to a CSV file; {name!r} is a bundled dataset, read as stored "
                            f"(comma-separated).")


def csv_table(source, *, sep: str | None = None, argument: str = "data") -> CsvTable:
    """A CSV file (:func:`jaxscale.data.read_csv`) or a data set's table, with the file lines of its rows.

    An existing path wins over a data set's name. A data set's unit columns (``info(name).scale``) come
    multiplied into counts, as :func:`scaling_data` reads them; ``path`` is then the data set's name.

    Raises
    ------
    DataError
        ``source`` is neither an existing file nor a data set's name (``argument`` names it in the message).

    Examples
    --------
    >>> from jaxscale import datasets
    >>> t = datasets.csv_table("ruan_base")
    >>> t.path, float(t.frame["Model Size (B)"].iloc[0]), int(t.lines[0])
    ('ruan_base', 7000000000.0, 2)
    """
    if isinstance(source, (str, os.PathLike)) and os.path.exists(source):
        return read_csv(source, sep=sep)
    if is_dataset(source):
        _no_sep(sep, source)
        return _table(BY_NAME[source], counts=True)
    raise _neither(source, argument)


def _mapping(spec: Spec, columns: Mapping[str, Any]) -> dict[str, Any]:
    """The default roles with the user's mappings over them (None or '' unmaps a role)."""
    user = dict(columns)
    mapping = dict(spec.roles)
    if any(k in user for k in TARGET_KEYS):
        mapping.pop("loss", None)  # a target given as score= or y= replaces the default loss
    taken = {v for v in user.values() if v}
    mapping = {k: v for k, v in mapping.items() if v not in taken}  # a column the user gave another role
    mapping.update(user)
    return {k: v for k, v in mapping.items() if v is not None and v != ""}


def _selected(spec: Spec, frame, select) -> np.ndarray:
    keep = np.ones(len(frame), dtype=bool)
    if select is None:
        return keep
    if not isinstance(select, Mapping) or not select:
        raise ArgumentError(f"select must map columns to a value or a list of values, e.g. select={{'Domain': 'LM'}}; "
                            f"got {select!r}.")
    for column, value in select.items():
        if column not in frame.columns:
            raise DataError(f"select: dataset {spec.name!r} has no column {column!r}; columns are "
                            f"{list(frame.columns)}.")
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        keep &= frame[column].isin(values).to_numpy()
    if not keep.any():
        first = next(iter(select))
        seen = list(dict.fromkeys(frame[first].tolist()))
        raise DataError(f"select {dict(select)} matches no row of dataset {spec.name!r}; {first!r} holds "
                        f"{seen[:12]}{' ...' if len(seen) > 12 else ''}.")
    return keep


def _table_and_data(spec: Spec, *, flops_per_token, exclude: bool, select, columns):
    table = _table(spec, counts=True)
    frame, lines = table.frame, table.lines
    keep = _selected(spec, frame, select)
    mapping = _mapping(spec, columns)
    if not any(k in mapping for k in TARGET_KEYS):
        why = spec.no_target or "it has no default target"
        raise DataError(f"dataset {spec.name!r} has no default target: {why}. Map one of "
                        f"{', '.join(spec.targets)} with --col loss=<column> for a loss or --col score=<column> for "
                        f"an accuracy (Python: loss='<column>' or score='<column>').")
    if not any(k in mapping for k in COVARIATE_KEYS):
        why = f": {spec.no_target}" if not spec.roles and spec.no_target else ""
        raise DataError(f"dataset {spec.name!r} maps no covariate (N, D, C, U or x){why}; map one with "
                        f"--col N=<column> (Python: N='<column>'); columns are {list(spec.columns)}.")
    n_selected = int(keep.sum())
    excluded = np.zeros(len(frame), dtype=bool)
    if exclude:
        for column, values in spec.exclude_rows.items():
            excluded |= frame[column].isin(values).to_numpy()
        if spec.exclude_missing:
            for key, column in mapping.items():
                if key not in LABEL_KEYS and column in frame.columns:
                    excluded |= frame[column].isna().to_numpy()
        excluded &= keep
    source = f"dataset {spec.name}"
    if select is not None:
        source += f" (select {dict(select)})"
    if excluded.any():
        idx = np.flatnonzero(excluded)
        where = f"lines {lines[idx[:10]].tolist()}" if lines is not None else f"rows {idx[:10].tolist()}"
        more = f" and {idx.size - 10} more" if idx.size > 10 else ""
        source += f", {idx.size} of {n_selected} rows excluded"
        warnings.warn(f"dataset {spec.name}: {idx.size} of {n_selected} rows excluded ({where}{more}) by its "
                      f"documented rule, {spec.exclusion}; exclude=False keeps every row.", UserWarning,
                      stacklevel=user_stacklevel())
        keep &= ~excluded
    rows = frame[keep]
    data = ScalingData.from_frame(rows, flops_per_token=flops_per_token, source=source,
                                  lines=None if lines is None else lines[keep], lines_of=spec.name, aliases=False,
                                  **mapping)
    return data, rows


def scaling_data(name: str, *, flops_per_token: float = 6.0, exclude: bool = True, select=None,
                 **columns) -> ScalingData:
    """A bundled data set as :class:`~jaxscale.ScalingData`, with its default roles.

    Parameters
    ----------
    name
        One of :func:`available`.
    flops_per_token
        k in C = k N D, for deriving a missing D or C (6 by default; Epoch derives D = C / 6N).
    exclude
        Apply the data set's documented exclusion (``info(name).exclusion``; OLMo's one non-ladder row, and in
        Ruan et al.'s tables the rows with an empty cell in a mapped column). The excluded rows are named in a
        ``UserWarning`` and counted in the result's ``source``. False keeps every row: an empty cell is then an
        error naming its line.
    select
        Keep only the rows whose columns hold the given values: ``{"Domain": "LM", "Training": 1}``; a list of
        values keeps any of them. The revisiting benchmark holds many curves: select one.
    **columns
        Roles mapped to columns (``loss="acc_hellaswag"``, ``score="MMLU"``, ``x="step"``), as in
        :meth:`~jaxscale.ScalingData.from_frame`, over the defaults (``info(name).roles``): a target given
        (``loss``, ``score`` or ``y``) replaces the default loss, a column you give a role leaves the role it
        had, and ``None`` unmaps a default role (``C=None``). No other column is guessed from its name: the
        roles are the defaults and yours.

    Returns
    -------
    ScalingData
        ``source`` is ``"dataset NAME"`` (with the selection and the count of excluded rows, if any); messages
        about a row name its line in the CSV file (``"epoch_chinchilla line 12"``). Unit columns
        (``info(name).scale``: Ruan et al.'s billions, trillions, 1e21 FLOPs) are multiplied into counts.

    Raises
    ------
    DataError
        Unknown name; a data set without a default target (accuracy tables, OLMo's ``olmo_final``) and no
        target mapped: the message lists the columns that can be; a mapped column with an empty cell
        (``exclude=False``, or a data set without that exclusion).

    Examples
    --------
    >>> import warnings
    >>> from jaxscale import datasets
    >>> runs = datasets.scaling_data("muennighoff")
    >>> len(runs), sorted(runs.covariates)
    (182, ['C', 'D', 'N', 'U'])
    >>> curve = datasets.scaling_data("revisiting_lang", select={"Domain": "NMT", "Model": "6 Enc, 6 Dec"})
    >>> len(curve), sorted(curve.covariates)
    (11, ['x'])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     pythia = datasets.scaling_data("ruan_base", score="HellaSwag", select={"Model Family": "Pythia"})
    >>> len(pythia), float(pythia.covariates["N"].min()), pythia.group[0], len(caught)
    (8, 70000000.0, 'Pythia', 0)
    >>> datasets.scaling_data("olmo_final")                                  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: dataset 'olmo_final' has no default target: its loss_c4 and loss_pile are broken ...
    """
    spec = _spec(name)
    return _table_and_data(spec, flops_per_token=flops_per_token, exclude=exclude, select=select,
                           columns=columns)[0]


def read_table(source, *, argument: str = "data", sep: str | None = None, flops_per_token: float = 6.0,
               **columns):
    """``(ScalingData, rows)`` from a CSV path or a data set's name, and the table rows it was built from.

    An existing path wins: it is read as :meth:`ScalingData.from_csv <jaxscale.ScalingData.from_csv>` reads it
    (``sep`` applies). Otherwise a data set's name is read as :func:`scaling_data` reads it (``columns`` may then
    hold ``exclude`` and ``select`` too). ``rows`` is the DataFrame of the rows kept, in the same order (unit
    columns in counts), for splits that name a column rather than a role.

    Raises
    ------
    DataError
        ``source`` is neither an existing file nor a data set: "``argument`` 'xyz' is neither an existing file
        nor a dataset; datasets: epoch_chinchilla, ...".

    Examples
    --------
    >>> from jaxscale import datasets
    >>> data, rows = datasets.read_table("revisiting_lang", select={"Domain": "NMT", "Model": "6 Enc, 6 Dec"})
    >>> len(data) == len(rows), rows["Training"].tolist().count(1)
    (True, 10)
    """
    if isinstance(source, (str, os.PathLike)) and os.path.exists(source):
        options = {k: columns.pop(k) for k in ("exclude", "select") if k in columns}
        if options:
            raise ArgumentError(f"{', '.join(options)} apply to a bundled dataset; {os.fspath(source)!r} is a file.")
        table = read_csv(source, sep=sep)
        data = ScalingData.from_frame(table.frame, flops_per_token=flops_per_token,
                                      source=os.path.abspath(table.path), lines=table.lines, **columns)
        return data, table.frame
    if is_dataset(source):
        _no_sep(sep, source)
        exclude = columns.pop("exclude", True)
        select = columns.pop("select", None)
        return _table_and_data(BY_NAME[source], flops_per_token=flops_per_token, exclude=exclude, select=select,
                               columns=columns)
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"{argument} must be a CSV path or a dataset name; got {type(source).__name__}.")
    raise _neither(source, argument)


def read(source, *, argument: str = "data", sep: str | None = None, flops_per_token: float = 6.0,
         **columns) -> ScalingData:
    """ScalingData from a CSV path or a data set's name: what every command-line DATA argument takes.

    An existing path wins over a data set's name; see :func:`read_table` (this is its first element).

    Examples
    --------
    >>> from jaxscale import datasets
    >>> len(datasets.read("epoch_chinchilla"))
    245
    >>> datasets.read("runs.csv", argument="DATA")                          # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jaxscale.errors.DataError: DATA 'runs.csv' is neither an existing file nor a dataset; datasets: ...
    """
    return read_table(source, argument=argument, sep=sep, flops_per_token=flops_per_token, **columns)[0]


def overview() -> str:
    """Each data set's name, rows and default roles, its title on the line below (what ``jaxscale datasets`` prints).

    >>> from jaxscale import datasets
    >>> print("\\n".join(datasets.overview().splitlines()[:2]))
    name                  rows  default roles
    epoch_chinchilla       245  N=Model Size, C=Training FLOP, loss=loss
    """
    width = max(len(s.name) for s in SPECS)
    lines = [f"{'name':<{width}}  {'rows':>5}  default roles"]
    for spec in SPECS:
        roles = _roles_text(spec.roles) + ("" if "loss" in spec.roles else " (no default loss: map one)")
        lines += [f"{spec.name:<{width}}  {spec.rows:>5}  {roles}", f"{'':<{width}}  {'':>5}  {spec.title}"]
    return "\n".join(lines)


#: The columns of the OLMo ladder tables that :func:`olmo_curves` maps to roles.
OLMO_CURVE_ROLES = dict(N="params", D="tokens", C="flops", run="run", step="step", lr="lr", lr_peak="lr_peak",
                        batch_size="batch_size_tokens")


def olmo_curves_frames(schedules: Sequence[str] = ("cosine", "constant", "wsd")):
    """The OLMo ladder's loss curves under three schedules as one table: ``(rows, history)``.

    ``rows`` holds every checkpoint of the cosine runs (``olmo_cosine`` without its ``-rerun`` duplicates and the
    ``peteish1_eval_final`` row), the constant-LR runs (``olmo_const``) and the WSD decay tails (``olmo_decay``),
    with run names suffixed ``-cosine``, ``-constant``, ``-wsd`` and a ``schedule`` column. A WSD run's rows start
    at its branch point; ``history`` holds, per WSD run, the constant-LR rows of its size before that (the
    README's recipe), for :meth:`ScalingData.from_frame`'s ``history=``: they give the LR history, not data.

    >>> from jaxscale.datasets import olmo_curves_frames
    >>> rows, history = olmo_curves_frames()
    >>> rows.groupby("schedule").run.nunique().to_dict()
    {'constant': 4, 'cosine': 20, 'wsd': 20}
    """
    import pandas as pd

    unknown = sorted(set(schedules) - {"cosine", "constant", "wsd"})
    if unknown:
        raise ArgumentError(f"schedules: unknown {unknown}; expected some of ['cosine', 'constant', 'wsd'].")
    cosine = load("olmo_cosine")
    cosine = cosine[(cosine.run != "peteish1_eval_final") & ~cosine.run.str.endswith("-rerun")].copy()
    const, decay = load("olmo_const"), load("olmo_decay")
    parts, hist = [], []
    for name, frame in (("cosine", cosine), ("constant", const), ("wsd", decay)):
        if name in schedules:
            frame = frame.assign(schedule=name, run=frame.run + f"-{name}")
            parts.append(frame)
    if "wsd" in schedules:
        for run, rows in decay.groupby("run", sort=False):
            base = const[(const["size"] == rows["size"].iloc[0]) & (const.step < rows.step.iloc[0])]
            hist.append(base.assign(run=f"{run}-wsd"))
    history = pd.concat(hist, ignore_index=True) if hist else None
    return pd.concat(parts, ignore_index=True), history


def olmo_curves(schedules: Sequence[str] = ("cosine", "constant", "wsd"), *, loss: str = "loss_c4"):
    """:func:`olmo_curves_frames` as :class:`ScalingData` of checkpoints (C4 loss by default), with its schedule
    covariates; ``data.run`` names the run, ``data.step`` the step.

    >>> from jaxscale.datasets import olmo_curves
    >>> olmo_curves(["cosine"])   # doctest: +ELLIPSIS
    ScalingData(n=2012, covariates=['C', 'D', 'N', 'S1', ..., 'mp_*'], source='olmo_ladder (cosine)')
    """
    rows, history = olmo_curves_frames(schedules)
    return ScalingData.from_frame(rows, history=history, loss=loss, source=f"olmo_ladder ({', '.join(schedules)})",
                                  **OLMO_CURVE_ROLES)
