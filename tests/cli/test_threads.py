"""``--threads`` sets BLAS threads as well as torch's (in a child process: the setting is process-wide)."""

import json
import subprocess
import sys


def test_set_threads_limits_blas_and_torch():
    code = ("import json, torch; from threadpoolctl import threadpool_info; from lgn.limits import set_threads; "
            "set_threads(1); print(json.dumps([torch.get_num_threads(), "
            "[p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']]))")
    torch_threads, blas = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                    check=True).stdout)
    assert torch_threads == 1
    assert blas and set(blas) == {1}
