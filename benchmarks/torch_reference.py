"""A PyTorch twin of the GADN training steps, to time tf_gadn against: the Table 1 trunk (tf_gadn/nn/blocks.py) and
the stage-1, C2 pre-training and stage-2 steps (tf_gadn/gadn/*.py) with the same passes and optimizers.

    python benchmarks/torch_reference.py --stage gadn_stage1 --image_size 64 --channels 16,32,64,128 ...

Imports only torch and numpy, so it runs in an interpreter without TensorFlow (`pip install -e .[bench]`, or a
separate one: benchmarks/train_speed.py --torch_python PATH runs it as a subprocess with the stage's sizes). Prints
one JSON line: precision -> median steps/s. bfloat16 is torch.autocast (float32 weights, optimizer state and losses,
as tf_gadn's mixed_bfloat16). Activations are channels-last, the layout oneDNN convolutions want on a CPU (what
TensorFlow uses).

What matches tf_gadn: one convolution per residual block, ReLU on the branch, stride-2 first convolution going down,
nearest x2 upsampling going up (folded into one transposed convolution unless --upsample=repeat, as tf_gadn's
--upsample_conv), average-pool/upsample + 1x1 projection shortcuts, the F layers, the heads, the losses
(per-pixel L2, NLL, NLU, LSGAN, KL, content), Adam (stage 1, C2) and RMSprop (stage 2), one G forward shared by the
critic and the generator update. What differs: initialisers (timing only), and torch's RMSprop/Adam epsilon placement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # the caller asks `available()` first
    torch = None

STAGES = ("gadn_stage1", "c2_pretrain", "gadn_stage2")


def available() -> bool:
    return torch is not None


if torch is not None:

    def _fold_taps(weight, dim: int):
        """Taps (w0, w1, w2) along `dim` -> (w2, w1+w2, w0+w1, w0), as tf_gadn.nn.blocks folds them."""
        w0, w1, w2 = weight.unbind(dim)
        return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)

    class ResidualBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, resample: str, upsample: str = "transposed"):
            super().__init__()
            self.resample, self.upsample = resample, upsample
            self.conv = nn.Conv2d(c_in, c_out, 3, stride=2 if resample == "down" else 1, padding=1)
            self.projection = (
                nn.Conv2d(c_in, c_out, 1) if resample != "none" or c_in != c_out else None
            )

        def forward(self, x):
            if self.resample == "up" and self.upsample == "transposed":
                # conv(nearest_up(x)) as one stride-2 transposed convolution, as tf_gadn's --upsample_conv=transposed
                folded = _fold_taps(_fold_taps(self.conv.weight, 2), 3).transpose(0, 1)
                branch = F.conv_transpose2d(x, folded, self.conv.bias, stride=2, padding=1)
                up = F.interpolate(self.projection(x), scale_factor=2, mode="nearest")
                return up + F.relu(branch)
            if self.resample == "up":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            shortcut = F.avg_pool2d(x, 2) if self.resample == "down" else x
            if self.projection is not None:
                shortcut = self.projection(shortcut)
            return shortcut + F.relu(self.conv(x))

    class DownTrunk(nn.Module):
        def __init__(self, size: int, channels, blocks, fc_width: int):
            super().__init__()
            layers, c = [], 3
            for ch, n in zip(channels, blocks):
                layers.append(ResidualBlock(c, ch, "down"))
                layers += [ResidualBlock(ch, ch, "none") for _ in range(n)]
                c = ch
            self.levels = nn.Sequential(*layers)
            bottom = size // 2 ** len(channels)
            self.fc = nn.Linear(bottom * bottom * c, fc_width)

        def forward(self, x):
            return F.relu(self.fc(torch.flatten(self.levels(x), 1)))

    class UpTrunk(nn.Module):
        def __init__(
            self, size: int, channels, blocks, fc_width: int, code_dim: int, upsample: str
        ):
            super().__init__()
            self.bottom, self.top = size // 2 ** len(channels), channels[-1]
            self.fc = nn.Linear(code_dim, fc_width)
            self.to_map = nn.Linear(fc_width, self.bottom * self.bottom * self.top)
            layers = []
            for level in reversed(range(len(channels))):
                layers += [
                    ResidualBlock(channels[level], channels[level], "none")
                    for _ in range(blocks[level])
                ]
                layers.append(
                    ResidualBlock(channels[level], channels[max(level - 1, 0)], "up", upsample)
                )
            self.levels = nn.Sequential(*layers)
            self.to_image = nn.Conv2d(channels[0], 3, 3, padding=1)

        def forward(self, code):
            h = F.relu(self.to_map(F.relu(self.fc(code))))
            h = h.view(-1, self.top, self.bottom, self.bottom).contiguous(
                memory_format=torch.channels_last
            )
            return torch.tanh(self.to_image(self.levels(h)))

    class Encoder(nn.Module):
        def __init__(self, spec, content_dim: int):
            super().__init__()
            self.trunk = DownTrunk(*spec)
            self.mean, self.std = (nn.Linear(spec[3], content_dim) for _ in range(2))

        def forward(self, x):
            h = self.trunk(x).float()
            return self.mean(h).float(), F.softplus(self.std(h).float()) + 1e-4

    class ImageHead(nn.Module):
        def __init__(self, spec, outputs: int):
            super().__init__()
            self.trunk = DownTrunk(*spec)
            self.out = nn.Linear(spec[3], outputs)

        def forward(self, x):
            return self.out(self.trunk(x)).float()

    class StyleTable(nn.Module):
        def __init__(self, num_artists: int, style_dim: int):
            super().__init__()
            self.mean = nn.Parameter(torch.zeros(num_artists, style_dim))
            self.raw_std = nn.Parameter(torch.full((num_artists, style_dim), 0.5413))

        def forward(self, artist):
            return self.mean[artist], F.softplus(self.raw_std[artist]) + 1e-4


def _kl(mean, std):
    return 0.5 * (mean.square() + std.square() - 1 - 2 * std.log()).sum(-1)


def _nlu(logits, labels):
    others = logits.scatter(1, labels[:, None], -1e30)
    return torch.logsumexp(logits, -1) - torch.logsumexp(others, -1)


class Twin:
    """The networks of one stage and its train_step, as tf_gadn's stage class has them."""

    def __init__(self, stage: str, args, precision: str):
        spec = (args.image_size, args.channels, args.blocks, args.fc_width)
        self.stage, self.args = stage, args
        self.bf16 = precision == "bf16"
        self.nets = {}
        if stage in ("gadn_stage1", "gadn_stage2"):
            self.nets["encoder"] = Encoder(spec, args.content_dim)
            self.nets["generator"] = UpTrunk(
                *spec, args.content_dim + args.style_dim, args.upsample
            )
            self.nets["style_table"] = StyleTable(args.num_artists, args.style_dim)
        if stage == "gadn_stage1":
            self.nets["classifier1"] = ImageHead(spec, args.num_artists)
        if stage in ("c2_pretrain", "gadn_stage2"):
            self.nets["classifier2"] = ImageHead(spec, args.num_artists)
        if stage == "gadn_stage2":
            self.nets["discriminator"] = ImageHead(spec, 1)
            self.nets["encoder"].requires_grad_(False)
        for net in self.nets.values():
            net.to(memory_format=torch.channels_last)
        algorithm = torch.optim.RMSprop if stage == "gadn_stage2" else torch.optim.Adam
        self.optimizers = {
            name: algorithm(net.parameters(), lr=1e-5)
            for name, net in self.nets.items()
            if not (stage == "gadn_stage2" and name == "encoder")
        }

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def update(self, loss, *names):
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        for name in names:
            self.optimizers[name].step()

    def step(self, batch):
        n, x, a, a_other, noise = (
            self.nets,
            batch["image"],
            batch["artist"],
            batch["other_artist"],
            batch["noise"],
        )
        b, c, s = x.shape[0], self.args.content_dim, self.args.style_dim
        with self.autocast():
            if self.stage == "c2_pretrain":
                self.update(
                    F.cross_entropy(n["classifier2"](x), a, reduction="sum") / b, "classifier2"
                )
                return
            if self.stage == "gadn_stage1":
                content_mean, content_std = n["encoder"](x)
                content = content_mean + content_std * noise[:, :c]
                style_mean, style_std = n["style_table"](a)
                style = style_mean + style_std * noise[:, c : c + s]
                other_mean, other_std = n["style_table"](a_other)
                style_other = other_mean + other_std * noise[:, c + s :]
                seen = n["generator"](torch.cat([content, style_other], -1))
                c1 = F.cross_entropy(n["classifier1"](seen.detach()), a, reduction="sum") / b
                self.update(c1, "classifier1")
                reconstructed = n["generator"](torch.cat([content, style], -1))
                pixel = ((x - reconstructed.float()).square().sum(1) + 1e-8).sqrt().mean((1, 2))
                adversarial = F.cross_entropy(n["classifier1"](seen), a, reduction="sum") / b
                total = (
                    pixel.sum() / b
                    - 0.2 * adversarial
                    + 1e-4 * _kl(content_mean, content_std).sum() / b
                    + 2e-5 * _kl(style_mean, style_std).sum() / b
                )
                self.update(total, "encoder", "generator", "style_table")
                return
            with torch.no_grad():
                content_mean, content_std = n["encoder"](x)
            content = content_mean + content_std * noise[:, :c]
            style_mean, style_std = n["style_table"](a_other)
            style_other = style_mean + style_std * noise[:, c : c + s]
            fake = n["generator"](torch.cat([content, style_other], -1))
            d_loss = (n["discriminator"](x) - 1).square().sum() / b + (
                n["discriminator"](fake.detach()) + 1
            ).square().sum() / b
            c2_loss = (
                F.cross_entropy(n["classifier2"](x), a, reduction="sum") / b
                + _nlu(n["classifier2"](fake.detach()), a_other).sum() / b
            )
            self.update(d_loss + c2_loss, "discriminator", "classifier2")
            d_adv = n["discriminator"](fake).square().sum() / b
            c2_adv = F.cross_entropy(n["classifier2"](fake), a_other, reduction="sum") / b
            content_loss = (n["encoder"](fake)[0] - content_mean).square().sum() / b
            total = (
                d_adv + c2_adv + 0.05 * content_loss + 2e-5 * _kl(style_mean, style_std).sum() / b
            )
            self.update(total, "generator", "style_table")


def random_batch(args, rng) -> dict:
    b, size = args.batch, args.image_size
    artist = rng.integers(args.num_artists, size=b)
    other = (artist + rng.integers(1, args.num_artists, size=b)) % args.num_artists
    image = torch.tensor(rng.uniform(-1, 1, (b, 3, size, size)), dtype=torch.float32)
    return {
        "image": image.contiguous(memory_format=torch.channels_last),
        "artist": torch.tensor(artist),
        "other_artist": torch.tensor(other),
        "noise": torch.tensor(
            rng.standard_normal((b, args.content_dim + 2 * args.style_dim)), dtype=torch.float32
        ),
    }


def steps_per_s(args) -> dict[str, float]:
    """Median steps/s per precision, the precisions' steps interleaved (as train_speed.py times tf_gadn)."""
    # As many threads as tf_gadn's step used (train_speed.py passes its intra-op setting): on a machine shared with
    # other jobs, 2 OpenMP threads waiting for each other made every small op cost a scheduler slice (6.3 s per demo
    # step with 2 threads, 0.14 s with 1; docs/notes/issue15_speed2.md)
    torch.set_num_threads(args.threads or os.cpu_count())
    torch.manual_seed(1)
    twins = {p: Twin(args.stage, args, p) for p in args.precisions.split(",")}
    rng = np.random.default_rng(0)
    for twin in twins.values():
        twin.step(random_batch(args, rng))
    times = {p: [] for p in twins}
    for _ in range(args.steps):
        for p, twin in twins.items():
            batch = random_batch(args, rng)
            start = time.perf_counter()
            twin.step(batch)
            times[p].append(time.perf_counter() - start)
    return {p: 1 / statistics.median(t) for p, t in times.items()}


def parser() -> argparse.ArgumentParser:
    ints = lambda text: tuple(int(v) for v in text.split(","))  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=STAGES, default="gadn_stage1")
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--channels", type=ints, default=(32, 64, 128, 256, 512, 1024))
    p.add_argument("--blocks", type=ints, default=(1, 1, 1, 1, 1, 1))
    p.add_argument("--fc_width", type=int, default=2048)
    p.add_argument("--content_dim", type=int, default=256)
    p.add_argument("--style_dim", type=int, default=256)
    p.add_argument("--num_artists", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precisions", default="float32,bf16")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    p.add_argument(
        "--upsample",
        choices=("transposed", "repeat"),
        default="transposed",
        help="how an up block computes conv(nearest_up(x)), as tf_gadn's --upsample_conv",
    )
    return p


if __name__ == "__main__":
    print(json.dumps(steps_per_s(parser().parse_args())))
