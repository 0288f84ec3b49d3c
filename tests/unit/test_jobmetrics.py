import pytest

from shared.jobmetrics import job_metrics


def test_metrics_sum_tasks_and_count_each_media_object_once() -> None:
    job = {"_id": "j", "tasks": {
        "t1": {"id": 1, "metrics": {"bytes_in": 2e9}},
        "t2": {"id": 2, "metrics": {"media_in:jobs/j/a.mp4": 60.0, "cpu_seconds": 30.0}},
        "t3": {"id": 3, "metrics": {"media_in:jobs/j/a.mp4": 60.0,
                                    "media_out:jobs/j/a_240p.mp4": 60.0,
                                    "media_out:jobs/j/a_144p.mp4": 60.0, "cpu_seconds": 90.0}},
        "t4": {"id": 4, "metrics": {"bytes_out": 5e8}},
        "t5": {"id": 5, "metrics": {}},
    }}
    assert job_metrics(job) == {"id": "j", "cus": 2.0, "video_minutes_in": 1.0,
                                "video_minutes_out": 2.0, "gb_in": 2.0, "gb_out": 0.5}


def test_metrics_of_a_job_without_any() -> None:
    assert job_metrics({"_id": "k", "tasks": {}})["cus"] == pytest.approx(0)
