"""A run's Ray worker lost: on a Ray cluster of two nodes on this machine (``ray.cluster_utils.Cluster``),
which one Ray instance cannot show, and for each of Ray's errors that mean so. The rest of Ray: test_runs.py."""

import re
import threading

import pytest
import ray.exceptions as errors
from ray.cluster_utils import Cluster
from ray.core.generated.common_pb2 import ErrorType

from classroom.queue import RunQueue
from classroom.ray_executor import OnRay, _write_files
from harness import TINY
from harness.shapes import shapes_zip
from harness.wait import until
from vae import load_checkpoint
from vae.checkpoint import resume_path
from vae.config import TrainConfig
from vae.datasets import add_dataset, kept_path
from vae.settings import configure, settings


@pytest.fixture
def two_nodes():
    """A head node with no CPU, so that a run's actor lands on the worker node, which has one."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()


def test_ray_a_lost_worker_node_fails_its_run_in_words_and_keeps_its_last_checkpoint(tmp_path, two_nodes):
    cluster, worker = two_nodes
    with RunQueue(tmp_path, ray_address=cluster.address) as queue:
        assert queue.where.endswith(", 2 nodes")
        run = queue.submit(TrainConfig(**{**TINY, "epochs": 50}), "stranded")
        until(lambda: queue.snapshot(run.id).weights_epoch >= 1)  # its first epoch's event has come back
        cluster.remove_node(worker, allow_graceful=False)  # its raylet killed, and the actor with it
        assert queue.wait(run.id, timeout=120)
        run = queue.snapshot(run.id)
    lost = re.fullmatch(r"Failed: the Ray worker running it was lost after epoch (\d+); its last checkpoint is kept\.",
                        run.message)
    assert run.status == "failed" and lost, run.message
    assert int(lost[1]) == run.weights_epoch >= 1  # the last epoch whose event came back
    assert load_checkpoint(run.checkpoint).path == tmp_path / "stranded.pt"


class Anything:
    """Stands in for an actor class, its handle and its methods: any call or attribute gives itself."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


class LostWorker:
    """Stands in for the ``ray`` module once a run's worker is gone: ``ray.get`` raises ``error``."""

    exceptions = errors

    def __init__(self, error: Exception):
        self.error = error

    def get(self, ref):
        raise self.error

    def kill(self, actor):
        pass


@pytest.mark.parametrize("error", [
    errors.ActorDiedError(), errors.ActorUnavailableError("unavailable", None),
    errors.WorkerCrashedError(), errors.NodeDiedError("node died"), errors.LocalRayletDiedError(),
    errors.ObjectLostError("ab", None, ""), errors.OwnerDiedError("ab", None, ""),
    errors.ObjectReconstructionFailedError("ab", ErrorType.OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED),
    errors.RaySystemError("raylet died"),
], ids=lambda error: type(error).__name__)
def test_ray_each_error_of_a_lost_worker_is_said_in_words(tmp_path, error):
    executor = object.__new__(OnRay)  # no cluster: the executor's Ray calls go to the stand-ins
    executor._ray, executor._trainer, executor._options = LostWorker(error), Anything(), {}
    result = executor.train(TrainConfig(**TINY), tmp_path / "gone.pt", stop=threading.Event(), callback=print)
    assert (result.status, result.checkpoint) == ("failed", None)
    assert result.message == ("Failed: the Ray worker running it was lost before an epoch ended; "
                              "no checkpoint had come back.")


def test_a_ray_runs_first_write_leaves_a_model_that_took_its_name_as_it_is(tmp_path):
    """The queue's side of a Ray run writes the files that come back: its first write creates the
    model file only under a free name, as vae.train's does; later ones replace the run's own."""
    taken = tmp_path / "race.pt"
    taken.write_bytes(b"another run's model")
    with pytest.raises(FileExistsError, match="race.pt"):
        _write_files(taken, {"checkpoint": b"mine", "resume": b"my state"}, first=True)
    assert taken.read_bytes() == b"another run's model" and not resume_path(taken).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["race.pt"], "nothing left aside"
    mine = tmp_path / "mine.pt"
    _write_files(mine, {"checkpoint": b"epoch 1", "resume": b"state 1"}, first=True)
    _write_files(mine, {"checkpoint": b"epoch 2", "resume": b"state 2"}, first=False)
    assert mine.read_bytes() == b"epoch 2" and resume_path(mine).read_bytes() == b"state 2"


def test_a_ray_run_on_an_added_dataset_gets_its_file_with_the_run(tmp_path, two_nodes):
    # The worker's own data folder (the project's) does not hold the dataset: it trains only on the
    # file shipped with the run.
    cluster, _ = two_nodes
    data_dir = tmp_path / "data"
    added, _ = add_dataset(shapes_zip(tmp_path / "ray-shapes.zip", per_kind=8, seed=4), data_dir=data_dir)
    assert not kept_path(settings().data_dir, added.info.key).exists()
    before = configure(data_dir=data_dir)
    try:
        with RunQueue(tmp_path / "models", ray_address=cluster.address) as queue:
            config = TrainConfig(data=added.info.key, epochs=1, batch_size=8, val_size=0.2, latent_dim=4)
            run = queue.submit(config, "shapes")
            assert queue.wait(run.id, timeout=120)
            run = queue.snapshot(run.id)
    finally:
        configure(data_dir=before.data_dir)
    assert run.status == "finished", run.message
    assert load_checkpoint(run.checkpoint).dataset == added.info
