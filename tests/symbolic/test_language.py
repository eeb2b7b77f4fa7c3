"""The formula language of `derive check`: what it reads, and everything it refuses."""

from __future__ import annotations

import pytest

pytest.importorskip("sympy")

from normgrad.symbolic import language as L  # noqa: E402
from normgrad.symbolic.core import sp  # noqa: E402
from normgrad.symbolic.language import BatchSum, FormulaError, parse  # noqa: E402

X_I = L.element_symbol("x", "i")
X_K = L.element_symbol("x", "k")
N = L.scalar_symbol("N")


def test_bare_expression_is_a_claim_about_dx() -> None:
    p = parse("dxhat/std")
    assert p.claim.target == "dx" and p.claim.lhs is None


def test_names_outside_a_sum_are_sample_i_and_inside_the_summed_one() -> None:
    p = parse("dx = x * sum(x * x_i)")
    rhs = p.claim.rhs
    inner = next(iter(rhs.atoms(BatchSum))).args[0]
    assert X_I in rhs.free_symbols - inner.free_symbols or X_I in rhs.free_symbols
    assert inner.free_symbols == {X_I, X_K}  # x_i stays sample i inside the sum


def test_mean_is_sum_over_n_and_decimals_are_exact() -> None:
    p = parse("dx = mean(x) + 0.5 + 1e-5")
    assert p.claim.rhs == BatchSum(X_K) / N + sp.Rational(1, 2) + sp.Rational(1, 100000)


@pytest.mark.parametrize(
    "text,same_as",
    [
        ("dx = 2(x - mu)", "dx = 2*(x - mu)"),
        ("dx = 2x", "dx = 2*x"),
        ("dx = (var + eps)^(-3/2)", "dx = (var + eps)**(-3/2)"),
        ("dx = 1/N sum(dy)", "dx = 1/N*sum(dy)"),
        ("dx_i = dout_i", "dx = dy"),
    ],
)
def test_notation_variants(text: str, same_as: str) -> None:
    assert parse(text).claim.rhs == parse(same_as).claim.rhs


def test_locals_are_substituted_and_reindexed_inside_sums() -> None:
    p = parse("t = dxhat/std; dx = t - mean(t)")
    want = parse("dx = dxhat/std - mean(dxhat/std)").claim.rhs
    assert p.claim.rhs == want


def test_derived_names_may_be_redefined_and_identities_parse() -> None:
    p = parse("dvar = sum(dxhat)*0; dx = dvar")
    assert p.claim.rhs == 0
    ident = parse("sum(x - mu) = 0")
    assert ident.claim.target is None and ident.claim.rhs == 0


def test_layer_and_rms_names() -> None:
    assert parse("dgamma = dy*xhat", "layer").claim.target == "dgamma"
    assert parse("dx = (dxhat - xhat*mean(dxhat*xhat))/std", "rms").claim.target == "dx"
    assert (
        parse("dx = dxhat / sqrt(ms + eps)", "rms").claim.rhs
        == parse("dx = dxhat/sqrt(var + eps)", "rms").claim.rhs
    )


# Every input the language must refuse, and a word its message must contain.
REFUSED = [
    ("__import__('os').system('echo hacked')", "not allowed"),
    ("x.__class__", "'.'"),
    ("(lambda: 0)()", "not allowed"),
    ("[c for c in x]", "'['"),
    ("'a string'", "a string"),
    ("x # comment", "a comment"),
    ("eval('1')", "unknown name"),
    ("open('/etc/passwd')", "unknown name"),
    ("dx = x, x", "','"),
    ("dx = 2**3**4", "exponent"),
    ("dx = x**(N)", "exponent"),
    ("dx = x**100000", "exponent"),
    ("dx = 1j", "plain decimal"),
    ("dx = 0x1F", "plain decimal"),
    ("dx = foo", "unknown name 'foo'"),
    ("dx = xhatt", "Did you mean 'xhat'"),
    ("dx = mu", ""),  # a valid formula: checked below it is not refused
    ("dx = sum x", "parentheses"),
    ("dx = (x", "parentheses"),
    ("dx = x)", "parentheses"),
    ("dx = x_k", "outside any sum"),
    ("dx = mu_i", "no index"),
    ("dx == x", "one '='"),
    ("a = 1 = 2", "one '='"),
    ("t = x", "claims nothing"),
    ("x = 2; dx = x", "cannot be redefined"),
    ("x; dx = x", "states nothing"),
    ("", "empty"),
    ("dx = γ", "ASCII"),
    ("dx = " + "x + " * 600 + "x", "characters"),
    ("dx = " + "(" * 60 + "x" + ")" * 60, "nested deeper"),
    ("dx = running_var", "running statistics"),  # with --layer layer (below)
    ("dx = mu", "no mu"),  # with --layer rms (below)
]


@pytest.mark.parametrize("text,needle", REFUSED)
def test_refused_with_a_clear_message(text: str, needle: str) -> None:
    kind = {"dx = running_var": "layer", "dx = mu": "rms"}.get(text, "batch")
    if needle == "":
        assert parse(text, "batch").claim.target == "dx"
        return
    with pytest.raises(FormulaError) as err:
        parse(text, kind)
    assert needle in str(err.value), str(err.value)


def test_refusal_happens_before_any_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    import sympy.parsing.sympy_parser as sp_parser

    real = sp_parser.parse_expr
    monkeypatch.setattr(sp_parser, "parse_expr", lambda *a, **k: calls.append(a) or real(*a, **k))
    with pytest.raises(FormulaError):
        parse("__import__('os')")
    assert calls == []  # the tokenizer refused it; SymPy never saw the text


def test_unknown_layer_kind_is_refused() -> None:
    with pytest.raises(FormulaError, match="unknown layer"):
        parse("dx = x", "group")
    with pytest.raises(FormulaError, match="a string"):
        parse(3)  # type: ignore[arg-type]
