"""facepair's training augmentation in PyTorch eager, so the reference step can do the same work.

The same operations as core/jaxmodels/augment.py, per face: a random affine (rotation, zoom, shift)
and horizontal flip, a colour jitter in CIE Lab computed on the uint8 source face (linear light
looked up), and the random warp (a grid of Gaussian control points, Catmull-Rom interpolated); the
warped face is the input, the unwarped one the target; the weight maps follow the target. Sampling
is bilinear with edge replication (`grid_sample`, border padding). Only the amount of work is meant
to match (same image sizes, same kinds of operation), not the random numbers.
"""

from __future__ import annotations

import math

import numpy as np

from core.jaxmodels import augment as jax_aug  # numpy constants only: no JAX work happens here


class TorchAugment:
    """Draws a batch from uint8 faces/maps (N, R, R, 3) and augments it: (inputs, targets, maps) NCHW."""

    def __init__(self, faces: np.ndarray, maps: np.ndarray, cfg, channels_last: bool, seed: int = 0,
                 with_maps: bool = True):
        import torch

        if not with_maps:  # the loss does not read them (facepair's step skips them too): 0 channels
            maps = maps[..., :0]

        self.torch = torch
        self.cfg = cfg
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.faces = torch.from_numpy(np.ascontiguousarray(faces.transpose(0, 3, 1, 2)))  # uint8 NCHW
        self.maps = torch.from_numpy(np.ascontiguousarray(maps.transpose(0, 3, 1, 2)))
        self.size = r = faces.shape[1]
        self.gen = torch.Generator().manual_seed(seed)
        self.linear_of_u8 = torch.from_numpy(jax_aug._LINEAR_OF_U8.copy())
        self.rgb2xyz = torch.from_numpy(jax_aug._RGB2XYZ.copy())
        self.xyz2rgb = torch.from_numpy(jax_aug._XYZ2RGB.copy())
        self.white = torch.from_numpy(jax_aug._WHITE.copy()).view(1, 3, 1, 1)
        self.interp = torch.from_numpy(jax_aug._interp_matrix(r, cfg.warp_grid))
        ax = torch.arange(r, dtype=torch.float32)
        self.yy, self.xx = torch.meshgrid(ax, ax, indexing="ij")

    def _mix3(self, v, m):
        return self.torch.stack([v[:, 0] * m[i, 0] + v[:, 1] * m[i, 1] + v[:, 2] * m[i, 2] for i in range(3)], 1)

    def _colour(self, u8, u):
        torch, cfg = self.torch, self.cfg
        eps, kappa = jax_aug._EPS, jax_aug._KAPPA
        xyz = self._mix3(self.linear_of_u8[u8.long()], self.rgb2xyz) / self.white
        f = torch.where(xyz > eps, torch.pow(torch.clamp(xyz, min=eps), 1 / 3), (kappa * xyz + 16) / 116)
        p = (u * torch.tensor([cfg.lightness, cfg.lightness * 100, cfg.chroma, cfg.chroma]))[:, :, None, None]
        L = (116 * f[:, 1] - 16 - 50.0) * (1.0 + p[:, 0]) + 50.0 + p[:, 1]
        a = 500 * (f[:, 0] - f[:, 1]) + p[:, 2]
        b = 200 * (f[:, 1] - f[:, 2]) + p[:, 3]
        fy = (L + 16) / 116
        f = torch.stack([fy + a / 500, fy, fy - b / 200], 1)
        xyz = torch.where(f ** 3 > eps, f ** 3, (116 * f - 16) / kappa) * self.white
        lin = torch.clamp(self._mix3(xyz, self.xyz2rgb), 0.0, 1.0)
        rgb = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * torch.clamp(lin, min=0.0031308) ** (1 / 2.4) - 0.055)
        return torch.clamp(rgb, 0.0, 1.0)

    def _grid(self, u, offsets=None):
        """Source pixel coordinates as grid_sample wants them: (n, R, R, 2) [x, y] in [-1, 1]."""
        torch, cfg, r = self.torch, self.cfg, self.size
        angle = u[:, 0] * math.radians(cfg.rotation_deg)
        scale = 1.0 + u[:, 1] * cfg.zoom
        shift = u[:, 2:4] * cfg.shift * r
        flip = (u[:, 4] + 1.0) / 2.0 < cfg.flip
        c = (r - 1) / 2.0
        xx = torch.where(flip[:, None, None], (r - 1) - self.xx[None], self.xx[None])
        dy = self.yy[None] - c - shift[:, 0, None, None]
        dx = xx - c - shift[:, 1, None, None]
        cos = (torch.cos(angle) / scale)[:, None, None]
        sin = (torch.sin(angle) / scale)[:, None, None]
        sx, sy = c + cos * dx + sin * dy, c - sin * dx + cos * dy
        if offsets is not None:
            sy, sx = sy + offsets[..., 0], sx + offsets[..., 1]
        return torch.stack([sx, sy], -1) * (2.0 / (r - 1)) - 1.0

    def batch(self, n: int):
        torch, cfg, r = self.torch, self.cfg, self.size
        F = torch.nn.functional
        idx = torch.randint(0, self.faces.shape[0], (n,), generator=self.gen)
        u = torch.rand(n, 9, generator=self.gen) * 2 - 1
        ctrl = torch.randn(n, cfg.warp_grid, cfg.warp_grid, 2, generator=self.gen)
        imgs = self._colour(self.faces[idx], u[:, 5:9])
        both = torch.cat([imgs, self.maps[idx].float() / 255.0], 1).contiguous(memory_format=self.fmt)
        sampled = F.grid_sample(both, self._grid(u), mode="bilinear", padding_mode="border", align_corners=True)
        targets, maps = sampled[:, :3], sampled[:, 3:]
        offsets = torch.einsum("yi,nijc,xj->nyxc", self.interp, ctrl * (cfg.warp * r), self.interp)
        inputs = F.grid_sample(imgs.contiguous(memory_format=self.fmt), self._grid(u, offsets), mode="bilinear",
                               padding_mode="border", align_corners=True)
        fmt = self.fmt
        return inputs.contiguous(memory_format=fmt), targets.contiguous(memory_format=fmt), maps
