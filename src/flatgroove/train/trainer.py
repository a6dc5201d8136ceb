"""The training loop: objectives of `vae`, `vhp` and `flat`, validation, JSONL log, atomic
best/last checkpoints, and exact resume (step, optimiser, λ, RNG). The same loop runs on one
process or, under torchrun, on several with DDP (flatgroove.train.distributed)."""

from __future__ import annotations

import datetime
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from flatgroove import geometry
from flatgroove.drums import DRUMS, N_DRUMS
from flatgroove.files import write_text
from flatgroove.groove import N_STEPS
from flatgroove.model.checkpoint import (
    CheckpointError,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from flatgroove.model.config import ModelConfig
from flatgroove.model.decoder import geometry_output, with_fisher, with_heard
from flatgroove.model.decoding import DecodingRule, parse_rule
from flatgroove.model.prior import LOGVAR_MAX, midpoint_hole_ratio
from flatgroove.model.vae import GrooveVAE
from flatgroove.train import distributed as D
from flatgroove.train.config import TrainConfig
from flatgroove.train.constraint import Geco

# TrainConfig's weight on each reconstruction term in the loss (GECO's constraint stays on the
# plain sum): one table for the loss and for the check of the settings
OUTPUT_WEIGHTS = {"hit_weight": "hit_bce", "off_weight": "off_se", "vel_weight": "vel_se"}


class TrainError(ValueError):
    """A run cannot start or resume; the message says why."""


def _grow_halves(v: torch.Tensor, new: int, logvar: float = 0.0) -> torch.Tensor:
    """Rows [mu | logvar] of d each (a layer that outputs a diagonal Gaussian) → of d + new each:
    the new mean rows 0, the new log-variance rows `logvar` (0 for weights: only a bias sets it)."""
    d = v.shape[0] // 2
    pad = v.new_zeros(new, *v.shape[1:])
    return torch.cat([v[:d], pad, v[d:], pad + logvar])


def hit_counts(x: torch.Tensor, logits: torch.Tensor, rule: DecodingRule | None = None) -> tuple[int, int, int]:
    """True positives, predicted positives and actual positives of hits, the hits predicted by
    the decoding rule (default: threshold p = 0.5)."""
    t = x[..., :N_DRUMS] > 0.5
    if rule is None or rule == DecodingRule():
        p = logits > 0
    else:
        p = torch.from_numpy(rule.hits(torch.sigmoid(logits).cpu().numpy()) > 0.5).to(t.device)
    return int((t & p).sum()), int(p.sum()), int(t.sum())


class TimeBudget:
    """Fits a run into a wall-clock budget: times `probe` steps after a short warm-up, sets the
    epoch count to what fits (so the learning-rate schedule ends on time), then times whole
    epochs (validation included) and says when the next one would overrun."""

    def __init__(self, budget_s: float, t0: float, step0: int, warmup: int = 5, probe: int = 30,
                 whole: bool = True):
        self.budget_s, self.t0, self.whole = budget_s, t0, whole  # whole: starts at an epoch's start
        self.start, self.end = step0 + warmup, step0 + warmup + probe
        self.t_start = 0.0
        self.epoch_t: list[float] = []
        self.t_epoch = t0

    def step(self, tr: Trainer) -> None:
        if tr.step == self.start:
            self.t_start = time.perf_counter()
        elif tr.step == self.end:
            per_step = (time.perf_counter() - self.t_start) / (self.end - self.start)
            left = self.budget_s - (time.perf_counter() - self.t0)
            # validation and checkpoints: ~10 % of an epoch on the machines measured
            fit = int(left / (1.1 * per_step * tr.steps_per_epoch)) + tr.epoch
            tr.tc.epochs = max(tr.epoch + 1, D.broadcast_object(fit, tr.dist))

    def end_epoch(self, tr: Trainer) -> None:
        """Times the epoch just finished. After the first whole one, fits the epoch count again
        from it: the probe's 30 steps run before the machine settles (on the E27 lease, 8 runs
        sharing one GPU, they said 31 epochs where 26 fitted, and the schedules were cut short)."""
        now = time.perf_counter()
        self.epoch_t.append(now - self.t_epoch)
        self.t_epoch = now
        if len(self.epoch_t) == 1 and self.whole:
            fit = D.broadcast_object(int((self.budget_s - (now - self.t0)) / self.epoch_t[0]), tr.dist)
            if fit > 0:  # else overruns() stops the run, and says so
                tr.tc.epochs = tr.epoch + fit

    def overruns(self, more: bool) -> bool:
        return more and time.perf_counter() - self.t0 + max(self.epoch_t) > self.budget_s


def draw_probabilities(tc: TrainConfig, meta: dict | None, n: int) -> torch.Tensor | None:
    """Each training window's chance per draw under tc.style_balance and tc.fill_weight (None:
    the plain shuffle). meta holds the windows' "style" and "beat_type" labels."""
    if tc.style_balance == 0 and tc.fill_weight == 1:
        return None
    if meta is None or len(meta.get("style", ())) != n or len(meta.get("beat_type", ())) != n:
        raise TrainError("style_balance and fill_weight need each training window's style and beat type")
    _, label, counts = np.unique(np.asarray(meta["style"]), return_inverse=True, return_counts=True)
    w = counts[label].astype(np.float64) ** -tc.style_balance
    w *= np.where(np.asarray(meta["beat_type"]) == "fill", tc.fill_weight, 1.0)
    return torch.from_numpy(w / w.sum())


class _CtrlCBetweenSteps:
    """Ctrl-C lands between steps: the first press stops the run after the step in progress,
    so last.pt holds whole steps (weights, Adam's moments, λ and the counters agree) and
    --resume continues exactly; a second press stops at once (where it lands)."""

    def __init__(self) -> None:
        self.pressed = False
        self._old = None

    def start(self) -> _CtrlCBetweenSteps:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        print("\nCtrl-C: stopping after this step, then saving (Ctrl-C again: at once)",
              file=sys.stderr, flush=True)

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def stop(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


# training settings a resumed run may change: how long it runs and how it is watched
RESUME_MAY_CHANGE = frozenset({"epochs", "max_steps", "time_budget_min", "threads", "keep_epochs",
                               "log_every", "checkpoint_every", "val_batches", "val_heard_pairs",
                               "init_from", "kappa_train_slack",
                               "decoding"})  # (read at validation only: what the run is heard at)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def fill_windows(meta: dict | None, n: int, setting: str) -> torch.Tensor:
    """(n,) bool: which training windows are fills, from their beat types; `setting` (the option
    that needs them) is named when they are missing."""
    beats = (meta or {}).get("beat_type", ())
    if len(beats) != n:
        raise TrainError(f"{setting} needs each training window's beat type")
    return torch.from_numpy(np.asarray(beats) == "fill")


class Trainer:
    def __init__(self, mc: ModelConfig, tc: TrainConfig, train_x: torch.Tensor,
                 val_x: torch.Tensor, out: str | Path, device: str = "cpu",
                 data_info: dict | None = None, progress: bool = True,
                 dist: D.DistContext | None = None, train_meta: dict | None = None):
        bad = tc.problems()
        if bad:
            raise TrainError("; ".join(bad))
        if len(train_x) == 0:
            raise TrainError("the training set is empty")
        if len(val_x) == 0:
            raise TrainError("the validation set is empty (a MIDI folder needs at least 2 files)")
        # (w − 1) per drum, on top of the hits' cross-entropy; None when every weight is 1
        extra = torch.tensor([tc.drum_weights.get(d, 1.0) - 1.0 for d in DRUMS])
        self._drum_extra = extra if extra.any() else None
        self._draw_p = draw_probabilities(tc, train_meta, len(train_x))
        # which training windows the drum weights charge (drum_weights_fills_only; drum weights
        # present: TrainConfig.problems), and which the flatness points leave out
        # (flat_spare_fills); None: all, and none
        self._drum_rows = (fill_windows(train_meta, len(train_x), "drum_weights_fills_only").float()
                           if tc.drum_weights_fills_only else None)
        self._fill_mask = (fill_windows(train_meta, len(train_x), "flat_spare_fills")
                           if tc.flat_spare_fills else None)
        # which windows the velocities' extra weight charges (vel_weight_off_fills); None: all
        self._vel_rows = ((~fill_windows(train_meta, len(train_x), "vel_weight_off_fills")).float()
                          if tc.vel_weight_off_fills else None)
        # a fixed, seeded bank of training windows' hits for the realism term
        self._realism_bank = None
        if tc.realism_weight > 0:
            g = torch.Generator().manual_seed(tc.seed)
            pick = torch.randperm(len(train_x), generator=g)[: tc.realism_bank]
            self._realism_bank = ((train_x[pick, :, :N_DRUMS] > 0.5).reshape(len(pick), -1).float()
                                  .to(torch.device(device)))  # once, not every step
            # the hybrid chain's tie-break among cells: fixed and seeded, the same on every rank
            self._hybrid_priority = torch.rand(N_STEPS * N_DRUMS, generator=g).to(torch.device(device))
        self.mc, self.tc, self.device = mc, tc, torch.device(device)
        self.train_x, self.val_x = train_x, val_x
        self.out = Path(out)
        self.data_info = data_info or {}
        self.progress = progress
        self.dist = dist or D.SINGLE
        if tc.code_fill_weight > 0 and self.dist.enabled:  # it reads the whole batch's codes at once
            raise TrainError("code_fill_weight is for single-process runs; leave it at 0 with --nproc")
        self._ddp: torch.nn.Module | None = None
        self._val_counts = (0, 0, 0)
        self.warnings: list[str] = []
        torch.manual_seed(tc.seed)
        self.model = GrooveVAE(mc).to(self.device)
        self.opt = self._optimiser()
        self.geco = Geco(tc.kappa, tc.geco_nu, tc.geco_ema, tc.lambda_init, tc.lambda_min,
                         tc.lambda_max)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best = math.inf
        self.steps_per_epoch = math.ceil(len(train_x) / tc.batch_size)
        if tc.init_from:
            self.warm_start(tc.init_from)

    def _optimiser(self) -> torch.optim.Optimizer:
        """Adam; with weight_decay, AdamW decaying only the encoder's and decoder's weight
        matrices (not biases, the step embedding or the prior's pseudo-inputs)."""
        tc = self.tc
        if not tc.weight_decay:
            return torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        decay, rest = [], []
        for name, p in self.model.named_parameters():
            matrix = p.dim() >= 2 and name.startswith(("encoder.", "decoder.")) and name != "decoder.steps"
            (decay if matrix else rest).append(p)
        return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                  {"params": rest, "weight_decay": 0.0}], lr=tc.lr)

    def warm_start(self, path: str | Path) -> None:
        """Encoder and decoder weights from a trained model of the same sizes (a converged vae
        gives vhp/flat the reconstruction they cannot reach from scratch in a CPU budget); the
        prior starts fresh. With kappa_train_slack, κ comes from that model's reconstruction on
        training batches, where GECO measures it."""
        try:
            ck = read_checkpoint(path)
        except CheckpointError as e:
            raise TrainError(f"cannot warm-start: {e}") from None
        src = ck["state_dict"]
        own = self.model.state_dict()
        parts = ("encoder.", "decoder.")
        keep = {k: v.float() for k, v in src.items() if k.startswith(parts)}
        d_src = int(ck["model_config"].get("latent_dim", self.mc.latent_dim))
        if d_src > self.mc.latent_dim:
            keep = self._project_latent(ck, keep, d_src)
        elif d_src < self.mc.latent_dim:
            keep = self._grow_latent(ck, keep, d_src)
        h_src = int(ck["model_config"].get("dec_hidden", self.mc.dec_hidden))
        if h_src < self.mc.dec_hidden:
            other = [k for k in ("dec_layers", "step_embed", "enc_hidden")
                     if k in ck["model_config"] and ck["model_config"][k] != getattr(self.mc, k, None)]
            if other:
                raise TrainError(f"cannot warm-start from {path}: a decoder is widened only when every "
                                 f"other size is the same; {', '.join(other)} differ")
            keep = self._widen_decoder(keep, h_src)
        # A prior of the same kind and size comes along too (a flat run continued from a flat run;
        # a grown latent's prior was grown with it).
        prior = {k: v.float() for k, v in src.items() if k.startswith("prior.")}
        own_prior = {k: v for k, v in self.model.state_dict().items() if k.startswith("prior.")}
        if own_prior and set(prior) == set(own_prior) and all(prior[k].shape == own_prior[k].shape for k in prior):
            keep.update(prior)
        bad = [k for k, v in keep.items() if k not in own or own[k].shape != v.shape]
        missing = [k for k in own if k.startswith(parts) and k not in keep]
        if bad or missing:
            raise TrainError(f"cannot warm-start from {path}: its encoder/decoder sizes differ "
                             f"(e.g. {(bad or missing)[0]}); use the same encoder and a decoder no narrower")
        self.model.load_state_dict(keep, strict=False)
        if self.tc.kappa_train_slack > 0:
            rec = D.broadcast_object(self.train_reconstruction(), self.dist)
            self.tc.kappa = self.geco.kappa = rec * self.tc.kappa_train_slack
            self.kappa_note = f"κ = {self.tc.kappa:.3f} ({self.tc.kappa_train_slack} × warm model's training recon {rec:.3f})"

    @torch.no_grad()
    def active_dims(self, ck: dict, batches: int = 20) -> torch.Tensor:
        """The source model's latent dimensions by their mean KL on training batches, most
        informative first: a vae leaves about half of its 32 dimensions near the prior."""
        src = model_from_checkpoint(ck).to(self.device).eval()
        kl = 0.0
        for x in self._fixed_train_batches(batches):
            mu, lv = src.encoder(x)
            kl = kl + 0.5 * (mu.square() + lv.exp() - lv - 1).sum(0)
        return torch.argsort(kl.cpu(), descending=True)

    def _project_latent(self, ck: dict, keep: dict, d_src: int) -> dict:
        """Warm start into a smaller latent space: keep the source's `latent_dim` most
        informative dimensions (encoder mean/log-variance rows, decoder input columns). The
        dropped ones carry next to no KL, so the decoder hardly read them."""
        d = self.mc.latent_dim
        idx = self.active_dims(ck)[:d].sort().values
        self.projection_note = f"latent projected {d_src} → {d}: kept dimensions {idx.tolist()}"
        out = dict(keep)
        w, b = keep["encoder.out.weight"], keep["encoder.out.bias"]
        rows = torch.cat([idx, idx + d_src])
        out["encoder.out.weight"], out["encoder.out.bias"] = w[rows], b[rows]
        out["decoder.init.weight"] = keep["decoder.init.weight"][:, idx]
        wi = keep["decoder.rnn.weight_ih_l0"]  # input = [z, step embedding]
        out["decoder.rnn.weight_ih_l0"] = torch.cat([wi[:, idx], wi[:, d_src:]], 1)
        return out

    def _grow_latent(self, ck: dict, keep: dict, d_src: int) -> dict:
        """Warm start into a larger latent space (d_src → latent_dim). The source's dimensions
        keep their weights; each new one starts uninformative but at the source's scale: encoder
        mean 0 and the source's typical posterior σ, prior N(0, s²) with s the source prior's
        typical spread (a flat model's codes spread ≈ 20; at N(0, 1) spreading like the others
        would cost ≈ μ²/2 nats). The decoder reads the new dimensions through small random input
        weights (¼ of the old columns' scale), so at the source's codes (zeros in the new
        dimensions) the model decodes exactly as the source, while a flatness term sees the new,
        nearly collapsed directions and makes them move the output. Measured (E40, E40b): a
        converged flat model still leaves them empty in a fine-tune; to use more dimensions,
        flatten from a larger projection."""
        d, own = self.mc.latent_dim, self.model.state_dict()
        new = d - d_src
        sigma, spread = self._latent_scales(ck)
        gen = torch.Generator().manual_seed(self.tc.seed)
        out = dict(keep)
        out["encoder.out.weight"] = _grow_halves(keep["encoder.out.weight"], new)
        out["encoder.out.bias"] = _grow_halves(keep["encoder.out.bias"], new, 2 * math.log(sigma))

        def more_columns(m: torch.Tensor, at: int) -> torch.Tensor:
            scale = 0.25 * float(m[:, :d_src].std())
            cols = torch.randn(m.shape[0], new, generator=gen) * scale
            return torch.cat([m[:, :at], cols, m[:, at:]], 1)

        out["decoder.init.weight"] = more_columns(keep["decoder.init.weight"], d_src)
        out["decoder.rnn.weight_ih_l0"] = more_columns(keep["decoder.rnn.weight_ih_l0"], d_src)  # [z, step]
        out.update(self._grow_prior(ck["state_dict"], own, d_src, spread))
        self.grow_note = (f"latent grown {d_src} → {d}: the {new} new dimensions start empty at the "
                          f"source's scale (posterior σ {sigma:.3g}, prior spread {spread:.3g})")
        return out

    @torch.no_grad()
    def _latent_scales(self, ck: dict, batches: int = 8) -> tuple[float, float]:
        """The source's median posterior σ on training batches, and the median spread of its
        prior's samples per dimension (1 for a standard normal prior)."""
        src = model_from_checkpoint(ck).to(self.device).eval()
        sig = torch.cat([(0.5 * src.encoder(x)[1]).exp() for x in self._fixed_train_batches(batches)])
        spread = src.prior.sample(2048).std(0).median() if src.prior is not None else torch.tensor(1.0)
        return float(sig.mean(0).median()), float(spread)

    @staticmethod
    def _grow_prior(src: dict, own: dict, d_src: int, spread: float) -> dict:
        """The VHP prior's two MLPs (input d, output [mu | logvar] of d each) with zero input
        columns and zero output weights for the new dimensions: p(z | ζ) is N(0, s²) on them
        (s at most e² ≈ 7.4, the prior's variance clamp: its mean network learns the rest) and
        q(ζ | z) is N(0, 1) on the new ζ, so log p(z) gains exactly an independent normal term."""
        prior = {k: v.float() for k, v in src.items() if k.startswith("prior.")}
        if not prior or set(prior) != {k for k in own if k.startswith("prior.")}:
            return {}  # no prior to grow (a vae source, or a vae being grown): it starts fresh
        out, new = dict(prior), own["prior.p_z.0.weight"].shape[1] - d_src
        for mlp in ("p_z", "q_zeta"):
            first, last = f"prior.{mlp}.0.weight", f"prior.{mlp}.4"
            w = prior[first]
            out[first] = torch.cat([w, w.new_zeros(w.shape[0], new)], 1)
            lv = min(2 * math.log(spread), LOGVAR_MAX - 0.1) if mlp == "p_z" else 0.0  # inside the clamp
            out[f"{last}.weight"] = _grow_halves(prior[f"{last}.weight"], new)
            out[f"{last}.bias"] = _grow_halves(prior[f"{last}.bias"], new, lv)
        return out

    def _widen_decoder(self, keep: dict, h_src: int) -> dict:
        """Warm start into a wider decoder LSTM (h_src → dec_hidden units per layer) that
        decodes exactly as the source: the new units get fresh input weights but nothing reads
        them yet (zero weights out of them, zero initial state), so training can put the extra
        capacity to use from the source's function."""
        own = self.model.state_dict()
        h, layers = self.mc.dec_hidden, self.mc.dec_layers
        out = dict(keep)

        for k in range(layers):
            for name in (f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}"):
                key = f"decoder.rnn.{name}"
                src, w = keep[key], own[key].clone()  # new units: their fresh weights
                reads_units = name.startswith("weight_hh") or (name.startswith("weight_ih") and k > 0)
                for g in range(4):  # gate blocks i, f, g, o of the units
                    rows, old = slice(g * h, g * h + h_src), src[g * h_src : (g + 1) * h_src]
                    if reads_units:
                        w[rows, :h_src] = old
                        w[rows, h_src:] = 0.0  # an old unit does not read a new one
                    else:
                        w[rows] = old
                out[key] = w
        hw = torch.zeros_like(own["decoder.head.weight"])
        hw[:, :h_src] = keep["decoder.head.weight"]
        out["decoder.head.weight"] = hw
        # the initial states: (2 [h, c], layers, units) flattened; new units start at 0
        iw = torch.zeros_like(own["decoder.init.weight"]).view(2, layers, h, -1)
        ib = torch.zeros_like(own["decoder.init.bias"]).view(2, layers, h)
        iw[:, :, :h_src] = keep["decoder.init.weight"].view(2, layers, h_src, -1)
        ib[:, :, :h_src] = keep["decoder.init.bias"].view(2, layers, h_src)
        out["decoder.init.weight"], out["decoder.init.bias"] = iw.reshape(-1, iw.shape[-1]), ib.reshape(-1)
        self.widen_note = f"decoder widened {h_src} → {h} units per layer (function kept)"
        return out

    @torch.no_grad()
    def train_reconstruction(self, batches: int = 40) -> float:
        """Mean reconstruction of the current model on training batches, z sampled as in
        training; its own RNG, so the training stream does not shift."""
        m = self.model
        was = m.training
        m.eval()
        tot, n = 0.0, 0
        for x in self._fixed_train_batches(batches):
            mu, logvar = m.encoder(x)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            tot += float(m.reconstruction(x, *m.decoder(z))["recon"].sum())
            n += len(x)
        m.train(was)
        return tot / max(n, 1)

    def _fixed_train_batches(self, batches: int) -> Iterator[torch.Tensor]:
        """The same `batches` training batches every time, drawn (and whatever the caller draws
        between them) on an RNG of their own, so the training stream does not shift."""
        bs = self.tc.batch_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(54321)
            idx = torch.randperm(len(self.train_x))[: batches * bs]
            for s in range(0, len(idx), bs):
                yield self.train_x[idx[s : s + bs]].to(self.device)

    # -- objective ---------------------------------------------------------------------------
    def flat_weight(self) -> float:
        if self.mc.variant != "flat":
            return 0.0
        e = self.step / self.steps_per_epoch
        ramp = (e - self.tc.flat_warmup_epochs) / max(self.tc.flat_ramp_epochs, 1e-9)
        return self.tc.flat_weight * min(1.0, max(0.0, ramp))

    def objective(self, x: torch.Tensor, part: tuple[int, int, int] | None = None,
                  drum_rows: torch.Tensor | None = None,
                  spared: torch.Tensor | None = None,
                  vel_rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The loss and its figures on a batch. In a distributed run `part` = (lo, hi, n): x holds
        rows lo:hi of a global batch of n rows; the random draws are made for all n rows on every
        rank and sliced, every figure returned is the global batch's, and `_grad` is what this
        rank back-propagates (see flatgroove.train.distributed). `drum_rows` (one per row of x)
        scales each row's drum-weight share (None: every row's in full), `vel_rows` its share of
        the velocities' extra weight; `spared` (one per row of the global batch, True: a fill)
        marks the rows no flatness point is drawn from."""
        m, tc = self.model, self.tc
        shared = part is not None and self.dist.enabled
        lo, hi, n = part if shared else (0, len(x), len(x))
        mu, logvar = m.encoder(x)
        if shared:
            noise = torch.randn(n, mu.shape[1], device=mu.device, dtype=mu.dtype)[lo:hi]
            # Flatness mixes the whole global batch's encodings, as one process would: the
            # (detached) encodings are all-gathered, so every rank draws the same mixups and
            # probes from the common generator, then decodes its share of the rows.
            mu_all = D.gather_rows(mu.detach(), n, self.dist)
        else:
            noise = torch.randn_like(mu)
            mu_all = mu
        z = mu + noise * (0.5 * logvar).exp()
        w = self.flat_weight()
        # A batch of one (the last of an epoch) has nothing to mix: no flatness term there.
        flat_on = m.variant == "flat" and (w > 0 or not m.training) and n >= 2
        fd = flat_on and tc.flat_estimator == "fd"
        if flat_on and tc.flat_loss == "stein":
            # The exact G at a few mixups: d central-difference columns each, decoded in the
            # same call as the batch (geometry.basis_fd_inputs).
            src = mu_all.detach()
            if spared is not None:  # flat_spare_fills
                if len(spared) != len(src):
                    raise TrainError(f"spared marks {len(spared)} rows, the batch has {len(src)}")
                if int((~spared).sum()) >= 2:  # (a short batch of fills: every row, as mixup needs two)
                    src = src[~spared.to(src.device)]
            zt = geometry.mixup(src, tc.flat_exact_points, tc.flat_eta, data_share=tc.flat_data_share)
            z_fd = geometry.basis_fd_inputs(zt, tc.flat_eps)
            n_fd = len(z_fd)
            lines = any(w > 0 for w in tc.line_weights().values())
            if lines:  # lines for the line terms (config.LINE_TERMS) ride in the same call
                z_fd = torch.cat([z_fd, geometry.line_points(mu_all.detach(), tc.path_pairs, tc.path_points)])
            y, logits, vel, off = self._decode_with(z, z_fd, shared)
            y_g = y[:n_fd]
            if tc.flat_heard > 0:  # the hits as heard in G too (TrainConfig.flat_heard)
                y_g = with_heard(y_g, tc.heard_threshold, tc.heard_tau, tc.flat_heard)
            if tc.flat_fisher > 0:  # the hits' Fisher metric in G too (TrainConfig.flat_fisher)
                y_g = with_fisher(y_g, tc.flat_fisher)
            G = geometry.metric_from_fd(y_g, len(zt), zt.shape[1], tc.flat_eps)
            G, c2 = G.double(), None
            if tc.flat_data_conformal:  # the data points' own scale (TrainConfig.flat_data_conformal)
                scale = G.diagonal(dim1=-2, dim2=-1).mean(-1).detach()
                own = torch.arange(len(zt), device=G.device) < round(len(zt) * tc.flat_data_share)
                c2 = torch.where(own, scale, scale.mean()).view(-1, 1, 1)
            ft = geometry.stein_flatness(G, c2)
            ft = {"loss": ft["loss"].float(), "c2": (ft["trace"].mean() / G.shape[-1]).detach().float()}
            if lines:
                p_lines = y[n_fd:].view(tc.path_pairs, tc.path_points, N_STEPS, 3 * N_DRUMS)[..., :N_DRUMS]
                p_lines = p_lines.reshape(tc.path_pairs, tc.path_points, -1)
            if tc.path_weight > 0:
                ft["path"] = geometry.path_evenness_loss(p_lines, tc.path_low, tc.path_high)
            if tc.heard_weight > 0:
                if tc.heard_pace:
                    ft["heard"] = geometry.path_heard_pace_loss(p_lines, tc.heard_threshold, tc.heard_tau,
                                                                hold_ends=tc.heard_hold_ends)
                else:
                    ft["heard"] = geometry.path_heard_evenness_loss(p_lines, tc.heard_threshold, tc.heard_tau,
                                                                    hold_ends=tc.heard_hold_ends,
                                                                    drums=N_DRUMS if tc.heard_per_drum else 0)
            if tc.density_weight > 0:
                ft["density"] = geometry.path_density_loss(p_lines)
            if tc.realism_weight > 0:
                if tc.realism_hybrid:
                    ft["realism"] = geometry.path_hybrid_loss(p_lines, self._realism_bank, self._hybrid_priority,
                                                              tc.hybrid_threshold or 0.5 * (tc.path_low + tc.path_high),
                                                              tau=tc.hybrid_tau, bank_levels=tc.hybrid_bank_levels)
                else:
                    mid = tc.path_points // 2
                    # the ends ride along and are dropped as the term's non-inner points
                    at = p_lines[:, [0, mid, -1]] if tc.realism_midpoint else p_lines
                    ft["realism"] = geometry.path_realism_loss(at, self._realism_bank,
                                                               balance=tc.realism_balance)
        elif fd:
            # Mixups of this batch's encodings, detached: flatness shapes the decoder only.
            # Their central-difference rows ride in the same decoder call as the batch: one
            # LSTM pass over 3x the rows costs far less than two passes.
            zt = geometry.mixup(mu_all.detach(), tc.flat_points, tc.flat_eta)
            u, z_fd = geometry.fd_inputs(zt, tc.flat_probes, tc.flat_eps)
            y, logits, vel, off = self._decode_with(z, z_fd, shared)
            half = len(z_fd) // 2
            ju = ((y[:half] - y[half:]) / (2 * tc.flat_eps)).view(tc.flat_probes, len(zt), -1)
            ft = geometry.flatness_from_jvp(ju, u)
        else:
            logits, vel, off = m.decoder(z)
        rec = m.reconstruction(x, logits, vel, off)
        if vel_rows is not None:  # the velocities' extra weight on these rows only
            rec["vel_se_w"] = rec["vel_se"] * vel_rows.to(rec["vel_se"].device)
        if self._drum_extra is not None or tc.focal_weight > 0:
            # each cell's hit cross-entropy, once, for the weighted shares below
            bce = F.binary_cross_entropy_with_logits(logits, x[..., :N_DRUMS], reduction="none")
            if self._drum_extra is not None:
                # the named drums' further share (TrainConfig.drum_weights)
                rec["drum_bce"] = (bce * self._drum_extra.to(bce.device)).sum((1, 2))
                if drum_rows is not None:
                    rec["drum_bce"] = rec["drum_bce"] * drum_rows.to(bce.device)
            if tc.focal_weight > 0:
                # the focal share (TrainConfig.focal_weight): each cell's cross-entropy × (1 − p_t)^γ
                rec["focal_bce"] = ((1.0 - torch.exp(-bce)) ** tc.focal_gamma * bce).sum((1, 2))
        if shared and m.prior is not None:
            pn = torch.randn((m.prior.samples, n, mu.shape[1]), device=mu.device)[:, lo:hi]
            kl = m.kl(z, mu, logvar, noise=pn)
        else:
            kl = m.kl(z, mu, logvar)
        if shared:
            # Global means; gradient through this rank's rows only (one all-reduce).
            keys = [*rec, "kl"]
            tot = D.with_own_grad(torch.stack([*(v.sum() for v in rec.values()), kl.sum()])) / n
            out = {k: tot[i] for i, k in enumerate(keys)}
        else:
            out = {k: v.mean() for k, v in rec.items()}
            out["kl"] = kl.mean()
        out["logits"] = logits
        whole = False  # a flatness term every rank computed in full (dbl/jvp estimators)
        # the loss's reconstruction: hits, offsets and velocities weighted (TrainConfig)
        # a term's row-weighted share where one was made (vel_weight_off_fills: "vel_se_w")
        recon_w = out["recon"] + sum((getattr(tc, key) - 1.0) * out.get(f"{term}_w", out[term])
                                     for key, term in OUTPUT_WEIGHTS.items())
        if "drum_bce" in out:
            recon_w = recon_w + tc.hit_weight * out["drum_bce"]
        if "focal_bce" in out:
            recon_w = recon_w + tc.focal_weight * out["focal_bce"]
        if m.variant == "vae":
            out["loss"] = recon_w + tc.beta * torch.clamp(out["kl"] - tc.free_bits, min=0.0)
        else:
            lam = self.geco.lam
            loss = out["kl"] + lam * recon_w
            if tc.code_fill_weight > 0:  # the lines' midpoints drawn into the codes' cloud
                out["code_fill"] = midpoint_hole_ratio(mu)
                loss = loss + tc.code_fill_weight * out["code_fill"]
            if flat_on:
                if not fd and tc.flat_loss != "stein":
                    zt = geometry.mixup(mu_all.detach(), tc.flat_points, tc.flat_eta)
                    ft = geometry.flatness_terms(m.f, zt, tc.flat_probes, tc.flat_estimator,
                                                 tc.flat_eps)
                    whole = True
                out["flat"] = ft["loss"]
                out["c2"] = ft["c2"]
                loss = loss + w * lam * ft["loss"]
                ramp = w / tc.flat_weight if tc.flat_weight > 0 else 1.0
                line_mult = tc.line_lambda or lam
                for key, weight in tc.line_weights().items():
                    if key in ft:
                        out[key] = ft[key]
                        loss = loss + ramp * weight * line_mult * ft[key]
            out["loss"] = loss
        if shared:
            # DDP averages over ranks; the sum of the ranks' partial gradients is the whole one.
            g = self.dist.world * out["loss"]
            if whole:
                g = g - (self.dist.world - 1) * w * self.geco.lam * out["flat"]
            out["_grad"] = g
        return out

    def _decode_with(self, z: torch.Tensor, z_fd: torch.Tensor, shared: bool):
        """The batch and the flatness rows in one decoder call; returns the geometry outputs
        of all flatness rows (all-gathered in a distributed run: this rank decodes its share)
        and the batch's logits, velocities and offsets."""
        if shared:
            a, c = D.shard(len(z_fd), self.dist.rank, self.dist.world)
            z_fd_own = z_fd[a:c]
        else:
            z_fd_own = z_fd
        logits, vel, off = self.model.decoder(torch.cat([z, z_fd_own]))
        b = len(z)
        y = geometry_output(logits[b:], vel[b:], off[b:])
        if shared:
            y = D.gather_rows(y, len(z_fd), self.dist)
        return y, logits[:b], vel[:b], off[:b]

    # -- loop ----------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        total = max(1, self.tc.epochs * self.steps_per_epoch)
        t = min(1.0, step / total)
        return self.tc.lr_min + 0.5 * (self.tc.lr - self.tc.lr_min) * (1 + math.cos(math.pi * t))

    def order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.tc.seed * 100_003 + epoch)
        if self._draw_p is not None:  # balanced draws (style_balance, fill_weight), as many as windows
            return torch.multinomial(self._draw_p, len(self.train_x), replacement=True, generator=g)
        return torch.randperm(len(self.train_x), generator=g)

    def total_steps(self) -> int:
        total = self.tc.epochs * self.steps_per_epoch
        return min(total, self.tc.max_steps) if self.tc.max_steps else total

    def train_step(self, rows: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """One optimisation step on the training windows `rows` (the global batch; in a
        distributed run this rank takes its slice). Returns the figures and the gradient norm."""
        tc = self.tc
        n = len(rows)
        lo, hi = D.shard(n, self.dist.rank, self.dist.world) if self.dist.enabled else (0, n)
        x = self.train_x[rows[lo:hi]].to(self.device)
        drum_rows = None if self._drum_rows is None else self._drum_rows[rows[lo:hi]]
        vel_rows = None if self._vel_rows is None else self._vel_rows[rows[lo:hi]]
        spared = None if self._fill_mask is None else self._fill_mask[rows]  # the global batch's
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        if self.dist.enabled:
            out = self._wrapped()(self.objective, x, (lo, hi, n), drum_rows, spared, vel_rows)
        else:
            out = self.objective(x, None, drum_rows, spared, vel_rows)
        self.opt.zero_grad(set_to_none=True)
        out.get("_grad", out["loss"]).backward()
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        if not torch.isfinite(out["loss"]):
            raise TrainError(f"loss became {out['loss'].item()} at step {self.step}")
        self.opt.step()
        if self.mc.variant != "vae":
            # The global batch's reconstruction: λ is the same on every rank.
            self.geco.update(out["recon"].item())
        self.step += 1
        self.batch_in_epoch += 1
        return out, gn

    def _wrapped(self) -> torch.nn.Module:
        """The model in DistributedDataParallel (made on first use, after any resume)."""
        if self._ddp is None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = DistributedDataParallel(D.Forward(self.model), device_ids=ids)
        return self._ddp

    def fit(self) -> dict:
        tc = self.tc
        main = self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(self.config_dict(), indent=2))
        log = (self.out / "log.jsonl").open("a") if main else None
        last_val: dict = {}
        t0 = time.perf_counter()
        prog = Progress(self, enabled=self.progress and main)
        fault = D.fault(self.dist)
        budget = TimeBudget(tc.time_budget_min * 60.0, t0, self.step, whole=self.batch_in_epoch == 0)
        ctrl_c = _CtrlCBetweenSteps().start()
        try:
            while self.epoch < tc.epochs:
                idx = self.order(self.epoch)
                prog.start_epoch()
                self.model.train()
                while self.batch_in_epoch < self.steps_per_epoch:
                    ctrl_c.check()
                    if tc.max_steps and self.step >= tc.max_steps:
                        break  # a run resumed at its --max-steps takes no step more
                    if fault is not None and self.step == fault[0]:
                        D.fail(fault[1])
                    b = self.batch_in_epoch
                    out, gn = self.train_step(idx[b * tc.batch_size : (b + 1) * tc.batch_size])
                    rec = None
                    if self.step % tc.log_every == 0 or self.step == 1:
                        rec = self._scalars(out)
                        rec.update(kind="train", step=self.step, epoch=self.epoch, grad_norm=float(gn),
                                   lam=self.geco.lam, lr=self.lr_at(self.step), flat_weight=self.flat_weight(),
                                   elapsed=time.perf_counter() - t0)
                        if log is not None:
                            log.write(json.dumps(rec) + "\n")
                            log.flush()
                    prog.step(rec)
                    if tc.time_budget_min > 0:
                        budget.step(self)
                    if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                        self.save("last.pt")
                    if tc.max_steps and self.step >= tc.max_steps:
                        break
                prog.end_epoch()
                if tc.max_steps and self.step >= tc.max_steps and self.batch_in_epoch < self.steps_per_epoch:
                    self.save("last.pt")
                    break
                last_val = self.validate()
                # the rule the F1 and heard figures were read at (a resumed run may change it)
                last_val.update(kind="val", step=self.step, epoch=self.epoch + 1, decoding=tc.decoding,
                                elapsed=time.perf_counter() - t0)
                if log is not None:
                    log.write(json.dumps(last_val) + "\n")
                    log.flush()
                self.epoch += 1
                self.batch_in_epoch = 0
                # Selected on validation reconstruction: the quantity every variant is held
                # to (GECO's constraint; β and free bits shape the vae's KL), comparable
                # across variants, unlike −ELBO, which the vae's β < 1 does not minimise.
                if last_val["recon"] < self.best:
                    self.best = last_val["recon"]
                    self.save("best.pt", metrics=last_val)
                self.save("last.pt", metrics=last_val)
                if tc.keep_epochs:
                    self.save(f"epoch{self.epoch}.pt", metrics=last_val)
                if self.progress and main:
                    tqdm.write(self._val_line(last_val))
                    prog.epoch_line()
                ctrl_c.check()
                warn = self.degenerate(last_val)
                if warn and main:
                    self.warnings.append(warn)
                    print(f"warning: {warn}", file=sys.stderr, flush=True)
                if tc.max_steps and self.step >= tc.max_steps:
                    break
                if tc.time_budget_min > 0:
                    budget.end_epoch(self)
                    if D.broadcast_object(budget.overruns(self.epoch < tc.epochs), self.dist):
                        if main:
                            print(f"time budget: stopping after epoch {self.epoch} of {tc.epochs} "
                                  f"({tc.time_budget_min:g} min)", file=sys.stderr, flush=True)
                        break
        except KeyboardInterrupt:
            self.save("last.pt")
            raise
        except Exception as e:
            if self.dist.enabled and D.is_collective_failure(e):
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise TrainError(
                    f"rank {self.dist.rank} of {self.dist.world}: lost the other processes at step "
                    f"{self.step} ({first[:200]}); a rank failed, stopped or cannot be reached, so "
                    f"the run stops. Continue from the last checkpoint ({self.out / 'last.pt'}) "
                    "with --resume, on any number of processes") from None
            raise
        finally:
            ctrl_c.stop()
            prog.close()
            if log is not None:
                log.close()
        return last_val

    def degenerate(self, v: dict) -> str | None:
        """Why the model looks degenerate after a validation (hit F1 ≈ 0, or near-silent
        decodes), or None."""
        _, pp, ap = self._val_counts
        if ap == 0:
            return None
        f1, ratio = v.get("hit_f1", 1.0), pp / ap
        if f1 >= 0.02 and ratio >= 0.05:
            return None
        what = f"validation hit F1 {f1:.3f}"
        if ratio < 0.05:
            what += f", and it decodes {pp} hits where the data has {ap} (near-silent)"
        return (f"the model looks degenerate after epoch {v.get('epoch', '?')}: {what}. "
                "Check κ (--kappa / --kappa-from), the learning rate, or warm-start from a "
                "trained vae (--init-from)")

    @staticmethod
    def _scalars(out: dict) -> dict:
        return {k: float(v.detach()) for k, v in out.items()
                if isinstance(v, torch.Tensor) and v.dim() == 0 and not k.startswith("_")}

    @staticmethod
    def _val_line(v: dict) -> str:
        s = (f"epoch {v['epoch']}: val recon {v['recon']:.2f} kl {v['kl']:.2f} hit F1 {v['hit_f1']:.3f} "
             f"vel MAE {v['vel_mae']:.3f} off MAE {v['off_mae']:.3f} λ {v['lam']:.3g}")
        if "flat" in v:
            s += f" flat {v['flat']:.3g} c² {v['c2']:.3g}"
        if "heard_cv" in v:
            s += f" heard CV {v['heard_cv']:.3f} bunching {v['heard_bunching']:.3f}"
        if v.get("decoding", "threshold") != "threshold":
            s += f" (read at {v['decoding']})"
        return s

    @torch.no_grad()
    def validate(self) -> dict:
        """Validation figures; uses its own RNG so it never shifts the training stream."""
        m, tc = self.model, self.tc
        rule = self.rule  # parsed once, not per batch (a pattern rule's thresholds are drawn per instance)
        m.eval()
        sums: dict[str, float] = {}
        n = 0
        tp = pp = ap = 0
        vel_err = off_err = 0.0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(12345)
            for bi, s in enumerate(range(0, len(self.val_x), 256)):
                if tc.val_batches and bi >= tc.val_batches:
                    break
                x = self.val_x[s : s + 256].to(self.device)
                nb, part = len(x), None
                if self.dist.enabled:  # sharded; the figures come back global
                    lo, hi = D.shard(nb, self.dist.rank, self.dist.world)
                    x, part = x[lo:hi], (lo, hi, nb)
                with torch.enable_grad() if m.variant == "flat" and tc.flat_estimator == "dbl" else torch.no_grad():
                    out = self.objective(x, part)
                for k, v in self._scalars(out).items():
                    sums[k] = sums.get(k, 0.0) + v * nb
                n += nb
                mu, _ = m.encoder(x)
                logits, vel, off = m.decoder(mu)
                a, b, c = hit_counts(x, logits, rule)
                tp, pp, ap = tp + a, pp + b, ap + c
                hits = x[..., :N_DRUMS]
                vel_err += float((hits * (vel - x[..., N_DRUMS:2 * N_DRUMS]).abs()).sum())
                off_err += float((hits * (off - x[..., 2 * N_DRUMS:]).abs()).sum())
        if self.dist.enabled:
            c = D.all_sum(torch.tensor([tp, pp, ap, vel_err, off_err], dtype=torch.float64,
                                       device=self.device)).tolist()
            tp, pp, ap, vel_err, off_err = int(c[0]), int(c[1]), int(c[2]), c[3], c[4]
        self._val_counts = (tp, pp, ap)
        v = {k: s / max(n, 1) for k, s in sums.items()}
        if self.dist.is_main:  # rank 0 alone writes the log
            v.update(self.heard_figures())
        m.train()
        prec, rec = tp / max(pp, 1), tp / max(ap, 1)
        v.update(hit_f1=2 * prec * rec / max(prec + rec, 1e-12), hit_precision=prec, hit_recall=rec,
                 vel_mae=vel_err / max(ap, 1), off_mae=off_err / max(ap, 1), lam=self.geco.lam,
                 neg_elbo=v.get("recon", 0.0) + v.get("kl", 0.0))
        return v

    @torch.no_grad()
    def heard_figures(self) -> dict:
        """Cheap heard figures at every validation: evenness of the decoded hits along straight
        lines between fixed validation pairs, by the run's decoding rule and the threshold pattern."""
        from flatgroove.evaluate.heard import path_evenness
        from flatgroove.evaluate.study import fixed_pairs, heard_paths

        if len(self.val_x) < 2 or self.tc.val_heard_pairs <= 0:
            return {}
        # no more lines than windows: a tiny validation set gets a quick look, not 64 lines
        pr = fixed_pairs(len(self.val_x), min(self.tc.val_heard_pairs, len(self.val_x)), 0)
        z = self.model.encoder(self.val_x[torch.from_numpy(pr.ravel())].to(self.device))[0].cpu().numpy()
        out, read = {}, {}  # read: once per rule (a run heard at the pattern needs it once)
        for tag, rule in (("", self.rule), ("pattern_", DecodingRule("pattern"))):
            if rule not in read:
                read[rule] = path_evenness(*heard_paths(self.model, z[0::2], z[1::2], 17, rule))
            e = read[rule]
            out.update({f"heard_{tag}cv": e["hit_cv"], f"heard_{tag}bunching": e["hit_bunching"]})
        return out

    @property
    def rule(self) -> DecodingRule:
        """The decoding rule the run is heard at (TrainConfig.decoding, checked by problems())."""
        return parse_rule(self.tc.decoding)

    # -- checkpoints -----------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {"model": self.mc.to_dict(), "train": asdict(self.tc)}

    def save(self, name: str, metrics: dict | None = None) -> Path:
        """Write a checkpoint atomically; rank 0 alone writes in a distributed run (every rank
        holds the same weights, optimiser state, λ and random state)."""
        if not self.dist.is_main:
            return self.out / name
        ck = {
            "model_config": self.mc.to_dict(),
            "train_config": asdict(self.tc),
            "state_dict": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "kappa": self.tc.kappa,
            "decoding": self.rule.to_dict(),  # what `load` and `export` decode it with
            "data": self.data_info,
            "metrics": metrics or {},
            "progress": {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                         "best": self.best, **self.geco.state()},
            "rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            ck["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return save_checkpoint(self.out / name, ck)

    def _read_resume(self, p: Path) -> dict:
        try:
            ck = read_checkpoint(p)
        except CheckpointError as e:
            raise TrainError(f"cannot resume: {e}") from None
        if ck["model_config"].get("variant") != self.mc.variant:
            raise TrainError(f"cannot resume: {p} is a {ck['model_config'].get('variant')!r} run, "
                             f"not {self.mc.variant!r}")
        if ck["model_config"] != self.mc.to_dict():
            raise TrainError(f"cannot resume: {p} was trained with other model settings")
        # A resumed run continues its own settings: a κ, learning rate or loss weight that
        # differs would change the run silently. Only how long it runs, and how, may change.
        # A setting the run's checkpoint does not name was added since: the run had its default.
        saved, now = ck.get("train_config") or {}, asdict(self.tc)
        ran = {**asdict(TrainConfig()), **saved} if saved else {}
        differ = [f"{k} {ran[k]!r} (run) vs {now[k]!r} (now)" for k in sorted(ran)
                  if k in now and k not in RESUME_MAY_CHANGE and not _same(ran[k], now[k])]
        if differ:
            raise TrainError(f"cannot resume: {p} was trained with other training settings: "
                             f"{'; '.join(differ)}. Resume with the run's own --config and flags "
                             "(or none: `--resume` alone reads them from the run)")
        if "optimizer" not in ck or "progress" not in ck:
            raise TrainError(f"cannot resume: {p} holds weights only (no optimiser state)")
        return ck

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from a checkpoint (by default the run's last.pt): weights, optimiser, λ,
        position in the sample stream and random state, so the run goes on as if never stopped,
        on any number of processes (rank 0 reads it, every rank gets it). The log loses the
        records written after that checkpoint, which the continued run writes again."""
        p = Path(path) if path else self.out / "last.pt"
        ck, err = None, None
        if self.dist.is_main:
            try:
                ck = self._read_resume(p)
            except TrainError as e:
                err = str(e)
        ck, err = D.broadcast_object((ck, err), self.dist)
        if err:
            raise TrainError(err)
        self.model.load_state_dict(ck["state_dict"])
        self.opt.load_state_dict(ck["optimizer"])
        pr = ck["progress"]
        self.step, self.epoch, self.batch_in_epoch = int(pr["step"]), int(pr["epoch"]), int(pr["batch_in_epoch"])
        self.best = float(pr["best"])
        self.geco.load(pr)
        torch.set_rng_state(ck["rng"])
        if self.device.type == "cuda" and "rng_cuda" in ck:
            torch.cuda.set_rng_state(ck["rng_cuda"], self.device)
        if self.dist.is_main:
            self.trim_log()
            self._best_at_rule()

    def _best_at_rule(self) -> None:
        """A resumed run may change its decoding rule; best.pt (which a run folder is loaded and
        exported by) is rewritten only when validation improves, so give it the rule now."""
        p = self.out / "best.pt"
        if not p.is_file():
            return
        ck = read_checkpoint(p)
        if ck.get("decoding") != self.rule.to_dict():
            ck["decoding"] = self.rule.to_dict()
            ck["train_config"] = {**(ck.get("train_config") or {}), "decoding": self.tc.decoding}
            save_checkpoint(p, ck)

    def trim_log(self) -> int:
        """Drop the log records past the resumed position (steps run after the checkpoint, a
        validation not yet counted in it, a line cut short by a crash); returns how many."""
        p = self.out / "log.jsonl"
        if not p.exists():
            return 0
        keep, dropped = [], 0
        for line in p.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            ok = r.get("epoch", 0) <= self.epoch if r.get("kind") == "val" else r.get("step", 0) <= self.step
            if ok:
                keep.append(line)
            else:
                dropped += 1
        if dropped:
            write_text(p, "".join(s + "\n" for s in keep))
        return dropped


class Progress:
    """Progress on rank 0 with an ETA for the whole run: a tqdm bar per epoch on a terminal;
    when stderr is not one (CI, `| tee`), a plain line at every log record (every log_every
    steps) and at the end of each epoch, never a carriage return."""

    def __init__(self, tr: Trainer, enabled: bool = True, stream=None):
        self.tr, self.enabled = tr, enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0, self.s0 = time.perf_counter(), tr.step
        self.bar = None

    def eta(self) -> str:
        done = self.tr.step - self.s0
        left = self.tr.total_steps() - self.tr.step
        if done <= 0 or left < 0:
            return "?"
        secs = (time.perf_counter() - self.t0) / done * left
        return str(datetime.timedelta(seconds=round(secs)))

    def start_epoch(self) -> None:
        if self.tty:
            tr = self.tr
            self.bar = tqdm(total=tr.steps_per_epoch, initial=tr.batch_in_epoch, file=self.stream,
                            desc=f"{tr.mc.variant} epoch {tr.epoch + 1}/{tr.tc.epochs}", leave=False)

    @staticmethod
    def _figures(rec: dict) -> dict:
        return {k: f"{v:.3g}" for k, v in rec.items() if k in ("recon", "kl", "flat", "lam")}

    def step(self, rec: dict | None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if rec is not None:
                self.bar.set_postfix({**self._figures(rec), "run ETA": self.eta()})
        elif self.enabled and rec is not None:
            self._line(" ".join(f"{k} {v}" for k, v in self._figures(rec).items()))

    def _line(self, tail: str = "") -> None:
        tr = self.tr
        total = tr.total_steps()
        rate = (tr.step - self.s0) / max(time.perf_counter() - self.t0, 1e-9)
        print(f"{tr.mc.variant} epoch {tr.epoch + 1}/{tr.tc.epochs} step {tr.step}/{total} "
              f"({100 * tr.step / max(total, 1):.0f} %) {rate:.2f} steps/s ETA {self.eta()}"
              + (f" {tail}" if tail else ""), file=self.stream, flush=True)

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def epoch_line(self) -> None:
        if self.enabled and not self.tty:
            tr = self.tr
            print(f"{tr.mc.variant} epoch {tr.epoch}/{tr.tc.epochs} done: step {tr.step}/"
                  f"{tr.total_steps()}, ETA {self.eta()}", file=self.stream, flush=True)

    def close(self) -> None:
        self.end_epoch()


def summarise(log_path: Path) -> dict:
    """The last validation record of a run's JSONL log."""
    last = {}
    for line in log_path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "val":
            last = rec
    return last


__all__ = ["Progress", "TrainError", "Trainer", "hit_counts", "np", "summarise"]
