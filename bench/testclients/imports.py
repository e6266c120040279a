"""What a pytest worker pays to load a test-port client, on top of pytest itself: prints the
milliseconds that importing MODULES took after `import pytest`, in this fresh interpreter.

    python imports.py plugin|grpc
"""

import sys
import time

import pytest  # noqa: F401  (loaded in every worker anyway)

t = time.perf_counter()
if sys.argv[1] == "plugin":
    import pytest_portwarden  # noqa: F401
    import pytest_portwarden.rest  # noqa: F401
else:
    import portwarden

    portwarden.Client  # the gRPC client: grpc, protobuf and the stubs
print((time.perf_counter() - t) * 1e3)
