"""Wire contracts of BIST Smart Trader (generated protobuf/gRPC code beside its sources)."""
