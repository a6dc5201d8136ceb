"""The evaluation study of one model on a test set (DESIGN §5): reconstruction, interpolation
smoothness, flatness of the pull-back metric, and geodesics. Fixed seeds and fixed pairs, so
every model is measured on the same grooves and the same pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from flatgroove import geometry
from flatgroove.drums import N_DRUMS, SHORT_NAMES
from flatgroove.evaluate import heard as H
from flatgroove.evaluate import metrics as M
from flatgroove.model.decoder import geometry_output
from flatgroove.model.decoding import DecodingRule


@dataclass
class StudySettings:
    pairs: int = 500  # interpolation pairs
    points: int = 17  # points on each straight line, ends included
    flat_points: int = 200  # test encodings (and as many mixups) where G is measured
    geodesic_pairs: int = 100
    geodesic_steps: int = 100
    seed: int = 0
    batch: int = 512
    decoding: DecodingRule | None = None  # None: each model's own rule (from its checkpoint)


def fixed_pairs(n_items: int, n_pairs: int, seed: int) -> np.ndarray:
    """(n_pairs, 2) indices of distinct items, the same for every model."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_items, n_pairs)
    b = (a + rng.integers(1, n_items, n_pairs)) % n_items
    return np.stack([a, b], 1)


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None  # None: no hits either way


@torch.no_grad()
def reconstruction(model, x: torch.Tensor, batch: int, seed: int, rule: DecodingRule | None = None) -> dict:
    """Hit F1/precision/recall/accuracy of the decoded Grooves (hits by the decoding rule, as
    written to MIDI), the F1 of each drum, velocity and offset MAE on true hits, and the −ELBO."""
    rule = rule or model.decoding
    tp = fp = fn = tn = 0
    drum_tp = drum_fp = drum_fn = torch.zeros(N_DRUMS, dtype=torch.long)
    vel_err = off_err = 0.0
    n_hits = 0
    neg_elbo = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for s in range(0, len(x), batch):
            xb = x[s : s + batch]
            mu, logvar = model.encoder(xb)
            logits, vel, off = model.decoder(mu)
            t = xb[..., :N_DRUMS] > 0.5
            p = torch.from_numpy(rule.hits(torch.sigmoid(logits).numpy())) > 0.5
            tp += int((t & p).sum())
            fp += int((~t & p).sum())
            fn += int((t & ~p).sum())
            tn += int((~t & ~p).sum())
            drum_tp = drum_tp + (t & p).sum((0, 1))
            drum_fp = drum_fp + (~t & p).sum((0, 1))
            drum_fn = drum_fn + (t & ~p).sum((0, 1))
            vel_err += float((t * (vel - xb[..., N_DRUMS : 2 * N_DRUMS]).abs()).sum())
            off_err += float((t * (off - xb[..., 2 * N_DRUMS :]).abs()).sum())
            n_hits += int(t.sum())
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            rec = model.reconstruction(xb, *model.decoder(z))["recon"]
            neg_elbo += float((rec + model.kl(z, mu, logvar)).sum())
    prec, rec_ = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {
        "hit_f1": 2 * prec * rec_ / max(prec + rec_, 1e-12),
        "hit_precision": prec,
        "hit_recall": rec_,
        "hit_accuracy": (tp + tn) / max(tp + tn + fp + fn, 1),
        "vel_mae": vel_err / max(n_hits, 1),
        "off_mae": off_err / max(n_hits, 1),
        "neg_elbo": neg_elbo / max(len(x), 1),
        # which drums a model loses (a flat model's lost F1 is mostly extra kick/snare/hat hits)
        "drum_f1": {SHORT_NAMES[k]: _f1(int(drum_tp[k]), int(drum_fp[k]), int(drum_fn[k]))
                    for k in range(N_DRUMS)},
    }


@torch.no_grad()
def decoded_lines(model, z_a, z_b, points: int = 17, batch: int = 2048
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder's outputs (hit logits, velocities, offsets; each (pairs, points, 32, 9), on
    the CPU) along the straight lines between each pair, in batches: one decode serves both
    the heard figures and the figures in y."""
    za, zb = (torch.as_tensor(np.asarray(z, np.float32), device=model.device) for z in (z_a, z_b))
    z = M._line(za, zb, points).reshape(-1, za.shape[1])
    parts = [model.decoder(z[s : s + batch]) for s in range(0, len(z), batch)]
    return tuple(torch.cat(t).cpu().view(len(za), points, *t[0].shape[1:]) for t in zip(*parts))


def heard_paths(model, z_a, z_b, points: int = 17, rule: DecodingRule | None = None,
                batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Decoded straight lines as a listener hears them: hits by the decoding rule and their
    velocities, each (pairs, points, 32, 9)."""
    logits, vel, _ = decoded_lines(model, z_a, z_b, points, batch)
    return _heard(logits, vel, rule or model.decoding)


def _heard(logits: torch.Tensor, vel: torch.Tensor, rule: DecodingRule) -> tuple[np.ndarray, np.ndarray]:
    return rule.hits(torch.sigmoid(logits).numpy()), vel.numpy()


def builtin_f1(model, rule: DecodingRule | None = None) -> dict[str, float]:
    """Hit F1 of each built-in groove's reconstruction (does it come back in its own style?)."""
    from flatgroove.presets import all_builtins

    rule = rule or model.decoding
    gs = all_builtins()
    p, _, _ = model.decode_arrays(model.encode(list(gs.values())))
    return {name: M.hit_metrics(g.hits, h)["f1"] for (name, g), h in zip(gs.items(), rule.hits(p))}


def run_study(model, x: torch.Tensor, s: StudySettings | None = None, progress: bool = True,
              label: str = "", train_hits: np.ndarray | None = None, real_nn: float | None = None) -> dict:
    """Every figure of DESIGN §5 for one model on features x (n, 32, 27)."""
    s = s or StudySettings()
    torch.manual_seed(s.seed)
    model.eval()
    bar = tqdm(total=5, desc=f"evaluate {label}".strip(), disable=not progress or None, leave=False)
    out: dict = {"variant": model.variant, "latent_dim": model.latent_dim, "test_windows": len(x)}
    rule = s.decoding or model.decoding
    out["decoding"] = rule.to_dict()
    out["reconstruction"] = reconstruction(model, x, s.batch, s.seed, rule)
    out["builtin_f1"] = builtin_f1(model, rule)
    bar.update(1)

    z = torch.from_numpy(model.encode(x))
    pairs = fixed_pairs(len(x), s.pairs, s.seed)
    # Heard first: decoded Grooves along the lines, hits by the decoding rule.
    logits, vel, off = decoded_lines(model, z[pairs[:, 0]], z[pairs[:, 1]], s.points, s.batch)
    hits, heard_vel = _heard(logits, vel, rule)
    heard = H.path_evenness(hits, heard_vel, seed=s.seed)
    real_ends = (x[pairs][..., :N_DRUMS] > 0.5).numpy()
    heard.update(H.midpoint_figures(hits, train_hits, real_ends, real_nn))
    out["heard"] = heard
    # the same lines in y = [p, p·v, p·o], second
    Y = geometry_output(logits.flatten(0, 1), vel.flatten(0, 1), off.flatten(0, 1)).view(len(pairs), s.points, -1)
    sm = M.smoothness(Y)
    sm["abrupt_jump_share"] = M.abrupt_jump_share(hits)
    out["interpolation"] = sm
    bar.update(1)

    g = torch.Generator().manual_seed(s.seed)
    idx = torch.randperm(len(z), generator=g)[: s.flat_points]
    zs = z[idx]
    j = geometry.jacobian(model.f, zs)
    G_data = j.transpose(1, 2) @ j  # geometry.metric, keeping J for the channel shares
    G_mix = geometry.metric(model.f, geometry.mixup(z, s.flat_points, 0.2, generator=g))
    out["flatness_data"] = M.flatness(G_data)
    out["flatness_data"]["trace_share"] = geometry.channel_trace_shares(j)
    out["flatness_mixup"] = M.flatness(G_mix)
    bar.update(2)

    gp = pairs[: s.geodesic_pairs]
    if len(gp):  # 0 pairs skips the slowest part (a quick look while tuning)
        geo = M.geodesic_study(model.f, z[gp[:, 0]], z[gp[:, 1]], n_points=s.points, steps=s.geodesic_steps)
        out["geodesic"] = {k: v for k, v in geo.items() if not isinstance(v, (np.ndarray, torch.Tensor))}
    bar.update(1)
    bar.close()
    out["_z"] = z
    out["_pairs"] = pairs
    return out
