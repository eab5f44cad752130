"""Registry of training stages and the order each method chains them in (GADN Figure 1; style-space Sections 3-4)."""
from __future__ import annotations

import importlib

_STAGES = {
    "gadn_stage1": "tf_gadn.gadn.stage1:GadnStage1",
    "c2_pretrain": "tf_gadn.gadn.c2_pretrain:C2Pretrain",
    "gadn_stage2": "tf_gadn.gadn.stage2:GadnStage2",
    "style_encoder": "tf_gadn.style_space.style_encoder:StyleEncoderStage",
    "content_vae": "tf_gadn.style_space.content_vae:ContentVaeStage",
    "cond_gan": "tf_gadn.style_space.cond_gan:CondGanStage",
}

CHAINS = {
    "gadn": ("gadn_stage1", "c2_pretrain", "gadn_stage2"),
    "style_space": ("style_encoder", "content_vae", "cond_gan"),
}


def stage_class(name: str):
    """The Stage subclass registered under `name` (imported lazily so one method never needs the other's code)."""
    if name not in _STAGES:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(_STAGES)}")
    module, cls = _STAGES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def stages_to_run(method: str, stage: str) -> tuple[str, ...]:
    if method not in CHAINS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(CHAINS)}")
    if stage == "all":
        return CHAINS[method]
    if stage not in CHAINS[method]:
        raise ValueError(f"stage {stage!r} is not part of method {method!r} ({', '.join(CHAINS[method])})")
    return (stage,)
