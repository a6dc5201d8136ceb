"""Training settings: every hyperparameter has a default here, can be set from a TOML file
([model] and [train] tables), and is saved with the run."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from flatgroove.drums import DRUMS
from flatgroove.model.config import ModelConfig, settings_from_dict
from flatgroove.model.decoding import parse_rule

# The terms on straight lines between batch encodings (each weighted by TrainConfig.<name>_weight):
# they ride in the Stein term's decoder call (Trainer.objective)
LINE_TERMS = ("path", "heard", "density", "realism")


@dataclass
class TrainConfig:
    epochs: int = 25
    batch_size: int = 64
    lr: float = 1e-3
    lr_min: float = 1e-4  # cosine decay to this
    grad_clip: float = 1.0
    # decoupled weight decay (AdamW) on the encoder's and decoder's weight matrices; 0 = Adam.
    # Both models fit training grooves far better than validation ones (hit cross-entropy ≈ 24
    # vs 39–41 nats): EXPERIMENTS E39 asks whether the decoder's reach is over-fitting
    weight_decay: float = 0.0
    seed: int = 0
    threads: int = 0  # torch threads; 0 = torch's default
    # vae: ELBO with beta and free bits (MusicVAE)
    beta: float = 0.2
    free_bits: float = 16.0  # nats per groove, total
    # vhp / flat: GECO, minimise KL s.t. E[recon] <= kappa
    kappa: float = 30.0  # per-groove reconstruction target (nats + squared errors)
    geco_nu: float = 1e-3  # λ ← λ·exp(ν·(C̄ − κ))
    geco_ema: float = 0.99
    lambda_init: float = 1.0
    lambda_min: float = 1e-2
    lambda_max: float = 1e3
    # Extra weight on the offsets' squared error in the loss (GECO's constraint stays on the
    # plain reconstruction, so κ keeps its meaning): offsets cost next to nothing in the
    # reconstruction, so a flatness term can stretch them to fill directions the hits leave
    # collapsed, which the ear hears as lost micro-timing (EXPERIMENTS E13)
    off_weight: float = 1.0
    # the same for the velocities (EXPERIMENTS E31): the flatness term also sees p·v, and the
    # flat models' velocity MAE sits ~11 % above the vae's
    vel_weight: float = 1.0
    # and the hits' cross-entropy (EXPERIMENTS E35, E37): the flat models' lost F1 is precision,
    # extra hits in silent cells; weighted 2× / 4× they buy +0.002 / +0.004 F1 for flatness at the data
    hit_weight: float = 1.0
    # per drum, a further weight on that drum's hit cross-entropy (names from drums.DRUMS, e.g.
    # {high_tom = 2.0}; EXPERIMENTS E45): the flat models lose most F1 on the rare drums (toms,
    # crash), and a tom fill comes back as a snare fill
    drum_weights: dict[str, float] = field(default_factory=dict)
    # charge drum_weights on fill windows only (EXPERIMENTS E68): weighted everywhere, the toms
    # keep the rock fill but sharpen the decoder at every groove with toms, and cond(G) at the data
    # rises (E60); a fill is 1.2 % of the training windows
    drum_weights_fills_only: bool = False
    # charge vel_weight's extra (vel_weight − 1) on windows that are not fills (EXPERIMENTS E131):
    # the velocities weighted everywhere came in and took the rock fill's last hit (E116, E122)
    vel_weight_off_fills: bool = False
    # a focal share of the hits' cross-entropy (EXPERIMENTS E48): focal_weight · Σ (1 − p_t)^γ ·
    # BCE, with p_t the probability given to what the cell holds. Uniform weights (hit_weight) pay
    # as much for cells already right as for the wrong ones; the built-ins the flat model loses
    # are a few confidently wrong cells (a kick at p 0.08, hats added where the pattern is silent)
    focal_weight: float = 0.0
    focal_gamma: float = 2.0
    # what an epoch draws (EXPERIMENTS E46): windows drawn with replacement, each ∝ (windows of
    # its style label)^−style_balance (0: every window once, as a plain shuffle; 1: every style
    # equally) × fill_weight for fills. The training split is 26 % one label ("rock"), 1.2 % fills
    # and 2.7 % shuffles, and the flat decoder reconstructs the rare material worst
    style_balance: float = 0.0
    fill_weight: float = 1.0
    # flat: flatness loss at latent mixups
    flat_weight: float = 1.0  # λ_flat, multiplies λ·L_flat so it keeps pace with the recon term
    flat_warmup_epochs: float = 2.0  # λ_flat ramps linearly from 0 after this many epochs...
    flat_ramp_epochs: float = 3.0  # ...to its full value over these
    flat_points: int = 16  # mixups per batch
    flat_probes: int = 2
    flat_eta: float = 0.2
    flat_estimator: str = "fd"
    flat_eps: float = 1e-2
    # "frobenius": ‖G/c² − I‖²_F / d from random probes at flat_points mixups;
    # "stein": tr(G/c²) − log det(G/c²) − d (per d) from the exact G (d finite-difference
    # columns) at flat_exact_points mixups: sees collapsed directions (geometry.stein_flatness)
    flat_loss: str = "frobenius"
    flat_exact_points: int = 4
    # the share of those points taken at the batch's own encodings (α = 0) rather than between
    # them: the evaluation measures G at data encodings as well as at mixups
    flat_data_share: float = 0.0
    # those data points measured against their own scale (c² = their tr G / d), not the batch's
    # (EXPERIMENTS E69): cond(G) is scale-free, and a rare pattern (a fill) may need the decoder
    # stretched more where it lies; the mixups, where lines run, keep the one c²
    flat_data_conformal: bool = False
    # the flatness points (mixups and data points) drawn from non-fill windows only (EXPERIMENTS
    # E81): a fill is a rare, sharp pattern (1.2 % of the training windows) that the d = 20 decoder
    # loses as it is flattened at the data (E61–E62); spared, the decoder may stretch where fills
    # lie while the grooves' space is flattened. Lines (path terms) still run between any windows;
    # a batch with fewer than two non-fill windows draws from every row; validation's flatness
    # figure is read at every window (the evaluation's cond(G) is the one to read)
    flat_spare_fills: bool = False
    # With flat_loss "stein": an evenness term on straight lines between batch encodings
    # (geometry.path_evenness_loss: squared CV of the expected hit flips per step under the
    # threshold pattern), weighted path_weight·λ and ramped like the flatness term
    path_weight: float = 0.0
    # beside it, the same squared CV on the hits as heard (geometry.path_heard_evenness_loss:
    # soft hits σ((p − heard_threshold)/heard_tau) at the shipped rule's threshold), weighted
    # heard_weight·λ and ramped the same way: the band term does not see that the realism
    # terms' lines flip fewer hits and so count fewer, less even changes (EXPERIMENTS E89). Its
    # threshold is its own: realism_hybrid reads the ends at hybrid_threshold, else the band's centre
    heard_weight: float = 0.0
    heard_threshold: float = 0.35
    heard_tau: float = 0.05
    # the heard term's steps charged against an even share of the ends' heard distance
    # (geometry.path_heard_pace_loss), not against their own mean: flicker is charged, not
    # rewarded (EXPERIMENTS E117)
    heard_pace: bool = False
    # the heard term with no gradient through the lines' ends (the batch's reconstructions):
    # it may place the inner points' changes only (EXPERIMENTS E119)
    heard_hold_ends: bool = False
    # the heard term on each drum's own flips per step (the within-drum part of the squared CV,
    # geometry.path_heard_evenness_loss): one drum's cells crossing together is what the flat
    # models' lines have over chance; across drums they already cross apart (EXPERIMENTS E133)
    heard_per_drum: bool = False
    # on the same lines: the inner points' expected hit count held to the line between the
    # ends' (geometry.path_density_loss), weighted density_weight·λ, ramped the same way
    density_weight: float = 0.0
    # With flat_loss "stein": > 0 pulls the exact G back through y with the hits as heard
    # appended, flat_heard·σ((p − heard_threshold)/heard_tau) per cell, so a cell near the
    # threshold counts as it is heard. The design's y is flat at constant speed, and at constant
    # speed in y every model's geodesics sound their changes in bunches (CV 0.63, EXPERIMENTS
    # "What would a perfectly flat twin draw?"); what the ear hears evenly is a constant rate of
    # threshold crossings. The evaluation's G stays the design's (goal 4). Measured: it evens the
    # crossings a little and costs the velocities (EXPERIMENTS E156–E159); off by default
    flat_heard: float = 0.0
    # With flat_loss "stein": > 0 appends flat_fisher·2·arcsin √p per cell to y, so the exact G
    # adds flat_fisher² × the hits' Fisher information metric (the issue's "pull-back of the hit
    # likelihood's Fisher metric"): a logit's change counts by √(p(1 − p)), not p(1 − p), so a
    # cell's wandering near 0 or 1 is seen. The evaluation's G stays the design's (goal 4); off
    # by default. Measured (E160): E55's decoder is nearly flat in it already (cond 9.0); flattened
    # in it, the design's flatness at the data and the heard CV go out
    flat_fisher: float = 0.0
    # > 0 adds code_fill_weight × prior.midpoint_hole_ratio of the batch's encodings to the loss
    # (beside the KL, not multiplied by λ): the midpoints of pairs of codes drawn into the codes'
    # cloud. The shipped flat model's lines cross holes of it (its midpoints lie 1.34× as far from
    # every training code as held-out grooves' codes do; the vae's 0.98×), and a midpoint near the
    # codes decodes near the data (EXPERIMENTS, session 29). Measured (E161–E165): at 512–2048 the
    # cloud fills (1.34 → 1.03) and the midpoints follow (18 → 15 cells), the flatness holds and the
    # grooves pay (F1 −0.018, up to six built-ins). Single-process runs only; off by default
    code_fill_weight: float = 0.0
    # the line terms' (LINE_TERMS) multiplier: 0 multiplies them by GECO's λ, as the flatness
    # term; > 0 by this fixed number, so that a λ risen to meet the reconstruction target buys
    # reconstruction back from them too (inside λ it cannot: EXPERIMENTS E97, E148)
    line_lambda: float = 0.0
    # Goal 3's realism on the same lines (geometry.path_realism_loss): each inner point's
    # expected Hamming distance (cells) to its nearest window in a fixed bank of
    # realism_bank training windows, soft-min, weighted realism_weight·λ, ramped the same way
    realism_weight: float = 0.0
    realism_bank: int = 2048
    # the realism term on each line's midpoint alone (what goal 3 measures; needs an odd
    # path_points): pulling every inner point to a real groove made the lines step between
    # them (EXPERIMENTS E74b)
    realism_midpoint: bool = False
    # realism_balance β: the bank's windows charged β·|(1 − t)·d(w, A) − t·d(w, B)| more for
    # the point at t (geometry.path_realism_loss): drawn to real grooves that lie between the
    # ends as the point does, not to the nearest one, which pulls it towards one end (E78)
    realism_balance: float = 0.0
    # the realism term's targets are the hybrid chain between each line's ends as heard
    # (geometry.path_hybrid_loss): grooves that flip only the cells where the ends differ, once
    # each, evenly, with every halving as near the bank's windows as such a groove can be; the
    # realism term's nearest real grooves add flips the ends do not have (EXPERIMENTS E83; it sits
    # on the same trade with goal 2, E83–E86). The ends are read at the centre of the evenness
    # term's band, (path_low + path_high) / 2, unless hybrid_threshold is set
    realism_hybrid: bool = False
    # the threshold the hybrid chain reads its ends at, where it is not the band's centre (0): the
    # shipped rule's 0.35, at which goal 3's midpoints are decoded and measured (EXPERIMENTS E93)
    hybrid_threshold: float = 0.0
    # > 0: the chain's distance counted on the hits as heard, σ((p − that threshold)/hybrid_tau),
    # not on p (geometry.path_hybrid_loss; EXPERIMENTS E104): charged where a cell is heard wrong
    hybrid_tau: float = 0.0
    # k > 0: only the chain's first k halvings from the bank, the deeper ones in the line's own
    # order (geometry.own_order_halfway): the bank places the midpoint, the decoder's own order
    # is kept and only its timing evened out, where the bank's arbitrary order at the fine
    # levels was not followed (E114: changes placed as by chance; EXPERIMENTS E127)
    hybrid_bank_levels: int = 0
    path_pairs: int = 4
    path_points: int = 9
    path_low: float = 0.2  # the p range whose change is heard (the decoding rule's thresholds)
    path_high: float = 0.8
    # warm start: encoder and decoder weights from a trained checkpoint (same sizes); the
    # prior starts fresh. kappa_train_slack > 0 sets κ to that × the warm model's mean
    # reconstruction on training batches (its validation figure is lax: 43.6 vs 33.5)
    init_from: str = ""
    kappa_train_slack: float = 0.0
    # logging and checkpoints
    log_every: int = 50
    checkpoint_every: int = 500  # steps between mid-epoch checkpoints (besides each epoch)
    # keep a copy of every epoch's checkpoint (epoch3.pt, ...) beside last.pt: a run read and
    # selected epoch by epoch (a cosine schedule's best epoch need not be its last)
    keep_epochs: bool = False
    # > 0: fit the run into this many minutes of wall time: after timing its first steps the
    # run sets `epochs` to what fits (the cosine schedule then ends on time), and it stops
    # after the epoch that would overrun (a GPU lease, an overnight slot)
    time_budget_min: float = 0.0
    max_steps: int = 0  # stop after this many steps (0 = run all epochs)
    val_batches: int = 0  # limit validation (0 = all)
    val_heard_pairs: int = 64  # straight lines for the heard figures at each validation (0 = none)
    # the decoding rule the run will be heard at ("threshold:0.35", "pattern", "count"; see
    # model.decoding.parse_rule): validation's hit F1 and heard figures read at it, and every
    # checkpoint carries it, so `export` ships it unless told otherwise
    decoding: str = "threshold"

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return settings_from_dict(cls, d, "train")

    def line_weights(self) -> dict[str, float]:
        """Each line term's weight, by name (LINE_TERMS)."""
        return {k: getattr(self, f"{k}_weight") for k in LINE_TERMS}

    def problems(self) -> list[str]:
        """What would crash a run later or train silently wrong (a NaN κ pins λ at its cap,
        a batch size of 0 divides by zero after the data has loaded); [] when all is well."""
        out = [f"{f.name} must be a finite number, got {getattr(self, f.name)}"
               for f in fields(self) if isinstance(getattr(self, f.name), float)
               and not math.isfinite(getattr(self, f.name))]
        for name, lo in (("epochs", 1), ("batch_size", 1), ("log_every", 1), ("max_steps", 0),
                         ("checkpoint_every", 0), ("threads", 0), ("val_batches", 0),
                         ("val_heard_pairs", 0), ("realism_bank", 1)):
            if getattr(self, name) < lo:
                out.append(f"{name} must be at least {lo}, got {getattr(self, name)}")
        for name in ("kappa", "lr"):  # (a NaN is named once, above)
            if math.isfinite(getattr(self, name)) and getattr(self, name) <= 0:
                out.append(f"{name} must be above 0, got {getattr(self, name)}")
        if self.time_budget_min < 0:
            out.append(f"time_budget_min must be >= 0, got {self.time_budget_min}")
        # the loss settings' ranges and the combinations that would be ignored or crash later
        for name in ("weight_decay", "hit_weight", "off_weight", "vel_weight", "focal_weight",
                     "focal_gamma", "style_balance", "line_lambda", "flat_heard", "flat_fisher", "code_fill_weight", *(f"{k}_weight" for k in LINE_TERMS)):
            if getattr(self, name) < 0:
                out.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.fill_weight <= 0:
            out.append(f"fill_weight must be above 0, got {self.fill_weight}")
        if not 0.0 <= self.flat_data_share <= 1.0:
            out.append(f"flat_data_share must be in [0, 1], got {self.flat_data_share}")
        if self.flat_data_conformal and (self.flat_data_share == 0 or self.flat_loss != "stein"):
            out.append("flat_data_conformal needs flat_data_share > 0 and flat_loss = \"stein\"")
        unknown = sorted(set(self.drum_weights) - set(DRUMS))
        if unknown:
            out.append(f"drum_weights: unknown drums {unknown}; the drums are {', '.join(DRUMS)}")
        if any(not w >= 0 for w in self.drum_weights.values()):
            out.append(f"drum_weights must be >= 0, got {self.drum_weights}")
        for name in ("flat_spare_fills", "flat_heard", "flat_fisher"):  # settings of the exact-G term
            if getattr(self, name) > 0 and self.flat_loss != "stein":
                out.append(f"{name} needs flat_loss = \"stein\"")
        if self.code_fill_weight > 0 and self.batch_size < 3:
            out.append("code_fill_weight needs batches of at least 3")
        if self.drum_weights_fills_only and all(w == 1 for w in self.drum_weights.values()):
            out.append("drum_weights_fills_only needs drum_weights")
        if self.vel_weight_off_fills and self.vel_weight == 1:
            out.append("vel_weight_off_fills needs vel_weight != 1")
        if any(w > 0 for w in self.line_weights().values()) and self.flat_loss != "stein":
            # the lines ride in the Stein term's decoder call; elsewhere they would be ignored
            names = [f"{k}_weight" for k in LINE_TERMS]
            out.append(f"{', '.join(names[:-1])} and {names[-1]} need flat_loss = \"stein\"")
        if not isinstance(self.decoding, str):  # a TOML number: say so, not crash in parse_rule
            out.append(f'decoding must be a rule in quotes (e.g. "threshold:0.35"), got {self.decoding!r}')
        else:
            try:
                parse_rule(self.decoding)
            except ValueError as e:
                out.append(f"decoding: {e}")
        if not 0 < self.heard_threshold < 1:
            out.append(f"heard_threshold must be in (0, 1), got {self.heard_threshold}")
        if not 0 <= self.hybrid_threshold < 1:
            out.append(f"hybrid_threshold must be in [0, 1) (0: the band's centre), got {self.hybrid_threshold}")
        if self.hybrid_threshold > 0 and not self.realism_hybrid:
            out.append("hybrid_threshold needs realism_hybrid")
        if self.hybrid_tau < 0:
            out.append(f"hybrid_tau must be >= 0 (0: the distance in p), got {self.hybrid_tau}")
        if self.hybrid_tau > 0 and not self.realism_hybrid:
            out.append("hybrid_tau needs realism_hybrid")
        if self.hybrid_bank_levels < 0:
            out.append(f"hybrid_bank_levels must be >= 0 (0: every halving from the bank), got {self.hybrid_bank_levels}")
        if self.hybrid_bank_levels > 0 and not self.realism_hybrid:
            out.append("hybrid_bank_levels needs realism_hybrid")
        if not self.heard_tau > 0:
            out.append(f"heard_tau must be > 0, got {self.heard_tau}")
        for name in ("heard_pace", "heard_hold_ends", "heard_per_drum"):
            if getattr(self, name) and not self.heard_weight > 0:
                out.append(f"{name} needs heard_weight > 0 (it changes what the heard term charges)")
        if self.heard_pace and self.heard_per_drum:
            out.append("heard_per_drum is a form of the squared CV: not with heard_pace")
        if self.realism_balance < 0:
            out.append(f"realism_balance must be >= 0, got {self.realism_balance}")
        if self.realism_hybrid:
            steps = self.path_points - 1
            if self.realism_weight <= 0:
                out.append("realism_hybrid needs realism_weight > 0")
            if steps < 2 or steps & (steps - 1):
                out.append(f"realism_hybrid needs path_points = 2^k + 1 with k ≥ 1 (e.g. 9, 17), got {self.path_points}")
            if self.realism_midpoint or self.realism_balance > 0:
                out.append("realism_hybrid has targets of its own: not with realism_midpoint or realism_balance")
        if self.realism_midpoint and self.path_points % 2 == 0:
            out.append(f"realism_midpoint needs an odd path_points (a line's midpoint), got {self.path_points}")
        return out


def load_config(path: str | Path | None, variant: str | None = None) -> tuple[ModelConfig, TrainConfig]:
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such config file")
        try:
            raw = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{p}: not valid TOML ({e})") from None
    unknown = set(raw) - {"model", "train"}
    if unknown:
        raise ValueError(f"unknown config tables {sorted(unknown)}; use [model] and [train]")
    m = dict(raw.get("model", {}))
    if variant is not None:
        m["variant"] = variant
    return ModelConfig.from_dict(m), TrainConfig.from_dict(raw.get("train", {}))


def config_dict(mc: ModelConfig, tc: TrainConfig) -> dict:
    return {"model": mc.to_dict(), "train": asdict(tc)}
