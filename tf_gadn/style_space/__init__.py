"""The metric-learned style space (Xiang & Li, "Anime Style Space Exploration Using Metric Learning and GANs"):
networks, stages, pruning, exploration figures, evaluation, serving.

The one registration of the method: its stage chain (Sections 3-4), network builder, serving module and evaluator."""

from tf_gadn.training.registry import Method, register

METHOD = register(
    Method(
        name="style_space",
        stages={
            "style_encoder": "tf_gadn.style_space.style_encoder:StyleEncoderStage",
            "content_vae": "tf_gadn.style_space.content_vae:ContentVaeStage",
            "cond_gan": "tf_gadn.style_space.cond_gan:CondGanStage",
        },
        networks="tf_gadn.style_space.networks:build_networks",
        serving="tf_gadn.style_space.serving:StyleSpaceServing",
        evaluator="tf_gadn.style_space.evaluation:cli_report",
        transfer="tf_gadn.style_space.evaluation:run_transfer_model",
        configure="tf_gadn.style_space.pruning:configured",
    )
)
