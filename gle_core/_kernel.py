"""Compiled fast path of :meth:`gle_core.simulator.Simulator.run_steps` (numba).

The numpy code in :mod:`gle_core.network`, :mod:`gle_core.optimizers`,
:mod:`gle_core.rules` and :mod:`gle_core.simulator` is the reference; this module runs the
*same* loop compiled, for the per-step local rules (GLE and IE):

* the teacher's forward step (a network run without target; its old output rate is the
  student's target),
* the student's full step (docs/model.md "The discrete scheme" steps 1-7: GLE and IE error
  modes, the seven activations, MSE and cross-entropy),
* the local gradients and the optimizer update (SGD, momentum, Adam, as
  :mod:`gle_core.optimizers`; written once, :func:`_optimizer_step`), with per-kind learning
  rates, the learning ``(kind, layer)`` pairs and ``learn_from``, then the τ floor,
* loss accumulation, recording into the simulator's ring buffers (``record_every``,
  ``record_stream``), and the bound check every ``BOUND_CHECK_EVERY`` steps.

Everything it reads and writes comes from a :class:`gle_core.plan.KernelPlan` (layouts,
slot numbers and status codes are defined there, once): packed parameters, the two-copy
state buffer (a step reads copy ``cur`` and writes ``1 - cur``, so a step whose result is
not finite is not committed and the network keeps its last finite state), optimizer moments
and probe storage. The simulator builds the plan and caches it; between calls the network's
arrays are views into it, so nothing is packed again unless the structure changes. One
compiled kernel serves every network shape (``cache=True``: numba compiles once per
machine). Elementwise loops run over the batch with unit stride and vectorize (tanh, exp
and log1p are evaluated without libm calls for that); layers with ``n_ℓ n_{ℓ-1} batch ≥
_BLAS_MIN`` use BLAS for W r, Wᵀ e and e rᵀ.

A call may split the student's step between two threads (:func:`run`, :func:`parts_for`):
within one step the layers are independent (layer ℓ reads only old values of its
neighbours), so a second thread steps some of the layers, their gradients and optimizer
updates, and the two meet once per step to combine their verdicts before the step is
committed; the numbers are those of one thread, bit for bit. Optimizer updates are applied
in place as they are computed, the old values kept until the step is committed (undone if
anything of the step is not finite).

The input of step k is row ``k - x0`` of a block of samples, or row ``k mod n`` of a table
of one period of a periodic stimulus. The results equal the numpy path's up to rounding
(polynomial tanh/exp/log1p within a few ulps of libm and numpy, other summation orders):
~1e-16 per step, which stays ≤ 1e-12 unless the run itself amplifies 1-ulp perturbations
(see tests/core/test_kernel.py).
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time

import numpy as np

from .plan import (N_KINDS, N_STATES, P_INPUT, P_LOSS, P_OUTPUT, P_PARAM, P_STATE, P_T,
                   P_TARGET, P_TEACHER_R, R_BAD_KIND, R_BAD_LAYER, R_CUR, R_DONE, R_STATUS,
                   R_TEACHER_CUR,
                   S_BAD_LOSS, S_BAD_STUDENT, S_BAD_TEACHER, S_BAD_UPDATE, S_OK, S_UNBOUNDED,
                   V_D as _D, V_E as _E, V_EPS as _EPS, V_R as _R, V_RP as _RP, V_U as _U,
                   V_UD as _UD, V_UH as _UH, V_V as _V, BOUND_CHECK_EVERY as check_every)

#: set (to anything but "" or "0") to run as if numba were not installed: the numpy path
#: everywhere, in this process and the processes it starts (CLI runs, Dask workers)
WITHOUT_NUMBA_ENV = "GLE_LAB_WITHOUT_NUMBA"

try:  # numba is optional: without it the simulator uses the numpy path
    if os.environ.get(WITHOUT_NUMBA_ENV, "") not in ("", "0"):
        raise ImportError(f"{WITHOUT_NUMBA_ENV} is set")
    from numba import njit
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "run", "run_evaluation", "warm_up", "default_threads",
           "kernel_threads", "parts_for"]

#: a step can be split between two threads (the waiting part yields with sched_yield)
_CAN_SPLIT = HAVE_NUMBA and sys.platform.startswith(("linux", "darwin"))

_LOG2 = math.log(2.0)          # numpy's NPY_LOGE2 as a double
#: layers with n_out * n_in * batch at least this use BLAS (np.dot) for their products
_BLAS_MIN = 4096
#: a part waiting at the per-step barrier checks this many times before it yields its CPU
#: (~1 µs; the parts of a balanced MNIST-1D step arrive within a few µs of each other)
_SPINS = 2000
#: the int64 vector two parts meet through: ``[8 p]`` the barriers part ``p`` has passed
#: (a cache line per part), ``[8 p + 2 + 2 (gen % 2)]`` and the next slot its verdict on
#: the step (status, first pair whose update is not finite) at barrier ``gen``, ``[6]``
#: part 0's bound check, ``[SYNC_ABORT]`` set to make a waiting part give up; its size
SYNC_ABORT, SYNC_SIZE = 32, 40
#: status of a part that gave up waiting (never returned by :func:`run`: it raises)
S_ABORTED = -1


# ---------------------------------------------------------------------------------- kernel
if HAVE_NUMBA:
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic

    @intrinsic
    def _bits_to_double(typingctx, x):
        """The float64 whose bits are the int64 ``x`` (builds 2^k in vectorizable code)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _ir.DoubleType())
        return _types.float64(_types.int64), codegen

    @intrinsic
    def _load_acquire(typingctx, arr, idx):
        """``arr[idx]`` of an int64 array, read atomically with acquire ordering (what the
        other thread wrote before its release store of that slot is visible after it)."""
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = _cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                            wraparound=False)
            return builder.load_atomic(ptr, "acquire", 8)
        return _types.int64(arr, idx), codegen

    @intrinsic
    def _store_release(typingctx, arr, idx, val):
        """``arr[idx] = val`` (int64) atomically with release ordering."""
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = _cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]],
                                            wraparound=False)
            builder.store_atomic(args[2], ptr, "release", 8)
            return context.get_dummy_value()
        return _types.void(arr, idx, _types.int64), codegen

    @intrinsic
    def _yield_cpu(typingctx):
        """``sched_yield()``: let another runnable thread have this CPU (a waiting part
        must not hold the core the other part needs: one CPU, or a busy machine)."""
        def codegen(context, builder, signature, args):
            fnty = _ir.FunctionType(_ir.IntType(32), [])
            fn = _cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
            builder.call(fn, [])
            return context.get_dummy_value()
        return _types.void(), codegen

    @njit(cache=True, error_model="numpy")
    def _barrier(sync, part, gen):
        """Wait until the other part has passed barrier ``gen`` too (two parts; part ``p``
        counts its barriers in ``sync[8 p]``, one cache line each). Spins briefly, then
        yields the CPU while waiting. Returns False if ``sync[SYNC_ABORT]`` is set (the
        other part failed outside the kernel)."""
        _store_release(sync, 8 * part, gen)
        spins = 0
        while _load_acquire(sync, 8 * (1 - part)) < gen:
            if _load_acquire(sync, SYNC_ABORT) != 0:
                return False
            spins += 1
            if spins > _SPINS:
                _yield_cpu()
        return True

    @njit(inline="always", error_model="numpy")
    def _weights_times(Wl, n, m, src, dst, B, big, transpose):
        """dst = W src (``transpose``: Wᵀ src) for the row-major (n, m) weights ``Wl`` and
        neuron-major (·, batch) blocks; BLAS when ``big``, else loops summing in index
        order."""
        if big:
            if transpose:
                np.dot(Wl.reshape((n, m)).T, src.reshape((n, B)), dst.reshape((m, B)))
            else:
                np.dot(Wl.reshape((n, m)), src.reshape((m, B)), dst.reshape((n, B)))
            return
        rows = m if transpose else n
        cols = n if transpose else m
        for q in range(rows * B):
            dst[q] = 0.0
        for r in range(rows):
            for c in range(cols):
                w = Wl[c * m + r] if transpose else Wl[r * m + c]
                for b in range(B):
                    dst[r * B + b] += w * src[c * B + b]

    @njit(inline="always", error_model="numpy", fastmath={"contract"})
    def _exp_neg(y):
        """exp(-y) for 0 ≤ y ≤ 708 without a libm call (so that loops using it
        vectorize): exp(-y) = 2^-k exp(-r), |r| ≤ ln2/2 (Cody-Waite reduction), exp(-r) by
        its Taylor series to r^13; within 5e-16 relative."""
        k = math.floor(y * 1.4426950408889634 + 0.5)
        mr = -((y - k * 0.6931471803691238) - k * 1.9082149292705877e-10)
        e = 1.6059043836821613e-10
        e = e * mr + 2.08767569878681e-09
        e = e * mr + 2.505210838544172e-08
        e = e * mr + 2.755731922398589e-07
        e = e * mr + 2.7557319223985893e-06
        e = e * mr + 2.48015873015873e-05
        e = e * mr + 0.0001984126984126984
        e = e * mr + 0.001388888888888889
        e = e * mr + 0.008333333333333333
        e = e * mr + 0.041666666666666664
        e = e * mr + 0.16666666666666666
        e = e * mr + 0.5
        e = e * mr + 1.0
        e = e * mr + 1.0
        return e * _bits_to_double((1023 - np.int64(k)) << 52)

    @njit(cache=True, error_model="numpy", fastmath={"contract"})
    def _tanh_layer(src, dst_r, dst_rp):
        """r = tanh(ŭ), r′ = 1 - r² without libm calls, so that the loop vectorizes (libm
        tanh costs ~17 ns, this ~3 ns per element); within 5e-16 (relative) of libm / numpy.

        |x| < 0.3: the odd Taylor series of tanh to x^23 (next term < 1e-17 relative).
        Otherwise tanh |x| = (1 - z) / (1 + z), z = exp(-2|x|) = 2^-k exp(-r) with
        |r| ≤ ln2/2 (Cody-Waite) and exp(-r) by its Taylor series to r^13; 2|x| is capped
        at 80, where tanh = 1 in double precision.
        """
        for q in range(src.shape[0]):
            x = src[q]
            a = abs(x)
            x2 = a * a
            p = -3.927832388331683e-05
            p = p * x2 + 9.691537956929451e-05
            p = p * x2 + -0.00023912911424355248
            p = p * x2 + 0.000590027440945586
            p = p * x2 + -0.0014558343870513183
            p = p * x2 + 0.003592128036572481
            p = p * x2 + -0.008863235529902197
            p = p * x2 + 0.021869488536155203
            p = p * x2 + -0.05396825396825397
            p = p * x2 + 0.13333333333333333
            p = p * x2 + -0.3333333333333333
            p = p * x2 + 1.0
            small = a * p
            y = 2.0 * a
            y = y if y < 80.0 else 80.0
            z = _exp_neg(y)
            big = (1.0 - z) / (1.0 + z)
            t = small if a < 0.3 else big
            t = t if x >= 0.0 else -t
            t = x if x != x else t                      # NaN stays NaN
            dst_r[q] = t
            dst_rp[q] = 1.0 - t * t

    @njit(cache=True, error_model="numpy", fastmath={"contract"})
    def _softmax_exp(R, B, n, mx, ex, tot):
        """For every stream b of the neuron-major (n, batch) block ``R``: ``mx[b]`` its
        largest value, ``ex[i B + b] = exp(R[i B + b] - mx[b])`` and ``tot[b] = Σ_i ex`` (in
        i order): the exponentials of a softmax, without libm calls so that the loops run
        over the batch and vectorize (exp as in :func:`_tanh_layer`, within 5e-16 relative
        of libm; arguments below -708 give ~1e-308 for 0; NaN stays NaN)."""
        for b in range(B):
            mx[b] = R[b]
            tot[b] = 0.0
        for i in range(1, n):
            for b in range(B):
                r = R[i * B + b]
                mx[b] = r if r > mx[b] else mx[b]
        for i in range(n):
            for b in range(B):
                y = mx[b] - R[i * B + b]                # = -(R - mx) exactly
                y = 708.0 if y >= 708.0 else y
                e = _exp_neg(y)
                ex[i * B + b] = e
                tot[b] += e

    @njit(cache=True, error_model="numpy", fastmath={"contract"})
    def _softplus_layer(src, dst_r, dst_rp):
        """r = log(1 + e^ŭ), r′ = 1 / (1 + e^-ŭ) without libm calls, so that the loop
        vectorizes (libm exp + log1p cost ~25 ns, this ~4 ns per element); within 1e-15
        (relative) of numpy.

        With z = exp(-|x|) ∈ (0, 1]: softplus(x) = max(x, 0) + log1p(z), expit(x) =
        1 / (1 + z) for x ≥ 0 and z / (1 + z) otherwise. exp as in :func:`_tanh_layer`
        (|x| capped at 708, where z is still a normal number and adds nothing to the
        rate); log1p(z) = 2 atanh(s), s = z / (2 + z) ≤ 1/3, by its odd series to s^35
        (next term < 1e-18 relative).
        """
        for q in range(src.shape[0]):
            x = src[q]
            a = abs(x)
            y = a if a < 708.0 else 708.0
            z = _exp_neg(y)
            s = z / (2.0 + z)
            s2 = s * s
            p = 1.0 / 35.0
            p = p * s2 + 1.0 / 33.0
            p = p * s2 + 1.0 / 31.0
            p = p * s2 + 1.0 / 29.0
            p = p * s2 + 1.0 / 27.0
            p = p * s2 + 1.0 / 25.0
            p = p * s2 + 1.0 / 23.0
            p = p * s2 + 1.0 / 21.0
            p = p * s2 + 1.0 / 19.0
            p = p * s2 + 1.0 / 17.0
            p = p * s2 + 1.0 / 15.0
            p = p * s2 + 1.0 / 13.0
            p = p * s2 + 1.0 / 11.0
            p = p * s2 + 1.0 / 9.0
            p = p * s2 + 1.0 / 7.0
            p = p * s2 + 1.0 / 5.0
            p = p * s2 + 1.0 / 3.0
            lg = 2.0 * s + 2.0 * s * (s2 * p)
            pos = x > 0.0
            r = (x if pos else 0.0) + lg
            rp = (1.0 if pos else z) / (1.0 + z)
            dst_r[q] = x if x != x else r               # NaN stays NaN
            dst_rp[q] = x if x != x else rp

    @njit(cache=True, error_model="numpy")
    def _activate(act, src, dst_r, dst_rp):
        """r = φ(ŭ), r′ = φ′(ŭ) elementwise, as gle_core.activations (libm)."""
        hi = src.shape[0]
        if act == 0:                                    # linear
            for q in range(hi):
                dst_r[q] = src[q]
                dst_rp[q] = 1.0
        elif act == 1:                                  # tanh
            _tanh_layer(src, dst_r, dst_rp)
        elif act == 2:                                  # sigmoid = scipy expit
            for q in range(hi):
                s = 1.0 / (1.0 + math.exp(-src[q]))
                dst_r[q] = s
                dst_rp[q] = s * (1.0 - s)
        elif act == 3:                                  # softplus = np.logaddexp(0, x)
            _softplus_layer(src, dst_r, dst_rp)
        elif act == 4:                                  # relu = np.maximum(x, 0)
            for q in range(hi):
                x = src[q]
                dst_r[q] = x if (x >= 0.0 or x != x) else 0.0
                dst_rp[q] = 1.0 if x > 0.0 else 0.0
        elif act == 5:                                  # hard_sigmoid: relu6(x + 3) / 6
            for q in range(hi):
                x = src[q]
                h = x / 6.0 + 0.5
                h = 0.0 if h < 0.0 else h
                dst_r[q] = 1.0 if h > 1.0 else h
                dst_rp[q] = (1.0 if (x > -3.0 and x < 3.0) else 0.0) / 6.0
        else:                                           # hard_tanh
            for q in range(hi):
                x = src[q]
                h = -1.0 if x < -1.0 else x
                dst_r[q] = 1.0 if h > 1.0 else h
                dst_rp[q] = 1.0 if (x > -1.0 and x < 1.0) else 0.0

    @njit(cache=True, error_model="numpy")
    def _net_step(sizes, acts, noff, woff, P, S, cur, x, y, ybase, has_y, B, dt, gamma, beta,
                  ce, gle, sbuf, own, part):
        """One Euler step of a network (docs/model.md "The discrete scheme" steps 1-7): reads
        S[cur], writes S[1 - cur].

        ``x`` is the flat neuron-major (n_in, batch) input, ``y[ybase:]`` the (n_out, batch)
        target; ``sbuf`` a scratch of at least 3 max(n_ℓ) batch. Returns True if every new
        value is finite. (The elementwise loops index whole-layer views from 0, so numba
        compiles them without negative-index checks and they vectorize; per-row views would
        cost a reference count each.)

        Only the layers ``l`` with ``own[l] == part`` are stepped (the output drive with the
        output layer). Within a step the layers are independent: layer ℓ reads the *old*
        rates of layer ℓ-1 and its own old feedback from S[cur], and writes its own slots of
        S[1 - cur] and the new feedback W_ℓᵀ e_ℓ of layer ℓ-1; so two threads stepping
        disjoint sets of layers compute exactly the numbers of one thread stepping all.
        """
        L = sizes.shape[0] - 1
        N = noff[L]
        nW = woff[L]
        nxt = 1 - cur
        nout = sizes[L]
        ob = B * noff[L - 1]
        Rc = S[cur, _R]
        Dn = S[nxt, _D]
        bad = False
        # output drive g = β ∂(-C)/∂r from the old output rate and the target
        Ro = Rc[ob:ob + nout * B]
        Go = Dn[ob:ob + nout * B]
        if own[L - 1] != part:
            pass
        elif not has_y:
            for q in range(nout * B):
                Go[q] = 0.0
        else:
            Yo = y[ybase:ybase + nout * B]
            if not ce:
                for q in range(nout * B):
                    Go[q] = beta * (Yo[q] - Ro[q])
            else:                                       # β (onehot - softmax(r))
                tot = sbuf[B:2 * B]
                _softmax_exp(Ro, B, nout, sbuf[:B], Go, tot)
                for i in range(nout):
                    for b in range(B):
                        Go[i * B + b] = beta * (Yo[i * B + b] - Go[i * B + b] / tot[b])
            for q in range(nout * B):
                bad |= Go[q] - Go[q] != 0.0

        for l in range(L):
            if own[l] != part:
                continue
            n = sizes[l + 1]
            m = sizes[l]
            lo = B * noff[l]
            hi = lo + n * B
            if l == 0:
                Rin = x[:m * B]
            else:
                Rin = Rc[B * noff[l - 1]:lo]
            Din = Dn[lo:hi] if l == L - 1 else S[cur, _D, lo:hi]
            RPc = S[cur, _RP, lo:hi]
            Vc = S[cur, _V, lo:hi]
            Uc = S[cur, _U, lo:hi]
            Un = S[nxt, _U, lo:hi]
            UDn = S[nxt, _UD, lo:hi]
            UHn = S[nxt, _UH, lo:hi]
            EPSn = S[nxt, _EPS, lo:hi]
            Vn = S[nxt, _V, lo:hi]
            En = S[nxt, _E, lo:hi]
            Wl = P[woff[l]:woff[l + 1]]
            bl = P[nW + noff[l]:nW + noff[l + 1]]
            tml = P[nW + N + noff[l]:nW + N + noff[l + 1]]
            trl = P[nW + 2 * N + noff[l]:nW + 2 * N + noff[l + 1]]
            nB = n * B
            big = n * m * B >= _BLAS_MIN
            # step 2: s = W r_{ℓ-1,old} + b, as (n, batch) in sbuf[:nB]
            Sl = sbuf[:nB]
            _weights_times(Wl, n, m, Rin, Sl, B, big, False)
            for i in range(n):
                bi = bl[i]
                tm = tml[i]
                tr = trl[i]
                for b in range(B):
                    q = i * B + b
                    eps = RPc[q] * Din[q]                              # step 1
                    if gle:                                            # step 3
                        v = Vc[q]
                        vdot = (eps - v) / tr
                        vn = v + dt * vdot
                        e = v + tm * vdot
                    else:                                              # IE: v = e = ε
                        vn = eps
                        e = eps
                    u = Uc[q]
                    ud = ((Sl[q] + bi) + gamma * e - u) / tm           # step 4
                    uh = u + tr * ud
                    un = u + dt * ud
                    Un[q] = un
                    UDn[q] = ud
                    UHn[q] = uh
                    EPSn[q] = eps
                    Vn[q] = vn
                    En[q] = e
                    bad |= ((un - un) + (uh - uh) + (vn - vn) + (e - e)) != 0.0
            _activate(acts[l], UHn, S[nxt, _R, lo:hi], S[nxt, _RP, lo:hi])    # step 7
            if l > 0:                                                  # step 6: W_ℓᵀ e_ℓ
                Fb = Dn[B * noff[l - 1]:lo]
                _weights_times(Wl, n, m, En, Fb, B, big, True)
                for q in range(m * B):
                    bad |= Fb[q] - Fb[q] != 0.0
        # u̇, r, r′ are finite when ŭ, u_new, e, v_new are (all φ, φ′ are finite on finite
        # input; an overflowing u̇ makes u_new infinite)
        return not bad

    @njit(cache=True, error_model="numpy")
    def _loss(R, ob, y, ybase, B, nout, ce, tmp):
        """Per-step cost of the old output R[ob:] against y[ybase:] (GLENetwork.loss_value);
        ``tmp``: a scratch of at least (n_out + 2) batch."""
        Ro = R[ob:ob + nout * B]
        Yo = y[ybase:ybase + nout * B]
        if not ce:
            acc = 0.0
            for q in range(nout * B):
                d = Yo[q] - Ro[q]
                acc += d * d
            return acc / (B * nout)
        mxs = tmp[:B]
        ses = tmp[B:2 * B]
        _softmax_exp(Ro, B, nout, mxs, tmp[2 * B:(2 + nout) * B], ses)
        tot = 0.0
        for b in range(B):
            mx = mxs[b]
            lse = math.log(ses[b])
            row = 0.0
            for i in range(nout):
                row += Yo[i * B + b] * ((Ro[i * B + b] - mx) - lse)
            tot += row
        return -(tot / B)

    @njit(cache=True, error_model="numpy")
    def _forward_step(sizes, acts, noff, woff, P, S, cur, x, B, dt, sbuf):
        """The forward part of one Euler step (steps 2, 4, 7) for γ = 0 without a target:
        reads u and r of S[cur], writes u, u̇, ŭ, r, r′ of S[1 - cur] and nothing else.

        With γ = 0 the error neurons cannot reach u, ŭ or r (``s + 0 e = s`` for finite e),
        so :func:`_net_step` would compute these same values; the error path (ε, v, e and
        the feedback Wᵀe, half the products) is skipped. Only for the evaluation pass, whose
        error states are thrown away.
        """
        L = sizes.shape[0] - 1
        N = noff[L]
        nW = woff[L]
        nxt = 1 - cur
        Rc = S[cur, _R]
        for l in range(L):
            n = sizes[l + 1]
            m = sizes[l]
            lo = B * noff[l]
            hi = lo + n * B
            if l == 0:
                Rin = x[:m * B]
            else:
                Rin = Rc[B * noff[l - 1]:lo]
            Uc = S[cur, _U, lo:hi]
            Un = S[nxt, _U, lo:hi]
            UDn = S[nxt, _UD, lo:hi]
            UHn = S[nxt, _UH, lo:hi]
            Wl = P[woff[l]:woff[l + 1]]
            bl = P[nW + noff[l]:nW + noff[l + 1]]
            tml = P[nW + N + noff[l]:nW + N + noff[l + 1]]
            trl = P[nW + 2 * N + noff[l]:nW + 2 * N + noff[l + 1]]
            nB = n * B
            Sl = sbuf[:nB]
            _weights_times(Wl, n, m, Rin, Sl, B, n * m * B >= _BLAS_MIN, False)
            for i in range(n):
                bi = bl[i]
                tm = tml[i]
                tr = trl[i]
                for b in range(B):
                    q = i * B + b
                    u = Uc[q]
                    ud = ((Sl[q] + bi) - u) / tm
                    Un[q] = u + dt * ud
                    UDn[q] = ud
                    UHn[q] = u + tr * ud
            _activate(acts[l], UHn, S[nxt, _R, lo:hi], S[nxt, _RP, lo:hi])

    @njit(cache=True, nogil=True, error_model="numpy")
    def _evaluate(n_steps, X, Yo, sizes, acts, noff, woff, P, S, cur, B, dt, gamma, gle,
                  sbuf, summed, losses, res):
        """Run ``n_steps`` steps without target and without learning (the evaluation pass of
        :func:`gle_core.datasets.evaluate`) and accumulate, per stream ``b``, the output
        read at every step (the old output rate, as :meth:`GLENetwork.step` returns it) into
        ``summed[b]`` and its cross-entropy against the one-hot ``Yo`` (neuron-major
        (n_out, batch), the same at every step) into ``losses[b]``.

        Step ``i`` reads input row ``X[i]``. γ = 0 runs :func:`_forward_step`, otherwise the
        full :func:`_net_step` without target. ``res[R_CUR]`` receives the copy of ``S``
        holding the final state. Releases the GIL: independent streams can run in threads.
        """
        L = sizes.shape[0] - 1
        nout = sizes[L]
        ob = B * noff[L - 1]
        own = np.zeros(L, np.int64)                 # one thread steps every layer
        for i in range(n_steps):
            Ro = S[cur, _R, ob:ob + nout * B]
            _softmax_exp(Ro, B, nout, sbuf[:B], sbuf[2 * B:(2 + nout) * B], sbuf[B:2 * B])
            for b in range(B):                  # as datasets.cross_entropy_per_stream
                mx = sbuf[b]
                lse = math.log(sbuf[B + b])
                row = 0.0
                for k in range(nout):
                    o = Ro[k * B + b]
                    summed[b, k] += o
                    row += Yo[k * B + b] * ((o - mx) - lse)
                losses[b] += -row
            if gamma == 0.0:
                _forward_step(sizes, acts, noff, woff, P, S, cur, X[i], B, dt, sbuf)
            else:
                _net_step(sizes, acts, noff, woff, P, S, cur, X[i], X[i], 0, False, B, dt,
                          gamma, 0.0, False, gle, sbuf, own, 0)
            cur = 1 - cur
        res[R_CUR] = cur

    @njit(cache=True, error_model="numpy")
    def _gradient(kind, l, sizes, noff, S, cur, x, B, G):
        """∂E/∂θ of (kind, layer l) from the step just computed into S[1 - cur] (docs/model.md "The
        discrete scheme" step 5), written to G (a view of that parameter's size); the presynaptic
        rates are the old ones (S[cur]) or the input."""
        nxt = 1 - cur
        n = sizes[l + 1]
        lo = B * noff[l]
        hi = lo + n * B
        En = S[nxt, _E, lo:hi]
        if kind == 0:                                  # -⟨e r_{ℓ-1}ᵀ⟩
            m = sizes[l]
            if l == 0:
                Pre = x[:m * B]
            else:
                Pre = S[cur, _R, B * noff[l - 1]:lo]
            if n * m * B >= _BLAS_MIN:
                np.dot(En.reshape((n, B)), Pre.reshape((m, B)).T, G.reshape((n, m)))
            else:
                for i in range(n):
                    for jj in range(m):
                        s0 = 0.0
                        for b in range(B):
                            s0 += En[i * B + b] * Pre[jj * B + b]
                        G[i * m + jj] = s0
            for q in range(n * m):
                G[q] = -G[q] / B
            return
        # batch means summed in order, like numpy's mean over axis 0: G[i] accumulates
        # stream after stream, the neurons' sums advancing together (independent chains)
        for i in range(n):
            G[i] = 0.0
        if kind == 1:                                  # -⟨e⟩
            for b in range(B):
                for i in range(n):
                    G[i] += En[i * B + b]
            for i in range(n):
                G[i] = -(G[i] / B)
            return
        UDn = S[nxt, _UD, lo:hi]
        if kind == 2:                                  # ⟨e ⊙ u̇⟩
            for b in range(B):
                for i in range(n):
                    G[i] += En[i * B + b] * UDn[i * B + b]
            for i in range(n):
                G[i] = G[i] / B
            return
        EPSn = S[nxt, _EPS, lo:hi]                     # -⟨ε ⊙ u̇⟩
        for b in range(B):
            for i in range(n):
                G[i] += EPSn[i * B + b] * UDn[i * B + b]
        for i in range(n):
            G[i] = -(G[i] / B)

    @njit(cache=True, error_model="numpy")
    def _param_offset(kind, l, noff, woff):
        L = noff.shape[0] - 1
        if kind == 0:
            return woff[l]
        return woff[L] + (kind - 1) * noff[L] + noff[l]

    @njit(cache=True, error_model="numpy")
    def _bounded(S, cur, P, limit):
        """|u|, |error| and every parameter ≤ limit (Simulator._check_bounded)."""
        ok = True
        for var in (_U, _E):
            A = S[cur, var]
            for q in range(A.shape[0]):
                ok &= abs(A[q]) <= limit
        for q in range(P.shape[0]):
            ok &= abs(P[q]) <= limit
        return ok

    @njit(cache=True, error_model="numpy")
    def _record_state(probe, row, S, cur, var, sizes, noff, B, j):
        L = sizes.shape[0] - 1
        A = S[cur, var]
        c = 0
        for l in range(L):
            o = B * noff[l] + j
            for i in range(sizes[l + 1]):
                probe[row, c] = A[o + i * B]
                c += 1

    @njit(cache=True, error_model="numpy")
    def _optimizer_step(code, lr, mu, b1, b2, oeps, init, count, G, Pv, Mv, Vv, Bp, Bm, Bv):
        """The optimizer update of one parameter array (:mod:`gle_core.optimizers`: SGD,
        momentum, Adam with bias correction; ``count`` is the step number after this
        update), applied in place, the old values saved in ``Bp``, ``Bm``, ``Bv`` (what the
        optimizer changes). Returns True if every new value is finite; otherwise (or if
        anything else of the step is not finite) :func:`_optimizer_undo` puts the old
        values back, so that a step producing a non-finite value changes nothing. (One
        pass: computing the update once to check it and once to store it cost twice the
        square roots and divisions, 36 instead of 19 µs per step for MNIST-1D 15k.)"""
        bad = False
        size = G.shape[0]
        if code == 0:                                  # θ ← θ - lr g
            for q in range(size):
                p0 = Pv[q]
                pn = p0 - lr * G[q]
                bad |= pn - pn != 0.0
                Bp[q] = p0
                Pv[q] = pn
        elif code == 1:                                # m ← μ m + g, θ ← θ - lr m
            for q in range(size):
                m0 = Mv[q]
                p0 = Pv[q]
                mm = m0 * mu + G[q] if init else G[q]
                pn = p0 - lr * mm
                bad |= ((pn - pn) + (mm - mm)) != 0.0
                Bm[q] = m0
                Bp[q] = p0
                Mv[q] = mm
                Pv[q] = pn
        else:                                          # Adam
            c1 = 1.0 - b1 ** float(count)
            c2 = 1.0 - b2 ** float(count)
            step = lr / c1
            for q in range(size):
                g = G[q]
                m0 = Mv[q]
                v0 = Vv[q]
                p0 = Pv[q]
                mm = m0 * b1 + (1.0 - b1) * g
                vv = v0 * b2 + (1.0 - b2) * g * g
                pn = p0 - step * mm / (math.sqrt(vv / c2) + oeps)
                bad |= ((pn - pn) + (mm - mm) + (vv - vv)) != 0.0
                Bm[q] = m0
                Bv[q] = v0
                Bp[q] = p0
                Mv[q] = mm
                Vv[q] = vv
                Pv[q] = pn
        return not bad

    @njit(cache=True, error_model="numpy")
    def _optimizer_undo(code, Pv, Mv, Vv, Bp, Bm, Bv):
        """Put back the values :func:`_optimizer_step` saved."""
        for q in range(Pv.shape[0]):
            Pv[q] = Bp[q]
        if code >= 1:
            for q in range(Pv.shape[0]):
                Mv[q] = Bm[q]
        if code == 2:
            for q in range(Pv.shape[0]):
                Vv[q] = Bv[q]

    @njit(cache=True, error_model="numpy")
    def _undo_updates(upto, part, own, opt_code, a_kind, a_layer, a_poff, lrs, sizes,
                      slot_off, P, M, V, U):
        """Undo the updates this part applied in the current step to the pairs before
        ``upto`` (see :func:`_optimizer_step`)."""
        for a in range(upto):
            kind = a_kind[a]
            l = a_layer[a]
            if lrs[kind] == 0.0 or own[l] != part:
                continue
            po = a_poff[a]
            size = sizes[l + 1] * sizes[l] if kind == 0 else sizes[l + 1]
            so = slot_off[a]
            _optimizer_undo(opt_code, P[po:po + size], M[so:so + size], V[so:so + size],
                            U[1, po:po + size], U[2, po:po + size], U[3, po:po + size])

    @njit(cache=True, nogil=True, error_model="numpy")
    def _run(n_steps, k0, X, x0, xp, Y, y0, yp, has_Y,
             sizes, acts, noff, woff, P, S, cur, gamma, beta, ce, gle, tau_floor,
             has_teacher, t_sizes, t_acts, t_noff, t_woff, t_P, t_S, t_cur, t_gamma, t_gle,
             B, dt, learn_from, a_kind, a_layer, a_poff, lrs, opt_code, mu, b1, b2, oeps,
             slot_off, M, V, slot_init, slot_count, U, scal, record_every, j, probes,
             rec_on, totals, limit, sbuf, res, local_on, tape_on, T, TY, THY, TL, tpos,
             part, n_parts, own, sync):
        """Run up to ``n_steps`` steps of the Simulator loop (teacher, student, loss,
        local learning if ``local_on``, recording); stops early at a non-finite value (nothing
        of that step is committed) or after a step that fails the bound check (committed).
        With ``tape_on`` every committed step ``i`` also stores its new state in
        ``T[tpos + i + 1]``, its target in ``TY`` (``THY`` flags one) and its loss in ``TL``
        (a :class:`gle_core.plan.KernelTape` of the windowed rule).

        Step k reads input row ``k - x0`` of ``X`` (``(k - x0) % xp`` when ``xp > 0``: a
        table of one period) and likewise the target from ``Y``. See
        :class:`gle_core.plan.KernelPlan` for the other arguments and ``res``.

        ``n_parts`` = 2: this is part ``part`` of a step split between two threads, each
        calling this function: it steps the student layers ``l`` with ``own[l] == part``
        and their learning pairs; part 0 also the output drive (it must own the output
        layer), the teacher, the loss, the recording, the tape, ``scal`` and ``res``. They
        meet through ``sync`` (:data:`SYNC_SIZE`) once per step, and around a bound check or
        a parameter recording; both take the same decisions from the combined verdicts, so
        they stop at the same step."""
        L = sizes.shape[0] - 1
        N = noff[L]
        nW = woff[L]
        nout = sizes[L]
        nin = sizes[0]
        ob = B * noff[L - 1]
        tL = t_sizes.shape[0] - 1
        t_ob = B * t_noff[tL - 1]
        n_act = a_kind.shape[0]
        status = S_OK
        done = 0
        main = part == 0
        t_own = np.zeros(tL, np.int64)              # the teacher: one thread, every layer
        gen = 0                                     # barriers passed (parts > 1)
        any_param_probe = False
        for kind in range(N_KINDS):
            any_param_probe |= rec_on[P_PARAM + kind] != 0
        for i in range(n_steps):
            k = k0 + i
            xi = k - x0
            if xp > 0:
                xi = xi % xp
            xk = X[xi]
            code = S_OK
            # ---- teacher forward (no target): its old output is the target
            if has_teacher:
                if main and not _net_step(t_sizes, t_acts, t_noff, t_woff, t_P, t_S, t_cur,
                                          xk, xk, 0, False, B, dt, t_gamma, 0.0, False,
                                          t_gle, sbuf, t_own, 0):
                    code = S_BAD_TEACHER
                yarr = t_S[t_cur, _R]
                ybase = t_ob
                has_y = True
            elif has_Y:
                yi = k - y0
                if yp > 0:
                    yi = yi % yp
                yarr = Y[yi]
                ybase = 0
                has_y = True
            else:
                yarr = xk
                ybase = 0
                has_y = False
            # ---- student step (this part's layers)
            if code == S_OK and not _net_step(sizes, acts, noff, woff, P, S, cur, xk, yarr,
                                              ybase, has_y, B, dt, gamma, beta, ce, gle, sbuf,
                                              own, part):
                code = S_BAD_STUDENT
            lval = 0.0
            if code == S_OK and main and has_y:
                lval = _loss(S[cur, _R], ob, yarr, ybase, B, nout, ce, sbuf)
                if lval - lval != 0.0:
                    code = S_BAD_LOSS
            # ---- learning: the gradients of this part's pairs into U[0] (they depend on
            # the states only, not on the parameters), each pair's update applied at once,
            # its old values kept in U[1:4]: undone below unless every new value (of every
            # part) is finite
            learning = local_on and n_act > 0 and k * dt >= learn_from - 1e-9
            bad_a = -1
            applied = 0                   # the pairs before this one were updated
            if code == S_OK and learning:
                for a in range(n_act):
                    kind = a_kind[a]
                    lr = lrs[kind]
                    if lr == 0.0:
                        continue
                    l = a_layer[a]
                    if own[l] != part:
                        continue
                    po = a_poff[a]
                    size = sizes[l + 1] * sizes[l] if kind == 0 else sizes[l + 1]
                    Gv = U[0, po:po + size]
                    _gradient(kind, l, sizes, noff, S, cur, xk, B, Gv)
                    so = slot_off[a]
                    ok = _optimizer_step(opt_code, lr, mu, b1, b2, oeps, slot_init[a] != 0,
                                         slot_count[a] + 1, Gv, P[po:po + size],
                                         M[so:so + size], V[so:so + size],
                                         U[1, po:po + size], U[2, po:po + size],
                                         U[3, po:po + size])
                    applied = a + 1
                    if not ok:
                        bad_a = a
                        break
            if n_parts > 1:
                # both parts' verdicts, combined in the order of the one-part loop (teacher,
                # student, loss, the first pair whose update is not finite); the slots
                # alternate with the barrier's parity, so a part running ahead never
                # overwrites a verdict the other has not read yet
                gen += 1
                mine = 8 * part + 2 + 2 * (gen % 2)
                other = 8 * (1 - part) + 2 + 2 * (gen % 2)
                sync[mine] = code
                sync[mine + 1] = bad_a
                if not _barrier(sync, part, gen):
                    status = S_ABORTED
                    break
                ocode = sync[other]
                obad = sync[other + 1]
                mcode = code if main else ocode
                if mcode == S_BAD_TEACHER:
                    code = S_BAD_TEACHER
                elif code == S_BAD_STUDENT or ocode == S_BAD_STUDENT:
                    code = S_BAD_STUDENT
                elif mcode == S_BAD_LOSS:
                    code = S_BAD_LOSS
                elif obad >= 0 and (bad_a < 0 or obad < bad_a):
                    bad_a = obad
            if code != S_OK or bad_a >= 0:
                _undo_updates(applied, part, own, opt_code, a_kind, a_layer, a_poff, lrs,
                              sizes, slot_off, P, M, V, U)
            if code != S_OK:
                status = code
                break
            if bad_a >= 0:
                status = S_BAD_UPDATE
                res[R_BAD_KIND] = a_kind[bad_a]
                res[R_BAD_LAYER] = a_layer[bad_a]
                break
            # ---- commit the step
            if has_y:
                scal[0] += lval
                scal[1] += 1.0
            out_cur = cur                 # the old output (and presynaptic rates) live here
            y_cur = t_cur
            cur = 1 - cur
            if has_teacher:
                t_cur = 1 - t_cur
            if learning:
                tau_changed = False
                for a in range(n_act):
                    kind = a_kind[a]
                    if lrs[kind] == 0.0:
                        continue
                    if kind >= 2:
                        tau_changed = True
                    if own[a_layer[a]] != part:
                        continue
                    slot_count[a] += 1
                    slot_init[a] = 1
                if tau_changed:              # τ floor on every τm and τr (of this part)
                    for l in range(L):
                        if own[l] != part:
                            continue
                        for q in range(nW + N + noff[l], nW + N + noff[l + 1]):
                            if P[q] < tau_floor:
                                P[q] = tau_floor
                        for q in range(nW + 2 * N + noff[l], nW + 2 * N + noff[l + 1]):
                            if P[q] < tau_floor:
                                P[q] = tau_floor
            done = i + 1
            checking = (k + 1) % check_every == 0
            # the bound check and the parameter probes (part 0) read every part's
            # parameters: the other part waits from its commit until they are read (its
            # next updates are applied in place)
            meet = n_parts > 1 and (checking or (any_param_probe and
                                                 (k + 1) % record_every == 0))
            if meet:
                gen += 1
                if not _barrier(sync, part, gen):
                    status = S_ABORTED
                    break
            if main:                      # the other part records nothing
                if tape_on:               # the window's record for the exact gradient
                    p = tpos + i
                    Tn = T[p + 1]
                    for v in range(Tn.shape[0]):
                        Sv = S[cur, v]
                        for q in range(Sv.shape[0]):
                            Tn[v, q] = Sv[q]
                    TL[p] = lval if has_y else np.nan
                    THY[p] = 1 if has_y else 0
                    if has_y:
                        for q in range(nout * B):
                            TY[p, q] = yarr[ybase + q]
                # ---- record
                if (k + 1) % record_every == 0:
                    if rec_on[P_T]:
                        pr = probes[P_T]
                        pr[totals[P_T] % pr.shape[0], 0] = k * dt
                    if rec_on[P_INPUT]:
                        pr = probes[P_INPUT]
                        row = totals[P_INPUT] % pr.shape[0]
                        for q in range(nin):
                            pr[row, q] = xk[q * B + j]
                    if rec_on[P_OUTPUT]:
                        pr = probes[P_OUTPUT]
                        row = totals[P_OUTPUT] % pr.shape[0]
                        Ro = S[out_cur, _R]
                        for q in range(nout):
                            pr[row, q] = Ro[ob + q * B + j]
                    if rec_on[P_TARGET]:
                        pr = probes[P_TARGET]
                        row = totals[P_TARGET] % pr.shape[0]
                        if has_teacher:
                            Yo = t_S[y_cur, _R]
                            for q in range(nout):
                                pr[row, q] = Yo[t_ob + q * B + j]
                        elif has_y:
                            for q in range(nout):
                                pr[row, q] = yarr[q * B + j]
                        else:
                            for q in range(nout):
                                pr[row, q] = np.nan
                    lmean = scal[0] / scal[1] if scal[1] > 0.0 else np.nan
                    if rec_on[P_LOSS]:
                        pr = probes[P_LOSS]
                        pr[totals[P_LOSS] % pr.shape[0], 0] = lmean
                    if scal[1] > 0.0:
                        scal[2] = lmean
                    scal[0] = 0.0
                    scal[1] = 0.0
                    for var in range(N_STATES):
                        if rec_on[P_STATE + var]:
                            pr = probes[P_STATE + var]
                            _record_state(pr, totals[P_STATE + var] % pr.shape[0], S, cur, var,
                                          sizes, noff, B, j)
                    if has_teacher and rec_on[P_TEACHER_R]:
                        pr = probes[P_TEACHER_R]       # its new rates (after its step)
                        _record_state(pr, totals[P_TEACHER_R] % pr.shape[0], t_S, t_cur, _R,
                                      t_sizes, t_noff, B, j)
                    for kind in range(N_KINDS):
                        if rec_on[P_PARAM + kind]:
                            pr = probes[P_PARAM + kind]
                            row = totals[P_PARAM + kind] % pr.shape[0]
                            lo = 0 if kind == 0 else nW + (kind - 1) * N
                            hi = nW if kind == 0 else lo + N
                            for q in range(lo, hi):
                                pr[row, q - lo] = P[q]
                    for q in range(rec_on.shape[0]):
                        if rec_on[q]:
                            totals[q] += 1
            # ---- periodic bound check (the simulator's BOUND_CHECK_EVERY)
            unbounded = main and checking and not _bounded(S, cur, P, limit)
            if meet:                      # part 0's reading done; its verdict in sync[6]
                gen += 1
                if main:
                    sync[6] = 1 if unbounded else 0
                if not _barrier(sync, part, gen):
                    status = S_ABORTED
                    break
                unbounded = sync[6] != 0
            if unbounded:
                status = S_UNBOUNDED
                break
        res[R_DONE] = done
        res[R_STATUS] = status
        res[R_CUR] = cur
        res[R_TEACHER_CUR] = t_cur
        return done


# ---------------------------------------------------------------------------------- BLAS
_BLAS_SETTERS = None


def _blas_setters():
    """``openblas_set_num_threads_local`` of every OpenBLAS loaded in this process (the
    kernel's ``np.dot`` calls the one behind ``scipy.linalg.cython_blas``); empty where
    there is none or it is too old to have it (OpenBLAS < 0.3.27), or off Linux."""
    global _BLAS_SETTERS
    if _BLAS_SETTERS is None:
        import ctypes
        import importlib
        try:
            importlib.import_module("scipy.linalg.cython_blas")     # the kernel's BLAS
            with open("/proc/self/maps") as f:
                paths = sorted({line.split()[-1] for line in f
                                if "openblas" in line.lower() and ".so" in line})
        except (ImportError, OSError):
            paths = []
        found = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name in ("openblas_set_num_threads_local",
                         "openblas_set_num_threads_local64_"):
                fn = getattr(lib, name, None)
                if fn is not None:
                    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                    found.append(fn)
                    break
        _BLAS_SETTERS = found
    return _BLAS_SETTERS


class single_threaded_blas:
    """``with single_threaded_blas():`` BLAS calls of *this thread* run on one thread.

    OpenBLAS splits a product over its thread pool above ~2.6e5 multiply-adds (a 53 × 53
    layer at batch 100 already): at the kernel's sizes that gains nothing on an idle
    2-core machine (MNIST-1D 15k training 0.38 vs 0.39 ms/step), a step then waits for a
    core that is busy elsewhere (a 53 × 53 × 1000 product took 0.08-1.2 ms instead of
    0.14), and parallel evaluation threads (:func:`run_evaluation`) would oversubscribe the
    cores. The products' rounding may differ in the last bits between one and several
    OpenBLAS threads, so this also makes the kernel's numbers independent of the number of
    CPUs the process may use. Thread-local (``openblas_set_num_threads_local``, OpenBLAS ≥
    0.3.27): other threads keep their setting."""

    def __enter__(self):
        self.saved = [fn(1) for fn in _blas_setters()]
        return self

    def __exit__(self, *exc):
        for fn, old in zip(_blas_setters(), self.saved):
            fn(old)
        return False


# ---------------------------------------------------------------------------------- driver
_NO_TAPE = (np.zeros((1, 1, 1)), np.zeros((1, 1)), np.zeros(1, np.int64), np.zeros(1))


#: a call splits its steps between two threads only if a step costs at least this (ns,
#: :meth:`~gle_core.plan.KernelPlan.step_cost_ns`; the per-step barrier costs ~1-2 µs) and
#: the whole call at least SPLIT_MIN_CALL_NS (starting the second thread: 0.1-1 ms; the
#: dashboard's 15 ms chunks stay on one thread)
SPLIT_MIN_STEP_NS = 20e3
SPLIT_MIN_CALL_NS = 30e6
#: set to the number of threads a kernel call may use (overrides the default below)
THREADS_ENV = "GLE_LAB_KERNEL_THREADS"
_local = threading.local()


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):          # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_threads():
    """Threads a training call (:func:`run`) may split a step between, when its plan does
    not say (``plan.threads`` None): the innermost :class:`kernel_threads` of this thread,
    else ``$GLE_LAB_KERNEL_THREADS``, else min(2, the CPUs this process may run on)."""
    n = getattr(_local, "threads", None)
    if n is None:
        env = os.environ.get(THREADS_ENV, "")
        n = int(env) if env.strip().isdigit() and int(env) > 0 else min(2, _cpus())
    return n


class kernel_threads:
    """``with kernel_threads(n):`` kernel calls made by *this thread* use at most ``n``
    threads (None: no change). A Dask worker running one task per core passes 1."""

    def __init__(self, n):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"threads must be an integer >= 1 or None, not {n!r}")
        self.n = n

    def __enter__(self):
        self.saved = getattr(_local, "threads", None)
        if self.n is not None:
            _local.threads = self.n
        return self

    def __exit__(self, *exc):
        _local.threads = self.saved
        return False


def parts_for(plan, n):
    """How many threads (1 or 2) a call of ``n`` steps on ``plan`` may split its steps
    between, and whether that is fixed: ``(parts, fixed)``.

    ``plan.threads`` set: that many (at most 2; 1 if the student has one layer), fixed.
    Otherwise up to :func:`default_threads`, 2 only if the work is large enough
    (:data:`SPLIT_MIN_STEP_NS`, :data:`SPLIT_MIN_CALL_NS`), and not fixed: :func:`run`
    then picks one or two threads by their recent pace (:class:`_Pace`).
    """
    if not _CAN_SPLIT or plan.student.net.n_layers < 2:
        return 1, True
    if plan.threads is not None:
        return min(int(plan.threads), 2), True
    if default_threads() < 2:
        return 1, True
    cost = plan.step_cost_ns()
    if cost < SPLIT_MIN_STEP_NS or cost * n < SPLIT_MIN_CALL_NS:
        return 1, True
    return 2, False


#: a plan whose calls may run on two threads and that runs them on ``best`` threads tries
#: the other number after ``PROBE_EVERY[best]`` calls (:class:`_Pace`): soon when on one
#: (a busy second core may be free again), rarely when on two (a probe costs one call at
#: the pace of one thread); every probe that loses doubles that interval, up to PROBE_MAX
#: (on a machine busy for long, 42k: probing two threads every 4th call cost 7 %)
PROBE_EVERY = {1: 4, 2: 16}
PROBE_MAX = 32
#: the other number of threads becomes the choice if its probe was this much faster
PACE_MARGIN = 0.05


class _Pace:
    """Wall seconds per step on one and on two threads: a plan's calls run on the current
    choice, now and then on the other (:data:`PROBE_EVERY`, :data:`PROBE_MAX`), which
    becomes the choice if it was at least :data:`PACE_MARGIN` faster than the current
    one's recent pace (a running mean of its calls: one noisy call does not switch). On a
    machine whose second core is busy with another process, two threads wait for each
    other's share of one core at every step and are slower than one: the plan then runs
    on one thread, and returns to two when the core is free again. The numbers do not
    depend on it."""

    def __init__(self):
        self.last = {1: None, 2: None}
        self.every = dict(PROBE_EVERY)
        self.current = None           # None until both have been measured once
        self.since = 0                # calls on the current choice since the last probe
        self.probing = False

    def choose(self):
        self.probing = False
        if self.current is None:
            return 2 if self.last[2] is None else 1
        self.since += 1
        if self.since >= self.every[self.current]:
            self.since = 0
            self.probing = True
            return 3 - self.current
        return self.current

    def record(self, parts, seconds_per_step):
        cur = self.current
        if cur is None:
            self.last[parts] = seconds_per_step
            if None not in self.last.values():
                self.current = 1 if self.last[1] <= self.last[2] else 2
        elif parts == cur:
            self.last[cur] = 0.5 * (self.last[cur] + seconds_per_step)
        elif self.probing:
            self.last[parts] = seconds_per_step
            if seconds_per_step < (1.0 - PACE_MARGIN) * self.last[cur]:
                self.current = parts
                self.every[cur] = PROBE_EVERY[cur]
            else:                     # lost: try again later
                self.every[cur] = min(2 * self.every[cur], PROBE_MAX)
        self.probing = False


def run(plan, n, k0, inputs, lrs, learn_from, scal, record_every, record_stream, limit,
        local=True, tape=None):
    """Run ``n`` steps from step ``k0`` on ``plan`` (a :class:`~gle_core.plan.KernelPlan`
    whose :meth:`~gle_core.plan.KernelPlan.pull` has been called).

    Parameters
    ----------
    inputs : tuple
        ``(X, x0, xp, Y, y0, yp)``: input rows in the kernel layout, the step of row 0 and
        the period (0: a block, read at ``k - x0``); the same for the target (``Y`` None:
        no target).
    lrs : array (4,)
        Learning rate per parameter kind.
    local : bool
        Apply the local rule's per-step updates (False under the windowed rule).
    tape : KernelTape, optional
        Record the steps into it, from its ``pos`` (the windowed rule's open window).
    scal : array (3,)
        Loss accumulator, its count and the last recorded mean loss (updated in place).

    Returns
    -------
    (done, status) : steps committed and the status code (:data:`gle_core.plan.STATUS`).

    Notes
    -----
    With two parts (:func:`parts_for`, :class:`_Pace`) a second thread steps some of the
    student's layers (:meth:`~gle_core.plan.KernelPlan.layer_owner`): their products,
    elementwise loops, gradients and optimizer updates; this thread the others, the teacher,
    the loss and the recording. The two meet once per step, to combine their verdicts
    before anything is committed (and around a bound check or a parameter recording).
    Every number is computed by the same code on the same values as with one part: the
    results are identical, bit for bit.
    """
    sp, tp = plan.student, plan.teacher
    net = sp.net
    tq = tp if tp is not None else sp     # dummy arguments when there is no teacher
    teacher = tp.net if tp is not None else None
    opt = plan.opt
    X, x0, xp, Y, y0, yp = inputs
    has_Y = Y is not None
    parts, fixed = parts_for(plan, n)
    pace = None
    if not fixed:
        if plan.pace is None:
            plan.pace = _Pace()
        pace = plan.pace
        parts = pace.choose()
        t0 = time.perf_counter()
    own = plan.layer_owner(parts)
    sync = np.zeros(SYNC_SIZE, np.int64)
    args = [int(n), int(k0), X, int(x0), int(xp), Y if has_Y else X, int(y0), int(yp), has_Y,
            sp.sizes, sp.acts, sp.noff, sp.woff, sp.P, sp.S, sp.cur, net.gamma, net.beta,
            net.loss == "cross_entropy", net.error_mode == "gle", net.tau_floor,
            tp is not None, tq.sizes, tq.acts, tq.noff, tq.woff, tq.P, tq.S, tq.cur,
            teacher.gamma if tp is not None else 0.0,
            (teacher.error_mode == "gle") if tp is not None else False,
            sp.B, net.dt, float(learn_from), opt.kind, opt.layer, opt.poff, lrs, opt.code,
            opt.mu, opt.b1, opt.b2, opt.eps, opt.off, opt.M, opt.V, opt.init, opt.count,
            plan.U, scal, int(record_every), int(record_stream), plan.probes.arrays,
            plan.probes.on, plan.probes.totals, float(limit), plan.sbuf, plan.res, bool(local),
            tape is not None, *(_NO_TAPE if tape is None else (tape.T, tape.Y, tape.has_y,
                                                              tape.loss)),
            0 if tape is None else int(tape.pos), 0, parts, own, sync]
    if parts == 1:
        with single_threaded_blas():
            _run(*args)
        if pace is not None:
            pace.record(1, (time.perf_counter() - t0) / max(1, int(plan.res[R_DONE])))
        return int(plan.res[R_DONE]), int(plan.res[R_STATUS])
    # the second part: its own scratch, result vector and loss accumulator (it writes
    # none of them but its scratch), part number 1
    own_copy = {id(plan.sbuf): np.empty_like(plan.sbuf),
                id(plan.res): np.zeros_like(plan.res), id(scal): np.zeros_like(scal)}
    helper = [own_copy.get(id(a), a) if isinstance(a, np.ndarray) else a for a in args]
    helper[-4] = 1                            # part
    errors = []

    def second():
        try:
            with single_threaded_blas():
                _run(*helper)
        except BaseException as exc:          # pragma: no cover - re-raised below
            errors.append(exc)
            sync[SYNC_ABORT] = 1

    thread = threading.Thread(target=second, name="gle-kernel-part-1", daemon=True)
    try:
        thread.start()
    except RuntimeError:                      # pragma: no cover - no thread to be had
        args[-4:] = [0, 1, plan.layer_owner(1), sync]
        with single_threaded_blas():
            _run(*args)
        return int(plan.res[R_DONE]), int(plan.res[R_STATUS])
    try:
        with single_threaded_blas():
            _run(*args)
    except BaseException:                     # pragma: no cover - the other part must stop
        sync[SYNC_ABORT] = 1
        raise
    finally:
        thread.join()
    if errors:                                # pragma: no cover
        raise errors[0]
    if plan.res[R_STATUS] == S_ABORTED:       # pragma: no cover
        raise RuntimeError("the kernel's second thread stopped")
    if pace is not None:
        pace.record(2, (time.perf_counter() - t0) / max(1, int(plan.res[R_DONE])))
    return int(plan.res[R_DONE]), int(plan.res[R_STATUS])


def run_evaluation(packed, X, Yo, summed, losses):
    """Step the packed network ``packed`` (a :class:`~gle_core.plan.PackedNetwork`) through
    the input rows ``X`` (kernel layout ``(steps, n_in * batch)``) without target or
    learning, adding every stream's outputs to ``summed`` (batch, n_out) and their
    cross-entropies against the one-hot ``Yo`` (kernel layout ``(n_out * batch,)``) to
    ``losses`` (batch,); see :func:`_evaluate`. The packed state advances (``packed.cur``);
    the network object's own arrays are not updated. Releases the GIL while it runs."""
    net = packed.net
    res = np.zeros(6, np.int64)
    sbuf = np.empty(3 * packed.B * int(packed.sizes[1:].max()))
    with single_threaded_blas():
        _evaluate(len(X), X, Yo, packed.sizes, packed.acts, packed.noff, packed.woff, packed.P,
                  packed.S, packed.cur, packed.B, float(net.dt), float(net.gamma),
                  net.error_mode == "gle", sbuf, summed, losses, res)
    packed.cur = int(res[R_CUR])


def warm_up():
    """Compile (or load from the on-disk cache) the kernel; returns the seconds it took."""
    from .network import GLENetwork
    from .optimizers import Adam
    from .plan import KernelPlan
    from .probes import RingBuffer
    t0 = time.perf_counter()
    net = GLENetwork([1, 2, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, seed=0)
    teacher = GLENetwork([1, 2, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, seed=1)
    probes = {"t": RingBuffer(4, ()), "r": RingBuffer(4, (3,))}
    plan = KernelPlan(net, teacher, Adam(1e-3), [("W", 0)], probes)
    plan.pull()
    X = np.zeros((2, 1))
    run(plan, 2, 0, (X, 0, 0, None, 0, 0), np.full(4, 1e-3), 0.0, np.zeros(3), 1, 0, 1e12)
    for gamma in (0.0, 1.0):                          # both paths of the evaluation pass
        net.gamma = gamma
        run_evaluation(plan.student, X, np.zeros(1), np.zeros((1, 1)), np.zeros(1))
    return time.perf_counter() - t0
