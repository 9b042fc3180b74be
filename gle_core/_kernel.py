"""Compiled fast path of :meth:`gle_core.simulator.Simulator.run_steps` (numba).

The numpy code in :mod:`gle_core.network`, :mod:`gle_core.optimizers` and
:mod:`gle_core.simulator` is the reference; this module runs the *same* loop compiled:

* teacher forward step (a :class:`~gle_core.network.GLENetwork` run without target; its old
  output rate is the student's target),
* the student's full step (spec §3 steps 1-7, GLE and IE error modes, the seven activations,
  MSE and cross-entropy),
* the local gradients and the optimizer update (SGD, momentum, Adam, exactly as
  :mod:`gle_core.optimizers`), with per-kind learning rates, per-(kind, layer) learn flags and
  ``learn_from``, followed by the τ floor clamp,
* loss accumulation and recording into the simulator's ring buffers (``record_every``,
  ``record_stream``), and the periodic ``|x| ≤ 1e12`` bound check.

Per-layer arrays are packed into flat buffers with offsets, so one compiled kernel serves
every network shape (numba compiles once per machine: ``cache=True``). A state buffer has
shape ``(2, N_VARS, batch * n_neurons)``: two copies used in turn (the step reads copy
``cur`` and writes copy ``1 - cur``), so a step whose result is not finite is simply not
committed and the network keeps its last finite state. Within one variable, layer ℓ occupies
``[batch * noff[ℓ], batch * noff[ℓ + 1])`` as a neuron-major ``(n_ℓ, batch)`` block, so the
elementwise loops run over the batch with unit stride and vectorize; layers with
``n_ℓ n_{ℓ-1} batch ≥ _BLAS_MIN`` use BLAS (``np.dot``) for W r, Wᵀ e and e rᵀ.

The Python driver :func:`run_steps` packs the simulator's current parameters, states and
optimizer moments before every block of at most ``Simulator.chunk`` steps and writes them back
after it, so the two backends can be swapped (and parameters changed) between calls. The
results equal the numpy path's up to rounding (libm instead of numpy's SIMD exp/tanh, other
summation orders): ~1e-16 per step, which stays ≤ 1e-12 unless the run itself amplifies
1-ulp perturbations (see tests/core/test_kernel.py).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .activations import ACTIVATIONS
from .errors import SimulationDiverged
from .network import PARAMETER_KINDS, STATE_NAMES, GLENetwork
from .optimizers import SGD, Adam, Momentum

try:  # numba is optional: without it the simulator uses the numpy path
    from numba import njit
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "ACTIVATION_CODES", "Unsupported", "unsupported_reason", "run_steps",
           "warm_up"]

#: activation name -> code used in the kernel
ACTIVATION_CODES = {"linear": 0, "tanh": 1, "sigmoid": 2, "softplus": 3, "relu": 4,
                    "hard_sigmoid": 5, "hard_tanh": 6}
_KIND_CODES = {k: i for i, k in enumerate(PARAMETER_KINDS)}   # W, b, tau_m, tau_r
_OPT_CODES = {SGD: 0, Momentum: 1, Adam: 2}

# state variables of the packed buffer: STATE_NAMES in order, then the error arriving from
# above (the feedback W_{ℓ+1}ᵀ e_{ℓ+1} for hidden layers, the output drive g for the output)
_U, _UD, _UH, _R, _RP, _EPS, _V, _E, _D = range(9)
N_VARS = 9
# probe slots: RECORDABLE order = t, input, output, target, loss, STATE_NAMES, PARAMETER_KINDS
_N_PROBES = 5 + len(STATE_NAMES) + len(PARAMETER_KINDS)
# kernel status codes
_OK, _BAD_STUDENT, _BAD_TEACHER, _BAD_LOSS, _BAD_UPDATE, _UNBOUNDED = range(6)
_LOG2 = math.log(2.0)          # numpy's NPY_LOGE2 as a double
#: layers with n_out * n_in * batch at least this use BLAS (np.dot) for their products
_BLAS_MIN = 4096


# ---------------------------------------------------------------------------------- kernel
if HAVE_NUMBA:
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.extending import intrinsic

    @intrinsic
    def _bits_to_double(typingctx, x):
        """The float64 whose bits are the int64 ``x`` (builds 2^k in vectorizable code)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _ir.DoubleType())
        return _types.float64(_types.int64), codegen

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
            z = e * _bits_to_double((1023 - np.int64(k)) << 52)
            big = (1.0 - z) / (1.0 + z)
            t = small if a < 0.3 else big
            t = t if x >= 0.0 else -t
            t = x if x != x else t                      # NaN stays NaN
            dst_r[q] = t
            dst_rp[q] = 1.0 - t * t

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
            for q in range(hi):
                x = src[q]
                # numpy: x > 0: x + log1p(exp(-x)); x < 0: log1p(exp(x)); x = 0: log 2 --
                # all equal to max(x, 0) + log1p(exp(-|x|)) bit for bit. φ′ = expit(x) =
                # 1 / (1 + exp(-x)); for x < 0, exp(-x) = 1/exp(x) up to an ulp.
                z = math.exp(-abs(x))
                dst_r[q] = (x if x > 0.0 else 0.0) + math.log1p(z)
                dst_rp[q] = 1.0 / (1.0 + (z if x > 0.0 else 1.0 / z))
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
                  ce, gle, sbuf):
        """One Euler step of a network (spec §3 steps 1-7): reads S[cur], writes S[1 - cur].

        ``x`` is the flat neuron-major (n_in, batch) input, ``y[ybase:]`` the (n_out, batch)
        target; ``sbuf`` a scratch of at least 3 max(n_ℓ) batch. Returns True if every new
        value is finite. (The elementwise loops index whole-layer views from 0, so numba
        compiles them without negative-index checks and they vectorize; per-row views would
        cost a reference count each.)
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
        if not has_y:
            for q in range(nout * B):
                Go[q] = 0.0
        else:
            Yo = y[ybase:ybase + nout * B]
            if not ce:
                for q in range(nout * B):
                    Go[q] = beta * (Yo[q] - Ro[q])
            else:                                       # β (onehot - softmax(r))
                for b in range(B):
                    mx = Ro[b]
                    for i in range(1, nout):
                        if Ro[i * B + b] > mx:
                            mx = Ro[i * B + b]
                    tot = 0.0
                    for i in range(nout):
                        ex = math.exp(Ro[i * B + b] - mx)
                        Go[i * B + b] = ex
                        tot += ex
                    for i in range(nout):
                        Go[i * B + b] = beta * (Yo[i * B + b] - Go[i * B + b] / tot)
            for q in range(nout * B):
                bad |= Go[q] - Go[q] != 0.0

        for l in range(L):
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
            if big:
                np.dot(Wl.reshape((n, m)), Rin.reshape((m, B)), Sl.reshape((n, B)))
            else:
                for q in range(nB):
                    Sl[q] = 0.0
                for i in range(n):
                    for jj in range(m):
                        w = Wl[i * m + jj]
                        for b in range(B):
                            Sl[i * B + b] += w * Rin[jj * B + b]
            # per-element copies of b, τm, τr, so that the update below is one flat loop
            TM = sbuf[nB:2 * nB]
            TR = sbuf[2 * nB:3 * nB]
            for i in range(n):
                bi = bl[i]
                tm = tml[i]
                tr = trl[i]
                for b in range(B):
                    Sl[i * B + b] += bi
                    TM[i * B + b] = tm
                    TR[i * B + b] = tr
            if gle:
                for q in range(nB):
                    eps = RPc[q] * Din[q]                              # step 1
                    v = Vc[q]
                    tr = TR[q]
                    tm = TM[q]
                    vdot = (eps - v) / tr                              # step 3
                    vn = v + dt * vdot
                    e = v + tm * vdot
                    u = Uc[q]
                    ud = (Sl[q] + gamma * e - u) / tm                  # step 4
                    uh = u + tr * ud
                    un = u + dt * ud
                    Un[q] = un
                    UDn[q] = ud
                    UHn[q] = uh
                    EPSn[q] = eps
                    Vn[q] = vn
                    En[q] = e
                    bad |= ((un - un) + (uh - uh) + (vn - vn) + (e - e)) != 0.0
            else:                                                      # IE: v = e = ε
                for q in range(nB):
                    eps = RPc[q] * Din[q]
                    u = Uc[q]
                    ud = (Sl[q] + gamma * eps - u) / TM[q]
                    uh = u + TR[q] * ud
                    un = u + dt * ud
                    Un[q] = un
                    UDn[q] = ud
                    UHn[q] = uh
                    EPSn[q] = eps
                    Vn[q] = eps
                    En[q] = eps
                    bad |= ((un - un) + (uh - uh) + (eps - eps)) != 0.0
            _activate(acts[l], UHn, S[nxt, _R, lo:hi], S[nxt, _RP, lo:hi])    # step 7
            if l > 0:                                                  # step 6: W_ℓᵀ e_ℓ
                Fb = Dn[B * noff[l - 1]:lo]
                if big:
                    np.dot(Wl.reshape((n, m)).T, En.reshape((n, B)), Fb.reshape((m, B)))
                else:
                    for q in range(m * B):
                        Fb[q] = 0.0
                    for jj in range(m):
                        for i in range(n):
                            w = Wl[i * m + jj]
                            for b in range(B):
                                Fb[jj * B + b] += w * En[i * B + b]
                for q in range(m * B):
                    bad |= Fb[q] - Fb[q] != 0.0
        # u̇, r, r′ are finite when ŭ, u_new, e, v_new are (all φ, φ′ are finite on finite
        # input; an overflowing u̇ makes u_new infinite)
        return not bad

    @njit(cache=True, error_model="numpy")
    def _loss(R, ob, y, ybase, B, nout, ce):
        """Per-step cost of the old output R[ob:] against y[ybase:] (GLENetwork.loss_value)."""
        Ro = R[ob:ob + nout * B]
        Yo = y[ybase:ybase + nout * B]
        if not ce:
            acc = 0.0
            for q in range(nout * B):
                d = Yo[q] - Ro[q]
                acc += d * d
            return acc / (B * nout)
        tot = 0.0
        for b in range(B):
            mx = Ro[b]
            for i in range(1, nout):
                if Ro[i * B + b] > mx:
                    mx = Ro[i * B + b]
            se = 0.0
            for i in range(nout):
                se += math.exp(Ro[i * B + b] - mx)
            lse = math.log(se)
            row = 0.0
            for i in range(nout):
                row += Yo[i * B + b] * ((Ro[i * B + b] - mx) - lse)
            tot += row
        return -(tot / B)

    @njit(cache=True, error_model="numpy")
    def _gradient(kind, l, sizes, noff, S, cur, x, B, G):
        """∂E/∂θ of (kind, layer l) from the step just computed into S[1 - cur] (spec §3.5),
        written to G (a view of that parameter's size); the presynaptic rates are the old
        ones (S[cur]) or the input."""
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
        # batch means summed in order, like numpy's mean over axis 0
        if kind == 1:                                  # -⟨e⟩
            for i in range(n):
                s = 0.0
                for b in range(B):
                    s += En[i * B + b]
                G[i] = -(s / B)
            return
        UDn = S[nxt, _UD, lo:hi]
        if kind == 2:                                  # ⟨e ⊙ u̇⟩
            for i in range(n):
                s = 0.0
                for b in range(B):
                    s += En[i * B + b] * UDn[i * B + b]
                G[i] = s / B
            return
        EPSn = S[nxt, _EPS, lo:hi]                     # -⟨ε ⊙ u̇⟩
        for i in range(n):
            s = 0.0
            for b in range(B):
                s += EPSn[i * B + b] * UDn[i * B + b]
            G[i] = -(s / B)

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

    @njit(cache=True, nogil=True, error_model="numpy")
    def _run(n_steps, k0, X, Y, has_Y,
             sizes, acts, noff, woff, P, S, cur, gamma, beta, ce, gle, tau_floor,
             has_teacher, t_sizes, t_acts, t_noff, t_woff, t_P, t_S, t_cur, t_gamma, t_gle,
             B, dt, learn_from, a_kind, a_layer, a_slot, lrs, opt_code, mu, b1, b2, oeps,
             slot_off, M, V, slot_init, slot_count, G, scal, record_every, j, probes, rec_on,
             totals, limit, sbuf, res):
        """Run up to ``n_steps`` steps of the Simulator loop (teacher, student, loss,
        learning, recording); stops early at a non-finite value (nothing of that step is
        committed) or after a step that fails the bound check (committed). See res codes."""
        L = sizes.shape[0] - 1
        N = noff[L]
        nW = woff[L]
        nout = sizes[L]
        nin = sizes[0]
        ob = B * noff[L - 1]
        tL = t_sizes.shape[0] - 1
        t_ob = B * t_noff[tL - 1]
        n_act = a_kind.shape[0]
        status = _OK
        done = 0
        for i in range(n_steps):
            k = k0 + i
            xk = X[i]
            # ---- teacher forward (no target): its old output is the target
            if has_teacher:
                if not _net_step(t_sizes, t_acts, t_noff, t_woff, t_P, t_S, t_cur, xk, xk, 0,
                                 False, B, dt, t_gamma, 0.0, False, t_gle, sbuf):
                    status = _BAD_TEACHER
                    break
                yarr = t_S[t_cur, _R]
                ybase = t_ob
                has_y = True
            elif has_Y:
                yarr = Y[i]
                ybase = 0
                has_y = True
            else:
                yarr = xk
                ybase = 0
                has_y = False
            # ---- student step
            if not _net_step(sizes, acts, noff, woff, P, S, cur, xk, yarr, ybase, has_y, B,
                             dt, gamma, beta, ce, gle, sbuf):
                status = _BAD_STUDENT
                break
            lval = 0.0
            if has_y:
                lval = _loss(S[cur, _R], ob, yarr, ybase, B, nout, ce)
                if lval - lval != 0.0:
                    status = _BAD_LOSS
                    break
            # ---- learning, pass 1: gradients and a check that the update stays finite
            learning = n_act > 0 and k * dt >= learn_from - 1e-9
            if learning:
                bad_a = -1
                for a in range(n_act):
                    kind = a_kind[a]
                    lr = lrs[kind]
                    if lr == 0.0:
                        continue
                    l = a_layer[a]
                    po = _param_offset(kind, l, noff, woff)
                    size = sizes[l + 1] * sizes[l] if kind == 0 else sizes[l + 1]
                    Gv = G[po:po + size]
                    _gradient(kind, l, sizes, noff, S, cur, xk, B, Gv)
                    Pv = P[po:po + size]
                    sl = a_slot[a]
                    so = slot_off[sl]
                    Mv = M[so:so + size]
                    Vv = V[so:so + size]
                    cnt = slot_count[sl] + 1
                    c1 = 1.0 - b1 ** float(cnt)
                    c2 = 1.0 - b2 ** float(cnt)
                    bad = False
                    if opt_code == 0:
                        for q in range(size):
                            pn = Pv[q] - lr * Gv[q]
                            bad |= pn - pn != 0.0
                    elif opt_code == 1:
                        init = slot_init[sl] != 0
                        for q in range(size):
                            mm = Mv[q] * mu + Gv[q] if init else Gv[q]
                            pn = Pv[q] - lr * mm
                            bad |= ((pn - pn) + (mm - mm)) != 0.0
                    else:
                        step = lr / c1
                        for q in range(size):
                            g = Gv[q]
                            mm = Mv[q] * b1 + (1.0 - b1) * g
                            vv = Vv[q] * b2 + (1.0 - b2) * g * g
                            pn = Pv[q] - step * mm / (math.sqrt(vv / c2) + oeps)
                            bad |= ((pn - pn) + (mm - mm) + (vv - vv)) != 0.0
                    if bad:
                        bad_a = a
                        break
                if bad_a >= 0:
                    status = _BAD_UPDATE
                    res[4] = a_kind[bad_a]
                    res[5] = a_layer[bad_a]
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
            if learning:                  # pass 2: apply the updates (optimizers.py)
                tau_changed = False
                for a in range(n_act):
                    kind = a_kind[a]
                    lr = lrs[kind]
                    if lr == 0.0:
                        continue
                    l = a_layer[a]
                    po = _param_offset(kind, l, noff, woff)
                    size = sizes[l + 1] * sizes[l] if kind == 0 else sizes[l + 1]
                    Gv = G[po:po + size]
                    Pv = P[po:po + size]
                    sl = a_slot[a]
                    so = slot_off[sl]
                    Mv = M[so:so + size]
                    Vv = V[so:so + size]
                    slot_count[sl] += 1
                    cnt = slot_count[sl]
                    if opt_code == 0:
                        for q in range(size):
                            Pv[q] -= lr * Gv[q]
                    elif opt_code == 1:
                        if slot_init[sl]:
                            for q in range(size):
                                Mv[q] = Mv[q] * mu + Gv[q]
                        else:
                            for q in range(size):
                                Mv[q] = Gv[q]
                        for q in range(size):
                            Pv[q] -= lr * Mv[q]
                    else:
                        c1 = 1.0 - b1 ** float(cnt)
                        c2 = 1.0 - b2 ** float(cnt)
                        step = lr / c1
                        for q in range(size):
                            g = Gv[q]
                            mm = Mv[q] * b1 + (1.0 - b1) * g
                            vv = Vv[q] * b2 + (1.0 - b2) * g * g
                            Mv[q] = mm
                            Vv[q] = vv
                            Pv[q] -= step * mm / (math.sqrt(vv / c2) + oeps)
                    slot_init[sl] = 1
                    if kind >= 2:
                        tau_changed = True
                if tau_changed:              # τ floor on every τm and τr
                    for q in range(nW + N, nW + 3 * N):
                        if P[q] < tau_floor:
                            P[q] = tau_floor
            done = i + 1
            # ---- record
            if (k + 1) % record_every == 0:
                if rec_on[0]:
                    pr = probes[0]
                    pr[totals[0] % pr.shape[0], 0] = k * dt
                if rec_on[1]:
                    pr = probes[1]
                    row = totals[1] % pr.shape[0]
                    for q in range(nin):
                        pr[row, q] = xk[q * B + j]
                if rec_on[2]:
                    pr = probes[2]
                    row = totals[2] % pr.shape[0]
                    Ro = S[out_cur, _R]
                    for q in range(nout):
                        pr[row, q] = Ro[ob + q * B + j]
                if rec_on[3]:
                    pr = probes[3]
                    row = totals[3] % pr.shape[0]
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
                if rec_on[4]:
                    pr = probes[4]
                    pr[totals[4] % pr.shape[0], 0] = lmean
                if scal[1] > 0.0:
                    scal[2] = lmean
                scal[0] = 0.0
                scal[1] = 0.0
                for var in range(8):
                    if rec_on[5 + var]:
                        pr = probes[5 + var]
                        _record_state(pr, totals[5 + var] % pr.shape[0], S, cur, var, sizes,
                                      noff, B, j)
                for kind in range(4):
                    if rec_on[13 + kind]:
                        pr = probes[13 + kind]
                        row = totals[13 + kind] % pr.shape[0]
                        lo = 0 if kind == 0 else nW + (kind - 1) * N
                        hi = nW if kind == 0 else lo + N
                        for q in range(lo, hi):
                            pr[row, q - lo] = P[q]
                for q in range(_N_PROBES):
                    if rec_on[q]:
                        totals[q] += 1
            # ---- periodic bound check (Simulator._check_bounded every 256 steps)
            if (k + 1) % 256 == 0 and not _bounded(S, cur, P, limit):
                status = _UNBOUNDED
                break
        res[0] = done
        res[1] = status
        res[2] = cur
        res[3] = t_cur
        return done


# ---------------------------------------------------------------------------------- packing
class Unsupported(Exception):
    """The configuration cannot run in the kernel (the numpy path must be used)."""


class _Packed:
    """Flat buffers of one GLENetwork (layout described in the module docstring)."""

    def __init__(self, net):
        sizes = net.layer_sizes
        L = net.n_layers
        self.net = net
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.acts = np.asarray([ACTIVATION_CODES[a] for a in net.activations], dtype=np.int64)
        self.noff = np.concatenate(([0], np.cumsum(sizes[1:]))).astype(np.int64)
        self.woff = np.concatenate(([0], np.cumsum([sizes[i + 1] * sizes[i]
                                                     for i in range(L)]))).astype(np.int64)
        self.N = int(self.noff[-1])
        self.nW = int(self.woff[-1])
        self.B = net.batch_size
        # parameters: W (row-major per layer), b, tau_m, tau_r
        self.P = np.concatenate([w.ravel() for w in net.W] + list(net.b) + list(net.tau_m)
                                + list(net.tau_r))
        B = self.B
        S = np.empty((2, N_VARS, B * self.N))
        for var, name in enumerate(STATE_NAMES):
            S[0, var] = np.concatenate([a.T.ravel() for a in getattr(net, name)])
        S[0, _D] = np.concatenate([a.T.ravel() for a in net._feedback]
                                  + [np.asarray(net.output_drive, dtype=float).T.ravel()])
        self.S = S
        self.cur = 0

    def layer(self, var, cur, l):
        B, n = self.B, int(self.sizes[l + 1])
        o = B * int(self.noff[l])
        return np.ascontiguousarray(self.S[cur, var, o:o + B * n].reshape(n, B).T)

    def write_back(self, done, x_last, has_target):
        """Copy parameters (in place, as the optimizers do) and states (new arrays, as
        GLENetwork.step does) back to the network after ``done`` steps."""
        net, P, L = self.net, self.P, self.net.n_layers
        nW, N = self.nW, self.N
        for l in range(L):
            n, m = int(self.sizes[l + 1]), int(self.sizes[l])
            w = self.woff[l]
            net.W[l][...] = P[w:w + n * m].reshape(n, m)
            o = int(self.noff[l])
            net.b[l][...] = P[nW + o:nW + o + n]
            net.tau_m[l][...] = P[nW + N + o:nW + N + o + n]
            net.tau_r[l][...] = P[nW + 2 * N + o:nW + 2 * N + o + n]
        if done == 0:
            return
        cur = self.cur
        for var, name in enumerate(STATE_NAMES):
            setattr(net, name, [self.layer(var, cur, l) for l in range(L)])
        net._feedback = [self.layer(_D, cur, l) for l in range(L - 1)]
        g = self.layer(_D, cur, L - 1)
        net.output_drive = g if has_target else np.zeros_like(g)
        net.presynaptic = [np.array(x_last, dtype=float, copy=True)] + \
            [self.layer(_R, 1 - cur, l) for l in range(L - 1)]
        net.steps += done


def unsupported_reason(sim):
    """Why ``sim`` cannot use the compiled kernel (``None`` if it can)."""
    if not HAVE_NUMBA:
        return "numba is not installed"
    from .simulator import Simulator
    for name in ("_learn_step", "_record", "_check_bounded"):
        if getattr(type(sim), name) is not getattr(Simulator, name):
            return f"{type(sim).__name__} overrides Simulator.{name}"
    net, teacher = sim.network, sim.teacher
    for who, nw in (("network", net), ("teacher", teacher)):
        if nw is None:
            continue
        if type(nw) is not GLENetwork:
            return f"the {who} is a subclass of GLENetwork"
        bad = [a for i, a in enumerate(nw.activations) if a not in ACTIVATION_CODES
               or ACTIVATIONS.get(a) is not nw._phi[i]]
        if bad:
            return f"the {who} uses non-standard activations {bad}"
        if nw.error_mode not in ("gle", "ie") or nw.loss not in ("mse", "cross_entropy"):
            return f"the {who}'s error mode or loss is not supported"
    if teacher is not None and (teacher.batch_size != net.batch_size
                                or teacher.layer_sizes[-1] != net.layer_sizes[-1]):
        return "the teacher's batch or output size differs from the student's"
    if teacher is not None and any(np.shares_memory(a, c) for k in PARAMETER_KINDS
                                   for a in net.parameters(k) for c in teacher.parameters(k)):
        return "the teacher shares parameter arrays with the student"
    if type(sim.optimizer) not in _OPT_CODES:
        return f"optimizer {type(sim.optimizer).__name__} is not SGD, Momentum or Adam"
    keys = [tuple(a) for a in sim._active]
    if len(set(keys)) != len(keys):
        return "a (kind, layer) appears twice in learn"
    return None


def _target_block(sim, block, m):
    """The target block as a dense neuron-major (m, n_out * batch) array, or raise
    Unsupported."""
    net = sim.network
    B, nout = net.batch_size, net.layer_sizes[-1]
    y = np.asarray(block)
    if y.ndim == 3 and y.dtype.kind == "f":
        try:
            y = np.broadcast_to(y, (m, B, nout))
        except ValueError:
            raise Unsupported(f"target of shape {y.shape[1:]}") from None
    elif y.ndim == 2 and y.dtype.kind in "iu" and net.loss == "cross_entropy":
        y = np.eye(nout)[y]
    else:
        raise Unsupported(f"target of shape {y.shape[1:]} and dtype {y.dtype}")
    return np.array(np.swapaxes(y, 1, 2), dtype=float, order="C").reshape(m, nout * B)


_DUMMY_PROBE = np.zeros((1, 1))


def _probe_views(sim):
    from .simulator import RECORDABLE
    views, on, totals = [], np.zeros(_N_PROBES, np.int64), np.zeros(_N_PROBES, np.int64)
    for q, name in enumerate(RECORDABLE):
        rb = sim.probes.get(name)
        if rb is None:
            views.append(_DUMMY_PROBE)
            continue
        views.append(rb._data.reshape(rb.capacity, -1))
        on[q] = 1
        totals[q] = rb.total
    return tuple(views), on, totals


def _name_bad_state(packed, nxt, t, detail):
    """The first non-finite would-be state of ``packed`` (find_divergence's order)."""
    L = packed.net.n_layers
    names = list(STATE_NAMES) + ["error_feedback"]
    for var, name in enumerate(names):
        for l in range(L):
            a = packed.layer(var, nxt, l)
            if not np.all(np.isfinite(a)):
                if var == _D and l == L - 1:
                    name = "output_drive"
                return SimulationDiverged(name, l + 1, t, float(a[~np.isfinite(a)].flat[0]),
                                          detail)
    return SimulationDiverged("u", 1, t, float("nan"), detail)


class _Blocks:
    """Stimulus blocks for the kernel, as Simulator._inputs_at samples them (``chunk`` steps
    from the first step outside the current block), converted once per block to the kernel's
    neuron-major layout.

    When sampling is slow (the smoothed square wave of the chain protocol costs about as much
    as simulating it) and the stimulus is one of the pure built-in ones, the next block is
    sampled in a background thread while the kernel (which releases the GIL) runs.
    """

    _executor = None
    SLOW = 1e-3          # seconds per block above which sampling is worth a thread

    def __init__(self, sim, prefetch=True):
        from . import inputs
        from .simulator import Simulator as _Simulator
        self.sim = sim
        pure = (inputs.Sine, inputs.SumOfSines, inputs.SmoothedSquare, inputs.Constant,
                inputs.ArrayInput)
        self.can_prefetch = prefetch and type(sim.stimulus) in pure and \
            (sim.target is None or type(sim.target) in pure) and \
            type(sim)._inputs_at is _Simulator._inputs_at
        self.slow = False
        self.pending = None          # (start, future)
        self.converted = None        # (block_x object, X, Y or None)
        self.next_start = None

    @staticmethod
    def _sample(stimulus, target, k, chunk, dt):
        # the same computation as Simulator._inputs_at
        t = (k + np.arange(chunk)) * dt
        return stimulus.sample(t), (None if target is None else target.sample(t))

    def get(self, k0, left):
        """(i0, m, X, Y) for the steps from k0: X, Y are whole converted blocks."""
        sim = self.sim
        bx = sim._block_x
        inside = bx is not None and 0 <= k0 - sim._block_start < len(bx)
        if not inside and self.pending is not None and self.pending[0] == k0:
            try:
                bx, by = self.pending[1].result()
            except Exception:        # let _inputs_at raise it again, in order
                bx = None
            if bx is not None:
                sim._block_start, sim._block_x, sim._block_y = k0, bx, by
                inside = True
        self.pending = None
        if not inside:
            t0 = time.perf_counter()
            sim._inputs_at(k0)       # samples the block starting at k0
            self.slow = time.perf_counter() - t0 > self.SLOW
        bx, by = sim._block_x, sim._block_y
        if self.converted is None or self.converted[0] is not bx:
            X = np.array(np.swapaxes(bx, 1, 2), dtype=float, order="C").reshape(len(bx), -1)
            Y = None
            if sim.teacher is None and by is not None:
                Y = _target_block(sim, by, len(by))
            self.converted = (bx, X, Y)
        i0 = k0 - sim._block_start
        m = min(left, len(bx) - i0)
        # the block after this one, if this call will need it
        self.next_start = sim._block_start + len(bx) if left > m else None
        return i0, m, self.converted[1], self.converted[2]

    def prefetch_next(self):
        """Start sampling the next block in the background (if slow and needed)."""
        if not (self.can_prefetch and self.slow and self.next_start is not None):
            return
        if _Blocks._executor is None:
            import concurrent.futures
            _Blocks._executor = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="gle-prefetch")
        sim = self.sim
        self.pending = (self.next_start, _Blocks._executor.submit(
            self._sample, sim.stimulus, sim.target, self.next_start, sim.chunk,
            sim.network.dt))

    def close(self):
        if self.pending is not None:
            self.pending[1].cancel()
            self.pending = None


class _OptState:
    """The optimizer's moments of the active (kind, layer) keys in flat buffers."""

    def __init__(self, sim):
        opt = self.opt = sim.optimizer
        self.code = _OPT_CODES[type(opt)]
        self.active = active = [(kind, int(layer)) for kind, layer in sim._active]
        sizes = sim.network.layer_sizes
        size = [sizes[l + 1] * sizes[l] if kind == "W" else sizes[l + 1] for kind, l in active]
        self.off = np.concatenate(([0], np.cumsum(size))).astype(np.int64)
        self.M = np.zeros(int(self.off[-1]))
        self.V = np.zeros(int(self.off[-1]))
        self.init = np.zeros(len(active), np.int64)
        self.count = np.zeros(len(active), np.int64)
        for s, key in enumerate(active):
            st = opt.state.get(key)
            if st is None or self.code == 0:
                continue
            self.init[s] = 1
            sl = slice(self.off[s], self.off[s + 1])
            if self.code == 1:
                self.M[sl] = np.ravel(st)
            else:
                self.M[sl] = np.ravel(st[0])
                self.V[sl] = np.ravel(st[1])
                self.count[s] = st[2]
        self.kind = np.array([_KIND_CODES[k] for k, _ in active], np.int64)
        self.layer = np.array([l for _, l in active], np.int64)
        self.slot = np.arange(len(active), dtype=np.int64)
        self.mu = float(getattr(opt, "momentum", 0.0))
        self.b1 = float(getattr(opt, "b1", 0.0))
        self.b2 = float(getattr(opt, "b2", 0.0))
        self.eps = float(getattr(opt, "eps", 0.0))

    def write_back(self, net):
        opt = self.opt
        if self.code == 0:
            return
        for s, key in enumerate(self.active):
            if not self.init[s]:
                continue
            shape = np.shape(net.parameters(key[0])[key[1]])
            sl = slice(self.off[s], self.off[s + 1])
            m_new = self.M[sl].reshape(shape)
            st = opt.state.get(key)
            if self.code == 1:
                if st is None:
                    opt.state[key] = m_new.copy()
                else:
                    st[...] = m_new
            else:
                v_new = self.V[sl].reshape(shape)
                if st is None:
                    opt.state[key] = [m_new.copy(), v_new.copy(), int(self.count[s])]
                else:
                    st[0][...] = m_new
                    st[1][...] = v_new
                    st[2] = int(self.count[s])


def run_steps(sim, n, progress=None, prefetch=True):
    """:meth:`Simulator.run_steps` through the compiled kernel (same effects, same errors).

    Raises ``Unsupported`` *before* simulating anything if the configuration needs the numpy
    path (the caller then falls back); a target block of an unsupported shape met later
    makes the rest of the run fall back to the numpy path.
    """
    reason = unsupported_reason(sim)
    if reason is not None:
        raise Unsupported(reason)
    blocks = _Blocks(sim, prefetch)
    try:
        _run_blocks(sim, int(n), progress, blocks)
    finally:
        blocks.close()


def _run_blocks(sim, n, progress, blocks):
    from . import simulator as _sim_mod
    net, teacher = sim.network, sim.teacher
    dt, B = net.dt, net.batch_size
    L = net.n_layers
    left = n
    done_since_report = 0
    sbuf = np.empty(3 * B * max(net.layer_sizes[1:]
                                + (teacher.layer_sizes[1:] if teacher else [])))
    res = np.zeros(6, np.int64)
    limit = float(_sim_mod.DIVERGENCE_LIMIT)
    while left > 0:
        k0 = sim.n_steps
        try:
            i0, m, Xb, Yb = blocks.get(k0, left)
        except Unsupported:
            if left == n:
                raise
            if progress is not None and done_since_report:
                progress(done_since_report)
            sim._run_steps_numpy(left, progress)   # fall back for the rest
            return
        X = Xb[i0:i0 + m]
        has_Y = Yb is not None
        Y = Yb[i0:i0 + m] if has_Y else X
        sp = _Packed(net)
        tp = _Packed(teacher) if teacher is not None else None
        tq = tp if tp is not None else sp     # dummy arguments when there is no teacher
        opt = _OptState(sim)
        lrs = np.array([sim._lrs[k] for k in PARAMETER_KINDS])
        G = np.empty(sp.P.shape[0])
        scal = np.array([sim._loss_acc, float(sim._loss_n), sim.last_loss])
        probes, rec_on, totals = _probe_views(sim)
        blocks.prefetch_next()
        _run(m, k0, X, Y, has_Y,
             sp.sizes, sp.acts, sp.noff, sp.woff, sp.P, sp.S, 0, net.gamma, net.beta,
             net.loss == "cross_entropy", net.error_mode == "gle", net.tau_floor,
             tp is not None, tq.sizes, tq.acts, tq.noff, tq.woff, tq.P, tq.S, 0,
             teacher.gamma if tp is not None else 0.0,
             (teacher.error_mode == "gle") if tp is not None else False,
             B, dt, sim.learn_from, opt.kind, opt.layer, opt.slot, lrs, opt.code, opt.mu,
             opt.b1, opt.b2, opt.eps, opt.off, opt.M, opt.V, opt.init, opt.count, G,
             scal, sim.record_every, sim.record_stream, probes, rec_on, totals, limit, sbuf,
             res)
        done, status = int(res[0]), int(res[1])
        # ---- write everything back
        x_last = sim._block_x[i0 + done - 1] if done else None
        sp.cur = int(res[2])
        sp.write_back(done, x_last, tp is not None or has_Y)
        if tp is not None:
            tp.cur = int(res[3])
            tp.write_back(done, x_last, False)
        opt.write_back(net)
        # the numpy path leaves opt.lr at the rate of the last update it applied
        if done and (k0 + done - 1) * dt >= sim.learn_from - 1e-9:
            for kind, _ in opt.active:
                if sim._lrs[kind] != 0.0:
                    sim.optimizer.lr = sim._lrs[kind]
        sim._loss_acc, sim._loss_n, sim.last_loss = float(scal[0]), int(scal[1]), float(scal[2])
        for q, name in enumerate(_sim_mod.RECORDABLE):
            if rec_on[q]:
                sim.probes[name].total = int(totals[q])
        sim.n_steps = k0 + done
        left -= done
        if progress is not None and done:
            done_since_report += done
            if done_since_report >= 1000:
                progress(done_since_report)
                done_since_report = 0
        # ---- failures
        if status == _UNBOUNDED:
            sim._check_bounded()              # raises the numpy path's SimulationDiverged
        elif status != _OK:
            t = sim.t
            if status == _BAD_STUDENT:
                raise _name_bad_state(sp, 1 - sp.cur, t, "non-finite value in the step")
            if status == _BAD_TEACHER:
                raise _name_bad_state(tp, 1 - tp.cur, t, "non-finite value in the teacher")
            if status == _BAD_LOSS:
                raise SimulationDiverged("loss", L, t, float("inf"), "non-finite loss")
            kind = PARAMETER_KINDS[int(res[4])]
            raise SimulationDiverged(kind, int(res[5]) + 1, t, float("nan"),
                                     f"non-finite {kind} update")
    if progress is not None and done_since_report:
        progress(done_since_report)
    sim._check_bounded()


def warm_up():
    """Compile (or load from the on-disk cache) the kernel; returns the seconds it took."""
    from . import inputs
    from .simulator import Simulator
    t0 = time.perf_counter()
    net = GLENetwork([1, 2, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, seed=0)
    teacher = GLENetwork([1, 2, 1], ["tanh", "linear"], 1.0, 0.5, dt=0.01, seed=1)
    sim = Simulator(net, inputs.Sine(), teacher, learn={"W": True}, backend="numba",
                    window=4)
    sim.run_steps(2)
    return time.perf_counter() - t0
