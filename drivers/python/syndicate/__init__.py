# Syndicate's Python package as sgw's chassis provides it to drivers: syndicate.util.gateway (the
# helper API) and syndicate.protobufs.sg_pb2 (DriverRequest), so ported drivers import unchanged.
