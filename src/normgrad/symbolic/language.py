"""The formula language of ``normgrad derive check``: a whitelist, parsed safely.

A formula speaks about ONE normalization group: batch norm's column of N samples, or
layer / RMS norm's row of D features (the language calls the group size N either way).
Examples::

    dx = gamma/sqrt(var + eps) * (dy - (dbeta + xhat*dgamma)/N)
    dx = (dxhat - mean(dxhat) - xhat*mean(dxhat*xhat)) / std
    dvar = sum(dxhat*(x - mu)) * (-1/2) * (var + eps)^(-3/2)
    t = dxhat/std; dx = t - mean(t) - xhat*mean(t*xhat)
    sum(x - mu) = 0

Grammar: statements separated by ``;`` (or new lines). ``name = expression`` defines a
local name for the statements after it; the LAST statement is the claim: ``dx = ...``
(also ``dxhat``, ``dgamma``, ``dbeta``, ``dmu``, ``dvar``, ``y``), an identity
``expression = expression``, or a bare expression, read as ``dx = expression``.

Names (``docs/derivation.md``, section 13, has the table): per-element ``x``, ``xhat``,
``dy`` (``dout``), ``dxhat``, ``gamma``, ``beta``, ``y``, ``dx`` (and every local that
depends on them) are sample i's values outside ``sum(...)``/``mean(...)`` and the summed
element's inside (the innermost sum binds); ``x_i`` is always sample i, ``x_k`` (j, k,
s, t) the summed element. The group's scalars: ``mu``, ``var`` (RMS norm: the mean
square, ``ms``), ``std``, ``eps``, ``N`` (``D``), the paper's ``dmu`` and ``dvar``,
``dgamma`` and ``dbeta`` (batch norm: sums; layer and RMS norm: per-element shares),
batch norm's ``running_mean`` and ``running_var``. Functions ``sum``, ``mean``, ``sqrt``;
operators ``+ - * / ** ^``; ``2x`` and ``2(x - mu)`` multiply; decimals are exact.

Safety: the text is tokenized first, and every token must be a whitelisted name, a plain
decimal number or one of the operators above; anything else (attribute access, strings,
brackets, lambdas, keywords, dunder names, ``,``) is refused with a message. Exponents
must be literal numbers of at most 2 digits, so no power tower is ever evaluated. Only
then does SymPy's ``parse_expr`` read the rewritten text, with an explicit
``local_dict`` of those names and a ``global_dict`` holding only SymPy's number classes
and an empty ``__builtins__``: nothing else is reachable from a formula.
"""

from __future__ import annotations

import difflib
import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field
from typing import Any

from normgrad.symbolic.core import sp

MAX_CHARS = 2000  # a formula longer than this is refused
MAX_DEPTH = 40  # parentheses nested deeper than this are refused
KINDS = ("batch", "layer", "rms")  # the layers a formula can speak about
TARGETS = ("dx", "dxhat", "dgamma", "dbeta", "dmu", "dvar", "y")
FUNCTIONS = ("sum", "mean", "sqrt")
REDEFINABLE = ("dxhat", "dgamma", "dbeta", "dmu", "dvar", "std", "y")  # may be shadowed
_ELEMENT = ("x", "xhat", "dy", "dxhat", "gamma", "beta", "y", "dx")
_OPS = {"+", "-", "*", "/", "**", "^", "(", ")"}
_NUMBER = re.compile(r"^(\d{1,12}(\.\d{0,12})?|\.\d{1,12})([eE][-+]?\d{1,2})?$")
_INDEX = re.compile(r"^([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?)_([a-z])$")


class FormulaError(ValueError):
    """A formula the language does not accept; the message says why and how to fix it."""


_Function: Any = sp.Function  # SymPy's base class of undefined functions


class BatchSum(_Function):
    """sum(body) over the group: kept unevaluated until a world (``check``) binds it."""

    nargs = 1


def names(kind: str) -> dict[str, str]:
    """name -> "element" or "scalar", for layer kind ``kind`` (aliases resolved later)."""
    if kind not in KINDS:
        raise FormulaError(f"unknown layer {kind!r} for a formula; choose one of {KINDS}.")
    table = {n: "element" for n in (*_ELEMENT, "dout")}
    table.update({n: "scalar" for n in ("var", "std", "eps", "N", "dvar")})
    if kind == "batch":
        table.update({n: "scalar" for n in ("mu", "dmu", "dgamma", "dbeta")})
        table.update({"running_mean": "scalar", "running_var": "scalar"})
    else:
        table.update({"dgamma": "element", "D": "scalar"})
        if kind == "layer":
            table.update({"mu": "scalar", "dmu": "scalar", "dbeta": "element"})
        else:
            table["ms"] = "scalar"
            del table["beta"]
    return table


ALIASES = {"dout": "dy", "D": "N", "ms": "var"}


def _refused(kind: str, name: str) -> str:
    if kind == "rms" and name in ("mu", "dmu", "beta", "dbeta"):
        return f"RMS norm has no {name}: it does not centre and has no shift (section 9.6)."
    if kind != "batch" and name.startswith("running_"):
        return f"{name}: only batch norm keeps running statistics."
    return ""


@dataclass
class Claim:
    """What the last statement states: ``target`` (a gradient name) or an identity."""

    lhs: Any  # SymPy expression, or None for a target claim
    rhs: Any
    target: str | None = None  # "dx", ..., or None for an identity lhs = rhs


@dataclass
class Program:
    """A parsed formula: its layer, its claim, and the symbols it was built from."""

    kind: str
    text: str
    claim: Claim
    locals: dict[str, Any] = field(default_factory=dict)


def element_symbol(name: str, where: str) -> Any:
    """The symbol of per-element ``name`` at sample i (``where="i"``) or the summed one."""
    return sp.Symbol(f"{name}[{where}]", real=True)


def scalar_symbol(name: str) -> Any:
    """The symbol of the group's scalar ``name`` (eps positive, N a positive integer)."""
    kind = {"eps": {"positive": True}, "N": {"positive": True, "integer": True}}
    return sp.Symbol(name, **kind.get(name, {"real": True}))


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise FormulaError(f"cannot read {text!r}: {exc}. Check the parentheses.") from None
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
    return [t for t in toks if t.type not in skip]


def _check_token(tok: tokenize.TokenInfo) -> None:
    s = tok.string
    if tok.type == tokenize.NUMBER:
        if not _NUMBER.match(s):
            raise FormulaError(
                f"{s!r} is not a plain decimal number; write numbers like 2, 0.5 or 1e-5."
            )
        return
    if tok.type == tokenize.NAME:
        return
    if tok.type == tokenize.OP and s in _OPS:
        return
    what = {tokenize.STRING: "a string", tokenize.COMMENT: "a comment"}.get(tok.type, repr(s))
    raise FormulaError(
        f"{what} is not allowed in a formula (only names, numbers, + - * / ** ^ and "
        f"parentheses are): attribute access, indexing, strings and calls of anything but "
        f"{', '.join(FUNCTIONS)} are refused."
    )


def _resolve(name: str, kind: str, table: dict[str, str], local: dict[str, str]) -> tuple:
    """(base name, "element"/"scalar"/"local"/"function", index letter or "")."""
    if name in FUNCTIONS:
        return name, "function", ""
    for candidate, index in ((name, ""), *_split_index(name)):
        if candidate in local:
            return candidate, "local", index
        if candidate in table:
            return ALIASES.get(candidate, candidate), table[candidate], index
    split = _split_index(name)
    why = _refused(kind, name) or (_refused(kind, split[0][0]) if split else "")
    if keyword.iskeyword(name) or name.startswith("_"):
        why = f"{name!r} is not allowed: a formula is arithmetic on the names listed below."
    known = sorted([*table, *local, *FUNCTIONS])
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise FormulaError(
        (why or f"unknown name {name!r} for {kind} norm.")
        + hint
        + f" Known names: {', '.join(known)} (and a suffix _i or _k on per-element names)."
    )


def _split_index(name: str) -> list[tuple[str, str]]:
    m = _INDEX.match(name)
    return [(m.group(1), m.group(2))] if m else []


def _rewrite(
    text: str, kind: str, table: dict[str, str], local: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """The expression as Python text over safe identifiers, and their SymPy values."""
    toks = _tokens(text)
    if not toks:
        raise FormulaError("an empty expression: write something like dx = dxhat/std.")
    out: list[str] = []
    env: dict[str, Any] = {}
    stack: list[bool] = []  # one entry per open parenthesis: does it open a sum/mean?
    prev: tuple[str, str] = ("", "")  # (kind of previous token, its text)
    for n, tok in enumerate(toks):
        _check_token(tok)
        s = "**" if tok.string == "^" else tok.string
        kind_here = "op"
        if tok.type == tokenize.NUMBER:
            kind_here = "value"
        elif tok.type == tokenize.NAME:
            base, what, index = _resolve(s, kind, table, local)
            kind_here = "function" if what == "function" else "value"
            nxt = toks[n + 1].string if n + 1 < len(toks) else ""
            if what == "function" and nxt != "(":
                raise FormulaError(f"{base} needs parentheses, as in {base}(dy * xhat).")
            s = _identifier(base, what, index, any(stack), env, local)
        if kind_here in ("value", "function") or s == "(":
            if prev[0] == "value" or prev[1] == ")":  # 2x, 2(x - mu), (a)(b): multiply
                out.append("*")
        if s == "(":
            stack.append(prev[0] == "function")
            if len(stack) > MAX_DEPTH:
                raise FormulaError(f"parentheses nested deeper than {MAX_DEPTH}.")
        elif s == ")":
            if not stack:
                raise FormulaError(f"unbalanced ')' in {text!r}.")
            stack.pop()
        if prev[1] == "**":
            _check_exponent(toks, n)
        out.append(s)
        prev = (kind_here, s)
    if stack:
        raise FormulaError(f"unbalanced '(' in {text!r}.")
    return " ".join(out), env


def _check_exponent(toks: list[tokenize.TokenInfo], n: int) -> None:
    """An exponent is a literal: [-]NUMBER, or ( [-]NUMBER [/ NUMBER] ), never a tower."""
    j = n
    paren = toks[j].string == "("
    j += paren
    j += j < len(toks) and toks[j].string in "+-"
    ok = j < len(toks) and toks[j].type == tokenize.NUMBER and len(toks[j].string) <= 4
    j += 1
    if paren and ok and j < len(toks) and toks[j].string == "/":
        ok = j + 1 < len(toks) and toks[j + 1].type == tokenize.NUMBER
        j += 2
    if paren:
        ok = ok and j < len(toks) and toks[j].string == ")"
        j += 1
    if not ok or (j < len(toks) and toks[j].string in ("**", "^")):
        raise FormulaError(
            "an exponent must be a literal number such as 2, -1/2 or (-3/2), and powers "
            "cannot be chained: write (var + eps)^(-3/2)."
        )


def _identifier(
    base: str, what: str, index: str, in_sum: bool, env: dict[str, Any], local: dict[str, str]
) -> str:
    if what == "function":
        ident = f"F_{base}"
        env[ident] = {
            "sum": BatchSum,
            "mean": lambda e: BatchSum(e) / scalar_symbol("N"),
            "sqrt": sp.sqrt,
        }[base]
        return ident
    per_element = what == "element" or (what == "local" and local[base] == "element")
    if not per_element:
        if index:
            raise FormulaError(f"{base} is one number per group; it takes no index _{index}.")
        ident = f"S_{base}" if what == "scalar" else f"L_{base}_I"
        env[ident] = scalar_symbol(base) if what == "scalar" else sp.Symbol(f"@{base}[i]")
        return ident
    where = "i" if index == "i" or (not index and not in_sum) else "k"
    if where == "k" and not in_sum:
        raise FormulaError(f"{base}_{index} is outside any sum: use {base}_i, or sum it.")
    if what == "local":
        ident = f"L_{base}_{where.upper()}"
        env[ident] = sp.Symbol(f"@{base}[{where}]")
    else:
        ident = f"E_{base}_{where.upper()}"
        env[ident] = element_symbol(base, where)
    return ident


def _parse_expression(text: str, kind: str, local: dict[str, str], defs: dict) -> Any:
    from sympy.parsing.sympy_parser import auto_number, parse_expr, rationalize

    rewritten, env = _rewrite(text, kind, names(kind), local)
    safe_globals = {
        "Integer": sp.Integer,
        "Float": sp.Float,
        "Rational": sp.Rational,
        "__builtins__": {},
    }
    try:
        expr = parse_expr(
            rewritten,
            local_dict=env,
            global_dict=safe_globals,
            transformations=(auto_number, rationalize),
        )
    except (SyntaxError, TypeError, ZeroDivisionError) as exc:
        raise FormulaError(f"cannot read {text.strip()!r}: {exc}.") from None
    return _substitute_locals(sp.sympify(expr), defs)


def _substitute_locals(expr: Any, defs: dict[str, Any]) -> Any:
    """Replace each local's placeholder by its definition (re-indexed inside sums)."""
    swap = {}
    for s in expr.free_symbols:
        if not s.name.startswith("@"):
            continue
        base, where = s.name[1:-3], s.name[-2]
        body = defs[base]
        if where == "k":
            if any(a.has(*_i_symbols(body)) for a in body.atoms(BatchSum)):
                raise FormulaError(
                    f"{base} refers to sample i inside its own sum; it cannot be summed again."
                )
            body = body.xreplace({e: element_symbol(e.name[:-3], "k") for e in _i_symbols(body)})
        swap[s] = body
    return expr.xreplace(swap) if swap else expr


def _i_symbols(expr: Any) -> set[Any]:
    return {s for s in expr.free_symbols if s.name.endswith("[i]")}


def _split_statements(text: str) -> list[str]:
    parts = [p.strip() for chunk in text.split(";") for p in chunk.splitlines()]
    return [p for p in parts if p]


def parse(text: str, kind: str = "batch") -> Program:
    """Parse ``text`` into a ``Program`` for layer ``kind`` (batch, layer or rms).

    Raises:
        FormulaError: anything the language does not accept, with the reason.
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula is a string; got {type(text).__name__}.")
    if len(text) > MAX_CHARS:
        raise FormulaError(f"a formula of {len(text)} characters; at most {MAX_CHARS}.")
    if not text.isascii():
        raise FormulaError("write formulas in ASCII: xhat for x̂, gamma for γ, eps for ε.")
    table = names(kind)
    statements = _split_statements(text)
    if not statements:
        raise FormulaError("an empty formula: write something like dx = dxhat/std.")
    local: dict[str, str] = {}
    defs: dict[str, Any] = {}
    claim: Claim | None = None
    for n, st in enumerate(statements):
        last = n == len(statements) - 1
        if st.count("=") > 1 or "==" in st:
            raise FormulaError(f"one '=' per statement; got {st!r}. Separate statements by ;")
        if "=" not in st:
            if not last:
                raise FormulaError(f"{st!r} states nothing: only the last statement may.")
            claim = Claim(None, _parse_expression(st, kind, local, defs), "dx")
            break
        lhs_text, rhs_text = (s.strip() for s in st.split("="))
        rhs = _parse_expression(rhs_text, kind, local, defs)
        name = lhs_text if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", lhs_text) else ""
        bare = name[:-2] if name.endswith("_i") else name
        if bare in TARGETS and last:
            if _refused(kind, bare):
                raise FormulaError(_refused(kind, bare))
            claim = Claim(None, rhs, bare)
        elif (
            bare
            and (bare not in table or bare in REDEFINABLE)
            and bare not in FUNCTIONS
            and not keyword.iskeyword(bare)
            and not bare.startswith("_")
        ):
            if last:
                raise FormulaError(
                    f"the last statement defines {bare!r} but claims nothing; end with a "
                    f"claim such as dx = ... ({', '.join(TARGETS)}) or an identity."
                )
            local[bare] = "element" if _depends_on_i(rhs) else "scalar"
            defs[bare] = rhs
        elif last:
            claim = Claim(_parse_expression(lhs_text, kind, local, defs), rhs, None)
        else:
            raise FormulaError(
                f"{lhs_text!r} cannot be redefined: it is an input of the language (only "
                f"{', '.join(REDEFINABLE)} may be). Pick a new name for the local value."
            )
    assert claim is not None
    return Program(kind, text, claim, defs)


def _depends_on_i(expr: Any) -> bool:
    """Whether ``expr`` has a per-element value at sample i outside every sum."""
    outside = expr.replace(lambda e: isinstance(e, BatchSum), lambda e: sp.Integer(1))
    return bool(_i_symbols(outside))
