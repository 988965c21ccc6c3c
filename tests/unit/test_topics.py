from modelmon.config import Config
from modelmon.topics import partitions_of, topic_names


def test_the_labelled_predictions_topic_has_a_partition_per_task_at_least() -> None:
    cfg = Config.model_validate({"kafka": {"partitions": 2}, "job": {"parallelism": 3}})
    sizes = {name: partitions_of(cfg, name) for name in topic_names(cfg)}
    assert sizes.pop(cfg.topics.labelled_predictions) == 3
    assert set(sizes.values()) == {2}
    assert partitions_of(Config.model_validate({"kafka": {"partitions": 4}}), cfg.topics.labelled_predictions) == 4
