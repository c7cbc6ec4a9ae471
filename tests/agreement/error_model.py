"""Agreement bounds from float32's rounding-error model, computed per case.

Two float32 computations of the same function (two backends, or one backend on two
shapes whose kernels block and vectorise the sums differently) may differ only by
rounding. How much rounding a result can carry follows from float32's unit roundoff
``U = 2**-24``, the *length of the reductions* that produced it and the *scale* of the
values involved — not from the margin one CPU happened to show.

**One reduction.** A float32 sum of ``K`` terms, in any order (sequential, pairwise,
blocked, vectorised, with or without FMA), is within ``gamma_K * sum|terms|`` of the exact
sum, ``gamma_K = K U / (1 - K U)`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., §3.1). That worst case needs every rounding error to have the same
sign; modelling them as independent and mean-zero, the error is at most
``lam * sqrt(K) * U * sum|terms|`` with probability at least ``1 - 2 exp(-lam**2 / 2)``
(Higham & Mary, *A New Approach to Probabilistic Rounding Error Analysis*, SIAM J. Sci.
Comput. 41(5), 2019, Thm. 2.4). With ``LAM = 8`` that probability of a miss is 2.5e-14 per
compared number: no CPU, summation order or case draw makes it a coin toss.

**A T5 forward pass.** The rounding errors of the reductions along the longest chain of a
prompted T5 — RMS norms and projections over ``d``, attention scores over the head width,
softmax sums and attention-weighted values over the key length, the feed-forward output
over ``d_ff``, the output head over ``d`` — add up. Every sub-layer starts from an RMS norm
(unit scale) and writes into the residual stream, so relative errors compose additively
rather than multiplying: the logits carry ``sqrt(K) U`` relative to their scale, with
``K = forward_reductions(...)`` the summed reduction lengths. `GAIN` allows for the
layers' amplification of an input error (the norm's ``1/rms``, softmax, the residual
branches): 4. Two independent implementations each make such an error, hence the 2 in
`C`::

    |logits_a - logits_b| <= C * U * sqrt(K) * max|logits|,   C = 2 * LAM * GAIN = 64

Everything else is derived from that: the loss (cross-entropy is 2-Lipschitz in the
logits' max norm), a candidate's log-likelihood (one such term per target token), the
greedy near-tie (a top-2 margin below twice the logits bound may flip), the prompt
gradient (the backward pass repeats the forward chain and adds the sums over batch,
positions and tokens: ``K_grad = 2 K + B T + V``), ``s`` SGD steps (each step's error is
``lr`` times the gradient's). Where a contract bound is fixed (cross-backend
logits 1e-4, loss 1e-5, ...), the test asserts the smaller of the two.

What this model does not cover, on purpose: free-running optimisation whose trajectory
grows rounding noise by its own dynamics (Adafactor; the trajectory test measures each
case's self-sensitivity instead), and exact properties (initializers, determinism) whose
bound is 0.

Example:
    >>> spec = modelspec.model_spec("tiny", "t5.1.1", 64, 0, prompt_length=20)
    >>> k = forward_reductions(spec, enc_width=24, dec_width=6)    # 2776
    >>> logits_bound(k, scale=8.0)          # 64 * 2**-24 * sqrt(2776) * 8
    0.00160...
"""

from __future__ import annotations

import math

import numpy as np

from . import modelspec

#: float32's unit roundoff (half of machine epsilon, 2**-23).
U = 2.0**-24
#: Probabilistic rounding bound's multiplier: a miss has probability <= 2 exp(-LAM**2 / 2).
LAM = 8.0
#: Amplification of an input error by T5's layers (norms, softmax, residual branches).
GAIN = 4.0
#: Two implementations, each within LAM * GAIN * sqrt(K) * U of the exact result.
C = 2.0 * LAM * GAIN


def gamma(k: int) -> float:
    """Higham's worst-case bound ``k U / (1 - k U)`` for a float32 sum of `k` terms."""
    return k * U / (1.0 - k * U)


def forward_reductions(spec: dict, enc_width: int, dec_width: int) -> int:
    """``K``: the summed reduction lengths along the longest chain into one logit.

    Encoder over ``P + enc_width`` positions (prompt included), then the decoder over
    `dec_width` positions, cross-attending to the encoder, then the output head.
    """
    arch = modelspec.SIZES[spec["size"]]
    d, f = arch["hidden_dim"], arch["intermediate_dim"]
    kv, inner = arch["key_value_dim"], arch["num_heads"] * arch["key_value_dim"]
    enc_len = spec["prompt_length"] + int(enc_width)

    def attention(keys):  # norm, projection, scores, softmax sum, weighted values, output
        return d + d + kv + keys + keys + inner

    feed_forward = d + d + f  # norm, input projection(s), output projection
    encoder = attention(enc_len) + feed_forward
    decoder = attention(int(dec_width)) + attention(enc_len) + feed_forward
    return arch["num_layers"] * (encoder + decoder) + d + d  # final norm, head


def logits_bound(k: int, scale: float) -> float:
    """Largest float32 difference of two implementations' logits of scale `scale`."""
    return C * U * math.sqrt(k) * float(scale)


def loss_rel_bound(k: int, scale: float, loss: float, vocab: int) -> float:
    """Relative bound on the mean token cross-entropy (plus z-loss) of `loss`.

    Cross-entropy moves by at most twice the logits' max-norm change; the log-sum-exp
    over the vocabulary adds its own reduction.
    """
    return 2.0 * logits_bound(k + vocab, scale) / max(abs(float(loss)), 1e-30)


def score_bound(k: int, scale: float, tokens: int, vocab: int) -> float:
    """A candidate's log-likelihood: one log-softmax term (2 x logits) per target token."""
    return 2.0 * int(tokens) * logits_bound(k + vocab, scale)


def greedy_tie(k: int, scale: float) -> float:
    """A top-2 margin at most this wide may legitimately pick differently."""
    return 2.0 * logits_bound(k, scale)


def gradient_reductions(k: int, batch: int, target: int, vocab: int) -> int:
    """``K`` of the prompt gradient: forward, the backward chain again, and the batch sums."""
    return 2 * k + int(batch) * int(target) + int(vocab)


def gradient_rel_bound(k_grad: int) -> float:
    """Bound on the gradient's difference relative to its largest element."""
    return C * U * math.sqrt(k_grad)


def sgd_bound(k_grad: int, before, prompts, steps: int) -> float:
    """Bound on the prompt after `steps` SGD steps, from the size of each step taken.

    Step ``s`` moves the prompt by ``lr g_s``; its error is that move's size times the
    gradient's relative bound, plus the rounding of the update ``p - lr g`` itself:
    each implementation rounds it to half an ulp, so two differ by at most one ulp
    (``<= 2 U |p|``) per step — a worst case, reached in part whenever the two ``lr g``
    straddle a rounding boundary, and sound on any CPU. Curvature can grow these over
    the steps; where it does, the trajectory test's self-sensitivity check takes over.
    """
    path = np.concatenate([np.asarray(before)[None], np.asarray(prompts)], axis=0)
    moves = [float(np.max(np.abs(path[i + 1] - path[i]))) for i in range(len(path) - 1)]
    largest = float(np.max(np.abs(path)))
    return gradient_rel_bound(k_grad) * sum(moves) + 2.0 * steps * U * largest
