"""fastcnn 0.1's flat import paths still work, as the very same module objects."""

import importlib

import pytest

import fastcnn
from fastcnn import _compat


@pytest.mark.parametrize("old", sorted(_compat.OLD_PATHS))
def test_every_old_path_imports_as_the_new_module(old):
    assert importlib.import_module(old) is importlib.import_module(_compat.OLD_PATHS[old])


def test_old_names_of_classes_are_the_same_objects():
    from fastcnn.model import Sequential
    from fastcnn.train.model import Sequential as NewSequential

    assert Sequential is NewSequential is fastcnn.Sequential


def test_a_submodule_of_an_old_package_is_not_loaded_twice():
    old = importlib.import_module("fastcnn.layers.conv")
    assert old is importlib.import_module("fastcnn.nn.layers.conv")
    assert old.Conv2D is fastcnn.Conv2D


def test_attribute_access_on_the_package_reaches_old_and_tool_modules():
    assert fastcnn.testing is importlib.import_module("fastcnn.tools.testing")
    assert fastcnn.backend is importlib.import_module("fastcnn.kernels._dispatch")


def test_new_path_maps_packages_and_rejects_unknown_names():
    assert _compat.new_path("fastcnn.bench.cases") == "fastcnn.tools.bench.cases"
    assert _compat.new_path("fastcnn.model") == "fastcnn.train.model"
    assert _compat.new_path("fastcnn.nn.layers") is None
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        fastcnn.no_such_thing
