"""Getting models out of fastcnn and into it: ONNX, PyTorch and Keras.

* :func:`export_onnx` (:mod:`fastcnn.interop.onnx`): a built model as an ONNX file
  (needs ``pip install "fastcnn[onnx]"``);
* :func:`to_torch` / :func:`to_torch_state_dict` (:mod:`fastcnn.interop.torch`): the
  equivalent ``torch.nn`` model, or a ``state_dict`` for one you wrote;
  :func:`load_state_dict_torch` is the way in (needs PyTorch);
* :func:`load_keras` (:mod:`fastcnn.interop.keras`): a Keras 3 ``.keras`` file as a
  fastcnn ``Sequential`` or functional ``Model`` (needs ``pip install "fastcnn[keras]"``,
  i.e. h5py; not Keras).

Every optional package is imported inside the function that needs it, so importing
this package costs nothing extra.
"""

from fastcnn.interop.keras import load_keras
from fastcnn.interop.onnx import export_onnx
from fastcnn.interop.torch import load_state_dict_torch, to_torch, to_torch_state_dict

__all__ = ["export_onnx", "to_torch", "to_torch_state_dict", "load_state_dict_torch",
           "load_keras"]
