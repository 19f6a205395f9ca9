"""The layer graph both model kinds run: forward in topological order, backward in
reverse, gradients summed where a tensor feeds several layers.

A graph is a list of *nodes* (layers; node 0 is the ``InputLayer``) in topological
order and, for each node, the indices of the nodes it reads (``inbound``). A
``Sequential`` model is the chain ``inbound[i] == [i - 1]``; a functional ``Model`` is
any DAG with one input and one output (the last node).

Forward keeps each intermediate output only until its last reader has run. Backward
walks the nodes in reverse: a node's output gradient is complete once every reader
has passed its share, because readers come later in the order; shares are summed
(``dL/dh = sum over readers r of dL/dh via r``), the multivariate chain rule.
"""

from __future__ import annotations

from fastcnn.nn.layers.symbolic import InputLayer, SymbolicTensor

__all__ = ["Graph"]


class Graph:
    """Nodes in topological order, what each reads, and how to run them."""

    def __init__(self, nodes, inbound):
        self.nodes = list(nodes)
        self.inbound = [tuple(ins) for ins in inbound]
        self.readers = [0] * len(self.nodes)     # how many reads each output gets
        last_reader = [0] * len(self.nodes)
        for i, ins in enumerate(self.inbound):
            for j in ins:
                self.readers[j] += 1
                last_reader[j] = i
        # Precomputed once, so a step runs no bookkeeping but list indexing: which
        # outputs can be dropped after node i ran, and whether node i reads anything
        # but the input (then it must produce an input gradient even in a training step).
        self._frees = [[] for _ in self.nodes]
        for j, i in enumerate(last_reader):
            if self.readers[j]:
                self._frees[i].append(j)
        self._reads_inner = [any(j != 0 for j in ins) for ins in self.inbound]
        self._params = None

    def parameters(self) -> list:
        """Every Parameter of every node, in node order (collected once: the layers are
        built before the graph is made, so the list does not change)."""
        if self._params is None:
            self._params = [p for layer in self.nodes for p in layer.parameters()]
        return list(self._params)

    @classmethod
    def chain(cls, input_layer, layers) -> "Graph":
        """``input -> layers[0] -> layers[1] -> ...`` (a Sequential model)."""
        nodes = [input_layer] + list(layers)
        return cls(nodes, [[]] + [[i] for i in range(len(layers))])

    @classmethod
    def from_tensors(cls, where: str, inputs, outputs) -> "Graph":
        """Walk back from ``outputs`` to ``inputs`` (one SymbolicTensor each)."""
        for name, value in (("inputs", inputs), ("outputs", outputs)):
            if isinstance(value, (list, tuple)) and len(value) == 1:
                value = value[0]
            if not isinstance(value, SymbolicTensor):
                raise TypeError(f"{where}: {name} must be one symbolic tensor (from "
                                f"fastcnn.Input and layer calls); got {type(value).__name__}. "
                                f"Several inputs or outputs are not supported.")
        inputs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        if not isinstance(inputs.layer, InputLayer):
            raise ValueError(f"{where}: inputs must come from fastcnn.Input(...); got the "
                             f"output of layer {inputs.layer.name!r}.")
        order, index = [], {}

        def visit(tensor):                   # depth-first, post-order = topological
            if id(tensor) in index:
                return
            if isinstance(tensor.layer, InputLayer) and tensor is not inputs:
                raise ValueError(f"{where}: outputs depend on Input {tensor.layer.name!r}, "
                                 f"which is not the model's input {inputs.layer.name!r}.")
            for t in tensor.inputs:
                visit(t)
            index[id(tensor)] = len(order)
            order.append(tensor)

        visit(outputs)
        if id(inputs) not in index:
            raise ValueError(f"{where}: outputs do not depend on inputs "
                             f"({inputs.layer.name!r}).")
        # The input first: order[] is topological, and only inputs has no inbound.
        order.remove(inputs)
        order.insert(0, inputs)
        index = {id(t): i for i, t in enumerate(order)}
        return cls([t.layer for t in order],
                   [[index[id(s)] for s in t.inputs] for t in order])

    # ------------------------------------------------------------------ running
    @property
    def last(self) -> int:
        return len(self.nodes) - 1

    def forward(self, x, training: bool, logits: bool = False, observe=None):
        """Output of the last node for batch ``x`` (NCHW). ``logits``: the last node
        stops before its softmax (``forward_logits``). ``observe(layer, input, output)``
        is called after every node (the diagnostics walk the graph with it)."""
        # Node 0 is the InputLayer (the identity): the first layers check x themselves.
        values = [None] * len(self.nodes)
        values[0] = x
        last = self.last
        for i in range(1, len(self.nodes)):
            layer, ins = self.nodes[i], self.inbound[i]
            arg = [values[j] for j in ins] if layer.is_merge else values[ins[0]]
            out = (layer.forward_logits(arg, training) if logits and i == last
                   else layer.forward(arg, training))
            for j in self._frees[i]:             # no later node reads these
                values[j] = None
            values[i] = out
            if observe is not None:
                observe(layer, arg, out)
        return values[last]

    def _node_backward(self, i, grad, need_dx, logits):
        layer = self.nodes[i]
        if logits and i == self.last:
            return [layer.backward_logits(grad, need_dx=need_dx)]
        dx = layer.backward(grad, need_dx=need_dx)
        return dx if layer.is_merge else [dx]

    def backward(self, dout, need_dx: bool = True, logits: bool = False, observe=None):
        """``dL/dx`` of the graph's input from ``dout`` (None with ``need_dx=False``:
        layers that read only the input then skip their input gradient).
        ``observe(layer, input_grads)`` is called after every node."""
        grads = [None] * len(self.nodes)
        grads[self.last] = dout
        for i in range(self.last, 0, -1):
            ins = self.inbound[i]
            need = need_dx or self._reads_inner[i]
            dxs = self._node_backward(i, grads[i], need, logits)
            grads[i] = None
            if observe is not None:
                observe(self.nodes[i], dxs)
            if not need:
                continue
            for j, d in zip(ins, dxs):
                if j == 0 and not need_dx:
                    continue
                # A new array, never in place: a merge hands the same dout to all inputs.
                grads[j] = d if grads[j] is None else grads[j] + d
        return grads[0] if need_dx else None
