"""The swarm: one node per organisation — membership, gossip, stigmergy (threat field), acting on it.

The protocol core (`node.SwarmNode`) is a pure state machine: bytes in, (address, bytes) out, with the
time passed in. Transports (`tcp`, `sim`) deliver the bytes; the same core runs over loopback sockets
and in a virtual-time simulation of a thousand nodes.
"""
