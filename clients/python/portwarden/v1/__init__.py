"""Generated protobuf and gRPC stubs of the portwarden.v1 contract (see generate.py)."""
