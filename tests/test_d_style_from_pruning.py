"""--d_style=0: the style-space stages after the style encoder keep as many style dimensions as the encoder's own
pruning report chose (Section 4's rule), so one flagfile fits collections of any number of artists; a run that
inherits its encoders keeps the d_style they were trained with."""

import json

import numpy as np
import pytest
from conftest import tiny_config

from tf_gadn import train
from tf_gadn.serving import export
from tf_gadn.style_space import pruning
from tf_gadn.style_space.common import load_style_space
from tf_gadn.training import checkpoints

ARTISTS = [{"id": 0, "name": "a", "count": 1, "test_count": 0}]


def write_choice(run_dir, d_style: int) -> None:
    (run_dir / "style_encoder").mkdir(parents=True, exist_ok=True)
    (run_dir / "style_encoder" / pruning.PRUNING_JSON).write_text(json.dumps({"d_style": d_style}))


def test_zero_takes_the_runs_report_or_the_inherited_runs_d_style(tmp_path):
    own, inheriting, inherited = tmp_path / "own", tmp_path / "inheriting", tmp_path / "inherited"
    write_choice(own, 4)
    assert pruning.configured(tiny_config("style_space_tiny", d_style=0), str(own)).d_style == 4
    assert pruning.configured(tiny_config("style_space_tiny", d_style=3), str(own)).d_style == 3
    # before the style encoder has written its report (it is the first stage) nothing is filled in
    assert (
        pruning.configured(tiny_config("style_space_tiny", d_style=0), str(tmp_path)).d_style == 0
    )
    # the inherited run chose by its own report; the inheriting run follows it, not a report of its own
    checkpoints.save_run_info(str(inherited), tiny_config("style_space_tiny", d_style=0), ARTISTS)
    write_choice(inherited, 2)
    inheriting_config = tiny_config("style_space_tiny", d_style=0, inherit_dir=str(inherited))
    assert pruning.configured(inheriting_config, str(inheriting)).d_style == 2


def test_a_gan_stage_without_a_report_refuses_with_the_remedy(tiny_dataset, tmp_path):
    config = tiny_config(
        "style_space_tiny",
        data_dir=str(tiny_dataset),
        model_dir=str(tmp_path / "run"),
        stage="cond_gan",
        d_style=0,
    )
    with pytest.raises(ValueError, match="train the style_encoder stage first"):
        train.run(config)


def test_the_content_vae_after_the_style_encoder_is_built_with_the_reports_choice(
    tiny_dataset, tmp_path
):
    model_dir = tmp_path / "run"
    settings = dict(
        data_dir=str(tiny_dataset),
        model_dir=str(model_dir),
        d_style=0,
        gan_code_dim=32,  # room for any choice up to the 16-dimensional style code with d_content 8
        content_vae_steps=2,
    )
    train.run(tiny_config("style_space_tiny", stage="style_encoder", **settings))
    chosen = json.loads((model_dir / "style_encoder" / pruning.PRUNING_JSON).read_text())["d_style"]
    train.run(tiny_config("style_space_tiny", stage="content_vae", **settings))
    assert json.loads((model_dir / "config.json").read_text())["d_style"] == 0  # as asked
    config, _, networks = checkpoints.load_trained(str(model_dir))
    assert config.d_style == chosen
    # the decoder's first layer reads S(x)[:d_style] and the whole content code
    first = next(w for w in networks["decoder"].weights if w.path.endswith("fc/kernel"))
    assert first.shape[0] == chosen + config.content_code_dim


def test_a_gan_trained_with_zero_on_inherited_encoders_uses_their_d_style_and_exports(
    tiny_dataset, tiny_style_space_run, tmp_path
):
    model_dir = tmp_path / "gan"
    train.run(
        tiny_config(
            "style_space_tiny",
            data_dir=str(tiny_dataset),
            model_dir=str(model_dir),
            inherit_dir=str(tiny_style_space_run),
            stage="cond_gan",
            d_style=0,
            cond_gan_steps=2,
        )
    )
    assert checkpoints.load_run_info(str(model_dir))[0].d_style == 4  # the tiny flagfile's
    space = load_style_space(str(model_dir))
    assert space.style(np.zeros([3, 32, 32, 3], np.float32)).shape == (3, 4)
    # export takes the representative styles and statistics from the inherited style encoder stage
    export.export(str(model_dir), str(tmp_path / "exports"), "style_space")
    assert (tmp_path / "exports" / "style_space" / "1" / "saved_model.pb").exists()
