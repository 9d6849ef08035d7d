"""The `quaterion fit` config schema: what loads, and errors that name the bad field."""

from pathlib import Path

import pytest

from quaterion.cli import main
from quaterion.cli.components import load_config, validate
from quaterion.cli.config import ConfigError, FitConfig, from_dict

VALID = {
    "data": {"kind": "wordnet-lexical", "limit": 100},
    "loss": {"name": "TripletLoss", "kwargs": {"margin": 0.3}},
    "epochs": 3,
    "lr": 1,  # an int is a valid float
}


def check(data):
    return validate(from_dict(FitConfig, data))


def test_a_valid_config_fills_defaults_and_converts_numbers():
    config = check(VALID)
    assert config.data.kind == "wordnet-lexical" and config.data.limit == 100
    assert config.data.val_fraction == 0.2
    assert config.head.name == "SkipConnectionHead" and config.encoder.name == "minilm"
    assert config.loss.kwargs == {"margin": 0.3}
    assert config.lr == 1.0 and isinstance(config.lr, float)


def test_trainable_layers_build_a_partly_trainable_text_encoder(tiny_bert_3):
    from quaterion.cli.components import build_encoder

    config = check({**VALID, "encoder": {"name": "hf", "path": str(tiny_bert_3),
                                         "trainable_layers": 1}})  # fmt: skip
    encoder = build_encoder(config.encoder)
    assert encoder.trainable_layers == 1 and encoder.frozen_lower is not None


def test_encoder_top_layers_train_at_encoder_lr_and_the_rest_at_lr(tiny_bert_3):
    from quaterion.cli.training import AssembledModel
    from quaterion.loss import TripletLoss
    from quaterion_models.encoders.extras import HuggingFaceEncoder
    from quaterion_models.heads import LinearHead

    def optimizer(layers, **options):
        model = AssembledModel(lambda: HuggingFaceEncoder(tiny_bert_3, trainable_layers=layers),
                               lambda size: LinearHead(size, 4), lambda size: TripletLoss(), lr=0.1,
                               **options)  # fmt: skip
        groups = model.configure_optimizers().param_groups
        return model, [(group["lr"], len(group["params"])) for group in groups]

    model, groups = optimizer(1, encoder_lr=1e-4)
    encoder = model.model.encoders["default"]
    trained = sum(p.requires_grad for p in encoder.parameters())
    assert groups == [(0.1, len(list(model.parameters())) - trained), (1e-4, trained)]
    assert optimizer(1)[1][1][0] == 0.1  # encoder_lr defaults to lr
    assert len(optimizer(0, encoder_lr=1e-4)[1]) == 1  # a frozen encoder: one group


@pytest.mark.parametrize("encoder", [{"name": "efficientnet", "trainable_layers": 1},
                                     {"name": "minilm", "trainable_layers": -1}])  # fmt: skip
def test_trainable_layers_outside_text_encoders_are_refused(encoder):
    with pytest.raises(ConfigError, match="encoder.trainable_layers"):
        check({**VALID, "encoder": encoder})


def test_yaml_and_toml_files_give_the_same_config(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "data:\n  kind: csv\n  path: pairs.csv\nloss:\n  name: ContrastiveLoss\nepochs: 2\n"
    )
    toml_file = tmp_path / "c.toml"
    toml_file.write_text(
        'epochs = 2\n[data]\nkind = "csv"\npath = "pairs.csv"\n[loss]\nname = "ContrastiveLoss"\n'
    )
    assert load_config(yaml_file) == load_config(toml_file)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({**VALID, "epoch": 3}, "'epoch'"),
        ({**VALID, "data": {"kind": "csv", "path": "x.csv", "colour": 1}}, "'data.colour'"),
        ({**VALID, "epochs": "five"}, "'epochs' must be int"),
        ({**VALID, "epochs": True}, "'epochs' must be int"),
        ({**VALID, "data": {"kind": "wordnet-lexical", "limit": 1.5}}, "'data.limit'"),
        ({**VALID, "data": {"limit": 5}}, "missing config field 'data.kind'"),
        ({**VALID, "data": {"kind": "csv"}}, "'data.path' is required"),
        ({**VALID, "data": {"kind": "imagenet"}}, "'data.kind'"),
        ({**VALID, "loss": {"name": "TripletLos"}}, "'loss.name'"),
        ({**VALID, "head": {"name": "GatedHead", "kwargs": {"width": 3}}}, "'head.kwargs'"),
        ({**VALID, "loss": {"name": "TripletLoss", "kwargs": []}}, "'loss.kwargs'"),
        ({**VALID, "batch_size": 0}, "'batch_size' must be at least 1"),
        ({**VALID, "encoder": {"name": "hf"}}, "'encoder.path' is required"),
        ({**VALID, "lr": float("nan")}, "'lr' must be a finite number, got nan"),
        ({**VALID, "data": {"kind": "wordnet-lexical", "columns": {}}}, "'data.columns' is for"),
        (
            {**VALID, "data": {"kind": "csv", "path": "x", "columns": {"text": "obj"}}},
            "'data.columns' is 'text', which is not known; valid values: obj_a",
        ),
        (
            {**VALID, "data": {"kind": "csv", "path": "x", "columns": {"obj": 3}}},
            "'data.columns.obj' must be str, got int 3",
        ),
        ({**VALID, "data": {"kind": "csv", "path": "x", "val_fraction": float("inf")}}, "finite"),
        (
            {**VALID, "loss": {"name": "TripletLoss", "kwargs": {"margin": float("nan")}}},
            "'loss.kwargs.margin' must be a finite number",
        ),
        (
            {
                **VALID,
                "head": {
                    "name": "StackedProjectionHead",
                    "kwargs": {"output_sizes": [4, float("inf")]},
                },
            },
            r"'head.kwargs.output_sizes\[1\]' must be a finite number",
        ),
        (
            {**VALID, "loss": {"name": "TripletLoss", "kwargs": {"margin": -0.5}}},
            "'loss.kwargs.margin' must be at least 0, got -0.5",
        ),
        (
            {**VALID, "head": {"name": "SkipConnectionHead", "kwargs": {"n_layers": "two"}}},
            "'head.kwargs.n_layers' must be int, got str 'two'",
        ),
        (
            {**VALID, "head": {"name": "LinearHead", "kwargs": {"output_size": 2.5}}},
            "'head.kwargs.output_size' must be int or null, got float 2.5",
        ),
        (
            {**VALID, "loss": {"name": "TripletLoss", "kwargs": {"soft": "yes"}}},
            "'loss.kwargs.soft' must be bool",
        ),
        (
            {**VALID, "loss": {"name": "SoftmaxLoss", "kwargs": {"num_groups": 10**9}}},
            r"'loss.kwargs' sets \['num_groups'\], which `quaterion fit` works out",
        ),
    ],
)
def test_a_bad_config_error_names_the_field(data, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        check(data)


def test_an_unknown_loss_lists_the_valid_names():
    with pytest.raises(ConfigError) as error:
        check({**VALID, "loss": {"name": "HingeLoss"}})
    for valid in ("TripletLoss", "ContrastiveLoss", "MultipleNegativesRankingLoss"):
        assert valid in str(error.value)


def test_an_unknown_head_argument_lists_the_accepted_ones():
    with pytest.raises(ConfigError) as error:
        check({**VALID, "head": {"name": "SkipConnectionHead", "kwargs": {"layers": 2}}})
    assert "['layers']" in str(error.value) and "n_layers" in str(error.value)


def test_fit_command_reports_a_bad_config_on_stderr_with_exit_code_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  kind: wordnet-lexical\nepochs: ten\n")
    assert main(["fit", str(config)]) == 2
    err = capsys.readouterr().err
    assert "quaterion fit:" in err and "'epochs' must be int" in err


def test_a_loss_that_does_not_fit_the_data_is_rejected_before_training(tmp_path, capsys):
    config = tmp_path / "pairs.yaml"
    config.write_text("data:\n  kind: wordnet-definitions\nloss:\n  name: TripletLoss\n")
    assert main(["fit", str(config)]) == 2
    err = capsys.readouterr().err
    assert "gives pairs" in err and "trains on groups" in err


def test_an_unreadable_config_file_is_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    ini = tmp_path / "config.ini"
    ini.write_text("[data]\n")
    with pytest.raises(ConfigError, match="must end in"):
        load_config(ini)


def test_every_registered_head_and_loss_builds_with_derived_sizes():
    import torch

    from quaterion.cli.components import HEADS, LOSSES, build_head, build_loss, loss_kind
    from quaterion.cli.config import ComponentConfig

    kwargs = {"StackedProjectionHead": {"output_sizes": [4]}}
    kwargs["SoftmaxEmbeddingsHead"] = {"output_groups": 2, "output_size_per_group": 3}
    for name in HEADS:
        head = build_head(ComponentConfig(name, kwargs.get(name, {})), input_embedding_size=8)
        assert head(torch.randn(5, 8)).shape == (5, head.output_size)
    for name in LOSSES:
        loss = build_loss(ComponentConfig(name), embedding_size=8, num_groups=3)
        assert loss_kind(name) == ("groups" if hasattr(loss, "xbm_loss") else "pairs")


def test_relative_paths_are_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    config_file = folder / "fit.yaml"
    config_file.write_text(
        "data: {kind: csv, path: data/intents.csv}\n"
        "encoder: {name: hf, path: models/bert}\n"
        "cache_dir: runs/cache\n"
        f"output_dir: {tmp_path / 'elsewhere'}\n"
    )
    monkeypatch.chdir(tmp_path)  # the working directory does not matter
    config = load_config("project/fit.yaml")
    assert config.data.path == str(folder / "data" / "intents.csv")
    assert config.encoder.path == str(folder / "models" / "bert")
    assert config.cache_dir == str(folder / "runs" / "cache")
    assert config.output_dir == str(tmp_path / "elsewhere")  # absolute paths stay


def test_the_config_schema_does_not_import_the_component_registries():
    import subprocess
    import sys

    code = (
        "import sys, quaterion.cli.config; "
        "assert 'quaterion.cli.components' not in sys.modules, 'config imports components'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    config_source = (Path(__file__).parents[2] / "quaterion" / "cli" / "config.py").read_text()
    assert "components" not in config_source.split('"""', 2)[2].replace("components.ENCODERS", "")
