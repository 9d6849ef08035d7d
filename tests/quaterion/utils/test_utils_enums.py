"""TrainStage formats as its value, so logged names stay "train_loss" on Python 3.11+."""

from quaterion.utils.enums import TrainStage


def test_train_stage_formats_as_its_value():
    assert f"{TrainStage.TRAIN}_loss" == "train_loss"
    assert str(TrainStage.VALIDATION) == "validation"
    assert f"rp_{TrainStage.TEST}" == "rp_test"
    assert TrainStage("validation") is TrainStage.VALIDATION
