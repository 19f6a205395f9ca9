"""Batch norm in training mode, forward and forward + backward, dense (N, D) and
spatial (N, C, H, W): every backend x preset x threads.

Effective GB/s = extra_info["bytes"] / time (forward: 2x input; forward + backward:
5x input, i.e. x, out, dout, x again and dx).
"""

KERNEL = "batchnorm"


def test_batchnorm_forward(run_case, case_name, backend, threads):
    run_case(case_name, "fwd", backend, threads)


def test_batchnorm_forward_backward(run_case, case_name, backend, threads):
    run_case(case_name, "fwd+bwd", backend, threads)
