"""One frozen configuration object for every stage; absl flags are generated from its fields.

Defaults are the papers' values: GADN Table 2 (stage learning rates, optimisers, batch sizes, loss weights) and Table 1
(trunk sizes at 256 px); style-space Tables 1 and 2 plus Section 5.2 (d_style = 32, d_content = 128, lambdas).
Flags are parsed once in the CLI entry points (`Config.from_flags`); everything below takes the object explicitly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tf_gadn.nn.blocks import TrunkSpec


def _field(default, help_text: str, **kw):
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata={"help": help_text}, **kw)
    return dataclasses.field(default=default, metadata={"help": help_text}, **kw)


@dataclasses.dataclass(frozen=True)
class Config:
    # ---- run ---------------------------------------------------------------------------------------------------
    method: str = _field(
        "gadn", "Model family: 'gadn' (GADN paper) or 'style_space' (style-space paper)."
    )
    stage: str = _field(
        "all",
        "Stage to train: one stage name of the method's chain, or 'all' (the whole chain in order).",
    )
    data_dir: str = _field("", "TFRecord data set directory (prepare/synthetic output).")
    model_dir: str = _field("runs/demo", "Where checkpoints, TensorBoard logs and sample grids go.")
    synthetic_if_missing: bool = _field(
        False, "Render the synthetic data set into data_dir if it does not exist yet."
    )
    synthetic_artists: int = _field(
        8, "Synthetic data: number of artists (when rendered on demand)."
    )
    synthetic_images_per_artist: int = _field(
        100, "Synthetic data: images per artist (when rendered on demand)."
    )
    synthetic_family: str = _field(
        "portraits", "Synthetic data: 'portraits' (colour) or 'lineart' (dark strokes on white)."
    )
    inherit_dir: str = _field(
        "", "Model dir whose earlier stages a stage inherits from (default: model_dir; ablations)."
    )
    resume: bool = _field(True, "Continue from the stage's last checkpoint if there is one.")
    overwrite_config: bool = _field(
        False,
        "Train into a model_dir whose run has a different config or data set, "
        "replacing its config.json and artists.json (checkpoints are kept).",
    )
    seed: int = _field(1, "Seed for data order, a' draws and all noise.")
    strategy: str = _field("default", "default | mirrored | multi_worker (TF_CONFIG).")
    num_cpu_devices: int = _field(
        0, "Split the CPU into this many logical devices (tests of MirroredStrategy)."
    )
    jit_compile: bool = _field(False, "XLA-compile each replica's train step (GPU).")
    mixed_precision: str = _field(
        "auto",
        "'auto': mixed bfloat16 where the hardware has it (CPU flags amx_bf16 or avx512_bf16, GPUs of "
        "compute capability >= 8.0), float32 elsewhere; 'true'/'false' force it. Float32 weights, "
        "optimizer state and losses either way (tf_gadn/training/precision.py).",
    )
    accumulate_steps: int = _field(
        1,
        "Split each step's batch into this many micro-batches whose gradients are summed before each "
        "update (same update as the whole batch, less memory; tf_gadn/training/stage.py).",
    )
    fused_adam: bool = _field(
        False,
        "Run each Adam update as one TensorFlow kernel (ResourceApplyAdam) instead of ~20 ops per "
        "variable: same formula, last-bit differences from Keras's Adam (the demo numbers were made "
        "without).",
    )
    upsample_conv: str = _field(
        "transposed",
        "How a generator's 'up' block computes conv3x3(nearest_up(x)), one function either way: "
        "'transposed' as one stride-2 transposed convolution of x with the folded kernel (16/36 of the "
        "multiplies), 'repeat' by upsampling first, as written (runs before session 13; tf_gadn/nn/blocks.py).",
    )
    inter_op_threads: int = _field(
        0,
        "TensorFlow's inter-op threads (0: its default, one per core). Set before any op runs; "
        "1 with --intra_op_threads=1 was 1.25x faster at demo size on a 2-core machine shared with "
        "other jobs (docs/notes/issue15_speed2.md).",
    )
    intra_op_threads: int = _field(
        0, "TensorFlow's intra-op threads (0: its default, one per core); see --inter_op_threads."
    )
    lr_schedule: str = _field(
        "constant",
        "'constant' (both papers) or 'cosine': every learning rate of a stage "
        "falls from its configured value to 0 over the stage's steps "
        "(not in the papers; a short run ends on small, low-noise updates).",
    )
    lr_warmup_steps: int = _field(
        0,
        "Learning rates rise linearly from 1/N of their value over each stage's first N steps (0: none, both "
        "papers; a wide generator's first full-rate steps can saturate its output).",
    )
    ema_decay: float = _field(
        0.0,
        "Keep an exponential moving average of each stage's trained networks with this decay per step and "
        "hand it on (later stages, evaluation, export, sample grids); 0: none, both papers "
        "(tf_gadn/training/averaging.py).",
    )
    log_every: int = _field(50, "Steps between TensorBoard scalars / progress updates.")
    checkpoint_every: int = _field(500, "Steps between checkpoints.")
    sample_every: int = _field(1000, "Steps between sample grids (PNG + TensorBoard).")
    eval_every: int = _field(
        0,
        "Steps between transfer metrics on a fixed held-out batch (TensorBoard + metrics.csv "
        "in the stage folder); 0 = never.",
    )
    generator_output: str = _field(
        "tanh",
        "Generators' output function: 'tanh', 'clip' (straight-through clip to "
        "[-1, 1], cannot saturate) or 'soft_clip' (1.05 tanh, clipped the same way); "
        "see BUILD.md. Neither paper states one.",
    )
    cache: bool = _field(True, "Cache decoded images in memory (small data sets).")
    # ---- image --------------------------------------------------------------------------------------------------
    image_size: int = _field(256, "Training image size (papers: 256).")
    # ---- GADN networks (Table 1) --------------------------------------------------------------------------------
    gadn_channels: tuple = _field(
        (32, 64, 128, 256, 512, 1024), "GADN trunk channels per level (Table 1)."
    )
    gadn_blocks: tuple = _field(
        (1, 1, 1, 1, 1, 1), "GADN stride-1 blocks after each stride-2 block (Table 1: SC)."
    )
    gadn_fc_width: int = _field(2048, "GADN F layer width (Table 1).")
    content_dim: int = _field(256, "GADN content code length (Section 4: 256).")
    style_dim: int = _field(256, "GADN style code length (G input = content + style = 512).")
    mlp_layers: int = _field(
        10,
        "MLP artist classifier on a content code (GADN Appendix B.1 on E(x); the style space's "
        "--content_vae_adversary): hidden layers.",
    )
    mlp_width: int = _field(2048, "MLP artist classifier on a content code: hidden width.")
    # ---- GADN loss weights (Table 2) ----------------------------------------------------------------------------
    lambda_c1: float = _field(0.2, "lambda_C1.")
    lambda_e_kl: float = _field(1e-4, "lambda_E-KL.")
    lambda_s_kl: float = _field(2e-5, "lambda_S-KL.")
    lambda_d: float = _field(1.0, "lambda_D.")
    lambda_c2: float = _field(1.0, "lambda_C2.")
    lambda_cont: float = _field(0.05, "lambda_cont (Appendix B.3 ablation: 0).")
    # ---- GADN ablations (Appendix B) and refinements -------------------------------------------------------------
    stage1_classifier: str = _field(
        "generated", "'generated': C1 sees G(E(x),S(a')) (ours); 'code': MLP on E(x) ([3], B.1)."
    )
    adversarial_c2: bool = _field(
        True, "Train C2 with NLU on generated samples (False = B.2 ablation)."
    )
    critic_augment: bool = _field(
        False,
        "GADN stage 2 (D, C2) and the style-space GAN (D): critics see randomly "
        "zoomed/shifted images (authors' later GADN code; "
        "the papers have none). Keeps G from learning pixel noise that fools a critic.",
    )
    mirror_augment: bool = _field(
        False,
        "Every stage trains on each drawing or its left-right mirror image, chosen at random (the papers have "
        "none): a mirrored drawing is the same artist's drawing of a mirrored character, so a small collection "
        "counts twice. BUILD.md: mirrored drawings.",
    )
    stage1_code_adversary: float = _field(
        0.0,
        "Weight of an MLP artist classifier on E(x) (Appendix B.1's, --mlp_layers/--mlp_width) added next to C1 "
        "on generated images, its NLL capped at chance (not in the paper: 0). Past ~4000 demo steps E(x) comes to "
        "carry the style and transfers draw the source artist; the MLP targets that (BUILD.md: GADN's content code, too).",
    )
    cap_c1_at_chance: bool = _field(
        False, "Cap the E/G adversarial term at -log(1/num_artists) (authors' later code)."
    )
    style_lr_scale: str = _field(
        "none",
        "GADN's style table S, stages 1 and 2: 'none' trains it at stage1/2_style_lr as given (the paper); "
        "'presence' divides that by sqrt(B s), B s the number of the median artist's images in a batch: an "
        "artist's row of S gets a gradient only when its images are drawn and then moves about sqrt(B s) as "
        "far as a weight of E or G, so with many artists S learns slowly; the factor makes each row move "
        "about the rate given (8 artists at batch 16: 0.71, 100 artists: 2.5; "
        "tf_gadn/gadn/common.py: style_lr_factor).",
    )
    stage1_other_artist: str = _field(
        "any",
        "GADN a' of stage 1: 'any' draws a' ~ p(a) as L_C's equation says (a' = a now and then); "
        "'different' draws a' != a as the text and Appendix B.1 say ('a different artist').",
    )
    content_loss_target: str = _field(
        "sample",
        "GADN L_cont = ||E(G(c, S(a'))) - c||^2 with c what G received: 'sample' (the paper: E(x) fed to G is "
        "sampled) or 'mean' (E(x)'s mean, the code before this choice existed).",
    )
    # ---- GADN training (Table 2) --------------------------------------------------------------------------------
    stage1_steps: int = _field(400_000, "Stage 1 iterations.")
    stage1_batch_size: int = _field(8, "Stage 1 global batch.")
    stage1_lr: float = _field(5e-5, "Stage 1 learning rate of E, G, C1 (Adam).")
    stage1_style_lr: float = _field(5e-3, "Stage 1 learning rate of the style table S (Adam).")
    c2_steps: int = _field(200_000, "C2 pre-training iterations.")
    c2_batch_size: int = _field(16, "C2 pre-training global batch.")
    c2_lr: float = _field(
        5e-5, "C2 pre-training learning rate (Adam; not given in Table 2, see BUILD.md)."
    )
    stage2_steps: int = _field(400_000, "Stage 2 iterations.")
    stage2_batch_size: int = _field(8, "Stage 2 global batch.")
    stage2_lr: float = _field(2e-5, "Stage 2 learning rate of G, D, C2 (RMSprop).")
    stage2_style_lr: float = _field(1e-2, "Stage 2 learning rate of S (RMSprop).")
    stage2_reconstruction: float = _field(
        0.0,
        "Weight of stage 1's ||x - G(E(x), S(a))|| kept in stage 2 (not in "
        "the paper: 0). Stops G drifting from x's details while D and C2 "
        "move it toward a' 's style.",
    )
    # ---- style space networks (style-space Table 1) --------------------------------------------------------------
    ss_style_channels: tuple = _field(
        (64, 128, 256, 384, 512), "Style encoder S channels per level."
    )
    ss_style_blocks: tuple = _field((1, 1, 1, 1, 1), "Style encoder S blocks per level.")
    ss_vae_channels: tuple = _field(
        (64, 128, 192, 256, 384, 512), "Content VAE Enc/Dec channels per level."
    )
    ss_vae_blocks: tuple = _field((1, 1, 1, 1, 1, 1), "Content VAE Enc/Dec blocks per level.")
    ss_vae_fc_width: int = _field(512, "Extra fully connected layer of the VAE (Section 5.2).")
    ss_gen_channels: tuple = _field(
        (64, 128, 192, 256, 384, 512), "Conditional GAN generator channels per level."
    )
    ss_gen_blocks: tuple = _field((2, 2, 2, 2, 2, 2), "Conditional GAN generator blocks per level.")
    ss_disc_channels: tuple = _field(
        (64, 128, 256, 512), "Each consortium discriminator's channels per level (64 px input)."
    )
    ss_disc_blocks: tuple = _field(
        (1, 1, 1, 1), "Each consortium discriminator's blocks per level."
    )
    ss_disc_size: int = _field(64, "Input size of each consortium discriminator (Section 5.2: 64).")
    ss_block: str = _field(
        "gadn",
        "Residual block of every style-space network: 'wnres' (paper: [13]'s block, two strictly "
        "weight-normalised convolutions, translated PReLUs, a learned addition starting as the "
        "shortcut, weight-normalised output layers) or 'gadn' (GADN's one-convolution block).",
    )
    ss_blocks_include_resampling: bool = _field(
        True,
        "ss_*_blocks count each level's stride-2 block too, as [13] and Table 1 do (1 = the "
        "resampling block alone). False: they count the blocks after it (what a config.json "
        "written before this field meant).",
    )
    ss_nested_baseline: bool = _field(
        False,
        "Also train Figure 1's classification baseline with the metric network's nested dropout "
        "(paper: true; Figure 1 compares the losses, not the ordering); the unordered baseline "
        "stays as a second curve.",
    )
    style_code_dim: int = _field(512, "Style encoder output length before pruning.")
    content_code_dim: int = _field(512, "Content VAE code length before pruning.")
    d_style: int = _field(
        32,
        "Style dimensions kept after pruning. 0: the rule of the style encoder's pruning report "
        "(style_encoder/pruning.json, Section 4: the shortest prefix within 2 points of all dimensions' "
        "artist accuracy on held-out drawings), read when a later stage starts, so one flagfile fits "
        "collections of any number of artists (not in the paper, which reads 32 off its curve).",
    )
    d_content: int = _field(128, "Content dimensions kept after pruning.")
    gan_code_dim: int = _field(512, "Generator code length: d_style + d_content + d_noise.")
    nested_dropout_t: float = _field(0.995, "Nested dropout t (Table 2).")
    lambda_style: float = _field(0.5, "lambda_style (Section 5.2).")
    lambda_content: float = _field(0.05, "lambda_content (Section 5.2).")
    # ---- style space training (style-space Table 2) -------------------------------------------------------------
    style_encoder_steps: int = _field(
        200_000, "Style encoder iterations (not in the paper, see BUILD.md)."
    )
    style_encoder_batch_size: int = _field(32, "Style encoder batch.")
    style_encoder_lr: float = _field(1e-4, "Style encoder learning rate (Adam).")
    content_vae_steps: int = _field(
        200_000, "Content VAE iterations (not in the paper, see BUILD.md)."
    )
    content_vae_batch_size: int = _field(16, "Content VAE batch.")
    content_vae_lr: float = _field(5e-5, "Content VAE learning rate (RMSprop).")
    content_vae_adversary: float = _field(
        0.0,
        "Weight of an adversarial artist classifier on the content code in Enc's objective, its NLL capped at "
        "chance (not in the paper: 0; GADN's C1 on the code, Appendix B.1). The paper relies on S's code reaching "
        "the decoder 'for free'; where a style is a large pixel effect (a pen's weight) Enc encodes it anyway and "
        "the decoder copies the source's style (BUILD.md 'The content code kept the pen').",
    )
    cond_gan_steps: int = _field(
        400_000, "Conditional GAN iterations (not in the paper, see BUILD.md)."
    )
    cond_gan_batch_size: int = _field(8, "Conditional GAN batch.")
    cond_gan_lr: float = _field(2e-5, "Conditional GAN learning rate (RMSprop).")
    cond_gan_init: str = _field(
        "random",
        "'random' (paper) or 'decoder': G takes the content VAE decoder's shape (its "
        "F layer too) and weights, so G(u(x), v(x), 0) redraws x from step 0.",
    )
    cond_gan_reconstruction: float = _field(
        0.0,
        "Weight of ||G(u(x), v(x), 0) - x|| on training images in G's "
        "objective (not in the paper: 0). Anchors G to the codes of real "
        "drawings, which eqs. 8-9 alone do not do on a short run; the demos use 30, "
        "which keeps the transfers nearer the decoder start than 10 (BUILD.md "
        "'The GAN keeps nearer its decoder start').",
    )
    cond_gan_artist_classifier: float = _field(
        0.0,
        "Weight of an adversarial artist classifier's NLL on G(u(x_b), v(x), 0) "
        "for b's artist, GADN's C2 carried over (not in the paper: 0). The "
        "frozen S alone is fooled by pixel patterns; a classifier that learns "
        "'not by a'' on fakes is not.",
    )

    # ---- StarGAN (Choi et al., CVPR 2018), a baseline of GADN Section 5 -----------------------------------------------
    # Defaults are StarGAN's published settings (training details and the appendix); it was trained at 128 px.
    stargan_gen_channels: tuple = _field(
        (64, 128, 256),
        "StarGAN G: channels of the stem, then of each stride-2 level (StarGAN appendix: 64, 128, 256).",
    )
    stargan_bottleneck_blocks: int = _field(
        6, "StarGAN G: residual blocks at the bottom (StarGAN appendix: 6)."
    )
    stargan_disc_channels: tuple = _field(
        (64, 128, 256, 512, 1024, 2048),
        "StarGAN D: channels of each stride-2 level (StarGAN appendix: 64 ... 2048).",
    )
    stargan_steps: int = _field(
        200_000, "StarGAN iterations (authors' code: 200k at batch 16; the paper counts epochs)."
    )
    stargan_batch_size: int = _field(16, "StarGAN batch (training details: 16).")
    stargan_lr: float = _field(1e-4, "StarGAN learning rate of G and D (Adam, training details).")
    stargan_beta1: float = _field(0.5, "StarGAN Adam beta1 (training details: 0.5).")
    stargan_beta2: float = _field(0.999, "StarGAN Adam beta2 (training details: 0.999).")
    stargan_n_critic: int = _field(
        5, "StarGAN: one G update per this many D updates (training details, after WGAN-GP: 5)."
    )
    lambda_cls: float = _field(1.0, "StarGAN lambda_cls, domain classification (Section 3: 1).")
    lambda_rec: float = _field(10.0, "StarGAN lambda_rec, cycle reconstruction (Section 3: 10).")
    lambda_gp: float = _field(
        10.0, "StarGAN lambda_gp, gradient penalty (with WGAN-GP, eq. 8: 10)."
    )

    # ---- derived ------------------------------------------------------------------------------------------------
    def gadn_trunk(self) -> TrunkSpec:
        return TrunkSpec(
            self.image_size,
            tuple(self.gadn_channels),
            tuple(self.gadn_blocks),
            self.gadn_fc_width,
            upsample=self.upsample_conv,
        )

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_flags(cls, flag_values) -> Config:
        values = {}
        for f in dataclasses.fields(cls):
            value = getattr(flag_values, f.name)
            values[f.name] = tuple(int(v) for v in value) if isinstance(f.default, tuple) else value
        return cls(**values)

    @classmethod
    def from_flagfile(cls, path: str, **changes) -> Config:
        """A flagfile parsed by train's own flags (not the process's global ones), with `changes` on top: how tests
        and benchmarks build the shipped configs without running train."""
        from absl import flags

        flag_values = flags.FlagValues()
        define_flags(flag_values)
        flag_values(["config", f"--flagfile={path}"])
        return cls.from_flags(flag_values).replace(**changes)


def upgrade_stored(values: dict) -> dict:
    """A stored config.json as this code reads it: one written before `ss_blocks_include_resampling` counted its
    ss_*_blocks without the resampling block, so it is rewritten to the count that builds the same networks; fields
    added since with a new default read as what older GADN runs did (IMPLIED_BY_OLDER_RUNS; other methods never used
    those fields, so theirs read as the defaults)."""
    if values.get("method", "gadn") == "gadn":
        values = {**IMPLIED_BY_OLDER_RUNS, **values}
    values = dict(values)
    if values.get("method") == "style_space" and "ss_blocks_include_resampling" not in values:
        for name in ("ss_style_blocks", "ss_vae_blocks", "ss_gen_blocks", "ss_disc_blocks"):
            if name in values:
                values[name] = [int(b) + 1 for b in values[name]]
        values["ss_blocks_include_resampling"] = True
    return values


# Fields that say how a run is carried out, not what it trains: a rerun into an existing model_dir may change them
# (checkpoints.check_run_dir). Step counts and learning rates belong here because asking for more steps continues a
# run, and lowering the rates is how a run that went non-finite is resumed. Every other field (method, network sizes,
# code lengths, image size, generator_output, batch sizes, loss weights, ablation switches, seed, inherit_dir) shapes
# the networks or what they learn, so a model_dir holds one value of it; the data set is compared by its artists.json
# instead of its path. A field added later counts as "what is trained" unless it is listed here.
RUN_SETTINGS = frozenset(
    {
        "stage",
        "data_dir",
        "model_dir",
        "synthetic_if_missing",
        "synthetic_artists",
        "synthetic_images_per_artist",
        "synthetic_family",
        "resume",
        "overwrite_config",
        "strategy",
        "num_cpu_devices",
        "jit_compile",
        "mixed_precision",
        "accumulate_steps",
        "fused_adam",
        "upsample_conv",
        "inter_op_threads",
        "intra_op_threads",
        "log_every",
        "checkpoint_every",
        "sample_every",
        "eval_every",
        "cache",
    }
    | {f.name for f in dataclasses.fields(Config) if f.name.endswith(("_steps", "_lr"))}
)


# What a config.json written before a field existed implies, where that is not the field's (paper) default: the
# value older code trained with. Reading a missing field as this keeps an older run matching the flagfile it was
# trained from (checkpoints.check_run_dir) and describing itself truly (checkpoints.load_run_info).
IMPLIED_BY_OLDER_RUNS = {"stage1_other_artist": "different", "content_loss_target": "mean"}


def define_flags(flag_values=None) -> None:
    """Defines one absl flag per Config field (idempotent), so flagfiles and the dataclass never drift apart."""
    from absl import flags

    flag_values = (
        flags.FLAGS if flag_values is None else flag_values
    )  # an empty FlagValues is falsy
    for f in dataclasses.fields(Config):
        if f.name in flag_values:
            continue
        default: Any = f.default
        help_text = f.metadata["help"]
        if isinstance(default, bool):
            flags.DEFINE_bool(f.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(f.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(f.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, tuple):
            flags.DEFINE_list(f.name, [str(v) for v in default], help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(f.name, default, help_text, flag_values=flag_values)
