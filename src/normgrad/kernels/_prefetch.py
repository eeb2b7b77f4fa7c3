"""Software prefetch for the row kernels: ask for the next row while this one is worked on.

A row kernel reads its rows one after another, and each row of a layer norm over 1024
float32 values is one 4 KiB page. The hardware's stream prefetchers do not cross a page
boundary, so every row starts with its first cache lines missing, and a single core,
which has few misses in flight, waits for them. ``prefetch_row(r)`` issues one prefetch
per 64-byte line of row r (LLVM's ``llvm.prefetch``: read, keep in every cache level);
the kernels call it for row i + 1 before they work on row i, so that its lines arrive
while row i is summed and written. A prefetch never faults and changes no value: the
results are the same bits with or without it.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from normgrad.kernels._runtime import CACHE_LINE, inline


@intrinsic
def _prefetch(typingctx: Any, a: Any, i: Any) -> Any:  # pragma: no cover - compiled
    """Prefetch the cache line holding a[i] (1-D contiguous a; i in range)."""
    sig = types.void(a, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        byte = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), byte)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        # (address, 0 = read, 3 = keep in every level, 1 = data cache)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@inline
def prefetch_row(a):  # pragma: no cover - compiled
    """Prefetch every cache line of the 1-D contiguous view a."""
    step = max(1, CACHE_LINE // a.itemsize)
    for k in range(0, a.shape[0], step):
        _prefetch(a, k)  # type: ignore[call-arg]  # the typing context is numba's
