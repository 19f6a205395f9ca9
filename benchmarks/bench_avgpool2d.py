"""avgpool2d forward and forward + backward: every backend x preset x threads.

Effective GB/s = extra_info["bytes"] / time (forward: input + output; forward +
backward: x, out, dout and dx, each once).
"""

KERNEL = "avgpool2d"


def test_avgpool2d_forward(run_case, case_name, backend, threads):
    run_case(case_name, "fwd", backend, threads)


def test_avgpool2d_forward_backward(run_case, case_name, backend, threads):
    run_case(case_name, "fwd+bwd", backend, threads)
