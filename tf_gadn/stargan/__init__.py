"""StarGAN (Choi et al., "StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image
Translation", CVPR 2018) as a baseline of GADN Section 5 / Figure 4: one generator G(x, c) conditioned on the target
artist's one-hot label, no content code; a WGAN-GP critic with an artist-classification head.

The one registration of the method: one stage, its network builder, serving module and evaluator."""

from tf_gadn.training.registry import Method, register

METHOD = register(
    Method(
        name="stargan",
        stages={"stargan": "tf_gadn.stargan.stage:StarGanStage"},
        networks="tf_gadn.stargan.networks:build_networks",
        serving="tf_gadn.stargan.serving:StarGanServing",
        evaluator="tf_gadn.stargan.evaluation:cli_report",
        transfer="tf_gadn.stargan.evaluation:run_transfer_model",
    )
)
