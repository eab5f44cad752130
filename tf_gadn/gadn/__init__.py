"""GADN (Xiang & Li, "Disentangling Style and Content in Anime Illustrations"): networks, stages, evaluation, serving.

The one registration of the method: its stage chain (Figure 1), network builder, serving module and evaluator."""

from tf_gadn.training.registry import Method, register

METHOD = register(
    Method(
        name="gadn",
        stages={
            "gadn_stage1": "tf_gadn.gadn.stage1:GadnStage1",
            "c2_pretrain": "tf_gadn.gadn.c2_pretrain:C2Pretrain",
            "gadn_stage2": "tf_gadn.gadn.stage2:GadnStage2",
        },
        networks="tf_gadn.gadn.networks:build_networks",
        serving="tf_gadn.gadn.serving:GadnServing",
        evaluator="tf_gadn.gadn.evaluation:cli_report",
        transfer="tf_gadn.gadn.evaluation:run_transfer_model",
    )
)
