"""What ``normgrad derive`` runs: print derivations, prove routes, tie them to the code.

Exit status: 0 when everything asked for holds, 1 on any failure: a route not proved, a
route with no library counterpart to tie to (or a library route with no symbolic twin),
a code tie at or above ``tie.TIE_TOL``, a printed local derivative that fails its exact
check, a seed formula neither proved nor refuted, or a corrected seed formula not
proved, or an every-size twin (``all_n``) that does not prove or does not tie. A route
without an every-size twin is reported "at shapes ...", not failed; a refuted seed
formula is a verdict, not a failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from normgrad.symbolic import all_n, registry, seed, steps, tie
from normgrad.symbolic.core import format_verdict
from normgrad.symbolic.model import Problem


@dataclass
class RouteResult:
    layer: str
    shape: tuple[int, ...]
    route: str
    status: str
    prove_seconds: float
    tie_error: float | None  # None: no library route of this name to tie the proof to
    symbolic: bool = True  # False: a library route with no symbolic twin (never proved)

    @property
    def ok(self) -> bool:
        return (
            self.symbolic
            and self.status == "proved"
            and self.tie_error is not None
            and self.tie_error < tie.TIE_TOL
        )


def prove_problem(p: Problem, with_tie: bool = True) -> list[RouteResult]:
    """Prove every route of ``p`` and tie each to the library's NumPy route of that name.

    A symbolic route without a library route keeps ``tie_error`` None, and a library
    route without a symbolic twin gets a result with ``symbolic=False``: both fail.
    """
    errors = tie.tie(p) if with_tie else {}
    out = []
    for route in p.routes:
        v = p.prove(route)
        out.append(RouteResult(p.layer, p.shape, route, v.status, v.seconds, errors.get(route)))
    if with_tie:
        _, extra = tie.route_mismatch(p, errors)
        out.extend(
            RouteResult(p.layer, p.shape, route, "unproved", 0.0, errors[route], symbolic=False)
            for route in extra
        )
    return out


def _route_line(r: RouteResult) -> str:
    if not r.symbolic:
        return (
            f"{r.status:<8} {r.layer} {r.route:<6} x {r.shape}: library route with no "
            f"symbolic twin, so nothing proves it (code tie rel error "
            f"{r.tie_error:.1e})  <-- FAILED"
        )
    t = (
        "no library route of this name to tie to"
        if r.tie_error is None
        else f"code tie rel error {r.tie_error:.1e}"
    )
    mark = "" if r.ok else "  <-- FAILED"
    return (
        f"{r.status:<8} {r.layer} {r.route:<6} x {r.shape}: exact, eps symbolic "
        f"({r.prove_seconds:.2f} s); {t}{mark}"
    )


def _failed_checks(p: Problem, checks: list[tuple[str, bool]]) -> list[str]:
    return [
        f"FAILED   {p.layer} x {p.shape}: local derivative {name} does not hold"
        for name, ok in checks
        if not ok
    ]


def derive_problem(p: Problem, quiet: bool) -> int:
    """Print the derivation (unless ``quiet``) and every route's verdict; the exit status."""
    checks = steps.local_checks(p)
    if not quiet:
        print(steps.derivation(p, checks))
        print("\nBackward routes against the exact gradient of L = sum(dout * y):")
    results = prove_problem(p)
    for r in results:
        print(_route_line(r))
        if r.symbolic and r.status != "proved":
            print("         " + format_verdict(p.prove(r.route)))
    bad_checks = _failed_checks(p, checks)
    for line in bad_checks:
        print(line)
    print("\nFor all sizes:")
    _, sizes_status = derive_sizes([p.layer])
    return 0 if all(r.ok for r in results) and not bad_checks and not sizes_status else 1


@dataclass
class SizeResult:
    """One route's proof for every group size (``all_n``), or the shapes it is proved at."""

    layer: str
    route: str
    status: str  # "proved", "unproved", or "shapes" (no every-size twin)
    detail: str
    seconds: float = 0.0
    tie_error: float | None = None

    @property
    def ok(self) -> bool:
        if self.status == "shapes":
            return True
        return (
            self.status == "proved" and self.tie_error is not None and self.tie_error < tie.TIE_TOL
        )


def prove_every_size(layer: str) -> list[SizeResult]:
    """Each library route of ``layer`` proved for every size, or its fixed shapes."""
    routes = list(registry.spec_of(layer).routes)
    shapes = ", ".join(str(tuple(s.values())) for s in registry.default_shapes(layer))
    p = all_n.build(layer)
    out = []
    errors = all_n.tie(p) if p is not None else {}
    for route in routes:
        if p is None or route not in p.routes:
            out.append(
                SizeResult(layer, route, "shapes", f"at shapes {shapes} (no every-size twin)")
            )
            continue
        status, seconds, detail = p.prove(route)
        size = p.A.size
        if status == "proved":
            detail = f"for all {size} ({size} symbolic, one group through its power sums)"
        else:
            detail = f"not for all {size} ({detail}); proved at shapes {shapes}"
        out.append(SizeResult(layer, route, status, detail, seconds, errors.get(route)))
    return out


def _size_line(r: SizeResult) -> str:
    if r.status == "shapes":
        return f"{'shapes':<8} {r.layer:<8} {r.route:<6} {r.detail}"
    tie_text = "not tied" if r.tie_error is None else f"code tie at sizes 5, 9: {r.tie_error:.1e}"
    mark = "" if r.ok else "  <-- FAILED"
    return (
        f"{r.status:<8} {r.layer:<8} {r.route:<6} {r.detail} ({r.seconds:.2f} s); {tie_text}{mark}"
    )


def derive_sizes(layers: list[str]) -> tuple[list[SizeResult], int]:
    """Print every route's every-size verdict; (results, exit status)."""
    results = [r for layer in layers for r in prove_every_size(layer)]
    for r in results:
        print(_size_line(r))
    return results, 0 if all(r.ok for r in results) else 1


def derive_seed(N: int) -> int:
    verdicts = seed.check_seed(N, every=True)
    print(seed.format_seed(verdicts, N))
    bad = [
        sv
        for sv in verdicts
        if sv.verdict.status not in ("proved", "refuted")
        or (sv.corrected is not None and sv.verdict.status != "proved" and not sv.corrected.proved)
    ]
    return 1 if bad else 0


def derive_all(quiet: bool) -> int:
    t0 = time.perf_counter()
    results: list[RouteResult] = []
    bad_checks: list[str] = []
    n_checks = 0
    for layer in registry.layers():
        for shape in registry.default_shapes(layer):
            p = registry.build(layer, **shape)
            rs = prove_problem(p)
            results.extend(rs)
            for r in rs:
                if not quiet or not r.ok:
                    print(_route_line(r))
            checks = steps.local_checks(p)
            n_checks += len(checks)
            for line in _failed_checks(p, checks):
                bad_checks.append(line)
                print(line)
    print("\nEvery route for all sizes (one group through its power sums, the size a symbol):")
    sizes, sizes_status = derive_sizes(list(registry.layers()))
    print()
    status = 1 if bad_checks or not all(r.ok for r in results) else 0
    status |= sizes_status
    status |= derive_seed(3)
    n_ok = sum(r.ok for r in results)
    n_all = sum(r.status == "proved" and r.ok for r in sizes)
    n_routes = len(sizes)
    print(
        f"\n{n_ok}/{len(results)} routes proved and tied to the code (rel error < "
        f"{tie.TIE_TOL:g}); {n_all}/{n_routes} routes proved for all sizes; "
        f"{n_checks - len(bad_checks)}/{n_checks} printed local "
        f"derivatives checked exactly; total {time.perf_counter() - t0:.1f} s"
    )
    return status
