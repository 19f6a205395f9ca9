"""Saves killed mid-write leave a temporary file; the next save of the same target
removes it -- and only stale temporaries of that target (issue 13)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastcnn.nn.layers import Dense
from fastcnn.train import temp_files
from fastcnn.train.model import Sequential, load_model
from _helpers import subprocess_env


def small_model():
    return Sequential([Dense(4)], input_shape=(3,))


def temps(directory):
    return sorted(p for p in os.listdir(directory) if p.endswith(".tmp"))


KILLED_SAVE = textwrap.dedent("""
    import os, time
    from fastcnn.nn.layers import Dense
    from fastcnn.train.model import Sequential
    os.fsync = lambda fd: (print("writing", flush=True), time.sleep(600))   # hang mid-save
    Sequential([Dense(4)], input_shape=(3,)).save({target!r})
""")


@pytest.mark.skipif(os.name == "nt", reason="kill -9 of a POSIX process")
def test_save_killed_mid_write_leaves_a_temp_that_the_next_save_removes(tmp_path):
    target = str(tmp_path / "model.npz")
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE.format(target=target)],
                             stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert child.stdout.readline().strip() == "writing"
        assert len(temps(tmp_path)) == 1                 # the half-written temporary
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert len(temps(tmp_path)) == 1 and not os.path.exists(target)   # orphaned
    small_model().save(target)
    assert temps(tmp_path) == []
    load_model(target)


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "model.npz"
    host = temp_files._host()
    dead, alive = _dead_pid(), os.getpid()

    def make(name, age_days=0.0):
        path = tmp_path / name
        path.write_bytes(b"partial")
        old = time.time() - age_days * 86400
        os.utime(path, (old, old))
        return name

    removed = {make(f".fastcnn-model.npz.{host}.{dead}.abc_1.tmp"),         # killed save
               make(f".fastcnn-model.npz.otherhost.{alive}.x1.tmp", age_days=2)}
    kept = {
        make(f".fastcnn-model.npz.{host}.{alive}.inprogress.tmp"),      # a save running now
        make(f".fastcnn-model.npz.otherhost.{dead}.fresh.tmp"),         # other host, recent
        make(f".fastcnn-model.npz.extra.{host}.{dead}.x.tmp"),          # target "model.npz.extra"
        make(f".fastcnn-other.npz.{host}.{dead}.x.tmp"),                # another target
        make(f".fastcnn-model.npz.{host}.notapid.x.tmp"),               # not our name shape
        make("model.npz.tmp"),                                           # not ours at all
    }
    os.mkdir(tmp_path / f".fastcnn-model.npz.{host}.{dead}.dir.tmp")     # not a regular file
    kept.add(f".fastcnn-model.npz.{host}.{dead}.dir.tmp")
    os.symlink(tmp_path / "model.npz.tmp", tmp_path / f".fastcnn-model.npz.{host}.{dead}.ln.tmp")
    kept.add(f".fastcnn-model.npz.{host}.{dead}.ln.tmp")

    small_model().save(target)
    left = set(os.listdir(tmp_path))
    assert kept <= left
    assert not removed & left
    np.testing.assert_array_equal(load_model(target).layers[0].kernel.data.shape, (3, 4))


def test_long_target_names_still_save(tmp_path):
    target = tmp_path / ("m" * 200 + ".npz")
    small_model().save(target)
    small_model().save(target)
    assert temps(tmp_path) == []
