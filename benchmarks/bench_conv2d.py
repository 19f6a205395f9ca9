"""conv2d forward, backward and forward + backward: every backend x preset x threads.

GFLOP/s = extra_info["flops"] / time (2*N*F*C*KH*KW*OH*OW per forward; backward 2x).
``gemms`` times the exact matrix products of an im2col convolution alone on
preallocated arrays (fastcnn.bench.cases.gemm_callable): the floor to compare with.
"""

KERNEL = "conv2d"
EXTRA_BACKENDS = ["gemms"]


def test_conv2d_forward(run_case, case_name, backend, threads):
    run_case(case_name, "fwd", backend, threads)


def test_conv2d_backward(run_case, case_name, backend, threads):
    run_case(case_name, "bwd", backend, threads)


def test_conv2d_forward_backward(run_case, case_name, backend, threads):
    run_case(case_name, "fwd+bwd", backend, threads)
